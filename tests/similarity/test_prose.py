"""Report fingerprints: normalised word shingles, the assignment's text removed, concepts across languages."""

from __future__ import annotations

from conftest import FIXTURES

from harness.config.similarity import load_similarity_config
from harness.ingest import ingest_path
from harness.results import IngestResult, MarkdownCell
from harness.scoring.readers.text import prose_lines
from harness.similarity.prose import (
    assignment_shingles,
    concept_shingles,
    concept_tokens,
    language,
    report_shingles,
    words,
)

CONFIG = load_similarity_config()


def _ingest(student: str) -> IngestResult:
    return ingest_path(FIXTURES / "class" / f"{student}.ipynb", student)


def _report(text: str) -> IngestResult:
    return IngestResult(
        student="x", source="x", kind="notebook", main_file="x", sha256="", markdown=[MarkdownCell(cell=1, text=text)]
    )


def _set(items) -> set[int]:
    return {h for h, *_ in items}


def test_case_accents_and_numbers_change_nothing():
    a = _report("Le modèle amélioré atteint 99,1 % d'exactitude contre 98,7 % pour la référence.")
    b = _report("LE MODELE AMELIORE atteint 97.3 % d'EXACTITUDE contre 96 % pour la REFERENCE !")
    assert _set(report_shingles(a, 5)) == _set(report_shingles(b, 5)) != set()
    assert words("Époque 3") == ["epoque", "#"]


def test_the_assignments_own_text_is_removed():
    assignment = (FIXTURES.parent.parent.parent / "reference" / "assignment.md").read_text(encoding="utf-8")
    pasted = _report("\n".join(assignment.splitlines()[:40]))
    assert assignment_shingles(5) and _set(report_shingles(pasted, 5)) == set()


def test_a_translated_report_shares_its_concepts():
    lexicon = CONFIG.concepts()
    french, english = (_set(concept_shingles(_ingest(s), 4, lexicon)) for s in ("s4_david", "p4_rose"))
    other = _set(concept_shingles(_ingest("s8_hugo"), 4, lexicon))
    assert len(french & english) / min(len(french), len(english)) >= 0.5
    assert len(french & other) / min(len(french), len(other)) < 0.2


def test_language():
    assert language(_ingest("s4_david")) == "fr" and language(_ingest("p4_rose")) == "en"


def test_superscripts_and_other_unicode_figures_are_not_numbers_to_read():
    """ "≈ 10¹⁰ opérations", "x²": a superscript is a letter-like mark, not a number to read (it once stopped
    the similarity of the whole class)."""
    report = _report("Le réseau fait environ 10¹⁰ opérations ; la perte varie comme x² avec 99,1 % en test.")
    tokens = [token for token, _, _ in concept_tokens(prose_lines(report), CONFIG.concepts())]
    assert "n:99.1" in tokens and "n:10" in tokens
    concept_shingles(report, CONFIG.report.concept_k, CONFIG.concepts())  # the stage's own call, once a ValueError

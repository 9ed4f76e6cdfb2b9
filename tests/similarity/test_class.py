"""The synthetic class (tests/fixtures/similarity/): planted pairs found at the default thresholds, handout-only
pairs not, the page and the dashboard link, the command, --against, LSH candidates."""

from __future__ import annotations

import shutil

import html5lib
import pytest
from conftest import build_class

from harness.cli import main
from harness.pipeline.similarity import similarity
from harness.report.render import render_dashboard
from harness.results import SubmissionResult
from harness.similarity import SimilarityResult
from harness.util.i18n import Translator


def _flagged(result: SimilarityResult) -> set[frozenset[str]]:
    return {frozenset((p.a, p.b)) for p in result.pairs if p.flagged}


@pytest.fixture(scope="module")
def compared(synthetic_class) -> SimilarityResult:
    return similarity(synthetic_class)


def test_planted_pairs_are_found_and_nothing_else(compared, expected):
    planted = {frozenset(pair) for pair in expected["planted"]}
    flagged = _flagged(compared)
    recall = len(planted & flagged) / len(planted)
    precision = len(planted & flagged) / max(1, len(flagged))
    assert recall >= 0.95 and precision >= 0.9, (planted - flagged, flagged - planted)
    ranked = [frozenset((p.a, p.b)) for p in compared.pairs][: len(planted)]
    assert set(ranked) == planted  # every planted pair at the top of the list


def test_sharing_only_the_handout_is_not_flagged(compared, expected):
    assert not _flagged(compared) & {frozenset(pair) for pair in expected["handout_only"]}


def test_each_disguise_is_seen_by_its_signal(compared):
    pairs = {frozenset((p.a, p.b)): p for p in compared.pairs}
    assert pairs[frozenset(("s4_david", "p4_rose"))].translated.flagged  # the translated report
    assert not pairs[frozenset(("s4_david", "p4_rose"))].code.flagged
    shared_model = pairs[frozenset(("s5_emma", "p5_sami"))]
    assert shared_model.model_flagged and not shared_model.code.flagged and not shared_model.report.flagged
    renamed = pairs[frozenset(("s1_alice", "p1_marc"))].code
    assert renamed.flagged and renamed.regions_a and renamed.regions_b


def test_a_group_of_three_is_a_cluster(compared, expected):
    assert [c.students for c in compared.clusters] == expected["clusters"]


def test_the_page_is_self_contained_and_linked_from_the_dashboard(synthetic_class, compared):
    page = (synthetic_class / "similarity.html").read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(page)
    assert "<mark>" in page and "http" not in page.replace("http-equiv", "")
    assert "Similarités dans la classe" in page
    results = [SubmissionResult.read(p) for p in sorted(synthetic_class.glob("*/result.json"))]
    dashboard = render_dashboard(synthetic_class, results, None, Translator("en")).read_text(encoding="utf-8")
    assert 'href="similarity.html"' in dashboard and "8 pair(s) to look at" in dashboard


def test_the_command_reruns_it_alone_and_compares_with_an_earlier_class(synthetic_class, tmp_path, capsys):
    earlier = build_class(tmp_path / "earlier" / "out")
    assert main(["similarity", str(earlier)]) == 0
    for student in ("p1_marc", "p2_noe", "s2_bruno"):
        shutil.rmtree(earlier / student)
    (earlier / "s1_alice" / "ingest.json").unlink()  # an earlier class keeps its fingerprints, not its code
    assert main(["similarity", str(synthetic_class), "--against", str(earlier), "--lang", "en"]) == 0
    result = SimilarityResult.read(synthetic_class / "similarity.json")
    across = {(p.a, p.b) for p in result.pairs if p.flagged and p.b_origin == str(earlier)}
    assert ("s1_alice", "s1_alice") in across or ("p1_marc", "s1_alice") in across
    assert "compared" in capsys.readouterr().out


def test_without_the_test_labels_error_overlap_is_left_out_and_said(synthetic_class, tmp_path):
    out = shutil.copytree(synthetic_class, tmp_path / "out")
    result = similarity(out, data=tmp_path / "missing.npz")
    assert not result.labels and result.notes
    assert frozenset(("s5_emma", "p5_sami")) in _flagged(result)  # identical predictions need no labels


def test_lsh_candidates_find_the_same_planted_pairs(synthetic_class, tmp_path, expected):
    settings = tmp_path / "similarity.toml"
    settings.write_text("[class]\nlsh_above = 5\nlsh_threshold = 0.3\n", encoding="utf-8")
    result = similarity(shutil.copytree(synthetic_class, tmp_path / "out"), settings=settings)
    assert result.candidates == "lsh" and result.compared_pairs < 17 * 16 // 2
    assert {frozenset(pair) for pair in expected["planted"]} <= _flagged(result)


def test_a_submission_that_cannot_be_fingerprinted_is_left_out_and_said(synthetic_class, tmp_path):
    """One student's stored ingest unreadable (a disk error, a file cut short): the class is still compared,
    that student left out with the reason in the notes."""
    out = shutil.copytree(synthetic_class, tmp_path / "out")
    (out / "s1_alice" / "ingest.json").write_text('{"student": "s1_al', encoding="utf-8")
    result = similarity(out)
    assert "s1_alice" not in {p.student for p in result.submissions}
    assert any("s1_alice" in note for note in result.notes)
    assert frozenset(("s5_emma", "p5_sami")) in _flagged(result)

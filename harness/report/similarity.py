"""``OUT/similarity.html``: the instructor's page of similar pairs, each signal with its numbers and the
matching code and report passages side by side (highlighted), and the clusters.

Rendered from ``OUT/similarity.json`` and each student's ``ingest.json`` (the text itself is never kept
in the similarity file: an earlier class compared with ``--against`` shows its fingerprints only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.report.render import _environment as environment
from harness.results import IngestResult
from harness.similarity.records import SIMILARITY_PAGE, PairResult, Region, SimilarityResult
from harness.util.atomic import write_text_atomic
from harness.util.i18n import Translator

CONTEXT = 1  # lines shown around a matching passage
MAX_REGIONS = 6  # passages shown per side and signal; the others are counted
MAX_LINES = 40  # lines shown per passage


@dataclass
class Excerpt:
    """A passage of one side: where it is, and its lines (number, text, matching or context)."""

    where: str
    lines: list[tuple[int, str, bool]]


@dataclass
class Side:
    """One side of a signal's side-by-side view: its passages, and how many more were left out."""

    excerpts: list[Excerpt]
    more: int
    kept: bool


def _texts(ingest: IngestResult | None, kind: str) -> dict[int | None, list[str]] | None:
    """Cell -> its lines, for code (code cells) or the report (markdown, or the module's own text)."""
    if ingest is None:
        return None
    if kind == "report" and ingest.markdown:
        return {m.cell: m.text.splitlines() for m in ingest.markdown}
    return {c.cell: c.source.splitlines() for c in ingest.code_cells}


def _excerpt(region: Region, lines: list[str], t: Translator) -> Excerpt:
    first, last = max(1, region.first - CONTEXT), min(len(lines), region.last + CONTEXT, region.first + MAX_LINES)
    where = t("cell", n=region.cell) if region.cell is not None else t("sim_module")
    shown = [(n, lines[n - 1], region.first <= n <= region.last) for n in range(first, last + 1)]
    return Excerpt(t("sim_where", where=where, first=region.first, last=region.last), shown)


def side(regions: list[Region], ingest: IngestResult | None, kind: str, t: Translator) -> Side:
    """The passages of one side that match the other, with their lines, for the page."""
    texts = _texts(ingest, kind)
    if texts is None:
        return Side([], len(regions), kept=False)
    excerpts = [_excerpt(r, texts[r.cell], t) for r in regions[:MAX_REGIONS] if r.cell in texts]
    return Side(excerpts, max(0, len(regions) - MAX_REGIONS), kept=True)


def _views(pair: PairResult, ingests: dict[str, IngestResult | None], t: Translator) -> dict[str, tuple[Side, Side]]:
    a = ingests.get(pair.a)
    b = None if pair.b_origin else ingests.get(pair.b)
    views = {}
    for name, kind in (("code", "code"), ("report", "report"), ("translated", "report")):
        found = getattr(pair, name)
        if found.regions_a or found.regions_b:
            views[name] = (side(found.regions_a, a, kind, t), side(found.regions_b, b, kind, t))
    return views


def render_similarity(
    out: Path, result: SimilarityResult, ingests: dict[str, IngestResult | None], t: Translator
) -> Path:
    """Write ``OUT/similarity.html`` (self-contained, like every page of the harness)."""
    env = environment(t)
    html = env.get_template("similarity.html.j2").render(
        result=result,
        flagged=[(p, _views(p, ingests, t)) for p in result.pairs[: result.detailed]],
        listed=result.pairs[result.detailed : len([p for p in result.pairs if p.flagged])],
        others=[(p, _views(p, ingests, t)) for p in result.pairs if not p.flagged],
        lang=t.language,
    )
    return write_text_atomic(out / SIMILARITY_PAGE, html)

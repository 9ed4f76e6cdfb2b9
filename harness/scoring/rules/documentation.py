"""Rule ``documentation``: the deliverable's sections, each found and long enough.

Each section is worth ``heading_share`` for being there and the rest in proportion to its words,
full at ``min_words``; a .py submission's report is its docstrings and comments. Parameters
documented in ``rubric/default.toml``.
"""

from __future__ import annotations

import re

from harness.scoring.evidence import (
    Evidence,
    Notes,
    Verdict,
    component,
    excerpt,
    not_done,
    ratio,
    section_share,
    text_doubts,
)
from harness.scoring.readers import text as rubric_text
from harness.scoring.rules.analysis import numbers_untrusted
from harness.scoring.rules.registry import RuleParams, rule
from harness.util.i18n import Translator


class DocumentationParams(RuleParams):
    """The ``documentation`` criterion's parameters (see ``rubric/default.toml``)."""

    sections: list[str] = ["introduction", "baseline", "improvements", "results", "errors", "robustness", "conclusion"]
    min_words: int = 20
    heading_share: float = 0.5
    substance_hits: int = 2
    untrusted_cost: float = 0.5 / 3
    code_report_share: float = 0.75


# a number that points at something rather than measures it ("as we can see in Figure 2", "model 3", "cell 12"):
# a section that needs a number ("results without a number") is not given one by these
REFERENCE = re.compile(
    r"\b(?:figures?|fig\.?|tables?|tableaux?|cellules?|cells?|sections?|parties|partie|parts?|etapes?|steps?"
    r"|annexes?|appendix|graphiques?|graphs?|plots?|charts?|courbes?|curves?|modeles?|models?|versions?)\s*n?[o°]?\s*\d+\b"
)


def _substance(ev: Evidence, notes: Notes, t: Translator, p: DocumentationParams, name: str, share: float) -> float:
    """A found section's share with its words counted only in proportion to what it says: the
    distinct `content` patterns of its section in its text, full at `substance_hits`; the first
    sentence that holds one is quoted. A section without what it `needs` (results without a number)
    is incomplete: its heading's share only."""
    section = ev.sections.get(name)
    spec = ev.rubric.sections.get(name)
    if section is None or spec is None or share <= p.heading_share:
        return share
    text = rubric_text.plain(section.text)
    label = t("section_" + name)
    if spec.needs and not rubric_text.matches_any(spec.needs, REFERENCE.sub(" ", text)):
        notes.add(t("rb_ev_doc_incomplete", section=label), section.cell, section.line, "missing")
        return p.heading_share
    hits = [pattern for pattern in spec.content if re.search(pattern, text)]
    factor = min(1.0, len(hits) / max(1, p.substance_hits))
    sentence = next(
        (s for s in re.split(r"(?<=[.!?;])\s+|\n", section.text) if hits and re.search(hits[0], rubric_text.plain(s))),
        "",
    )
    if sentence:
        notes.add(
            t("rb_ev_doc_substance", section=label, hits=len(hits), excerpt=excerpt(sentence)),
            section.cell,
            section.line,
            "found" if factor >= 1 else "info",
        )
    else:
        notes.add(t("rb_ev_doc_no_substance", section=label), section.cell, section.line, "missing")
    return p.heading_share + (share - p.heading_share) * factor


def _untrusted(ev: Evidence, t: Translator) -> bool:
    """Whether the analysis criterion (with its own parameters) finds the report's numbers untrustworthy."""
    analysis = next((c for c in ev.rubric.criteria if c.rule == "analysis"), None)
    return analysis is not None and numbers_untrusted(ev, ev.rubric.params(analysis), t)


@rule("documentation", params=DocumentationParams)
def rule_documentation(ev: Evidence, p: DocumentationParams, t: Translator) -> Verdict:
    """Score the documentation: the mean share of the sections present, with the prose's word count."""
    notes = Notes(t, ev)
    shares = [
        _substance(ev, notes, t, p, name, section_share(ev, notes, t, name, p.min_words, p.heading_share))
        for name in p.sections
    ]
    total_words = sum(rubric_text.count_words(line.text) for line in ev.prose)
    source = t("rb_prose_module") if ev.is_module else t("rb_prose_markdown")
    notes.add(t("rb_ev_words", words=total_words, source=source))
    found = [n for n in p.sections if n in ev.sections and not not_done(ev, n)]
    missing = [t("section_" + n) for n in p.sections if n not in found or ev.sections[n].words < p.min_words]
    share = sum(shares) / len(shares) if shares else 0.0
    if share and p.code_report_share < 1 and rubric_text.report_in_code(ev.ingest):
        share *= p.code_report_share
        notes.add(t("rb_ev_doc_in_code", share=round(100 * p.code_report_share)), kind="flag")
    if p.untrusted_cost > 0 and _untrusted(ev, t):
        share = max(0.0, share - p.untrusted_cost)
        notes.add(t("rb_ev_doc_untrusted", cost=round(100 * p.untrusted_cost)), kind="flag")
    reason = t(
        "rb_reason_documentation",
        found=len(found),
        total=len(p.sections),
        words=total_words,
        missing=t.join(", ", missing) if missing else "—",
    )
    return Verdict(
        reason,
        [component(t, "sections", share, 1.0, ratio(t, len(found), len(p.sections)))],
        notes.items,
        text_doubts(ev, t, p.sections),
    )

"""Rule ``documentation``: the deliverable's sections, each found and long enough.

Each section is worth ``heading_share`` for being there and the rest in proportion to its words,
full at ``min_words``; a .py submission's report is its docstrings and comments. Parameters
documented in ``rubric/default.toml``.
"""

from __future__ import annotations

from harness.scoring.evidence import Evidence, Notes, Verdict, component, section_share
from harness.scoring.readers import text as rubric_text
from harness.scoring.rules.registry import RuleParams, rule
from harness.util.i18n import Translator


class DocumentationParams(RuleParams):
    """The ``documentation`` criterion's parameters (see ``rubric/default.toml``)."""

    sections: list[str] = ["introduction", "baseline", "improvements", "results", "errors", "robustness", "conclusion"]
    min_words: int = 20
    heading_share: float = 0.5


@rule("documentation", params=DocumentationParams)
def rule_documentation(ev: Evidence, p: DocumentationParams, t: Translator) -> Verdict:
    """Score the documentation: the mean share of the sections present, with the prose's word count."""
    notes = Notes(t, ev)
    shares = [section_share(ev, notes, t, name, p.min_words, p.heading_share) for name in p.sections]
    total_words = sum(rubric_text.count_words(line.text) for line in ev.prose)
    source = t("rb_prose_module") if ev.is_module else t("rb_prose_markdown")
    notes.add(t("rb_ev_words", words=total_words, source=source))
    found = [n for n in p.sections if n in ev.sections]
    missing = [t("section_" + n) for n in p.sections if n not in ev.sections or ev.sections[n].words < p.min_words]
    share = sum(shares) / len(shares) if shares else 0.0
    reason = t(
        "rb_reason_documentation",
        found=len(found),
        total=len(p.sections),
        words=total_words,
        missing=", ".join(missing) or "—",
    )
    return Verdict(reason, [component(t, "sections", share, 1.0, f"{len(found)}/{len(p.sections)}")], notes.items)

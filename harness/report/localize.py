"""A stored score said in the report's language: the scoring rules store each reason, evidence item and
part as a message (its key and values, ``messages`` in result.json), said again here at report time, so
that ``harness report OUT --lang en`` writes English from a class scored in French.

Results written before the messages existed keep their stored text (``harness report`` scores them again
in the new language when it can: harness/pipeline/rescore.py).

>>> localized(result, Translator("en")).score.criteria[0].reason  # doctest: +SKIP
'2/2 models built and trained; …'
"""

from __future__ import annotations

from harness.results import ComponentScore, CriterionScore, EvidenceItem, SubmissionResult
from harness.util.i18n import Translator


def _said(item, t: Translator, fields: tuple[str, ...]) -> dict:
    """The fields of `item` that it stores as messages, said in `t`'s language."""
    return {name: t.render(item.messages[name]) for name in fields if name in item.messages}


def _evidence(item: EvidenceItem, t: Translator) -> EvidenceItem:
    return item.model_copy(update=_said(item, t, ("text", "where"))) if item.messages else item


def _component(part: ComponentScore, t: Translator) -> ComponentScore:
    return part.model_copy(update=_said(part, t, ("label", "detail"))) if part.messages else part


def criterion_in(criterion: CriterionScore, t: Translator) -> CriterionScore:
    """One criterion's reason, doubts, evidence and parts in `t`'s language (as stored where no message is)."""
    update = _said(criterion, t, ("reason",))
    if "confidence_reasons" in criterion.messages:
        update["confidence_reasons"] = [t.render(m) for m in criterion.messages["confidence_reasons"]]
    update["evidence"] = [_evidence(e, t) for e in criterion.evidence]
    update["components"] = [_component(c, t) for c in criterion.components]
    return criterion.model_copy(update=update)


def localized(result: SubmissionResult, t: Translator) -> SubmissionResult:
    """`result` with its score's messages said in `t`'s language (points untouched)."""
    if result.score is None:
        return result
    criteria = [criterion_in(c, t) for c in result.score.criteria]
    return result.model_copy(update={"score": result.score.model_copy(update={"criteria": criteria})})

"""Score stage: the rubric file's criteria applied to stored results, every point with its evidence.

Scoring reads only stored results (``ingest.json``, the models in ``result.json``, the reference),
so a rubric or override change re-scores a class in seconds without retraining anything. Each
criterion of the rubric (``rubric.py``) names a rule of the registry (``rules/``) and gives its
parameters; the rule splits its criterion into parts (components), each with points, and lists
what it detected and where (evidence). The engine scales the parts to the criterion's points and
rounds them; the instructor's overrides file then sets or adjusts any criterion; automatic and
instructor points are both kept.

The rules, their parameters and the heuristics are documented in ``rubric/default.toml`` and in
``docs/rubric.md``.
"""

from __future__ import annotations

import math

from harness.results import CriterionScore, EvidenceItem, IngestResult, Score, SubmissionResult
from harness.scoring.evidence import Evidence, as_message
from harness.scoring.rubric import Rubric
from harness.scoring.rules import get_rule
from harness.util.i18n import Translator


def _round(points: float, step: float) -> float:
    """To the nearest multiple of `step`, halves up (1.25 -> 1.5 with step 0.5), as graders round."""
    return math.floor(points / step + 0.5 + 1e-9) * step if step > 0 else round(points, 3)


def _apply_override(criterion: CriterionScore, rubric: Rubric, student: str, t: Translator) -> CriterionScore:
    """The criterion with the instructor's override for this student applied (and noted), if any."""
    override = rubric.overrides.for_student(student).get(criterion.id)
    if override is None:
        return criterion
    automatic = (criterion.auto_points or 0.0) + (criterion.withheld_points or 0.0 if override.clear_flags else 0.0)
    final = override.apply(automatic, criterion.max_points)
    said = t(
        "rb_ev_override",
        change=override.describe(),
        auto=float(criterion.auto_points or 0.0),
        final=float(final),
        comment=override.comment or "—",
    )
    evidence = [*criterion.evidence, EvidenceItem(text=said, kind="flag", messages={"text": as_message(said)})]
    return criterion.model_copy(
        update={
            "points": final,
            "instructor_points": final,
            "instructor_comment": override.comment or None,
            "evidence": evidence,
            # a human has looked: nothing left to review
            "confidence": "high",
            "confidence_reasons": [],
            "messages": {k: v for k, v in criterion.messages.items() if k != "confidence_reasons"},
        }
    )


def score(evidence: Evidence, t: Translator) -> Score:
    """Every criterion of the evidence's rubric scored by its rule, scaled to its points, rounded,
    then overridden where the instructor says so."""
    rubric = evidence.rubric
    criteria = []
    for criterion in rubric.criteria:
        verdict = get_rule(criterion.rule)(evidence, rubric.params(criterion), t)
        raw = sum(c.points for c in verdict.components)
        out_of = sum(c.max_points for c in verdict.components)
        exact = raw * criterion.max_points / out_of if out_of > 0 else 0.0
        exact = max(0.0, min(criterion.max_points, exact))
        points = _round(exact, rubric.rounding)
        held, withheld, held_items = _integrity_hold(evidence, criterion.id, points, criterion.max_points, t)
        # as messages before pydantic keeps only their text: the report says them again in its language
        doubts = [as_message(d) for d in [*verdict.doubts, *_on_threshold(exact, criterion.max_points, rubric, t)]]
        doubts += [item.messages["text"] for item in held_items]
        result = CriterionScore(
            id=criterion.id,
            title=criterion.title.get(t.language, criterion.id),
            points=held,
            max_points=criterion.max_points,
            reason=verdict.reason,
            evidence=[*held_items, *verdict.evidence],
            components=verdict.components,
            auto_points=held,
            withheld_points=withheld,
            confidence="low" if doubts else "high",
            confidence_reasons=[t.render(d) for d in doubts],
            messages={"reason": as_message(verdict.reason), "confidence_reasons": doubts},
        )
        criteria.append(_apply_override(result, rubric, evidence.student or evidence.ingest.student, t))
    return _total(criteria, rubric)


def _integrity_hold(
    evidence: Evidence, criterion: str, points: float, max_points: float, t: Translator
) -> tuple[float, float | None, list[EvidenceItem]]:
    """(points, withheld points, what is said) under the rubric's integrity policy: a flag on any of the
    submission's models holds back the points of the criteria it concerns until an instructor decides."""
    rubric = evidence.rubric
    flags = [(m.name, f) for m in evidence.models if m.role != "reference" for f in m.integrity]
    if not flags or criterion not in rubric.integrity_criteria or rubric.integrity_policy == "flag" or points <= 0:
        return points, None, []
    names = ", ".join(sorted({name for name, _ in flags}))
    if rubric.integrity_policy == "cap":
        kept = min(points, rubric.integrity_cap * max_points)
        text = t("rb_ev_integrity_cap", kept=float(kept), points=float(points), models=names)
    else:
        kept = 0.0
        text = t("rb_ev_integrity_withheld", points=float(points), models=names)
    return kept, (points - kept) or None, [EvidenceItem(text=text, kind="flag", messages={"text": as_message(text)})]


def _on_threshold(exact: float, max_points: float, rubric: Rubric, t: Translator) -> list[str]:
    """A doubt when the unrounded points sit within `confidence_margin` of a rounding step (a small
    change in the evidence moves the mark by a whole step); none at 0 or full marks."""
    step = rubric.rounding
    if step <= 0 or exact <= 0 or exact >= max_points:
        return []
    boundary = (math.floor(exact / step - 0.5 + 1e-9) + 0.5) * step
    nearest = min((boundary, boundary + step), key=lambda b: abs(exact - b))
    if abs(exact - nearest) < rubric.confidence_margin:
        return [t("rb_doubt_threshold", exact=exact, boundary=float(nearest))]
    return []


def _total(criteria: list[CriterionScore], rubric: Rubric) -> Score:
    """The grade: the criteria, their total (final and automatic) and where rubric and overrides came from."""
    return Score(
        total=round(sum(c.points for c in criteria), 3),
        max_total=rubric.max_total,
        criteria=criteria,
        rubric=rubric.source,
        total_auto=round(sum(c.auto_points or 0.0 for c in criteria), 3),
        overrides=rubric.overrides.source or None,
    )


def failed_score(rubric: Rubric, reason: str, t: Translator, student: str = "") -> Score:
    """A submission the harness could not read: zero on every criterion, with the reason (the
    instructor's overrides still apply: they may grade it by hand)."""
    criteria = [
        _apply_override(
            CriterionScore(
                id=c.id,
                title=c.title.get(t.language, c.id),
                points=0.0,
                max_points=c.max_points,
                reason=reason,
                auto_points=0.0,
            ),
            rubric,
            student,
            t,
        )
        for c in rubric.criteria
    ]
    return _total(criteria, rubric)


def score_result(
    rubric: Rubric,
    t: Translator,
    result: SubmissionResult,
    ingest: IngestResult,
    protocol_epochs: int,
    protocol_batch_size: int,
) -> SubmissionResult:
    """(Re-)score one stored result: what `harness grade` and `harness score` both call."""
    if ingest.status != "ok":
        return result.model_copy(
            update={"score": failed_score(rubric, result.reason or ingest.reason or "", t, result.student)}
        )
    evidence = Evidence(
        ingest=ingest,
        models=result.models,
        reference=result.reference.model if result.reference else None,
        rubric=rubric,
        protocol_epochs=protocol_epochs,
        protocol_batch_size=protocol_batch_size,
        profile=result.run.profile,
        student=result.student,
    )
    return result.model_copy(update={"score": score(evidence, t)})

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
from harness.scoring.evidence import Evidence
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
    final = override.apply(criterion.auto_points or 0.0, criterion.max_points)
    evidence = [
        *criterion.evidence,
        EvidenceItem(
            text=t(
                "rb_ev_override",
                change=override.describe(),
                auto=f"{criterion.auto_points:g}",
                final=f"{final:g}",
                comment=override.comment or "—",
            ),
            kind="flag",
        ),
    ]
    return criterion.model_copy(
        update={
            "points": final,
            "instructor_points": final,
            "instructor_comment": override.comment or None,
            "evidence": evidence,
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
        points = raw * criterion.max_points / out_of if out_of > 0 else 0.0
        points = _round(max(0.0, min(criterion.max_points, points)), rubric.rounding)
        result = CriterionScore(
            id=criterion.id,
            title=criterion.title.get(t.language, criterion.id),
            points=points,
            max_points=criterion.max_points,
            reason=verdict.reason,
            evidence=verdict.evidence,
            components=verdict.components,
            auto_points=points,
        )
        criteria.append(_apply_override(result, rubric, evidence.student or evidence.ingest.student, t))
    return _total(criteria, rubric)


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

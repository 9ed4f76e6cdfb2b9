"""Rule ``improvement``: the best improved model's measured gain over the reference, beyond noise.

The gain (in percentage points of test accuracy, the harness's own retraining) reaches a
threshold that gives its points; when the evaluation stored a significance test, a gain that is
not significant is capped and a significantly worse model scores at most its own cap.
Parameters documented in ``rubric/default.toml``.
"""

from __future__ import annotations

from harness.results import ModelResult
from harness.scoring.evidence import Evidence, Notes, Verdict, component, factory_at, model_doubts
from harness.scoring.rules.registry import RuleParams, rule
from harness.scoring.thresholds import at_least
from harness.util.i18n import Translator


class Threshold(RuleParams):
    """One step of the ``thresholds`` table: a gain of at least ``min_gain_pp`` earns ``points``."""

    min_gain_pp: float
    points: float


class ImprovementParams(RuleParams):
    """The ``improvement`` criterion's parameters (see ``rubric/default.toml``)."""

    thresholds: list[Threshold]
    use_significance: bool = True
    max_points_if_not_significant: float = 2
    points_if_significantly_worse: float = 0


def _significance(model: ModelResult, t: Translator) -> tuple[str | None, str]:
    """('beats' | 'not_significant' | 'worse' | None, the evidence in numbers, in the report's language)."""
    sig = model.significance
    if sig is None or sig.mcnemar is None:
        return None, ""
    test, seeds = sig.mcnemar, sig.seeds
    detail = t("rb_mcnemar", p=test.p_value, b=test.b, c=test.c, n=test.n)
    if seeds is not None and seeds.low is not None and seeds.high is not None:
        detail += "; " + t("rb_seeds_interval", count=len(seeds.seeds), low=100 * seeds.low, high=100 * seeds.high)
    if test.gain > 0 and test.significant and (seeds is None or seeds.low is None or seeds.low > 0):
        return "beats", detail
    if test.gain < 0 and test.significant and (seeds is None or seeds.high is None or seeds.high < 0):
        return "worse", detail
    return "not_significant", detail


@rule("improvement", params=ImprovementParams)
def rule_improvement(ev: Evidence, p: ImprovementParams, t: Translator) -> Verdict:
    """Score the improvement: the threshold the best model's gain reaches, capped when not significant."""
    notes = Notes(t, ev)
    top = max((s.points for s in p.thresholds), default=0.0)
    evaluated = [m for m in ev.models if m.role == "improved" and m.test_accuracy is not None]
    # a model this profile could not measure (collapse, still learning) counts neither for nor against the student
    trained = [m for m in evaluated if m.measurable]
    for model in evaluated:
        if not model.measurable:
            notes.add(t("rb_ev_not_measurable", model=model.name, reason=model.measurement.reason), kind="flag")
    reference = ev.reference
    if not trained or reference is None or reference.test_accuracy is None:
        reason = t("reason_not_measurable", profile=ev.profile) if evaluated and not trained else None
        return Verdict(reason or t("reason_no_improved_trained"), [component(t, "gain", 0, top)], notes.items)
    best = max(trained, key=lambda m: m.test_accuracy)
    gain = 100 * (best.test_accuracy - reference.test_accuracy)
    steps = sorted(p.thresholds, key=lambda s: -s.min_gain_pp)
    points = next((s.points for s in steps if at_least(gain, s.min_gain_pp)), 0.0)
    threshold = next((s for s in steps if at_least(gain, s.min_gain_pp)), None)
    notes.add(t("ev_reference", acc=reference.test_accuracy))
    for model in trained:
        verdict, detail = _significance(model, t)
        text = t(
            "rb_ev_model_gain",
            model=model.name,
            acc=model.test_accuracy,
            gain=100 * (model.test_accuracy - reference.test_accuracy),
        )
        notes.add(
            text + (" — " + detail if detail else ""),
            *factory_at(ev, model.name),
            # a tick says "this earned points": only for the best model, and only when it beats the reference
            "found" if model is best and model.test_accuracy > reference.test_accuracy else "info",
        )
    verdict, detail = _significance(best, t)
    note = ""
    if p.use_significance and verdict == "not_significant" and points > p.max_points_if_not_significant:
        points, note = p.max_points_if_not_significant, t("rb_ev_capped", points=float(p.max_points_if_not_significant))
    elif p.use_significance and verdict == "worse":
        points, note = min(points, p.points_if_significantly_worse), t("rb_ev_worse")
    if verdict is None:
        notes.add(t("rb_ev_no_significance"))
    elif note:
        notes.add(note, kind="flag")
    notes.add(
        t(
            "rb_ev_threshold" if threshold else "rb_ev_no_threshold",
            gain=gain,
            threshold=threshold.min_gain_pp if threshold else None,
            lowest=min(s.min_gain_pp for s in steps) if steps else None,
            points=float(points),
            profile=ev.profile,
        )
    )
    status = t(f"rb_verdict_{verdict}") if verdict else t("rb_verdict_unknown")
    reason = t(
        "rb_reason_improvement",
        model=best.name,
        acc=best.test_accuracy,
        ref=reference.test_accuracy,
        gain=gain,
        verdict=status,
        profile=ev.profile,
    )
    # a model left out as not measurable may be the best one: below the top mark, this one may be too low
    unmeasured = [m.name for m in evaluated if not m.measurable]
    doubts = [t("rb_doubt_unmeasured", models=t.join(", ", unmeasured))] if unmeasured and points < top else []
    return Verdict(
        reason,
        [component(t, "gain", points, top, t("rb_gain_pp", gain=gain))],
        notes.items,
        model_doubts(ev, t) + doubts,
    )

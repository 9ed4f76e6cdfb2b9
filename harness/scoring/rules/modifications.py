"""Rule ``modifications``: which categories the improved models change, one step at a time, justified.

Each improved model's built model (and declared training settings) is compared with the
previous model or the baseline, whichever it differs less from: that step's categories must be
justified by one passage of the student's text near the model, and a good step changes at most
``max_categories_per_step`` categories. Parameters documented in ``rubric/default.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import field_validator

from harness.results import ModelResult
from harness.scoring.evidence import (
    Evidence,
    Notes,
    Verdict,
    component,
    excerpt,
    factory_at,
    justification,
    nearby_passages,
)
from harness.scoring.readers import models as rubric_models
from harness.scoring.readers.models import CATEGORIES
from harness.scoring.rules.registry import RuleParams, rule
from harness.util.i18n import Translator

# Categories a student sets in TRAINING_CONFIG rather than in the factory: their justification
# may also sit around that entry.
SETTINGS_CATEGORIES = {"augmentation", "training", "hyperparameters"}


class ModificationsParams(RuleParams):
    """The ``modifications`` criterion's parameters (see ``rubric/default.toml``)."""

    required_categories: int = 3
    categories_points: float = 3
    justification_points: float = 2
    method_points: float = 1
    max_categories_per_step: int = 1
    context_cells: int = 3
    vocabulary: dict[str, list[str]] = {}
    reasons: list[str] = []

    @field_validator("vocabulary")
    @classmethod
    def _known_categories(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = set(value) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown categories {sorted(unknown)}; the five are {', '.join(CATEGORIES)}")
        return value


@dataclass
class _Tally:
    """What the steps add up to, over the improved models."""

    covered: set[str] = field(default_factory=set)  # categories changed against the baseline
    steps: int = 0  # models that change something
    good_steps: int = 0  # ... at most max_categories_per_step categories
    justified: int = 0  # changes (model, category) justified
    to_justify: int = 0  # changes (model, category)


@rule("modifications", params=ModificationsParams)
def rule_modifications(ev: Evidence, p: ModificationsParams, t: Translator) -> Verdict:
    """Score the modifications: categories covered, changes justified, one change per step."""
    notes = Notes(t, ev)
    improved = [m for m in ev.models if m.role == "improved"]
    own = next((m for m in ev.models if m.role == "baseline" and m.spec), None)
    base = own or ev.reference
    zero = [
        component(t, "categories", 0, p.categories_points),
        component(t, "justification", 0, p.justification_points),
        component(t, "method", 0, p.method_points),
    ]
    if not improved or base is None:
        return Verdict(t("reason_no_improved"), [c for c in zero if c.max_points > 0], notes.items)

    base_f = _features(ev, base)
    if own is not None and ev.reference is not None and ev.reference.spec is not None:
        changed = rubric_models.differences(base_f, _features(ev, ev.reference), t)
        if changed:
            notes.add(
                t("rb_ev_own_baseline", changes="; ".join(x for items in changed.values() for x in items)),
                *factory_at(ev, own.name),
            )
    tally = _Tally()
    previous_name, previous_f = None, base_f
    for model in improved:
        f = _features(ev, model)
        vs_base = rubric_models.differences(f, base_f, t)
        vs_prev = rubric_models.differences(f, previous_f, t) if previous_name else vs_base
        step, against = (vs_prev, previous_name) if len(vs_prev) <= len(vs_base) else (vs_base, None)
        tally.covered |= set(vs_base)
        _note_step(ev, notes, t, p, model, f, step, against, tally)
        _justify_step(ev, notes, t, p, model, step, tally)
        previous_name, previous_f = model.name, f
    return _verdict(t, p, tally, notes)


def _features(ev: Evidence, model: ModelResult) -> rubric_models.Features:
    """A model's comparable features, its declared settings read against the protocol's."""
    return rubric_models.features(model, ev.protocol_epochs, ev.protocol_batch_size, ev.statics.get(model.name))


def _note_step(
    ev: Evidence,
    notes: Notes,
    t: Translator,
    p: ModificationsParams,
    model: ModelResult,
    f: rubric_models.Features,
    step: dict[str, list[str]],
    against: str | None,
    tally: _Tally,
) -> None:
    """One model's step: what it changes and against what, and whether it is one change at a time."""
    cell, line = factory_at(ev, model.name)
    label = t("rb_against_previous", model=against) if against else t("rb_against_baseline")
    if not f.known:
        notes.add(t("rb_ev_not_built", model=model.name), cell, line, "flag")
    if not step:
        notes.add(t("ev_no_difference", model=model.name) + f" ({label})", cell, line, "flag")
    for category, items in step.items():
        notes.add(f"{model.name} — {label} — {t('cat_' + category)} : {'; '.join(items)}", cell, line, "found")
    if step:
        tally.steps += 1
        if len(step) <= p.max_categories_per_step:
            tally.good_steps += 1
            notes.add(t("rb_ev_one_step", model=model.name, count=len(step)), cell, line)
        else:
            notes.add(
                t(
                    "rb_ev_many_steps",
                    model=model.name,
                    count=len(step),
                    names=", ".join(t("cat_" + c) for c in step),
                    max=p.max_categories_per_step,
                ),
                cell,
                line,
                "flag",
            )


def _justify_step(
    ev: Evidence,
    notes: Notes,
    t: Translator,
    p: ModificationsParams,
    model: ModelResult,
    step: dict[str, list[str]],
    tally: _Tally,
) -> None:
    """Each category the step changes: justified by a passage near the model, or noted missing."""
    cell, line = factory_at(ev, model.name)
    for category in step:
        tally.to_justify += 1
        passages = nearby_passages(ev, model.name, p.context_cells, settings=category in SETTINGS_CATEGORIES)
        found = justification(passages, p.vocabulary.get(category, []), p.reasons)
        if found:
            tally.justified += 1
            notes.add(
                t("rb_ev_justified", model=model.name, category=t("cat_" + category), excerpt=excerpt(found.text)),
                found.cell,
                found.line,
                "found",
            )
        else:
            notes.add(t("rb_ev_not_justified", model=model.name, category=t("cat_" + category)), cell, line, "missing")


def _verdict(t: Translator, p: ModificationsParams, tally: _Tally, notes: Notes) -> Verdict:
    """The three parts from the tally, and the reason."""
    covered = tally.covered
    category_share = min(1.0, len(covered) / max(1, p.required_categories))
    components = [
        component(
            t,
            "categories",
            p.categories_points * category_share,
            p.categories_points,
            f"{len(covered)}/{p.required_categories}",
        ),
        component(
            t,
            "justification",
            p.justification_points * (tally.justified / tally.to_justify if tally.to_justify else 0),
            p.justification_points,
            f"{tally.justified}/{tally.to_justify}",
        ),
        component(
            t,
            "method",
            p.method_points * (tally.good_steps / tally.steps if tally.steps else 0),
            p.method_points,
            f"{tally.good_steps}/{tally.steps}",
        ),
    ]
    names = ", ".join(t("cat_" + c) for c in CATEGORIES if c in covered) or "—"
    reason = t(
        "rb_reason_modifications",
        count=len(covered),
        required=p.required_categories,
        names=names,
        justified=tally.justified,
        total=tally.to_justify,
        good=tally.good_steps,
        steps=tally.steps,
    )
    return Verdict(reason, [c for c in components if c.max_points > 0], notes.items)

"""Rule ``modifications``: which categories the improved models change, one step at a time, justified.

Each improved model's built model (and declared training settings) is compared with the
previous model or the baseline, whichever it differs less from: that step's categories must be
justified by one passage of the student's text near the model, and a good step changes at most
``max_categories_per_step`` categories. Parameters documented in ``rubric/default.toml``.
"""

from __future__ import annotations

import ast
import math
import re
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
    model_doubts,
    nearby_passages,
    ratio,
    text_doubts,
)
from harness.scoring.readers import effects as rubric_effects
from harness.scoring.readers import models as rubric_models
from harness.scoring.readers import text as rubric_text
from harness.scoring.readers.models import CATEGORIES
from harness.scoring.readers.searches import searched_categories
from harness.scoring.rules.registry import RuleParams, rule
from harness.util.i18n import Translator

# Categories a student sets in TRAINING_CONFIG rather than in the factory: their justification
# may also sit around that entry.
SETTINGS_CATEGORIES = {"augmentation", "training", "hyperparameters"}
# a number as students write them: 64, 0.25, 0,25, 3e-4, 1e-03
NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?(?:e-?\d+)?(?![\w])")


class ModificationsParams(RuleParams):
    """The ``modifications`` criterion's parameters (see ``rubric/default.toml``)."""

    required_categories: int = 3
    # with fewer categories than required, justification, method and judgement count in proportion
    quality_by_coverage: bool = True
    categories_points: float = 2
    justification_points: float = 1.5
    method_points: float = 0.5
    judgement_points: float = 2
    max_categories_per_step: int = 1
    separate_modifications: dict[str, list[str]] = {}  # category -> techniques the assignment lists apart
    # a category explored only by harmful steps or steps that change several categories at once
    # counts this share of one in "categories": explored, but not in a way that shows a choice
    unsound_category_share: float = 0.5
    # another technique of a category already explored (BatchNormalization beside Dropout), tried by a
    # sound step, counts this share of a category: the assignment lists modifications, not categories
    technique_share: float = 0.5
    context_cells: int = 3
    vocabulary: dict[str, list[str]] = {}
    reasons: list[str] = []
    # judgement: what a step is worth (0 to 1) by its measured effect, plus `discussed_share` when the
    # student's text about the model quotes its effect; a harmful step is worth 0 whatever is said of it
    neutral_share: float = 0.25
    helpful_share: float = 0.5
    costly_share: float = 0.0
    discussed_share: float = 0.5
    quoted_share: float = 0.25  # the effect quoted without being set against anything
    harmful_justification_share: float = 0.25
    observed_reasons: list[str] = []
    textbook_share: float = 0.5
    effect_words: list[str] = []
    interpretation_words: list[str] = []
    plausible_max_accuracy: float = 0.997  # a passage quoting more does not discuss a measured effect
    self_contradiction_pp: float = 0.5  # nor any of a text its own printed run contradicts by more (points)
    harm_words: list[str] = []
    harm_effect_words: list[str] = []  # ... and those words said of a measured outcome (the accuracy drops)
    # settings far outside what works for MNIST, and the measured drops that make a change harmful
    learning_rate_ranges: dict[str, list[float]] = {"default": [1e-4, 0.02], "sgd": [1e-3, 0.5]}
    max_dropout_rate: float = 0.6
    max_rotation_degrees: float = 30
    max_penalty: float = 0.01
    min_filters: int = 8
    min_dense_units: int = 16
    epochs_range: list[int] = [2, 100]
    batch_size_range: list[int] = [8, 512]
    harm_drop_pp: float = 1.0
    robustness_drop_pp: float = 3.0
    cost_params_ratio: float = 10.0
    cost_time_ratio: float = 5.0

    @field_validator("learning_rate_ranges")
    @classmethod
    def _has_default(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        if "default" not in value or any(len(r) != 2 for r in value.values()):
            raise ValueError("needs a 'default' range, and every range is [low, high]")
        return {k.lower(): v for k, v in value.items()}

    def limits(self) -> rubric_effects.Limits:
        """The ranges and measured limits as the effects reader takes them."""
        return rubric_effects.Limits(
            learning_rates=self.learning_rate_ranges,
            max_dropout_rate=self.max_dropout_rate,
            min_filters=self.min_filters,
            min_dense_units=self.min_dense_units,
            epochs=self.epochs_range,
            batch_sizes=self.batch_size_range,
            max_rotation_degrees=self.max_rotation_degrees,
            max_penalty=self.max_penalty,
            harm_drop_pp=self.harm_drop_pp,
            robustness_drop_pp=self.robustness_drop_pp,
            cost_params_ratio=self.cost_params_ratio,
            cost_time_ratio=self.cost_time_ratio,
        )

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
    # (category, technique) a sound step changes against the model it changes, one per category
    techniques: set[tuple[str, str]] = field(default_factory=set)
    sound: set[str] = field(default_factory=set)  # ... by at least one step alone and not harmful
    stepped: set[str] = field(default_factory=set)  # ... by at least one step
    steps: int = 0  # models that change something
    good_steps: int = 0  # ... at most max_categories_per_step categories
    justified: float = 0  # changes (model, category) justified (a harmful one counts in part)
    observed: bool = False  # ... one of them by what the student observed of their own work
    to_justify: int = 0  # changes (model, category)
    judged: float = 0  # the steps' judgement shares, summed


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

    base_f = ev.features(base)
    changed: dict[str, list[str]] = {}
    if own is not None and ev.reference is not None and ev.reference.spec is not None:
        changed = rubric_models.differences(base_f, ev.features(ev.reference), t)
        if changed:
            notes.add(
                t("rb_ev_own_baseline", changes=t.join("; ", [x for items in changed.values() for x in items])),
                *factory_at(ev, own.name),
            )
    tally = _Tally()
    # the stored McNemar test is against the reference: it tells a step against the baseline from noise
    base_is_reference = own is None or not changed
    previous, previous_f = None, base_f
    for model in improved:
        f = ev.features(model)
        base_changes = rubric_models.changes(f, base_f, t)
        prev_changes = rubric_models.changes(f, previous_f, t) if previous else base_changes
        vs_base, vs_prev = rubric_models.grouped(base_changes), rubric_models.grouped(prev_changes)
        # the parent it differs less from: fewer categories, then fewer changes (a tie goes to the previous one)
        use_prev = previous is not None and _size(vs_prev) <= _size(vs_base)
        # "then combine what worked": several categories, each one tested alone by an earlier sound step
        combined = previous is not None and len(vs_base) > p.max_categories_per_step and set(vs_base) <= tally.sound
        use_prev = use_prev and not combined
        step, parent, parent_f = (vs_prev, previous, previous_f) if use_prev else (vs_base, base, base_f)
        step_changes = prev_changes if use_prev else base_changes
        bundled = _bundled(step_changes, p.separate_modifications)
        size = _step_size(step, bundled)
        limit = size if combined else p.max_categories_per_step
        tally.covered |= set(vs_base)
        _note_step(ev, notes, t, (p, limit, bundled), model, f, step, parent.name if use_prev else None, tally)
        if combined:
            names = t.join(", ", [t("cat_" + c) for c in step])
            notes.add(t("rb_ev_combination", model=model.name, names=names), *factory_at(ev, model.name), "found")
        harmful, noticed = _judge_step(
            ev,
            notes,
            t,
            (p, limit, size),
            model,
            (f, parent_f),
            parent,
            step,
            tally,
            not use_prev and base_is_reference,
        )
        worth = p.harmful_justification_share * noticed if harmful else 1.0
        _justify_step(ev, notes, t, p, (model, _new_values(f, parent_f)), step, tally, worth)
        tally.stepped |= set(step)
        if not harmful and size <= limit:
            tally.sound |= set(step)
            tally.techniques |= _one_per_category({(c.category, c.technique) for c in step_changes})
        _searched(ev, notes, t, model, tally)
        if f.known:  # a model never built is nobody's parent: the next step is read against what was built
            previous, previous_f = model, f
    return _verdict(t, p, tally, notes, model_doubts(ev, t) + text_doubts(ev, t, ["improvements"]))


def _searched(ev: Evidence, notes: Notes, t: Translator, model: ModelResult, tally: _Tally) -> None:
    """A KerasTuner hypermodel's search tried several values of each hyper-parameter, each trial measured on a
    validation split: each category it searched is explored, soundly, whatever the point it chose
    (harness/scoring/readers/searches.py)."""
    hypermodels = [
        n for n in ev.statics.get(model.name, {}).get("nodes", []) if isinstance(n, ast.FunctionDef) and _is_hp(n)
    ]
    searched = {name: c for fn in hypermodels for name, c in searched_categories(fn).items()}
    if not searched:
        return
    categories = sorted(set(searched.values()), key=CATEGORIES.index)
    tally.covered |= set(categories)
    tally.stepped |= set(categories)
    tally.sound |= set(categories)
    names = t.join(", ", [f"{name} ({t('cat_' + c)})" for name, c in searched.items()])
    notes.add(t("rb_ev_searched", model=model.name, names=names), *factory_at(ev, model.name), "found")


def _is_hp(fn: ast.FunctionDef) -> bool:
    return bool(fn.args.args) and fn.args.args[0].arg == "hp"


def _bundled(changes: list, separate: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(category, technique) of the modifications a step changes together that the assignment lists apart
    within one category (`separate`: filters and kernel size); [] when it changes at most one of each."""
    bundled = []
    for category, listed in separate.items():
        techniques = sorted({c.technique for c in changes if c.category == category} & set(listed))
        bundled += [(category, technique) for technique in techniques] if len(techniques) > 1 else []
    return bundled


def _step_size(step: dict[str, list[str]], bundled: list[tuple[str, str]]) -> int:
    """How many things a step changes at once: its categories, and each further modification of one that
    the assignment lists apart (:func:`_bundled`)."""
    return len(step) + len(bundled) - len({category for category, _ in bundled})


def _size(step: dict[str, list[str]]) -> tuple[int, int]:
    """How far a step goes: (categories, changes)."""
    return len(step), sum(len(items) for items in step.values())


def _note_step(
    ev: Evidence,
    notes: Notes,
    t: Translator,
    rules: tuple[ModificationsParams, int, list[tuple[str, str]]],
    model: ModelResult,
    f: rubric_models.Features,
    step: dict[str, list[str]],
    against: str | None,
    tally: _Tally,
) -> None:
    """One model's step: what it changes and against what, and whether it changes at most `rules`' limit
    of things at once (the rubric's, or all of a combination's; the modifications it bundles counting apart)."""
    p, limit, bundled = rules
    size = _step_size(step, bundled)
    cell, line = factory_at(ev, model.name)
    label = t("rb_against_previous", model=against) if against else t("rb_against_baseline")
    if not f.known:
        notes.add(t("rb_ev_not_built", model=model.name), cell, line, "flag")
    if not step:
        notes.add(t("ev_no_difference", model=model.name) + " (" + label + ")", cell, line, "flag")
    for category, items in step.items():
        said = t(
            "rb_ev_step_category",
            model=model.name,
            against=label,
            category=t("cat_" + category),
            changes=t.join("; ", items),
        )
        notes.add(said, cell, line, "found")
    if step:
        tally.steps += 1
        if size <= limit:
            tally.good_steps += 1
            if len(step) <= p.max_categories_per_step:  # a combination says so itself
                notes.add(t("rb_ev_one_step", model=model.name, count=len(step)), cell, line)
        elif len(step) <= limit:  # one category, several of the modifications the assignment lists in it
            names = t.join(", ", [t("tech_" + technique) for _, technique in bundled])
            notes.add(t("rb_ev_bundled", model=model.name, count=len(bundled), names=names), cell, line, "flag")
        else:
            notes.add(
                t(
                    "rb_ev_many_steps",
                    model=model.name,
                    count=len(step),
                    names=t.join(", ", [t("cat_" + c) for c in step]),
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
    changed: tuple[ModelResult, set[float]],
    step: dict[str, list[str]],
    tally: _Tally,
    worth: float = 1.0,
) -> None:
    """Each category the step changes: justified by a passage near the model, or else by a passage
    anywhere that quotes a value the step sets (a report's list of changes), or noted missing; a
    justification counts `worth` of one (less for a harmful change: a reason for a bad choice)."""
    model, values = changed
    cell, line = factory_at(ev, model.name)
    for category in step:
        tally.to_justify += 1
        passages = nearby_passages(ev, model.name, p.context_cells, settings=category in SETTINGS_CATEGORIES)
        vocabulary = p.vocabulary.get(category, [])
        found = justification(passages, vocabulary, p.reasons)
        if found is None:
            quoting = [x for x in ev.passages if x not in passages and _quotes(x.text, values)]
            if found := justification(quoting, vocabulary, p.reasons):
                notes.add(t("rb_ev_justified_by_value", model=model.name, category=t("cat_" + category)), cell, line)
        if found:
            tally.justified += worth
            tally.observed = tally.observed or _observes(found, p)
            notes.add(
                t("rb_ev_justified", model=model.name, category=t("cat_" + category), excerpt=excerpt(found.text)),
                found.cell,
                found.line,
                "found",
            )
        else:
            notes.add(t("rb_ev_not_justified", model=model.name, category=t("cat_" + category)), cell, line, "missing")


def _observes(passage, p: ModificationsParams) -> bool:
    """Whether a passage reasons from what the student observed (`observed_reasons`; all do when unset)."""
    return (
        not p.observed_reasons
        or rubric_text.matches_any(p.observed_reasons, rubric_text.plain(passage.text)) is not None
    )


def _new_values(new: rubric_models.Features, old: rubric_models.Features) -> set[float]:
    """The numbers a step sets that its parent did not have (a learning rate, a rate, a width,
    epochs, a batch size), from 10 up or below 1: small whole numbers are list numbering."""

    def numbers(f: rubric_models.Features) -> set[float]:
        found = {f.learning_rate, f.batch_size, f.epochs}
        for text in (*f.dropout, *f.filters, *f.dense, *f.regularizers):
            found |= {float(x) for x in NUMBER.findall(text)}
        return {float(x) for x in found if x is not None}

    return {x for x in numbers(new) - numbers(old) if x >= 10 or 0 < x < 1}


def _quotes(text: str, values: set[float]) -> bool:
    """Whether a passage quotes one of `values` ("lr 3e-4", "0,25", "64 filtres")."""
    quoted = {float(x.replace(",", ".")) for x in NUMBER.findall(rubric_text.plain(text))}
    return any(math.isclose(x, v, rel_tol=1e-6) for x in quoted for v in values)


def _judge_step(
    ev: Evidence,
    notes: Notes,
    t: Translator,
    rules: tuple[ModificationsParams, int, int],
    model: ModelResult,
    features: tuple[rubric_models.Features, rubric_models.Features],
    parent: ModelResult,
    step: dict[str, list[str]],
    tally: _Tally,
    reference: bool,
) -> tuple[bool, bool]:
    """Judge one step by its extreme settings and measured effects against its parent (a step whose size,
    `rules`' last item, is beyond its limit credits each change in part); adds its share to the tally and
    returns (harmful, the student noticed the harm)."""
    p, limit, size = rules
    if not step:
        return False, False
    cell, line = factory_at(ev, model.name)
    effect = rubric_effects.measure(model, parent, reference, p.limits())
    effect.extremes = rubric_effects.extreme_settings(*features, p.limits())
    # one epoch on a few images: what it measures (a lower learning rate learns less in one epoch) is
    # shown, not scored; the settings and the parameter count are the same on every profile
    scored = ev.comparable
    harms = effect.extremes + (effect.harms if scored else _printed_harms(ev, p, model, parent))
    costs = [c for c in effect.costs if scored or c[0] == "rb_cost_params"]
    text = _text_about(ev, p, model.name)
    noticed = _mentions(text[0], p.harm_words + p.harm_effect_words)
    for key, values in harms:
        notes.add(t("rb_ev_harmful", model=model.name, why=t(key, **values)), cell, line, "flag")
    for key, values in [] if scored else effect.harms:
        notes.add(
            t("rb_ev_measured", model=model.name, why=t(key, **values)) + t("rb_effect_short_profile"), cell, line
        )
    for key, values in costs:
        notes.add(t("rb_ev_costly", model=model.name, why=t(key, **values)), cell, line, "flag")
    if harms:
        share = 0.0
        key = "rb_ev_harm_noticed" if noticed else "rb_ev_harm_unnoticed"
        notes.add(
            t(key, model=model.name, excerpt=excerpt(noticed.text) if noticed else ""),
            *_at(noticed, cell, line),
            "found" if noticed else "flag",
        )
    else:
        base = p.helpful_share if scored and effect.helpful else p.costly_share if costs else p.neutral_share
        discussed, interpreted = _discussion(ev, text, p)
        share = min(1.0, base + (p.discussed_share if interpreted else p.quoted_share if discussed else 0.0))
        _note_effect(notes, t, model, effect, (discussed, interpreted), scored, (cell, line))
        if size > limit:
            # several changes measured together: no one of them can be credited with the effect
            share *= limit / size
            notes.add(t("rb_ev_tangled", model=model.name, count=size, share=share), cell, line, "flag")
    tally.judged += share
    return bool(harms), noticed is not None


def _printed_harms(ev: Evidence, p: ModificationsParams, model: ModelResult, parent: ModelResult) -> list:
    """Where this profile's numbers are not comparable: the student's own run (their saved outputs, their
    full training) printed this model's test accuracy more than `harm_drop_pp` below the one it printed for
    the model it changes (its baseline: also the run's "référence"). Nothing when the text contradicts it."""
    printed = {r.model: r.accuracy for r in ev.reported}
    own = printed.get(model.name)
    names = [parent.name, "reference"] if parent.role in ("baseline", "reference") else [parent.name]
    before = next((printed[n] for n in names if n in printed), None)
    if own is None or before is None or ev.contradicted(p.self_contradiction_pp):
        return []
    diff = 100 * (own - before)
    limit = float(p.harm_drop_pp)
    return [("rb_harm_printed", {"diff": diff, "limit": limit, "own": own, "before": before})] if diff < -limit else []


def _at(passage, cell: int | None, line: int | None) -> tuple[int | None, int | None]:
    return (passage.cell, passage.line) if passage is not None else (cell, line)


def _discussion(ev: Evidence, text: tuple[list, list], p: ModificationsParams) -> tuple:
    """(the passage that quotes the step's effect, whether it is interpreted): a number about the model is
    a quote ("99,1 %", "−2,9", "80 errors"); set against something (a parent, the noise, a cost, a cause:
    `interpretation_words`), in the same passage or in one that names the model away from the text that
    introduces it (a results table, then "l'essai 3 est le meilleur, 1 et 2 restent dans le bruit"), it
    is a discussion. An effect quoted as an accuracy no such model reaches is not the measured effect, and a
    text the student's own printed run contradicts (anywhere) quotes no effect it can be held to."""
    about, elsewhere = text
    if ev.contradicted(p.self_contradiction_pp):
        return None, False  # a text its own printed run contradicts quotes no effect it can be held to
    quoting = [
        x
        for x in about
        if not rubric_text.implausible(x.text, p.plausible_max_accuracy)
        and rubric_text.matches_any(p.effect_words, rubric_text.plain(x.text))
    ]
    interpreted = _mentions(quoting, p.interpretation_words)
    if interpreted is None and quoting:
        interpreted = _mentions(elsewhere, p.interpretation_words)
    return (interpreted or (quoting[0] if quoting else None)), interpreted is not None


def _note_effect(notes: Notes, t: Translator, model: ModelResult, effect, discussion, comparable: bool, where) -> None:
    """A step that harms nothing: its measured effect, and the sentence that discusses it (or only
    quotes it, or that none does)."""
    discussed, interpreted = discussion
    if effect.accuracy_pp is not None:
        noise = {True: t("rb_effect_beyond_noise"), False: t("rb_effect_noise"), None: ""}[effect.significant]
        shown = "" if comparable else t("rb_effect_short_profile")
        notes.add(t("rb_ev_effect", model=model.name, diff=effect.accuracy_pp, noise=noise) + shown, *where)
    if discussed is not None:
        notes.add(
            t(
                "rb_ev_effect_discussed" if interpreted else "rb_ev_effect_quoted",
                model=model.name,
                excerpt=excerpt(discussed.text),
            ),
            discussed.cell,
            discussed.line,
            "found",
        )
    else:
        notes.add(t("rb_ev_effect_not_discussed", model=model.name), *where, "missing")


def _text_about(ev: Evidence, p: ModificationsParams, name: str) -> tuple[list, list]:
    """The student's passages about a model: (all of them: near it, or naming it anywhere; those that name
    it away from where it is introduced, the text around its factory and its settings: a results table,
    a conclusion)."""
    named = list(zip(ev.passages, ev.passage_models, strict=True))
    naming = [passage for passage, models in named if name in models]
    introduced = nearby_passages(ev, name, p.context_cells, settings=True, naming=False)
    # nearby_passages' own "naming" part: the passages whose first model is this one
    near = introduced + [x for x, models in named if models and models[0] == name and x not in introduced]
    return near + [x for x in naming if x not in near], [x for x in naming if x not in introduced]


def _mentions(passages: list, patterns: list[str]):
    """The first passage that matches one of `patterns`, or None."""
    return next((x for x in passages if rubric_text.matches_any(patterns, rubric_text.plain(x.text))), None)


def _one_per_category(techniques: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """One technique per category of a step's changes: one model's redesign of its convolutions (more
    layers, padding, pooling) is one of the modifications the assignment lists, not four."""
    return {(category, min(tq for c, tq in techniques if c == category)) for category, _ in techniques}


def _explored(t: Translator, p: ModificationsParams, tally: _Tally, notes: Notes) -> float:
    """Categories explored, a category reached only by harmful or several-at-once steps counting
    `unsound_category_share`: an extreme value or a tangle of changes explores without choosing; each
    further technique of a category a sound step tried counts `technique_share`."""
    unsound = (tally.covered & tally.stepped) - tally.sound
    for category in [c for c in CATEGORIES if c in unsound]:
        notes.add(
            t("rb_ev_category_unsound", category=t("cat_" + category), share=p.unsound_category_share), kind="flag"
        )
    further = len(tally.techniques) - len({category for category, _ in tally.techniques})
    if further and p.technique_share:
        # a layer is named as the code names it (Dropout), any other technique in the report's language
        techniques = sorted(tq for _, tq in tally.techniques)
        names = t.join(", ", [tq if tq[:1].isupper() else t("tech_" + tq) for tq in techniques])
        notes.add(t("rb_ev_techniques", count=len(techniques), names=names, share=p.technique_share))
    return len(tally.covered) - len(unsound) * (1 - p.unsound_category_share) + further * p.technique_share


def _verdict(t: Translator, p: ModificationsParams, tally: _Tally, notes: Notes, doubts: list[str]) -> Verdict:
    """The three parts from the tally, and the reason."""
    covered = tally.covered
    explored = _explored(t, p, tally, notes)
    if tally.justified and not tally.observed:  # "judicieux et justifié": nothing measured motivates a choice
        tally.justified *= p.textbook_share
        notes.add(t("rb_ev_textbook_reasons", share=p.textbook_share), kind="flag")
    category_share = min(1.0, explored / max(1, p.required_categories))
    # the grid asks for `required_categories` changes: the quality of fewer is worth that much less
    # three sensible changes are the work asked, in two categories too; fewer categories than asked count as
    # explored (a tangle of two counts as one)
    work = max(len(covered) if len(covered) >= p.required_categories else explored, tally.steps)
    done = min(1.0, work / max(1, p.required_categories)) if p.quality_by_coverage else 1.0
    if done < 1 and tally.steps:
        notes.add(t("rb_ev_partial_work", done=work, required=p.required_categories), kind="flag")
    components = [
        component(
            t,
            "categories",
            p.categories_points * category_share,
            p.categories_points,
            ratio(t, explored, p.required_categories),
        ),
        component(
            t,
            "justification",
            p.justification_points * done * (tally.justified / tally.to_justify if tally.to_justify else 0),
            p.justification_points,
            ratio(t, tally.justified, tally.to_justify),
        ),
        component(
            t,
            "method",
            p.method_points * done * (tally.good_steps / tally.steps if tally.steps else 0),
            p.method_points,
            ratio(t, tally.good_steps, tally.steps),
        ),
        component(
            t,
            "judgement",
            p.judgement_points * done * (tally.judged / tally.steps if tally.steps else 0),
            p.judgement_points,
            ratio(t, tally.judged, tally.steps),
        ),
    ]
    covered_names = [t("cat_" + c) for c in CATEGORIES if c in covered]
    names = t.join(", ", covered_names) if covered_names else "—"
    reason = t(
        "rb_reason_modifications",
        count=len(covered),
        required=p.required_categories,
        names=names,
        justified=float(tally.justified),
        total=tally.to_justify,
        good=tally.good_steps,
        steps=tally.steps,
    )
    return Verdict(reason, [c for c in components if c.max_points > 0], notes.items, doubts)

"""What one change did, for the rubric's judgement of it: measured against the model it changes,
and the settings it puts far outside what works for MNIST.

A step (an improved model against the model it changes: the previous one or the baseline) is
judged on what the harness measured for both under the same protocol: the test accuracy (with a
test of noise: the stored McNemar test when the step is against the reference, the per-seed
interval with ``--seeds``, otherwise a two-proportion bound on the test images), the assignment's
two robustness tests (noise, rotation), and its cost (parameters, training time). Independently
of any measurement, a setting the step introduces far outside the usual ranges (a learning rate,
a dropout rate, a handful of filters or units, epochs, batch size) is harmful by itself: on a
short profile the measurement may not show what the full training would (the rule scores the
measured effects on comparable profiles only).

>>> limit_key("Adam", {"default": [1e-4, 0.02], "sgd": [1e-3, 0.5]})
'default'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from harness.results import ModelResult
from harness.scoring.readers.models import Features
from harness.scoring.thresholds import at_least, beyond

RATE = re.compile(r"\(([0-9.eE+-]+)\)")
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class Limits:
    """The ranges of settings that work for MNIST, and the measured effects that make a change harmful."""

    learning_rates: dict[str, list[float]]
    max_dropout_rate: float
    min_filters: int
    min_dense_units: int
    epochs: list[int]
    batch_sizes: list[int]
    max_rotation_degrees: float
    max_penalty: float  # an L1/L2 factor above it crushes the weights (1e-4 to 1e-3 work for MNIST)
    harm_drop_pp: float
    robustness_drop_pp: float
    cost_params_ratio: float
    cost_time_ratio: float


@dataclass
class Effect:
    """One step's measured effects and extreme settings, each as (translation key, values)."""

    accuracy_pp: float | None = None
    significant: bool | None = None  # None: no way to tell noise from effect
    extremes: list[tuple[str, dict]] = field(default_factory=list)
    harms: list[tuple[str, dict]] = field(default_factory=list)  # measured: accuracy or robustness drops
    costs: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def helpful(self) -> bool:
        """A gain in accuracy that a test puts beyond noise."""
        return bool(self.significant) and (self.accuracy_pp or 0) > 0


def limit_key(optimizer: str | None, ranges: dict[str, list[float]]) -> str:
    """The learning-rate range that applies to an optimizer: its own (by lower-case class name) or ``default``."""
    name = (optimizer or "").lower()
    return name if name in ranges else "default"


def _rates(values: tuple[str, ...]) -> list[float]:
    """The rates of Dropout-type layers ("Dropout(0.5)")."""
    return [float(m.group(1)) for v in values if (m := RATE.search(v))]


def _ints(values: tuple[str, ...]) -> list[int]:
    return [int(v) for v in values if v.isdigit()]


def extreme_settings(new: Features, old: Features, limits: Limits) -> list[tuple[str, dict]]:
    """Settings the step introduces (they differ from `old`) that lie far outside what works for MNIST."""
    found: list[tuple[str, dict]] = []
    key = limit_key(new.optimizer, limits.learning_rates)
    low, high = limits.learning_rates[key]
    changed_lr = (new.optimizer, new.learning_rate) != (old.optimizer, old.learning_rate)
    if changed_lr and new.learning_rate is not None and not low <= new.learning_rate <= high:
        found.append(("rb_ex_lr", {"lr": new.learning_rate, "opt": new.optimizer or "?", "low": low, "high": high}))
    rates, old_rates = _rates(new.dropout), _rates(old.dropout)
    if rates and max(rates) > limits.max_dropout_rate and max(rates) > max(old_rates, default=0):
        heavy = sum(1 for r in rates if r > limits.max_dropout_rate)
        found.append(("rb_ex_dropout", {"rate": max(rates), "count": heavy, "max": limits.max_dropout_rate}))
    for what, values, old_values, minimum in (
        ("filters", _ints(new.filters), _ints(old.filters), limits.min_filters),
        ("units", _ints(new.dense), _ints(old.dense), limits.min_dense_units),
    ):
        if values and min(values) < minimum and min(values) < min(old_values, default=minimum):
            found.append((f"rb_ex_{what}", {"value": min(values), "min": minimum}))
    found += _extreme_augmentation(new, old, limits)
    penalties, old_penalties = _rates(new.regularizers), _rates(old.regularizers)
    if penalties and max(penalties) > limits.max_penalty and max(penalties) > max(old_penalties, default=0):
        found.append(("rb_ex_penalty", {"value": max(penalties), "max": limits.max_penalty}))
    for what, value, old_value, (low, high) in (
        ("epochs", new.epochs, old.epochs, limits.epochs),
        ("batch", new.batch_size, old.batch_size, limits.batch_sizes),
    ):
        if value is not None and value != old_value and not low <= value <= high:
            found.append((f"rb_ex_{what}", {"value": value, "low": low, "high": high}))
    return found


ROTATION_RANGE = re.compile(r"rotation_range\s*=\s*([0-9.]+)")
FLIPS = re.compile(r"(horizontal|vertical)_flip\s*=\s*True")


def _extreme_augmentation(new: Features, old: Features, limits: Limits) -> list[tuple[str, dict]]:
    """Augmentation that changes which digit an image shows: a flip (a mirrored 2 is no digit, a flipped 6 is
    a 9) or rotations beyond `max_rotation_degrees` (a 6 turned half-way is a 9) — as Keras layers
    (``RandomRotation(0.5)``: a fraction of a turn) or as an ``ImageDataGenerator``."""
    found = []
    added = [a for a in new.augmentation_layers if a not in old.augmentation_layers]
    declared = new.augmentation if new.augmentation != old.augmentation else None
    rotations = [NUMBER.findall(a) for a in added if a.startswith("RandomRotation(")]
    degrees = [360 * max(float(x) for x in factors) for factors in rotations if factors]
    degrees += [float(m.group(1)) for m in ROTATION_RANGE.finditer(declared or "")]
    if degrees and max(degrees) > limits.max_rotation_degrees:
        found.append(("rb_ex_rotation", {"degrees": max(degrees), "max": limits.max_rotation_degrees}))
    if any(a.startswith("RandomFlip") for a in added) or FLIPS.search(declared or ""):
        found.append(("rb_ex_flip", {}))
    return found


def _significant(model: ModelResult, parent: ModelResult, is_reference: bool, diff: float) -> bool | None:
    """Whether an accuracy difference is beyond noise: the stored tests against the reference when
    the parent is it, else a two-proportion bound (unpaired, so conservative) on the test images."""
    significance = model.significance
    if is_reference and significance is not None:
        if significance.seeds is not None and significance.seeds.low is not None:
            low, high = significance.seeds.low, significance.seeds.high
            return low > 0 or (high is not None and high < 0)
        if significance.mcnemar is not None:
            return significance.mcnemar.significant
    n = significance.mcnemar.n if significance is not None and significance.mcnemar is not None else None
    if n is None and model.test_errors is not None and model.test_accuracy not in (None, 1.0):
        n = round(model.test_errors / (1 - model.test_accuracy))
    if not n:
        return None
    a, b = model.test_accuracy, parent.test_accuracy
    se = math.sqrt(max(1e-12, a * (1 - a) / n + b * (1 - b) / n))
    return abs(diff) > 1.96 * se


def measure(model: ModelResult, parent: ModelResult, is_reference: bool, limits: Limits) -> Effect:
    """The step's measured effects against its parent: drops beyond the limits, costs beyond the ratios."""
    effect = Effect()
    if not model.measurable or not parent.measurable:
        return effect  # a model this profile could not measure (collapse, still learning) says nothing of the change
    if model.test_accuracy is not None and parent.test_accuracy is not None:
        diff = 100 * (model.test_accuracy - parent.test_accuracy)
        effect.accuracy_pp = diff
        effect.significant = _significant(model, parent, is_reference, diff / 100)
        if at_least(-diff, limits.harm_drop_pp) and effect.significant is not False:
            effect.harms.append(("rb_harm_accuracy", {"diff": diff, "limit": float(limits.harm_drop_pp)}))
    if model.robustness is not None and parent.robustness is not None:
        for test in ("noise", "rotation"):
            new, old = getattr(model.robustness, f"{test}_accuracy"), getattr(parent.robustness, f"{test}_accuracy")
            if new is not None and old is not None and at_least(100 * (old - new), limits.robustness_drop_pp):
                effect.harms.append(
                    (
                        f"rb_harm_{test}",
                        {"diff": 100 * (new - old), "limit": float(limits.robustness_drop_pp)},
                    )
                )
    for what, new, old, ratio in (
        ("params", model.params, parent.params, limits.cost_params_ratio),
        ("time", model.train_seconds, parent.train_seconds, limits.cost_time_ratio),
    ):
        if new and old and beyond(new / old, ratio):
            effect.costs.append((f"rb_cost_{what}", {"ratio": new / old, "limit": float(ratio)}))
    return effect

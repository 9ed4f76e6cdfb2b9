"""Rubric thresholds are exact: float error in accuracies never moves a point.

Accuracies are ``1 - errors / n``; the expected points are computed here in exact rational
arithmetic on the error counts, and the rule must agree at every threshold.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell
from test_rubric import EN, FACTORIES, evidence, model, notebook

from harness.ingest.read import ingest_path
from harness.scoring.rubric import load_rubric
from harness.scoring.rules import get_rule
from harness.scoring.thresholds import at_least, at_most, beyond

RUBRIC = load_rubric()
IMPROVEMENT = next(c for c in RUBRIC.criteria if c.id == "improvement")
# the bundled steps, without the significance cap (no test is stored in these models anyway)
PARAMS = RUBRIC.params(IMPROVEMENT)
STEPS = [(Fraction(str(s.min_gain_pp)), s.points) for s in PARAMS.thresholds]


def accuracy(errors: int, n: int) -> float:
    """How the evaluation stores an accuracy."""
    return 1 - errors / n


@pytest.fixture(scope="module")
def ingest(tmp_path_factory):
    return ingest_path(notebook(tmp_path_factory.mktemp("thresholds"), [new_code_cell(FACTORIES)]))


def improvement_points(ingest, reference_errors: int, errors: int, n: int) -> float:
    reference = model("ref", role="reference", accuracy=accuracy(reference_errors, n))
    best = model("create_improved_model_1", accuracy=accuracy(errors, n))
    verdict = get_rule("improvement")(evidence(ingest, [best], reference=reference, rubric=RUBRIC), PARAMS, EN)
    return verdict.components[0].points


def exact_points(reference_errors: int, errors: int, n: int) -> float:
    gain_pp = Fraction(100 * (reference_errors - errors), n)
    return max((points for step, points in STEPS if gain_pp >= step), default=0.0)


@pytest.mark.parametrize(
    "fewer_errors, expected",
    [
        (5, 2),  # +0.05 pp exactly: was 0.04999999999999449 pp, one point short
        (4, 1),
        (25, 3),
        (50, 4),
        (-25, 1),  # -0.25 pp exactly: was -0.2500000000000058 pp, one point short
        (-26, 0),
    ],
)
def test_improvement_points_at_each_threshold_exactly(ingest, fewer_errors, expected):
    # the reference misses 102 images of 10,000 (98.98 %), where the float error shows
    assert improvement_points(ingest, 102, 102 - fewer_errors, 10_000) == expected


@given(
    n=st.sampled_from([400, 2000, 10_000]),
    reference_errors=st.integers(60, 400),
    # a difference of a few dozen errors: where the thresholds are
    fewer_errors=st.integers(-60, 60),
)
def test_improvement_is_exact_and_monotone_in_the_error_count(ingest, n, reference_errors, fewer_errors):
    errors = reference_errors - fewer_errors
    points = improvement_points(ingest, reference_errors, errors, n)
    assert points == exact_points(reference_errors, errors, n)
    if errors > 0:  # one fewer error never earns fewer points
        assert improvement_points(ingest, reference_errors, errors - 1, n) >= points


def test_tolerance_comparisons_hold_on_differences_of_accuracies():
    # 30 errors apart on 10,000 images is 0.30000000000000027 pp: within a 0.3 pp claim tolerance
    gap = 100 * (accuracy(70, 10_000) - accuracy(100, 10_000))
    assert gap > 0.3 and at_most(gap, 0.3) and not beyond(gap, 0.3)
    # a printed 99 % against 98 % measured is 1.0000000000000009 pp: not beyond a 1 pp limit
    diff = 100 * (0.99 - accuracy(200, 10_000))
    assert diff > 1.0 and not beyond(diff, 1.0)
    assert at_least(100 * (accuracy(295, 10_000) - accuracy(300, 10_000)), 0.05)
    assert not at_least(0.0499, 0.05) and beyond(0.3001, 0.3)

"""Threshold comparisons that float error cannot flip.

Accuracies are ``1 - errors / n``, so a difference of accuracies in percentage points carries
float error: 5 fewer errors than the reference on 10,000 images is ``0.04999999999999449`` pp, and
a plain ``>=`` misses a ``0.05`` step. Every rule compares a measured quantity with a rubric
threshold through these functions, which treat values within ``TOLERANCE`` as equal.

``TOLERANCE`` sits far below any real difference (one image in ten million is 1e-5 pp; one lint
finding per 100,000 lines is 1e-3 per 100 lines) and far above float error on such numbers
(about 1e-14), so a comparison is exact at every threshold a rubric can state.
"""

from __future__ import annotations

TOLERANCE = 1e-9


def at_least(value: float, threshold: float) -> bool:
    """``value >= threshold``, counting a value within float error of the threshold as reaching it."""
    return value >= threshold - TOLERANCE


def at_most(value: float, limit: float) -> bool:
    """``value <= limit``, counting a value within float error of the limit as within it."""
    return value <= limit + TOLERANCE


def beyond(value: float, limit: float) -> bool:
    """``value > limit`` by more than float error (the negation of :func:`at_most`)."""
    return not at_most(value, limit)

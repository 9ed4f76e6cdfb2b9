"""Invariance probes in the analysis: a model that learned digits passes, one that knows the test set is flagged."""

from __future__ import annotations

import numpy as np

from harness.analysis.analyse import invariance, invariance_flags
from harness.config.analysis import load_analysis_config
from harness.util.i18n import Translator

SETTINGS = load_analysis_config().integrity
LABELS = np.arange(10_000) % 10


def outputs(predicted: np.ndarray) -> np.ndarray:
    return np.eye(10)[predicted]


def with_errors(labels: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    predicted = labels.copy()
    predicted[wrong] = (predicted[wrong] + 1) % 10
    return predicted


def test_a_genuine_model_flipping_a_few_borderline_images_is_not_flagged():
    clean = with_errors(LABELS, np.arange(0, 10_000, 100))  # 99 %
    probe = with_errors(LABELS, np.r_[np.arange(0, 10_000, 100)[3:], [7, 17, 27, 37, 47, 57]])  # 3 fixed, 6 broken
    (result,) = invariance(LABELS, outputs(clean), {"unnoticeable": probe})
    assert (result.lost, result.gained) == (6, 3)
    assert invariance_flags([result], len(LABELS), SETTINGS, Translator("en")) == []


def test_a_model_that_knows_the_test_images_collapses_and_is_flagged():
    clean = LABELS.copy()  # 100 %: the lookup answers every known image
    probe = with_errors(LABELS, np.arange(0, 10_000, 3))  # what the network underneath really does
    (result,) = invariance(LABELS, outputs(clean), {"unnoticeable": probe})
    (flag,) = invariance_flags([result], len(LABELS), SETTINGS, Translator("fr"))
    assert flag.rule == "invariance" and "pixels déplacés de ±1/255" in flag.reason and "33.34" in flag.reason

"""Metrics: error analysis, calibration, significance and robustness summaries, on hand-computed cases."""

from __future__ import annotations

import math
from math import comb

import numpy as np
import pytest

from harness.analysis import metrics as M


def softmax_rows(labels, confidence, n_classes=10):
    """Probability rows whose argmax is ``labels`` with max probability ``confidence``."""
    labels = np.asarray(labels)
    confidence = np.broadcast_to(np.asarray(confidence, dtype=np.float64), labels.shape)
    p = np.tile(((1 - confidence) / (n_classes - 1))[:, None], (1, n_classes))
    p[np.arange(len(labels)), labels] = confidence
    return p


# --------------------------------------------------------------------------- error analysis


def test_accuracy_on_labels_and_probabilities():
    assert M.accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    probs = softmax_rows([1, 2, 0, 4], 0.9)
    assert M.accuracy(np.array([1, 2, 3, 4]), probs) == 0.75
    one_hot = np.eye(10)[[1, 2, 3, 4]]  # y_test_cat works too
    assert M.accuracy(one_hot, probs) == 0.75
    with pytest.raises(ValueError):
        M.accuracy([1, 2], [1])
    with pytest.raises(ValueError):
        M.accuracy([], [])


def test_confusion_matrix_hand_case():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    y_pred = [0, 1, 0, 1, 2, 2, 2, 0, 1]
    cm = M.confusion_matrix(y_true, y_pred, n_classes=3)
    np.testing.assert_array_equal(cm, [[2, 1, 0], [0, 1, 1], [1, 1, 2]])
    assert cm.sum() == 9 and np.trace(cm) == 5
    np.testing.assert_allclose(M.normalize_confusion_matrix(cm), [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5], [0.25, 0.25, 0.5]])
    np.testing.assert_allclose(M.per_class_error_rate(y_true, y_pred, n_classes=3), [1 / 3, 0.5, 0.5])
    with pytest.raises(ValueError):
        M.confusion_matrix([0, 3], [0, 1], n_classes=3)


def test_per_class_error_matches_the_assignments_loop():
    rng = np.random.default_rng(0)
    true_classes = rng.integers(0, 10, 500)
    pred_classes = np.where(rng.random(500) < 0.8, true_classes, rng.integers(0, 10, 500))
    error_by_digit = {}
    for digit in range(10):  # the assignment's step 5, verbatim logic
        digit_indices = np.where(true_classes == digit)[0]
        if len(digit_indices) > 0:
            error_by_digit[digit] = np.sum(pred_classes[digit_indices] != digit) / len(digit_indices)
    rates = M.per_class_error_rate(true_classes, pred_classes)
    np.testing.assert_allclose(rates, [error_by_digit[d] for d in range(10)])


def test_per_class_error_of_an_absent_class_is_nan():
    rates = M.per_class_error_rate([0, 1], [0, 0], n_classes=3)
    assert rates[0] == 0 and rates[1] == 1 and math.isnan(rates[2])
    assert np.isnan(M.normalize_confusion_matrix(M.confusion_matrix([0, 1], [0, 0], 3))[2]).all()


def test_most_confused_pairs():
    cm = np.array([[50, 3, 0, 7], [1, 40, 0, 0], [0, 3, 30, 0], [2, 0, 0, 9]])
    assert M.most_confused_pairs(cm, k=3) == [(0, 3, 7), (0, 1, 3), (2, 1, 3)]
    assert len(M.most_confused_pairs(cm, k=100)) == 5  # zero cells are left out
    assert M.most_confused_pairs(np.eye(3, dtype=int) * 4) == []


def test_misclassified_indices_in_test_order():
    y_true = np.array([7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6])
    y_pred = np.array([7, 3, 1, 6, 4, 1, 9, 9, 5, 4, 0, 5])
    np.testing.assert_array_equal(M.misclassified_indices(y_true, y_pred), [1, 3, 6, 9, 11])
    np.testing.assert_array_equal(M.misclassified_indices(y_true, softmax_rows(y_pred, 0.7))[:2], [1, 3])


def test_most_confident_errors():
    y_true = [0, 1, 2, 3, 4]
    probs = np.vstack(
        [
            softmax_rows([0], 0.99),
            softmax_rows([5], 0.6),
            softmax_rows([7], 0.95),
            softmax_rows([3], 0.5),
            softmax_rows([1], 0.95),
        ]
    )
    errors = M.most_confident_errors(y_true, probs, k=2)
    assert [(e.index, e.true, e.predicted) for e in errors] == [(2, 2, 7), (4, 4, 1)]  # tie at 0.95: by index
    assert errors[0].confidence == pytest.approx(0.95)
    assert len(M.most_confident_errors(y_true, probs, k=10)) == 3


def test_probabilities_are_validated():
    with pytest.raises(ValueError, match="logits"):
        M.expected_calibration_error([0], np.array([[3.0, -1.0]]))
    with pytest.raises(ValueError, match="sum to 1"):
        M.expected_calibration_error([0], np.array([[0.5, 0.2]]))
    with pytest.raises(ValueError):
        M.expected_calibration_error([0], np.array([0.5, 0.5]))


# --------------------------------------------------------------------------- calibration


def test_ece_hand_computed():
    # 10 bins. Bin (0.9, 1.0]: confidences 0.95 x 4, 3 right -> |0.75 - 0.95| = 0.2, weight 4/10.
    # Bin (0.5, 0.6]: confidences 0.55 x 6, 3 right -> |0.5 - 0.55| = 0.05, weight 6/10.
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    probs = softmax_rows(pred, [0.95] * 4 + [0.55] * 6)
    result = M.expected_calibration_error(y_true, probs, n_bins=10)
    assert result.ece == pytest.approx(0.4 * 0.2 + 0.6 * 0.05)
    assert float(result) == result.ece
    assert result.n_bins == 10 and "equal-width" in result.binning
    np.testing.assert_allclose(result.bin_edges, np.linspace(0, 1, 11))


def test_reliability_diagram_data():
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    probs = softmax_rows(pred, [0.95] * 4 + [0.55] * 6)
    data = M.reliability_diagram_data(y_true, probs, n_bins=10)
    assert data.count.tolist() == [0, 0, 0, 0, 0, 6, 0, 0, 0, 4]
    assert data.accuracy[9] == pytest.approx(0.75) and data.confidence[9] == pytest.approx(0.95)
    assert data.accuracy[5] == pytest.approx(0.5) and data.confidence[5] == pytest.approx(0.55)
    assert np.isnan(data.accuracy[0]) and np.isnan(data.confidence[0])


def test_ece_bins_are_right_closed_and_cover_the_extremes():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    data = M.reliability_diagram_data([0, 0], probs, n_bins=2)
    assert data.count.tolist() == [1, 1]  # 0.5 -> (0, 0.5], 1.0 -> (0.5, 1]


def test_ece_is_zero_when_perfectly_calibrated():
    # confidence 0.8 and 80 % right in the one bin used
    y_true = np.array([0] * 8 + [1] * 2)
    probs = softmax_rows(np.zeros(10, int), 0.8)
    assert M.expected_calibration_error(y_true, probs).ece == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- training curves


def test_overfitting_gap_from_a_keras_history():
    history = {
        "loss": [0.5, 0.1, 0.02],
        "accuracy": [0.9, 0.97, 0.995],
        "val_loss": [0.2, 0.08, 0.06],
        "val_accuracy": [0.95, 0.98, 0.985],
    }
    gap = M.overfitting_gap(history)
    assert gap.accuracy_gap == pytest.approx(0.01)
    assert gap.loss_gap == pytest.approx(0.02 - 0.06)
    assert gap.epochs == 3 and gap.train_accuracy == 0.995 and gap.val_loss == 0.06
    old_keras = M.overfitting_gap({"acc": [0.9], "val_acc": [0.8], "loss": [0.3]})
    assert old_keras.accuracy_gap == pytest.approx(0.1) and old_keras.loss_gap is None


# --------------------------------------------------------------------------- significance


def mcnemar_case(b: int, c: int, both_right: int = 5, both_wrong: int = 3):
    y_true = np.zeros(b + c + both_right + both_wrong, int)
    pred_a = np.array([0] * b + [1] * c + [0] * both_right + [1] * both_wrong)
    pred_b = np.array([1] * b + [0] * c + [0] * both_right + [2] * both_wrong)
    return y_true, pred_a, pred_b


def test_mcnemar_hand_computed():
    result = M.mcnemar_exact(*mcnemar_case(1, 9))
    assert (result.b, result.c, result.n) == (1, 9, 18)
    assert result.p_value == pytest.approx(22 / 1024, rel=1e-12)  # 2 * (C(10,0) + C(10,1)) / 2^10
    assert result.gain == pytest.approx(8 / 18)
    assert result.accuracy_b - result.accuracy_a == pytest.approx(result.gain)
    assert M.mcnemar_exact(*mcnemar_case(9, 1)).p_value == pytest.approx(22 / 1024, rel=1e-12)


def test_mcnemar_without_discordant_pairs():
    result = M.mcnemar_exact(*mcnemar_case(0, 0))
    assert (result.b, result.c, result.p_value, result.gain) == (0, 0, 1.0, 0.0)


@pytest.mark.parametrize("b, c", [(3, 12), (20, 20), (0, 7), (40, 25)])
def test_mcnemar_matches_the_binomial_sum(b, c):
    n = b + c
    k = min(b, c)
    expected = min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n)
    assert M.mcnemar_exact(*mcnemar_case(b, c)).p_value == pytest.approx(expected, rel=1e-9)


def test_gain_confidence_interval_known_sample():
    ci = M.gain_confidence_interval([0.01, 0.02, 0.03])
    t = 4.302652729911275  # t_{0.975, 2}
    assert ci.mean == pytest.approx(0.02) and ci.std == pytest.approx(0.01) and ci.n == 3
    assert ci.low == pytest.approx(0.02 - t * 0.01 / math.sqrt(3))
    assert ci.high == pytest.approx(0.02 + t * 0.01 / math.sqrt(3))
    assert ci.excludes_zero is False
    tight = M.gain_confidence_interval([0.010, 0.011, 0.012, 0.009, 0.010], confidence=0.9)
    assert tight.excludes_zero is True and tight.low < 0.0104 < tight.high


def test_gain_confidence_interval_single_seed():
    ci = M.gain_confidence_interval([0.004])
    assert ci.mean == 0.004 and ci.n == 1
    assert ci.std is None and ci.low is None and ci.high is None and ci.excludes_zero is None
    with pytest.raises(ValueError):
        M.gain_confidence_interval([])


# --------------------------------------------------------------------------- robustness summary


def test_corruption_errors():
    errors = M.corruption_errors({"fog": 0.75, "shear": [0.9, 0.8]})
    assert errors["fog"] == pytest.approx(0.25)
    assert errors["shear"] == pytest.approx([0.1, 0.2])
    with pytest.raises(ValueError):
        M.corruption_errors({"fog": 75.0})


def test_mean_corruption_error_with_and_without_reference():
    model = {"fog": 0.2, "shear": [0.1, 0.3], "stripe": 0.05}
    summary = M.mean_corruption_error(model)
    assert summary.errors == pytest.approx({"fog": 0.2, "shear": 0.2, "stripe": 0.05})
    assert summary.mean_error == pytest.approx(0.15)
    assert summary.relative_mce is None
    reference = {"fog": 0.4, "shear": [0.2, 0.2], "stripe": 0.05}
    summary = M.mean_corruption_error(model, reference)
    assert summary.relative == pytest.approx({"fog": 0.5, "shear": 1.0, "stripe": 1.0})
    assert summary.relative_mce == pytest.approx(2.5 / 3)
    with pytest.raises(ValueError, match="differ"):
        M.mean_corruption_error(model, {"fog": 0.4})


def test_mean_corruption_error_excludes_zero_reference():
    summary = M.mean_corruption_error({"a": 0.1, "b": 0.2}, {"a": 0.0, "b": 0.4})
    assert summary.excluded == ("a",) and summary.relative == {"b": 0.5} and summary.relative_mce == 0.5


# --------------------------------------------------------------------------- integrity


def test_implausible_test_accuracy():
    flagged, reason = M.implausible_test_accuracy(0.995, 0.97, tolerance=0.01)
    assert flagged and "exceeds validation" in reason
    assert M.implausible_test_accuracy(0.975, 0.97, tolerance=0.01) == (False, "")
    assert (
        M.implausible_test_accuracy(0.90, 0.99, tolerance=0.01).flagged is False
    )  # worse on test: not an integrity issue
    ceiling = M.implausible_test_accuracy(1.0, 0.9995, tolerance=0.01)
    assert ceiling.flagged and "ceiling" in ceiling.reason
    with pytest.raises(ValueError):
        M.implausible_test_accuracy(99.1, 0.98, tolerance=0.01)

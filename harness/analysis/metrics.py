"""Metrics for error analysis, calibration, significance and robustness: pure numpy/scipy functions.

Inputs are numpy arrays: integer labels of shape (N,), or (N, K) probability rows (a model's softmax
output). Wherever labels are expected, a (N, K) array is accepted and reduced with ``argmax`` (so
one-hot ``y_test_cat`` or ``model.predict`` output work as they are).

>>> y_true = np.array([0, 1, 1, 2])
>>> y_pred = np.array([0, 1, 2, 2])
>>> accuracy(y_true, y_pred)
0.75
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "accuracy",
    "confusion_matrix",
    "normalize_confusion_matrix",
    "per_class_error_rate",
    "most_confused_pairs",
    "misclassified_indices",
    "most_confident_errors",
    "ConfidentError",
    "check_probabilities",
    "ReliabilityData",
    "reliability_diagram_data",
    "CalibrationResult",
    "expected_calibration_error",
    "OverfittingGap",
    "overfitting_gap",
    "McNemarResult",
    "mcnemar_exact",
    "GainInterval",
    "gain_confidence_interval",
    "corruption_errors",
    "CorruptionSummary",
    "mean_corruption_error",
    "IntegritySignal",
    "implausible_test_accuracy",
]


# --------------------------------------------------------------------------- input handling


def _labels(a: np.ndarray | Sequence[int], what: str = "labels") -> np.ndarray:
    """(N,) integer labels, or (N, K) rows reduced by argmax, as int64."""
    a = np.asarray(a)
    if a.ndim == 2:
        if a.shape[1] == 0:
            raise ValueError(f"{what}: empty rows")
        return np.argmax(a, axis=1).astype(np.int64)
    if a.ndim != 1:
        raise ValueError(f"{what}: expected shape (N,) or (N, K), got {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{what}: expected integer class labels")
    return a.astype(np.int64)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {len(t)} vs {len(p)}")
    if t.size == 0:
        raise ValueError("no samples")
    return t, p


def check_probabilities(probs: np.ndarray, atol: float = 1e-3) -> np.ndarray:
    """Validate (N, K) probability rows (finite, in [0, 1], each summing to 1 within ``atol``).

    Raises ``ValueError`` otherwise, e.g. for logits from a model without a softmax.

    >>> check_probabilities(np.array([[0.2, 0.8]])).shape
    (1, 2)
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"expected (N, K) probabilities with N >= 1, K >= 2, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("probabilities contain NaN or infinity")
    if p.min() < -atol or p.max() > 1 + atol:
        raise ValueError("probabilities outside [0, 1] (logits rather than softmax output?)")
    sums = p.sum(axis=1)
    if np.abs(sums - 1).max() > atol:
        raise ValueError(f"probability rows do not sum to 1 (max deviation {np.abs(sums - 1).max():.3g})")
    return p


# --------------------------------------------------------------------------- error analysis (step 5)


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions.

    >>> accuracy([0, 1, 2, 3], [0, 1, 2, 0])
    0.75
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true, y_pred, n_classes: int = 10) -> np.ndarray:
    """Counts ``cm[i, j]`` = number of samples of true class i predicted as j (int64, n x n).

    >>> confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], n_classes=3)
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 1, 0]])
    """
    t, p = _pair(y_true, y_pred)
    if t.min() < 0 or p.min() < 0 or t.max() >= n_classes or p.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def normalize_confusion_matrix(cm: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix: ``cm[i, j] / cm[i].sum()``, the fraction of class i predicted
    as j. Rows of classes with no sample are NaN.

    >>> normalize_confusion_matrix(np.array([[3, 1], [0, 0]]))
    array([[0.75, 0.25],
           [ nan,  nan]])
    """
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, cm / np.where(totals > 0, totals, 1), np.nan)


def per_class_error_rate(y_true, y_pred, n_classes: int = 10) -> np.ndarray:
    """Error rate per true class, ``errors_i / count_i`` (the assignment's ``error_by_digit``);
    NaN for a class with no sample.

    >>> per_class_error_rate([0, 0, 1, 1], [0, 1, 1, 1], n_classes=3)
    array([0.5, 0. , nan])
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    totals = cm.sum(axis=1)
    errors = totals - np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, errors / np.where(totals > 0, totals, 1), np.nan)


def most_confused_pairs(cm: np.ndarray, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells of a confusion matrix, as (true, predicted, count),
    by decreasing count (ties: by true then predicted class); cells with count 0 are left out.

    >>> most_confused_pairs(np.array([[5, 2, 0], [1, 5, 3], [0, 3, 5]]), k=3)
    [(1, 2, 3), (2, 1, 3), (0, 1, 2)]
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError("expected a square confusion matrix")
    pairs = [
        (int(i), int(j), int(cm[i, j]))
        for i in range(cm.shape[0])
        for j in range(cm.shape[1])
        if i != j and cm[i, j] > 0
    ]
    pairs.sort(key=lambda item: (-item[2], item[0], item[1]))
    return pairs[:k]


def misclassified_indices(y_true, y_pred) -> np.ndarray:
    """Indices of misclassified samples in test order (the assignment shows ``[:10]`` of these).

    >>> misclassified_indices([1, 2, 3, 4], [1, 0, 3, 0])
    array([1, 3])
    """
    t, p = _pair(y_true, y_pred)
    return np.flatnonzero(t != p)


class ConfidentError(NamedTuple):
    """A misclassified test image: its index, true and predicted digits, and the confidence of the prediction."""

    index: int  # position in the test set
    true: int
    predicted: int
    confidence: float  # probability the model gave its (wrong) prediction


def most_confident_errors(y_true, probs: np.ndarray, k: int = 10) -> list[ConfidentError]:
    """The ``k`` misclassified samples the model was most sure about, by decreasing confidence
    (ties: by index).

    >>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    >>> most_confident_errors([0, 0, 0], probs, k=2)
    [ConfidentError(index=1, true=0, predicted=1, confidence=0.8), ConfidentError(index=2, true=0, predicted=1, confidence=0.6)]
    """
    p = check_probabilities(probs)
    t, pred = _pair(y_true, p)
    confidence = p.max(axis=1)
    wrong = np.flatnonzero(t != pred)
    order = wrong[np.lexsort((wrong, -confidence[wrong]))][:k]
    return [ConfidentError(int(i), int(t[i]), int(pred[i]), float(confidence[i])) for i in order]


# --------------------------------------------------------------------------- calibration


BINNING = (
    "equal-width confidence bins over [0, 1]: bin m is (m/M, (m+1)/M] for m = 0..M-1, "
    "the first bin also holding confidence 0 (Guo et al. 2017); confidence = max probability"
)


@dataclass(frozen=True)
class ReliabilityData:
    """Per-bin data of a reliability diagram (arrays of length n_bins; empty bins: NaN means, count 0)."""

    bin_edges: np.ndarray  # n_bins + 1 edges, np.linspace(0, 1, n_bins + 1)
    confidence: np.ndarray  # mean confidence of the samples in the bin
    accuracy: np.ndarray  # fraction of them predicted correctly
    count: np.ndarray  # number of samples in the bin
    binning: str = BINNING


def _confidence_bins(confidence: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side="left") on the inner edges: a value equal to an edge goes to the lower bin
    index = np.searchsorted(edges[1:-1], confidence, side="left")
    return edges, index


def reliability_diagram_data(y_true, probs: np.ndarray, n_bins: int = 15) -> ReliabilityData:
    """Mean confidence, accuracy and count per equal-width confidence bin (see :data:`BINNING`).

    >>> r = reliability_diagram_data([0, 1], np.array([[0.9, 0.1], [0.7, 0.3]]), n_bins=2)
    >>> r.count.tolist(), r.accuracy.tolist()
    ([0, 2], [nan, 0.5])
    """
    p = check_probabilities(probs)
    t, pred = _pair(y_true, p)
    confidence = p.max(axis=1)
    correct = (t == pred).astype(np.float64)
    edges, index = _confidence_bins(confidence, n_bins)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=confidence, minlength=n_bins) / count
        mean_acc = np.bincount(index, weights=correct, minlength=n_bins) / count
    return ReliabilityData(edges, np.where(count > 0, mean_conf, np.nan), np.where(count > 0, mean_acc, np.nan), count)


@dataclass(frozen=True)
class CalibrationResult:
    """``ece`` and the binning it was computed with."""

    ece: float
    n_bins: int
    bin_edges: np.ndarray
    binning: str = BINNING

    def __float__(self) -> float:
        return self.ece


def expected_calibration_error(y_true, probs: np.ndarray, n_bins: int = 15) -> CalibrationResult:
    """Expected calibration error with ``n_bins`` equal-width confidence bins:

    ``ECE = sum_m (n_m / N) * |accuracy_m - confidence_m|``, where bin m holds the samples whose
    confidence (max probability) lies in (m/M, (m+1)/M] (the first bin also holds 0), accuracy_m is
    the fraction of them predicted correctly and confidence_m their mean confidence (Guo et al. 2017,
    "On Calibration of Modern Neural Networks"). Returns the value with the binning used.

    >>> probs = np.array([[0.85, 0.15], [0.85, 0.15], [0.65, 0.35], [0.65, 0.35]])
    >>> # bin (0.8, 0.9]: accuracy 1/2, confidence 0.85; bin (0.6, 0.7]: accuracy 1, confidence 0.65
    >>> round(expected_calibration_error([0, 1, 0, 0], probs, n_bins=10).ece, 6)  # 0.5*0.35 + 0.5*0.35
    0.35
    """
    data = reliability_diagram_data(y_true, probs, n_bins)
    n = data.count.sum()
    filled = data.count > 0
    gap = np.abs(data.accuracy[filled] - data.confidence[filled])
    ece = float(np.sum(data.count[filled] / n * gap))
    return CalibrationResult(ece, n_bins, data.bin_edges)


# --------------------------------------------------------------------------- training curves


@dataclass(frozen=True)
class OverfittingGap:
    """Final-epoch train-minus-validation gaps (None where the history lacks the keys).

    accuracy_gap = train accuracy - val accuracy (> 0: better on the training data);
    loss_gap = train loss - val loss (< 0: lower loss on the training data, i.e. overfitting shows as
    a *negative* loss gap).
    """

    accuracy_gap: float | None
    loss_gap: float | None
    train_accuracy: float | None
    val_accuracy: float | None
    train_loss: float | None
    val_loss: float | None
    epochs: int


def _last(history: Mapping[str, Sequence[float]], *keys: str) -> float | None:
    for key in keys:
        values = history.get(key)
        if values is not None and len(values) > 0:
            return float(values[-1])
    return None


def overfitting_gap(history: Mapping[str, Sequence[float]]) -> OverfittingGap:
    """Gaps between the final training and validation metrics of a Keras-like ``history.history``
    dict (keys ``accuracy``/``acc``, ``val_accuracy``/``val_acc``, ``loss``, ``val_loss``).

    >>> g = overfitting_gap({"accuracy": [0.9, 0.99], "val_accuracy": [0.9, 0.97], "loss": [0.3, 0.05], "val_loss": [0.3, 0.1]})
    >>> round(g.accuracy_gap, 4), round(g.loss_gap, 4)
    (0.02, -0.05)
    """
    train_acc = _last(history, "accuracy", "acc")
    val_acc = _last(history, "val_accuracy", "val_acc")
    train_loss = _last(history, "loss")
    val_loss = _last(history, "val_loss")
    epochs = max((len(v) for v in history.values() if hasattr(v, "__len__")), default=0)
    return OverfittingGap(
        accuracy_gap=None if train_acc is None or val_acc is None else train_acc - val_acc,
        loss_gap=None if train_loss is None or val_loss is None else train_loss - val_loss,
        train_accuracy=train_acc,
        val_accuracy=val_acc,
        train_loss=train_loss,
        val_loss=val_loss,
        epochs=epochs,
    )


# --------------------------------------------------------------------------- significance


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test of model A (e.g. the baseline) against model B on the same test samples."""

    b: int  # A right, B wrong
    c: int  # A wrong, B right
    n: int  # samples
    p_value: float  # exact two-sided binomial test of b against Binomial(b + c, 1/2); 1.0 when b + c == 0
    accuracy_a: float
    accuracy_b: float

    @property
    def gain(self) -> float:
        """Accuracy of B minus accuracy of A, = (c - b) / n."""
        return (self.c - self.b) / self.n


def mcnemar_exact(y_true, pred_a, pred_b) -> McNemarResult:
    """Exact (binomial) McNemar test on the discordant pairs of two models' predictions.

    Under H0 (equal error rates) each discordant sample is equally likely to favour A or B, so
    b ~ Binomial(b + c, 1/2); the p-value is ``scipy.stats.binomtest(b, b + c, 0.5)`` two-sided.

    >>> y = np.zeros(10, int)
    >>> r = mcnemar_exact(y, [0] + [1] * 9, [1] + [0] * 9)   # b = 1, c = 9
    >>> r.b, r.c, r.p_value                                   # 2 * (1 + 10) / 2**10
    (1, 9, 0.021484375)
    """
    t, a = _pair(y_true, pred_a)
    _, b_pred = _pair(y_true, pred_b)
    a_right, b_right = a == t, b_pred == t
    b = int(np.sum(a_right & ~b_right))
    c = int(np.sum(~a_right & b_right))
    from scipy import stats  # here, not at import: scipy.stats alone takes a second to import

    p_value = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)
    return McNemarResult(b, c, len(t), min(1.0, p_value), float(a_right.mean()), float(b_right.mean()))


@dataclass(frozen=True)
class GainInterval:
    """Mean accuracy gain over K seeds with a t-based confidence interval (None when K = 1)."""

    mean: float
    std: float | None  # sample standard deviation (ddof = 1)
    n: int
    confidence: float
    low: float | None
    high: float | None

    @property
    def excludes_zero(self) -> bool | None:
        """Whether the interval lies entirely above or below 0 (None when undefined)."""
        if self.low is None or self.high is None:
            return None
        return self.low > 0 or self.high < 0


def gain_confidence_interval(gains: Sequence[float], confidence: float = 0.95) -> GainInterval:
    """Mean of per-seed gains and its Student-t confidence interval:
    ``mean +- t_{(1 + confidence) / 2, K - 1} * std / sqrt(K)``, std with ddof = 1.

    With K = 1 the spread is unknown: std, low and high are None.

    >>> ci = gain_confidence_interval([0.01, 0.02, 0.03])
    >>> round(ci.mean, 4), round(ci.std, 4), round(ci.low, 4), round(ci.high, 4)
    (0.02, 0.01, -0.0048, 0.0448)
    """
    g = np.asarray(gains, dtype=np.float64).ravel()
    if g.size == 0:
        raise ValueError("no gains")
    if not np.all(np.isfinite(g)):
        raise ValueError("gains contain NaN or infinity")
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie in (0, 1)")
    mean = float(g.mean())
    if g.size == 1:
        return GainInterval(mean, None, 1, confidence, None, None)
    std = float(g.std(ddof=1))
    from scipy import stats  # ~1 s to import: only when a confidence interval is asked for

    half = float(stats.t.ppf((1 + confidence) / 2, df=g.size - 1)) * std / math.sqrt(g.size)
    return GainInterval(mean, std, int(g.size), confidence, mean - half, mean + half)


# --------------------------------------------------------------------------- robustness summary


def corruption_errors(acc_by_corruption: Mapping[str, float | Sequence[float]]) -> dict[str, float | list[float]]:
    """Error = 1 - accuracy for each corruption (a float, or a list for several severities).

    >>> corruption_errors({"fog": 0.75, "shear": [0.9, 0.8]})
    {'fog': 0.25, 'shear': [0.09999999999999998, 0.19999999999999996]}
    """
    out: dict[str, float | list[float]] = {}
    for name, acc in acc_by_corruption.items():
        values = np.atleast_1d(np.asarray(acc, dtype=np.float64))
        if values.size == 0 or not np.all((values >= 0) & (values <= 1)):
            raise ValueError(f"{name}: accuracies must lie in [0, 1]")
        errors = [float(1 - v) for v in values]
        out[name] = errors[0] if np.ndim(acc) == 0 else errors
    return out


@dataclass(frozen=True)
class CorruptionSummary:
    """See :func:`mean_corruption_error`."""

    mean_error: float  # unnormalised mCE: mean over corruptions of the (severity-averaged) error
    errors: dict[str, float]  # per corruption, averaged over its severities
    relative_mce: float | None = None  # Hendrycks-style mCE (x 100 for the usual percentage), None without reference
    relative: dict[str, float] | None = None  # CE_c per corruption
    excluded: tuple[str, ...] = ()  # corruptions left out of relative_mce (reference error 0)


def mean_corruption_error(
    model_errors: Mapping[str, float | Sequence[float]],
    reference_errors: Mapping[str, float | Sequence[float]] | None = None,
) -> CorruptionSummary:
    """Summarise errors over corruptions (each a float, or a list over severities).

    * ``mean_error`` (unnormalised mCE) = mean over corruptions c of mean_s E(s, c).
    * With ``reference_errors`` (same corruptions and severities, e.g. the baseline model), the
      corruption error of Hendrycks & Dietterich (2019): ``CE_c = sum_s E(s, c) / sum_s E_ref(s, c)``
      and ``relative_mce`` = mean over c of CE_c (1.0: as robust as the reference; < 1: more robust).
      A corruption whose reference error sum is 0 has no CE; it is listed in ``excluded``.

    >>> s = mean_corruption_error({"fog": 0.2, "shear": 0.1}, {"fog": 0.4, "shear": 0.1})
    >>> round(s.mean_error, 3), s.relative, round(s.relative_mce, 3)
    (0.15, {'fog': 0.5, 'shear': 1.0}, 0.75)
    """
    if not model_errors:
        raise ValueError("no corruptions")

    def as_array(name: str, value) -> np.ndarray:
        values = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if values.size == 0 or not np.all((values >= 0) & (values <= 1)):
            raise ValueError(f"{name}: errors must lie in [0, 1]")
        return values

    model = {name: as_array(name, value) for name, value in model_errors.items()}
    errors = {name: float(v.mean()) for name, v in model.items()}
    mean_error = float(np.mean(list(errors.values())))
    if reference_errors is None:
        return CorruptionSummary(mean_error, errors)
    if set(reference_errors) != set(model):
        raise ValueError(f"model and reference corruptions differ: {sorted(set(model) ^ set(reference_errors))}")
    relative: dict[str, float] = {}
    excluded: list[str] = []
    for name, values in model.items():
        ref = as_array(name, reference_errors[name])
        if ref.shape != values.shape:
            raise ValueError(f"{name}: model and reference have different numbers of severities")
        if ref.sum() == 0:
            excluded.append(name)
            continue
        relative[name] = float(values.sum() / ref.sum())
    relative_mce = float(np.mean(list(relative.values()))) if relative else None
    return CorruptionSummary(mean_error, errors, relative_mce, relative, tuple(excluded))


# --------------------------------------------------------------------------- integrity


class IntegritySignal(NamedTuple):
    """Whether a test accuracy is flagged as implausible, and why ("" when not flagged)."""

    flagged: bool
    reason: str


def implausible_test_accuracy(
    test_acc: float, val_acc: float, tolerance: float, ceiling: float = 0.998
) -> IntegritySignal:
    """Flag a test accuracy that is implausible given the validation accuracy.

    Flagged when the test accuracy exceeds the validation accuracy by more than ``tolerance``
    (test images seen in training or used for model selection?), or exceeds ``ceiling`` (a few MNIST
    test labels are wrong, so ~99.8 % is about the best honest score). A test accuracy *below*
    validation is ordinary and never flagged. Returns (flagged, reason); reason is "" when not flagged.

    >>> implausible_test_accuracy(0.995, 0.97, tolerance=0.01)
    IntegritySignal(flagged=True, reason='test accuracy 99.50% exceeds validation accuracy 97.00% by 2.50 points (tolerance 1.00)')
    >>> implausible_test_accuracy(0.985, 0.99, tolerance=0.01).flagged
    False
    """
    for name, value in (("test_acc", test_acc), ("val_acc", val_acc)):
        if not (isinstance(value, (int, float, np.floating, np.integer)) and 0 <= float(value) <= 1):
            raise ValueError(f"{name} must be an accuracy in [0, 1], got {value!r}")
    if tolerance < 0:
        raise ValueError("tolerance must be >= 0")
    test_acc, val_acc = float(test_acc), float(val_acc)
    excess = test_acc - val_acc
    if excess > tolerance:
        return IntegritySignal(
            True,
            f"test accuracy {test_acc:.2%} exceeds validation accuracy {val_acc:.2%} by "
            f"{100 * excess:.2f} points (tolerance {100 * tolerance:.2f})",
        )
    if test_acc > ceiling:
        return IntegritySignal(
            True, f"test accuracy {test_acc:.2%} is above the plausible ceiling {ceiling:.2%} for MNIST"
        )
    return IntegritySignal(False, "")

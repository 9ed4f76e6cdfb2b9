"""Analysis stage: error analysis, robustness, significance and integrity signals, from stored predictions.

Everything here runs in the grading process on arrays the harness itself produced (a model's
predictions written by the evaluation worker, the test labels, the robustness suite built by
:mod:`harness.analysis.perturbations`): no student code, no TensorFlow. The computations are pure
functions (:func:`error_analysis`, :func:`robustness`, :func:`significance`, :func:`integrity_flags`,
:func:`verdict`) returning the pydantic models of :mod:`harness.results`; :func:`analyze_models`
reads one submission's prediction files and attaches them to its models.

The predictions file, one per model (``models/<name>.predictions.npz``, written by
``harness.workers.worker.run_evaluation``):

==================  =========================================================================
``probabilities``   float32 (n_test, 10): the model's outputs on the clean test set
``suite_names``     str (E,): the suite's entries, in suite order (absent without a suite)
``suite_offsets``   int64 (E + 1,): entry e's predictions are ``[offsets[e]:offsets[e + 1]]``
``suite_predicted`` uint8: predicted digit on each perturbed image, entries concatenated
``suite_confidence`` float16: the probability of that prediction
``suite_checksum``  str: :attr:`BuiltSuite.checksum` of the sets the worker read
``clean_seconds``, ``suite_seconds``  float: prediction time (wall), clean test set and whole suite
``clean_cpu_seconds``, ``suite_cpu_seconds``, ``worker_cpu_seconds``  float: CPU time (all threads)
                    of the same, and of the worker process so far (import, loading, predicting)
==================  =========================================================================

>>> derive_seeds(20260901, 3)[0]
20260901
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.analysis import metrics
from harness.analysis.perturbations import BuiltSuite, build_suite, capped, examples, load_suite
from harness.config.analysis import AnalysisConfig, IntegritySettings, MeasurementSettings
from harness.config.environment import SUITE_CACHE_ENV, user_cache_dir
from harness.config.protocol import Profile
from harness.results import (
    AnalysisSummary,
    Calibration,
    ConfusedPair,
    ErrorAnalysis,
    GainInterval,
    GalleryItem,
    IntegrityFlag,
    McNemarTest,
    MeasurementNote,
    Message,
    ModelResult,
    OverfittingSignal,
    PrivateCheck,
    ProbeResult,
    ReliabilityBin,
    Robustness,
    RobustnessEntry,
    SeedRun,
    SeverityCurve,
    Significance,
)
from harness.util.atomic import savez_atomic, write_json_atomic

CLASSES = 10
SUITE_DIR = "_suite"  # OUT/_suite: the suite's manifest and example images, for reports
GALLERY_FILE = "gallery.npz"  # OUT/<student>/gallery.npz: the galleries' test images


# --------------------------------------------------------------------------- seeds


def derive_seeds(seed: int, k: int) -> list[int]:
    """``k`` training seeds: ``seed`` itself, then seeds derived from it by hashing (reproducible,
    not chosen by anyone): ``int(sha256(f"{seed}/{i}")[:8], 16) % 2**31`` for i = 1..k-1.

    >>> derive_seeds(7, 3) == derive_seeds(7, 3) and len(set(derive_seeds(7, 3))) == 3
    True
    """
    if k < 1:
        raise ValueError("--seeds must be at least 1")
    seeds = [int(seed)]
    i = 1
    while len(seeds) < k:
        candidate = int(hashlib.sha256(f"{seed}/{i}".encode()).hexdigest()[:8], 16) % 2**31
        if candidate not in seeds:
            seeds.append(candidate)
        i += 1
    return seeds


# --------------------------------------------------------------------------- the suite


def suite_cache_dir(out: Path) -> Path:
    """Where perturbed sets are cached, shared by every grading run of this user: ``$HARNESS_SUITE_CACHE``
    if set, else ``~/.cache/harness/suites``, else ``OUT/.work/suite`` (:func:`user_cache_dir`). Sharing
    is safe: a set's folder is named after the test images, the suite file and the perturbation code,
    and every file is checked against its sha256 when read."""
    return user_cache_dir("suites", SUITE_CACHE_ENV, Path(out) / ".work" / "suite")


def prepare_suite(
    x_test: np.ndarray, cache_dir: Path, suite_path: str | os.PathLike | None = None, cap: int | None = None
) -> BuiltSuite:
    """Build the robustness suite's perturbed sets from the (preprocessed) test images, or load them
    from the cache (checksums verified), each subset entry capped at ``cap`` images (the profile's
    ``suite_images``). Called once per grading run, before any worker starts."""
    return build_suite(x_test, capped(load_suite(suite_path), cap), cache_dir)


def suite_job(built: BuiltSuite) -> dict:
    """What the evaluation worker needs to read the sets (it verifies each file's sha256)."""
    return {
        "dir": str(built.directory),
        "checksum": built.checksum,
        "entries": [
            {"name": e.name, "file": e.path.name, "sha256": e.checksum, "n": int(len(e.indices))} for e in built
        ],
    }


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(np.asarray(images, dtype=np.float32), 0, 1) * 255).astype(np.uint8).reshape(-1, 28, 28)


def write_suite_artifacts(built: BuiltSuite, x_test: np.ndarray, folder: Path, n: int = 5) -> Path:
    """``OUT/_suite/examples.npz`` (the first ``n`` test images, clean and under every entry) and
    ``OUT/_suite/suite.json`` (entries, parameters, seeds, checksums): the report draws its
    perturbation figures from these, without the cache."""
    folder.mkdir(parents=True, exist_ok=True)
    shown = examples(built, n)
    names = list(shown)
    k = min(len(idx) for idx, _ in shown.values()) if shown else 0
    path = folder / "examples.npz"
    savez_atomic(
        path,
        compressed=True,
        names=np.array(names),
        clean=_to_uint8(x_test[:k]),
        images=np.stack([_to_uint8(shown[name][1][:k]) for name in names])
        if names
        else np.zeros((0, 0, 28, 28), np.uint8),
    )
    write_json_atomic(
        folder / "suite.json",
        {
            "key": built.key,
            "checksum": built.checksum,
            "suite_sha256": built.suite.sha256,
            "directory": str(built.directory),
            "suite_file": str(built.suite.path),
            "subset": built.suite.subset,
            "entries": [
                {
                    "name": e.name,
                    "group": e.entry.group,
                    "perturbation": e.entry.perturbation,
                    "params": dict(e.entry.params),
                    "seed": e.entry.seed,
                    "family": e.entry.family,
                    "severity": e.entry.severity,
                    "n": int(len(e.indices)),
                    "sha256": e.checksum,
                    "description": e.entry.description,
                }
                for e in built
            ],
        },
    )
    return path


def read_suite_examples(folder: Path) -> dict[str, Any] | None:
    """What :func:`write_suite_artifacts` wrote: {"clean": (k, 28, 28), "entries": {name: (k, 28, 28)}}."""
    path = Path(folder) / "examples.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as npz:
        names = [str(n) for n in npz["names"]]
        return {"clean": npz["clean"], "entries": {name: npz["images"][i] for i, name in enumerate(names)}}


# --------------------------------------------------------------------------- predictions files


@dataclass
class Predictions:
    """A predictions file read back: clean-test probabilities; per suite entry, predicted labels and confidences."""

    probabilities: np.ndarray
    suite: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # name -> (predicted, confidence)
    suite_checksum: str | None = None
    clean_seconds: float | None = None
    suite_seconds: float | None = None
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # clean, suite, worker (see above)
    probes: dict[str, np.ndarray] = field(default_factory=dict)  # invariance probe -> predicted digits
    probe_seconds: float | None = None
    probe_indices: np.ndarray | None = None  # test positions probed (None: every one, in older files)
    private_predicted: np.ndarray | None = None  # the private check set's predicted digits
    private_indices: np.ndarray | None = None  # the test positions its images rewrite
    control_predicted: np.ndarray | None = None  # validation images as they are (the private set's control)
    control_private_predicted: np.ndarray | None = None  # and rewritten alike
    private_seconds: float | None = None


def load_predictions(path: Path) -> Predictions:
    """Read a predictions file (``.npz`` as documented above; a bare ``.npy`` is the clean set only)."""
    path = Path(path)
    if path.suffix == ".npy":
        return Predictions(np.load(path, allow_pickle=False))
    with np.load(path, allow_pickle=False) as npz:
        out = Predictions(npz["probabilities"])
        if "suite_names" in npz.files:
            offsets = npz["suite_offsets"]
            predicted, confidence = npz["suite_predicted"], npz["suite_confidence"]
            for i, name in enumerate(npz["suite_names"]):
                lo, hi = int(offsets[i]), int(offsets[i + 1])
                out.suite[str(name)] = (predicted[lo:hi].astype(np.int64), confidence[lo:hi].astype(np.float64))
            out.suite_checksum = str(npz["suite_checksum"])
        if "probe_names" in npz.files:
            out.probes = {str(n): npz["probe_predicted"][i].astype(np.int64) for i, n in enumerate(npz["probe_names"])}
        for key in (
            "probe_indices",
            "private_predicted",
            "private_indices",
            "control_predicted",
            "control_private_predicted",
        ):
            if key in npz.files:
                setattr(out, key, npz[key].astype(np.int64))
        for key in ("clean_seconds", "suite_seconds", "probe_seconds", "private_seconds"):
            if key in npz.files:
                setattr(out, key, float(npz[key]))
        for key in ("clean", "suite", "probe", "private", "worker"):
            if f"{key}_cpu_seconds" in npz.files:
                out.cpu_seconds[key] = float(npz[f"{key}_cpu_seconds"])
    return out


# --------------------------------------------------------------------------- error analysis


def as_probabilities(outputs: np.ndarray) -> tuple[np.ndarray, str]:
    """The outputs as probability rows, and what they were: a model without a final softmax gives
    logits, to which softmax is applied for calibration and confidences (argmax is unchanged)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    try:
        return metrics.check_probabilities(outputs), "probabilities"
    except ValueError:
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=1, keepdims=True), "logits"


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _gallery(items) -> list[GalleryItem]:
    return [
        GalleryItem(
            index=int(i.index), true=int(i.true), predicted=int(i.predicted), confidence=round(float(i.confidence), 4)
        )
        for i in items
    ]


def error_analysis(
    labels: np.ndarray,
    outputs: np.ndarray,
    history: Mapping[str, Sequence[float]] | None = None,
    config: AnalysisConfig | None = None,
) -> ErrorAnalysis:
    """Confusion matrix, per-digit error rates, most confused pairs, galleries, calibration, train/val gap.

    >>> labels = np.array([0, 1, 2, 3] * 5)
    >>> outputs = np.eye(10)[[0, 1, 2, 3] * 4 + [1, 1, 2, 3]]
    >>> a = error_analysis(labels, outputs)
    >>> a.errors, a.most_confused[0].model_dump()
    (1, {'true': 0, 'predicted': 1, 'count': 1})
    """
    config = config or AnalysisConfig()
    labels = np.asarray(labels, dtype=np.int64)
    probabilities, kind = as_probabilities(outputs)
    predicted = probabilities.argmax(axis=1)
    cm = metrics.confusion_matrix(labels, predicted, CLASSES)
    normalized = metrics.normalize_confusion_matrix(cm)
    per_digit = metrics.per_class_error_rate(labels, predicted, CLASSES)
    wrong = metrics.misclassified_indices(labels, predicted)[: config.first_errors]
    confidence = probabilities.max(axis=1)
    first = [metrics.ConfidentError(int(i), int(labels[i]), int(predicted[i]), float(confidence[i])) for i in wrong]
    reliability = metrics.reliability_diagram_data(labels, probabilities, config.calibration_bins)
    ece = metrics.expected_calibration_error(labels, probabilities, config.calibration_bins)
    bins = [
        ReliabilityBin(
            low=round(float(reliability.bin_edges[m]), 6),
            high=round(float(reliability.bin_edges[m + 1]), 6),
            count=int(reliability.count[m]),
            confidence=_round(reliability.confidence[m]),
            accuracy=_round(reliability.accuracy[m]),
        )
        for m in range(config.calibration_bins)
    ]
    overfitting = None
    if history:
        gap = metrics.overfitting_gap(history)
        overfitting = OverfittingSignal(**{k: _finite(v) if isinstance(v, float) else v for k, v in vars(gap).items()})
    return ErrorAnalysis(
        n=int(len(labels)),
        errors=int((predicted != labels).sum()),
        confusion=cm.tolist(),
        confusion_normalized=[[_round(v) for v in row] for row in normalized],
        per_digit_error=[_round(v) for v in per_digit],
        per_digit_count=cm.sum(axis=1).astype(int).tolist(),
        most_confused=[
            ConfusedPair(true=t, predicted=p, count=c)
            for t, p, c in metrics.most_confused_pairs(cm, config.confused_pairs)
        ],
        first_errors=_gallery(first),
        confident_errors=_gallery(metrics.most_confident_errors(labels, probabilities, config.confident_errors)),
        calibration=Calibration(ece=round(ece.ece, 6), n_bins=ece.n_bins, binning=ece.binning, bins=bins, outputs=kind),
        overfitting=overfitting,
    )


def _round(value, digits: int = 6) -> float | None:
    value = float(value)
    return None if not math.isfinite(value) else round(value, digits)


# --------------------------------------------------------------------------- robustness


def robustness(
    labels: np.ndarray, predictions: Predictions, built: BuiltSuite, reference: Robustness | None = None
) -> Robustness | None:
    """Accuracy on every perturbed set, MNIST-C summary (mCE, and CE relative to ``reference``), the
    severity curves (severity 0: clean accuracy on the same first images). None when the predictions
    file has no suite predictions or they were made on another suite (checksum)."""
    if not predictions.suite or predictions.suite_checksum != built.checksum:
        return None
    labels = np.asarray(labels, dtype=np.int64)
    clean_predicted = np.asarray(predictions.probabilities).argmax(axis=1)
    usable_reference = reference if reference is not None and reference.suite_checksum == built.checksum else None
    reference_accuracy = {e.name: e.accuracy for e in usable_reference.entries} if usable_reference else {}
    entries: list[RobustnessEntry] = []
    mnist_c_errors: dict[str, float] = {}
    reference_errors: dict[str, float] = {}
    for item in built:
        entry = item.entry
        predicted, confidence = predictions.suite[item.name]
        truth = labels[item.indices]
        accuracy = metrics.accuracy(truth, predicted)
        entries.append(
            RobustnessEntry(
                name=item.name,
                group=entry.group,
                perturbation=entry.perturbation,
                family=entry.family,
                severity=entry.severity,
                n=int(len(truth)),
                accuracy=round(accuracy, 6),
                mean_confidence=_round(confidence.mean()) if len(confidence) else None,
            )
        )
        if entry.group == "mnist_c":
            mnist_c_errors[item.name] = 1.0 - accuracy
            if item.name in reference_accuracy:
                reference_errors[item.name] = 1.0 - reference_accuracy[item.name]
    summary = None
    if mnist_c_errors:
        complete = usable_reference is not None and set(reference_errors) == set(mnist_c_errors)
        summary = metrics.mean_corruption_error(mnist_c_errors, reference_errors if complete else None)
        if summary.relative:
            entries = [
                e.model_copy(update={"relative_error": _round(summary.relative[e.name])})
                if e.name in summary.relative
                else e
                for e in entries
            ]
    by_name = {e.name: e for e in entries}

    def assignment(perturbation: str) -> float | None:
        found = [e for e in entries if e.group == "assignment" and e.perturbation == perturbation]
        return found[0].accuracy if found else None

    curves = []
    for family, members in built.suite.sweeps().items():
        n = min(members[0].n_images(len(labels)), len(labels))
        clean = metrics.accuracy(labels[:n], clean_predicted[:n])
        curves.append(
            SeverityCurve(
                family=family,
                severities=[0.0] + [float(m.severity) for m in members],
                accuracies=[round(clean, 6)] + [by_name[m.name].accuracy for m in members],
                n=int(n),
            )
        )
    return Robustness(
        suite_checksum=built.checksum,
        suite_sha256=built.suite.sha256,
        clean_accuracy=round(metrics.accuracy(labels, clean_predicted), 6),
        noise_accuracy=assignment("gaussian_noise"),
        rotation_accuracy=assignment("random_rotation"),
        mnist_c_accuracy=_round(1.0 - summary.mean_error) if summary else None,
        mean_corruption_error=_round(summary.mean_error) if summary else None,
        relative_mce=_round(summary.relative_mce) if summary and summary.relative_mce is not None else None,
        entries=entries,
        curves=curves,
        images=int(sum(len(p) for p, _ in predictions.suite.values())),
        predict_seconds=None if predictions.suite_seconds is None else round(predictions.suite_seconds, 3),
    )


# --------------------------------------------------------------------------- significance


def mcnemar(
    labels: np.ndarray,
    reference_outputs: np.ndarray,
    model_outputs: np.ndarray,
    alpha: float,
    against: str = "reference",
) -> McNemarTest:
    """Exact McNemar test of the model against the reference on the same test images.

    >>> y = np.zeros(10, int)
    >>> test = mcnemar(y, np.eye(10)[[0] + [1] * 9], np.eye(10)[[1] + [0] * 9], alpha=0.05)
    >>> test.b, test.c, test.p_value, test.significant
    (1, 9, 0.021484375, True)
    """
    result = metrics.mcnemar_exact(labels, np.asarray(reference_outputs), np.asarray(model_outputs))
    return McNemarTest(
        against=against,
        n=result.n,
        b=result.b,
        c=result.c,
        p_value=result.p_value,
        gain=round(result.gain, 6),
        alpha=alpha,
        significant=result.p_value < alpha,
    )


def seed_gains(
    model_runs: Sequence[SeedRun], reference_runs: Sequence[SeedRun], confidence: float
) -> GainInterval | None:
    """Mean, standard deviation and Student-t interval of the per-seed gains (seeds run by both, ok).

    >>> runs = lambda accs: [SeedRun(seed=i, status="ok", test_accuracy=a) for i, a in enumerate(accs)]
    >>> ci = seed_gains(runs([0.91, 0.92, 0.93]), runs([0.90, 0.90, 0.90]), 0.95)
    >>> round(ci.mean, 4), round(ci.low, 4), round(ci.high, 4)
    (0.02, -0.0048, 0.0448)
    """
    reference = {r.seed: r.test_accuracy for r in reference_runs if r.status == "ok" and r.test_accuracy is not None}
    pairs = [
        (r.seed, r.test_accuracy - reference[r.seed])
        for r in model_runs
        if r.status == "ok" and r.test_accuracy is not None and r.seed in reference
    ]
    if len(pairs) < 2:
        return None
    interval = metrics.gain_confidence_interval([g for _, g in pairs], confidence)
    return GainInterval(
        seeds=[s for s, _ in pairs],
        gains=[round(g, 6) for _, g in pairs],
        mean=round(interval.mean, 6),
        std=_round(interval.std) if interval.std is not None else None,
        low=_round(interval.low) if interval.low is not None else None,
        high=_round(interval.high) if interval.high is not None else None,
        confidence=confidence,
    )


# --------------------------------------------------------------------------- integrity


def _best_validation(model: ModelResult) -> float | None:
    """The best epoch's validation accuracy (with restore_best_weights the kept weights are that
    epoch's; the last epoch's would flag honest early-stopped models)."""
    values = [v for v in model.history.get("val_accuracy", []) if v is not None and math.isfinite(v)]
    return max(values) if values else model.val_accuracy


def _split_shift(reference: ModelResult | None) -> float:
    """How much easier the test set is than the validation split for the reference trained under the same
    protocol (its test accuracy above its best validation accuracy; 0 when not above): every model shares
    that difference of the two sets, so it is no sign of a model that knows the test set. On the full
    protocol the reference itself is 0.25 point above (MNIST's test digits are the more carefully written)."""
    if reference is None or reference.test_accuracy is None:
        return 0.0
    validation = _best_validation(reference)
    if validation is None or not 0 <= validation <= 1:
        return 0.0
    return max(0.0, reference.test_accuracy - validation)


def integrity_flags(
    model: ModelResult, reference: ModelResult | None, n_val: int, n_test: int, settings: IntegritySettings, t
) -> list[IntegrityFlag]:
    """Signals for the instructor (never a penalty): see ``reference/analysis.toml``.

    * ``test_above_validation``: test accuracy above the best validation accuracy by more than
      ``max(min_tolerance, z * SE)`` plus the reference's own test-above-validation difference
      (:func:`_split_shift`), SE the standard error of the difference of two independent
      accuracy estimates on n_val and n_test images; or above the MNIST ceiling
      (:func:`harness.analysis.metrics.implausible_test_accuracy`).
    * ``capacity`` (plausibility): a model with at most ``max_params_ratio`` of the reference's
      parameters, or trained for at most ``max_epochs_ratio`` of its epochs, that beats the reference
      by more than ``max(min_gain, z * sqrt(2 p (1 - p) / n_test))``, once the reference has learned
      (``min_reference_accuracy``).
    """
    flags: list[IntegrityFlag] = []
    test = model.test_accuracy
    if test is None:
        return flags
    validation = _best_validation(model)
    if validation is not None and 0 <= validation <= 1 and n_val > 0 and n_test > 0:
        v = validation
        tolerance = max(settings.min_tolerance, settings.z * math.sqrt(v * (1 - v) / n_val + v * (1 - v) / n_test))
        tolerance += _split_shift(reference) if model.role != "reference" else 0.0
        signal = metrics.implausible_test_accuracy(test, validation, tolerance, settings.ceiling)
        if signal.flagged:
            if test - validation > tolerance:
                message = Message(
                    key="flag_test_above_validation",
                    values={
                        "test": f"{100 * test:.2f}",
                        "val": f"{100 * validation:.2f}",
                        "excess": f"{100 * (test - validation):.2f}",
                        "tolerance": f"{100 * tolerance:.2f}",
                    },
                )
            else:
                message = Message(
                    key="flag_ceiling", values={"test": f"{100 * test:.2f}", "ceiling": f"{100 * settings.ceiling:.1f}"}
                )
            flags.append(IntegrityFlag(rule="test_above_validation", reason=t.render(message), message=message))
    learned = reference is not None and (reference.test_accuracy or 0.0) >= settings.capacity_min_reference
    if learned and model.role != "reference":  # an unconverged reference is outrun by any fast learner
        p = reference.test_accuracy
        margin = max(settings.min_gain, settings.capacity_z * math.sqrt(2 * p * (1 - p) / max(1, n_test)))
        small = bool(model.params and reference.params and model.params <= settings.max_params_ratio * reference.params)
        short = bool(
            model.epochs_run
            and reference.epochs_run
            and model.epochs_run < reference.epochs_run
            and model.epochs_run <= settings.max_epochs_ratio * reference.epochs_run
        )
        if (small or short) and test - p > margin:
            why = []
            if small:
                why.append(
                    Message(
                        key="flag_capacity_params",
                        values={
                            "params": f"{model.params:,}".replace(",", " "),
                            "reference": f"{reference.params:,}".replace(",", " "),
                        },
                    )
                )
            if short:
                why.append(
                    Message(
                        key="flag_capacity_epochs",
                        values={"epochs": model.epochs_run, "reference": reference.epochs_run},
                    )
                )
            message = Message(
                key="flag_capacity",
                values={
                    "why": why,
                    "test": f"{100 * test:.2f}",
                    "ref": f"{100 * p:.2f}",
                    "gain": f"{100 * (test - p):.2f}",
                    "margin": f"{100 * margin:.2f}",
                },
            )
            flags.append(IntegrityFlag(rule="capacity", reason=t.render(message), message=message))
    return flags


# --------------------------------------------------------------------------- invariance probes


def invariance(
    labels: np.ndarray, probabilities: np.ndarray, probes: Mapping[str, np.ndarray], indices: np.ndarray | None = None
) -> list[ProbeResult]:
    """The model's accuracy under each invariance probe, against its clean accuracy on the same images
    (the test positions `indices`, default all)."""
    if indices is not None:
        labels, probabilities = labels[indices], probabilities[indices]
    right = np.argmax(probabilities, axis=1) == labels
    results = []
    for name, predicted in probes.items():
        probe_right = predicted == labels
        results.append(
            ProbeResult(
                probe=name,
                accuracy=float(probe_right.mean()),
                lost=int(np.sum(right & ~probe_right)),
                gained=int(np.sum(~right & probe_right)),
                drop=float(right.mean() - probe_right.mean()),
            )
        )
    return results


def invariance_flags(probes: Sequence[ProbeResult], n: int, settings: IntegritySettings, t) -> list[IntegrityFlag]:
    """A flag for each probe whose accuracy falls beyond noise (``[integrity.invariance]``)."""
    flags = []
    for probe in probes:
        margin = max(settings.invariance_min_drop, settings.invariance_z * math.sqrt(probe.lost + probe.gained) / n)
        if probe.drop > margin:
            message = Message(
                key="flag_invariance",
                values={
                    "probe": [Message(key=f"probe_{probe.probe}")],
                    "drop": f"{100 * probe.drop:.2f}",
                    "lost": probe.lost,
                    "n": n,
                    "margin": f"{100 * margin:.2f}",
                },
            )
            flags.append(IntegrityFlag(rule="invariance", reason=t.render(message), message=message))
    return flags


# --------------------------------------------------------------------------- the private check set


def private_check(labels: np.ndarray, probabilities: np.ndarray, predictions: Predictions) -> PrivateCheck:
    """The model on the private check set against the same test images as published, and how often
    the rewriting changes its answer there and on its control (validation images rewritten alike)."""
    indices = predictions.private_indices
    published = np.argmax(probabilities[indices], axis=1)
    control, rewritten = predictions.control_predicted, predictions.control_private_predicted
    has_control = control is not None and rewritten is not None and len(control) > 0
    return PrivateCheck(
        n=len(indices),
        public_accuracy=float(np.mean(published == labels[indices])),
        private_accuracy=float(np.mean(predictions.private_predicted == labels[indices])),
        changed=float(np.mean(published != predictions.private_predicted)),
        control_n=len(control) if has_control else 0,
        control_changed=float(np.mean(control != rewritten)) if has_control else None,
    )


def private_set_flags(check: PrivateCheck | None, settings: IntegritySettings, t) -> list[IntegrityFlag]:
    """A flag when the rewriting changes the model's answer on test images more often than on its
    control beyond noise (``[integrity.private_set]``): what it knows of the public images does not
    carry over to new ones, though it reads digits rewritten alike as steadily as it reads the rest."""
    if check is None or check.control_changed is None or check.n == 0:
        return []
    test, control = check.changed, check.control_changed
    noise = settings.private_z * math.sqrt(test * (1 - test) / check.n + control * (1 - control) / check.control_n)
    margin = max(settings.private_min_excess, noise)
    if test - control <= margin:
        return []
    message = Message(
        key="flag_private_set",
        values={
            "public": f"{100 * check.public_accuracy:.2f}",
            "private": f"{100 * check.private_accuracy:.2f}",
            "n": check.n,
            "changed": f"{100 * test:.1f}",
            "control": f"{100 * control:.1f}",
            "margin": f"{100 * margin:.1f}",
        },
    )
    return [IntegrityFlag(rule="private_set", reason=t.render(message), message=message)]


# --------------------------------------------------------------------------- measurement


def _accuracies(history: dict[str, list[float]]) -> tuple[list[float], list[float]] | None:
    """(training, validation) accuracy per epoch, where the history has both for every epoch; else None."""
    train, val = history.get("accuracy") or [], history.get("val_accuracy") or []
    return (train, val) if train and len(val) == len(train) else None


def _collapsed(history: dict[str, list[float]], settings: MeasurementSettings) -> tuple[float, float] | None:
    """(training, validation) accuracy at the last epoch when the collapse signature holds at the first
    epoch and at the last (see ``reference/analysis.toml``), else None."""
    curves = _accuracies(history)
    if curves is None:
        return None
    train, val = curves
    for epoch in {0, len(train) - 1}:
        if not (
            train[epoch] >= settings.collapse_min_train_accuracy
            and train[epoch] - val[epoch] >= settings.collapse_min_gap
        ):
            return None
    return train[-1], val[-1]


def _behind(model: ModelResult) -> tuple[float, float] | None:
    """(training, validation) accuracy at the last epoch of a model that trained it to the end, else None."""
    curves = _accuracies(model.history)
    if curves is None or model.stopped_by_budget:
        return None
    return curves[0][-1], curves[1][-1]


def still_learning(model: ModelResult, reference: ModelResult | None, settings: MeasurementSettings):
    """(model's training, validation; reference's training, validation accuracy) at the last epoch when the
    model's training accuracy stayed further below its validation accuracy than the reference's did, by more
    than ``still_learning_min_excess``; None otherwise.

    Keras's training accuracy is the epoch's running average, with Dropout and augmentation on: far below
    the validation accuracy, it says the model spent the epoch far from where it ended and is strongly
    regularised — what gains most from the full protocol's further epochs (docs/fidelity.md measures it:
    the gap and the distance to the full protocol's accuracy rank the models alike). Stopped further from
    convergence than the reference, the model is underrated against it on a short profile.
    """
    mine, theirs = _behind(model), _behind(reference) if reference is not None else None
    if mine is None or theirs is None:
        return None
    if (mine[1] - mine[0]) - (theirs[1] - theirs[0]) <= settings.still_learning_min_excess:
        return None
    return (*mine, *theirs)


def measurement_note(
    model: ModelResult, settings: MeasurementSettings, profile: Profile, t, reference: ModelResult | None = None
):
    """Whether `profile` measured `model` faithfully (None: nothing to say).

    ``collapse``: the collapse signature, which makes the model not measurable where the profile's
    policy says so (``collapse = "not_measurable"``); ``still_learning``: the profile stopped the model much
    further from convergence than the `reference` (the profile's ``still_learning`` says what follows);
    ``batchnorm_statistics``: the statistics were re-estimated and Keras's own would have measured the
    model far lower (measurable, said).
    """
    collapsed = _collapsed(model.history, settings)
    if collapsed is not None:
        measurable = profile.collapse == "measured"
        message = Message(
            key="measure_collapse_measured" if measurable else "measure_collapse",
            values={"train": f"{100 * collapsed[0]:.1f}", "val": f"{100 * collapsed[1]:.1f}", "profile": profile.name},
        )
        return MeasurementNote(rule="collapse", measurable=measurable, reason=t.render(message), message=message)
    rising = still_learning(model, reference, settings) if profile.still_learning != "off" else None
    if rising is not None:
        measurable = profile.still_learning == "said"
        train, val, ref_train, ref_val = rising
        values = {"train": f"{100 * train:.1f}", "val": f"{100 * val:.1f}", "gap": f"{100 * (val - train):.1f}"}
        values |= {"ref_train": f"{100 * ref_train:.1f}", "ref_val": f"{100 * ref_val:.1f}"}
        values["ref_gap"] = f"{100 * (ref_val - ref_train):.1f}"
        message = Message(
            key="measure_still_learning_said" if measurable else "measure_still_learning",
            values={**values, "profile": profile.name},
        )
        return MeasurementNote(rule="still_learning", measurable=measurable, reason=t.render(message), message=message)
    stats = model.batchnorm
    if (
        stats is not None
        and stats.recalibrated
        and stats.val_accuracy_moving is not None
        and stats.val_accuracy_recalibrated is not None
        and stats.val_accuracy_recalibrated - stats.val_accuracy_moving > settings.batchnorm_min_shift
    ):
        message = Message(
            key="measure_batchnorm",
            values={
                "moving": f"{100 * stats.val_accuracy_moving:.1f}",
                "recalibrated": f"{100 * stats.val_accuracy_recalibrated:.1f}",
                "images": stats.images,
                "profile": profile.name,
            },
        )
        return MeasurementNote(rule="batchnorm_statistics", measurable=True, reason=t.render(message), message=message)
    return None


# --------------------------------------------------------------------------- the verdict


def _p(value: float) -> str:
    """'= 0.031', '= 0.0042' or '< 0.0001' (the sentence writes 'p {p}')."""
    return "< 0.0001" if value < 1e-4 else f"= {value:.2g}" if value < 0.01 else f"= {value:.3f}"


def verdict(models: Sequence[ModelResult], reference: ModelResult | None, t) -> AnalysisSummary:
    """Whether the best improved model beats the reference beyond noise, as data and as a sentence.

    ``beats``: gain > 0 and the exact McNemar test is significant and, with several seeds, the
    confidence interval of the mean gain lies above 0; ``worse``: the same, below 0; otherwise
    ``not_significant``; ``no_model``: no improved model was trained and evaluated.
    """
    flagged = [m.name for m in models if m.integrity]
    trained = [m for m in models if m.role == "improved" and m.test_accuracy is not None and m.measurable]
    best = max(trained, key=lambda m: m.test_accuracy, default=None)
    test = best.significance.mcnemar if best and best.significance else None
    if best is None or reference is None or reference.test_accuracy is None or test is None:
        unmeasurable = [m.name for m in models if m.role == "improved" and not m.measurable]
        return AnalysisSummary(
            verdict="no_model",
            verdict_text=t("verdict_not_measurable", models=", ".join(unmeasurable))
            if best is None and unmeasurable
            else t("verdict_no_model"),
            flagged=flagged,
            best_model=best.name if best else None,
        )
    seeds = best.significance.seeds
    if test.gain > 0 and test.significant and (seeds is None or seeds.low is None or seeds.low > 0):
        code = "beats"
    elif test.gain < 0 and test.significant and (seeds is None or seeds.high is None or seeds.high < 0):
        code = "worse"
    else:
        code = "not_significant"
    seeds_text = ""
    if seeds is not None and seeds.low is not None:
        seeds_text = t(
            "verdict_seeds",
            k=len(seeds.seeds),
            mean=100 * seeds.mean,  # numbers: the template writes them in the report's language
            std=100 * (seeds.std or 0),
            confidence=100 * seeds.confidence,
            low=100 * seeds.low,
            high=100 * seeds.high,
        )
    text = t(
        f"verdict_{code}",
        model=best.name,
        acc=best.test_accuracy,
        ref=reference.test_accuracy,
        gain=100 * test.gain,
        n=test.n,
        p=t.localise(_p(test.p_value)),
        b=test.b,
        c=test.c,
        seeds=seeds_text,
    )
    return AnalysisSummary(
        best_model=best.name,
        verdict=code,
        verdict_text=text,
        gain=test.gain,
        p_value=test.p_value,
        ci_low=seeds.low if seeds else None,
        ci_high=seeds.high if seeds else None,
        flagged=flagged,
    )


# --------------------------------------------------------------------------- one submission, from files


def analyze_model(
    model: ModelResult,
    models_dir: Path,
    labels: np.ndarray,
    built: BuiltSuite | None,
    config: AnalysisConfig,
    reference: ModelResult | None = None,
    reference_outputs: np.ndarray | None = None,
    n_val: int = 0,
    t=None,
    profile: Profile | None = None,
) -> ModelResult:
    """``model`` with its error analysis, robustness, significance, integrity flags and, given the
    `profile`, whether it measured the model faithfully (unchanged when it has no predictions)."""
    if model.status != "ok" or not model.predictions_file or not (models_dir / model.predictions_file).exists():
        return model
    predictions = load_predictions(models_dir / model.predictions_file)
    update: dict[str, Any] = {
        "error_analysis": error_analysis(labels, predictions.probabilities, model.history, config)
    }
    if built is not None:
        update["robustness"] = robustness(
            labels, predictions, built, reference.robustness if reference is not None else None
        )
    if reference is not None and reference_outputs is not None and model.role != "reference":
        update["significance"] = Significance(
            mcnemar=mcnemar(labels, reference_outputs, predictions.probabilities, config.alpha),
            seeds=seed_gains(model.seed_runs, reference.seed_runs, config.confidence),
        )
    if predictions.probes:
        update["invariance"] = invariance(
            labels, predictions.probabilities, predictions.probes, predictions.probe_indices
        )
    if predictions.private_predicted is not None:
        update["private_set"] = private_check(labels, predictions.probabilities, predictions)
    analysed = model.model_copy(update=update)
    if t is not None and model.role != "reference":
        probed = len(labels) if predictions.probe_indices is None else len(predictions.probe_indices)
        flags = integrity_flags(analysed, reference, n_val, len(labels), config.integrity, t)
        flags += invariance_flags(analysed.invariance, probed, config.integrity, t)
        flags += private_set_flags(analysed.private_set, config.integrity, t)
        analysed = analysed.model_copy(update={"integrity": flags})
    if t is not None and profile is not None:
        note = measurement_note(analysed, config.measurement, profile, t, reference)
        analysed = analysed.model_copy(update={"measurement": note})
    return analysed


def analyze_reference(
    reference: ModelResult, models_dir: Path, labels: np.ndarray, built: BuiltSuite | None, config: AnalysisConfig
) -> ModelResult:
    """The reference's own analysis; its corruption errors are the denominators of everyone's CE (its
    own relative CE is 1 by definition)."""
    analysed = analyze_model(reference, models_dir, labels, built, config)
    if built is not None and analysed.robustness is not None:
        predictions = load_predictions(models_dir / reference.predictions_file)
        analysed = analysed.model_copy(
            update={"robustness": robustness(labels, predictions, built, analysed.robustness)}
        )
    return analysed


def analyze_models(
    models: Sequence[ModelResult],
    models_dir: Path,
    labels: np.ndarray,
    built: BuiltSuite | None,
    config: AnalysisConfig,
    reference: ModelResult | None,
    reference_dir: Path | None,
    n_val: int,
    t,
    profile: Profile | None = None,
) -> tuple[list[ModelResult], AnalysisSummary]:
    """Every model of a submission analysed against the reference, and the submission's verdict."""
    reference_outputs = None
    if reference is not None and reference_dir is not None and reference.predictions_file:
        path = reference_dir / reference.predictions_file
        if path.exists():
            reference_outputs = load_predictions(path).probabilities
    analysed = [
        analyze_model(m, models_dir, labels, built, config, reference, reference_outputs, n_val, t, profile)
        for m in models
    ]
    return analysed, verdict(analysed, reference, t)


def gallery_indices(models: Sequence[ModelResult]) -> list[int]:
    """Sorted test indices of every image in the models' galleries (first and most confident errors)."""
    found: set[int] = set()
    for model in models:
        if model.error_analysis is not None:
            found.update(i.index for i in model.error_analysis.first_errors + model.error_analysis.confident_errors)
    return sorted(found)


def write_gallery(path: Path, models: Sequence[ModelResult], x_test: np.ndarray) -> Path | None:
    """The galleries' test images (uint8 28x28, a few KB), so that ``harness report`` can draw them
    without the data file: ``indices`` and ``images``."""
    indices = gallery_indices(models)
    if not indices:
        return None
    images = np.asarray(x_test)[indices]
    if images.dtype != np.uint8:
        images = _to_uint8(images)
    path.parent.mkdir(parents=True, exist_ok=True)
    savez_atomic(path, compressed=True, indices=np.asarray(indices, dtype=np.int64), images=images.reshape(-1, 28, 28))
    return path


def read_gallery(path: Path) -> dict[int, np.ndarray]:
    """{test index: uint8 image} from a gallery file; empty when it is missing."""
    if not Path(path).exists():
        return {}
    with np.load(path, allow_pickle=False) as npz:
        return {int(i): image for i, image in zip(npz["indices"], npz["images"])}


def seed_run(model: ModelResult, seed: int) -> SeedRun:
    """The run of ``model`` with ``seed`` as a :class:`SeedRun`: its status, accuracies and training time."""
    return SeedRun(
        seed=seed,
        status=model.status,
        test_accuracy=model.test_accuracy,
        val_accuracy=model.val_accuracy,
        train_seconds=model.train_seconds,
    )

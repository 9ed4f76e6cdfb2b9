"""Evaluate stage: predictions by a fresh worker that never imports student code, metrics by the harness.

The saved ``.keras`` files are loaded with Keras safe mode in a new sandboxed worker that can
read the models, the test images and the robustness suite's perturbed sets (built beforehand by the
grading process, read-only) and nothing else. It writes one ``<name>.predictions.npz`` per model:
the clean test set's probabilities and the predicted digit on every perturbed image
(format in ``harness/analysis.py``). A model that cannot be loaded that way
(custom layers, ``Lambda``) is loaded again in a worker that imports the student's module,
and is marked ``evaluated_with_student_code``. Accuracy is computed here, from the stored
predictions, never taken from the student's metrics.

>>> models = evaluate_models(models, job, scratch, models_dir, x_test_labels)  # doctest: +SKIP
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from harness.perturbations import BuiltSuite
from harness.results import ModelResult
from harness.runner import run_job
from harness.train import TrainingJob

EVALUATION_TIMEOUT_S = 600.0
EVALUATION_TIMEOUT_PER_MODEL_S = 120.0  # the robustness suite: ~100,000 images per model


def _no_deadline_but(limit: float):
    return lambda events, elapsed: (f"evaluation took more than {limit:.0f} s" if elapsed > limit else None)


def _predict(models: list[ModelResult], job: TrainingJob, scratch: Path, models_dir: Path,
             test_data: Path, module_path: Path | None, suite: BuiltSuite | None = None) -> dict[str, dict]:
    """Run one evaluation worker; returns {name: failure event} for models it could not predict."""
    from harness.analysis import suite_job

    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    readable = [test_data] + [models_dir / m.model_file for m in models]
    if module_path is not None:
        readable.append(module_path)
    if suite is not None:
        readable.append(suite.directory)  # read-only; the training worker never gets it
    outcome = run_job(
        {"mode": "evaluate", "seed": job.seed, "data": str(test_data), "out_dir": str(scratch),
         "module_path": str(module_path) if module_path else None,
         "suite": suite_job(suite) if suite is not None else None,
         "models": [{"name": m.name, "model_file": str(models_dir / m.model_file)} for m in models]},
        scratch, readable=readable, threads=job.threads,
        watch=_no_deadline_but(EVALUATION_TIMEOUT_S + EVALUATION_TIMEOUT_PER_MODEL_S * len(models)),
        limits=job.limits, use_bubblewrap=job.use_bubblewrap)
    failures = {e["name"]: e for e in outcome.events if e["event"] == "evaluate_failed"}
    for model in models:
        produced = scratch / f"{model.name}.predictions.npz"
        if produced.exists():
            shutil.move(str(produced), models_dir / produced.name)
        elif model.name not in failures:
            failures[model.name] = {"reason": outcome.stopped_because or
                                    f"the evaluation worker ended early ({outcome.signal_name or outcome.returncode})",
                                    "traceback": outcome.log_tail[-3000:]}
    return failures


def accuracy_and_errors(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Accuracy and error count of predicted probabilities against integer labels."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    errors = int(np.sum(predicted != labels))
    return 1.0 - errors / len(labels), errors


def evaluate_models(models: list[ModelResult], job: TrainingJob, scratch: Path, models_dir: Path,
                    test_data: Path, labels: np.ndarray, module_path: Path | None = None,
                    suite: BuiltSuite | None = None) -> list[ModelResult]:
    """Models with `test_accuracy`, `test_errors` and `predictions_file` filled in; with `suite`,
    the predictions file also holds the predictions on every perturbed set."""
    trained = [m for m in models if m.status == "ok" and m.model_file]
    failures = _predict(trained, job, scratch / "safe", models_dir, test_data, None, suite) if trained else {}
    needs_student_code = [m for m in trained if m.name in failures]
    if needs_student_code and module_path is not None:
        second = _predict(needs_student_code, job, scratch / "with-student-code", models_dir, test_data, module_path,
                          suite)
        rescued = {m.name for m in needs_student_code if m.name not in second}
        failures = {**{k: v for k, v in failures.items() if k not in rescued}, **second}
    else:
        rescued = set()
    updated = []
    for model in models:
        if model in trained and model.name in failures:
            failure = failures[model.name]
            model = model.model_copy(update={
                "status": "error", "traceback": failure.get("traceback"),
                "reason": f"the trained model could not be evaluated: {failure.get('reason')}"})
        elif model in trained:
            predictions_file = f"{model.name}.predictions.npz"
            with np.load(models_dir / predictions_file, allow_pickle=False) as npz:
                accuracy, errors = accuracy_and_errors(npz["probabilities"], labels)
            model = model.model_copy(update={
                "test_accuracy": accuracy, "test_errors": errors, "predictions_file": predictions_file,
                "evaluated_with_student_code": model.name in rescued,
                "val_accuracy": (model.history.get("val_accuracy") or [None])[-1]})
        updated.append(model)
    return updated

"""Evaluate stage: predictions by a fresh worker that never imports student code, metrics by the harness.

The saved ``.keras`` files are loaded with Keras safe mode in a new sandboxed worker that can
read the submission's models folder, the test images and the robustness suite's perturbed sets
(built beforehand by the grading process, read-only) and nothing else; it is started while the
models train (:class:`EvaluationWorker`), so that its TensorFlow start costs no wall time. It
writes one ``<name>.predictions.npz`` per model: the clean test set's probabilities and the
predicted digit on every perturbed image (format in ``harness.analysis.analyse``). A model that cannot
be loaded that way (custom layers, ``Lambda``) is loaded again in a worker that imports the
student's module, and is marked ``evaluated_with_student_code``. Accuracy is computed here, from the stored
predictions, never taken from the student's metrics.

>>> models = evaluate_models(models, job, scratch, models_dir, x_test_labels)  # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from harness.analysis.analyse import suite_job
from harness.analysis.perturbations import BuiltSuite
from harness.results import ModelResult
from harness.training.ahead import StartedAhead
from harness.training.train import TrainingJob

EVALUATION_TIMEOUT_S = 600.0
EVALUATION_TIMEOUT_PER_MODEL_S = 120.0  # the robustness suite: ~100,000 images per model
WAIT_SLACK_S = 600.0  # beyond the training's own budget, for a worker started early
WORKER = "harness.workers.evaluate"


class EvaluationWorker(StartedAhead):
    """One evaluation worker, started before the models it will predict exist.

    It starts TensorFlow and reads the test images and the robustness suite while the training
    worker trains (TensorFlow's start alone takes ~4.5 s on 2 cores), then waits for
    ``go.json``, which :meth:`predict` writes once the models are saved. It can read the whole
    models folder of the submission (its saved models appear there when training ends), the test
    images and the suite, read-only, and imports student code only when ``module_path`` is given.

    >>> worker = EvaluationWorker(job, scratch, models_dir, test_data, suite)   # doctest: +SKIP
    >>> failures = worker.predict(trained_models)                               # doctest: +SKIP
    """

    def __init__(
        self,
        job: TrainingJob,
        scratch: Path,
        models_dir: Path,
        test_data: Path,
        suite: BuiltSuite | None = None,
        module_path: Path | None = None,
    ) -> None:
        models_dir.mkdir(parents=True, exist_ok=True)
        self.models_dir = models_dir
        self.wait_limit = job.profile.submission_budget_s + WAIT_SLACK_S
        self.limit: float | None = None
        self.sent_at: float | None = None
        readable = [test_data, models_dir] + ([module_path] if module_path is not None else [])
        if suite is not None:
            readable.append(suite.directory)  # read-only; the training worker never gets it
        worker_job = {
            "mode": "evaluate",
            "seed": job.seed,
            "probe_seed": job.seed,  # the same probe images for every model of the run, the reference's too
            "data": str(test_data),
            "out_dir": str(scratch),
            "module_path": str(module_path) if module_path else None,
            "models_dir": str(models_dir),
            "suite": suite_job(suite) if suite is not None else None,
            "wait_s": self.wait_limit,
        }
        super().__init__(
            worker_job,
            scratch,
            worker=WORKER,
            readable=readable,
            threads=job.threads,
            limits=job.limits,
            use_bubblewrap=job.use_bubblewrap,
        )

    def _watch(self, events: list[dict], elapsed: float) -> str | None:
        if self.sent_at is None:
            return (
                f"the evaluation worker waited more than {self.wait_limit:.0f} s for its models"
                if elapsed > self.wait_limit
                else None
            )
        if time.monotonic() - self.sent_at > self.limit:
            return f"evaluation took more than {self.limit:.0f} s"
        return None

    def predict(self, models: list[ModelResult]) -> dict[str, dict]:
        """Predict `models` (saved in the models folder); returns {name: failure event} for those it could not."""
        self.limit = EVALUATION_TIMEOUT_S + EVALUATION_TIMEOUT_PER_MODEL_S * len(models)
        go = {"models": [{"name": m.name, "model_file": str(self.models_dir / m.model_file)} for m in models]}
        self.sent_at = time.monotonic()
        self.send(go)
        outcome = self.wait()  # a stop of the grader is raised: no model "could not be evaluated"
        events = outcome.events if outcome is not None else []
        failures = {e["name"]: e for e in events if e["event"] == "evaluate_failed"}
        for model in models:
            produced = self.scratch / f"{model.name}.predictions.npz"
            if produced.exists():
                shutil.move(str(produced), self.models_dir / produced.name)
            elif model.name not in failures:
                failures[model.name] = {
                    "reason": (
                        outcome.stopped_because
                        or f"the evaluation worker ended early ({outcome.signal_name or outcome.returncode})"
                    )
                    if outcome is not None
                    else "the evaluation worker could not be started",
                    "traceback": outcome.log_tail[-3000:] if outcome is not None else None,
                }
        return failures

    def cancel(self) -> None:
        """Nothing to predict after all: the worker is told so and ends."""
        if self.sent_at is None:
            self.predict([])


def accuracy_and_errors(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Accuracy and error count of predicted probabilities against integer labels."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    errors = int(np.sum(predicted != labels))
    return 1.0 - errors / len(labels), errors


def evaluate_models(
    models: list[ModelResult],
    job: TrainingJob,
    scratch: Path,
    models_dir: Path,
    test_data: Path,
    labels: np.ndarray,
    module_path: Path | None = None,
    suite: BuiltSuite | None = None,
    early: EvaluationWorker | None = None,
) -> list[ModelResult]:
    """Models with `test_accuracy`, `test_errors` and `predictions_file` filled in; with `suite`,
    the predictions file also holds the predictions on every perturbed set. `early`: a worker
    started beforehand (with ``scratch / "safe"``, the same models folder, test data and suite)."""
    trained = [m for m in models if m.status == "ok" and m.model_file]
    failures: dict[str, dict] = {}
    if trained:
        early = early or EvaluationWorker(job, scratch / "safe", models_dir, test_data, suite)
        failures = early.predict(trained)
    elif early is not None:
        early.cancel()
    needs_student_code = [m for m in trained if m.name in failures]
    if needs_student_code and module_path is not None:
        second = EvaluationWorker(
            job, scratch / "with-student-code", models_dir, test_data, suite, module_path
        ).predict(needs_student_code)
        rescued = {m.name for m in needs_student_code if m.name not in second}
        failures = {**{k: v for k, v in failures.items() if k not in rescued}, **second}
    else:
        rescued = set()
    updated = []
    for model in models:
        if model in trained and model.name in failures:
            failure = failures[model.name]
            model = model.model_copy(
                update={
                    "status": "error",
                    "traceback": failure.get("traceback"),
                    "reason": f"the trained model could not be evaluated: {failure.get('reason')}",
                }
            )
        elif model in trained:
            predictions_file = f"{model.name}.predictions.npz"
            with np.load(models_dir / predictions_file, allow_pickle=False) as npz:
                accuracy, errors = accuracy_and_errors(npz["probabilities"], labels)
            model = model.model_copy(
                update={
                    "test_accuracy": accuracy,
                    "test_errors": errors,
                    "predictions_file": predictions_file,
                    "evaluated_with_student_code": model.name in rescued,
                    "val_accuracy": (model.history.get("val_accuracy") or [None])[-1],
                }
            )
        updated.append(model)
    return updated

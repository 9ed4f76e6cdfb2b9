"""The evaluation worker: predictions of saved models on the test set and the robustness suite.
``python -m harness.workers.evaluate JOB.json``.

It loads saved models with Keras safe mode and writes their predictions on the test images; it
imports no student code unless the job names the student's module (a model that needs it). It is
started while the models train and waits for the list of models to predict (``go_file``), so
that TensorFlow's start overlaps training. The grader (``harness.training.evaluate``) computes
the metrics from what it writes.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

import keras  # noqa: E402  (after the log level is set)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from harness.workers.keras_setup import (  # noqa: E402
    CLASSES,
    INPUT_SHAPE,
    configure_tensorflow,
    failure,
    import_student_module,
    set_limits,
)
from harness.workers.notebook import KEPT_PREPARATION, install_loaders  # noqa: E402
from harness.workers.probes import private_predictions, probe_predictions  # noqa: E402
from harness.workers.protocol import Events, serve, wait_for_go  # noqa: E402

PREDICT_BATCH = 256  # measured on 2 CPU cores: small batches keep a small CNN's activations in cache


def _predictor(model):
    """A compiled forward pass in inference mode (several times faster than ``model.predict`` on
    CPU for the suite's many small sets); ``model.predict`` if the model cannot be traced."""
    try:
        forward = tf.function(
            lambda x: model(x, training=False),
            reduce_retracing=True,
            input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)],
        )
        forward(tf.zeros([1, *INPUT_SHAPE]))
    except Exception:
        return lambda x, batch=None: np.asarray(model.predict(x, batch_size=batch or PREDICT_BATCH, verbose=0))

    def predict(x: np.ndarray, batch: int | None = None) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, CLASSES), "float32")
        size = batch or PREDICT_BATCH
        return np.concatenate([np.asarray(forward(x[i : i + size])) for i in range(0, len(x), size)])

    return predict


def _load_suite_sets(suite: dict | None) -> list[tuple[str, np.ndarray]]:
    """The robustness suite's perturbed sets (uint8), each checked against the sha256 the grading
    process recorded when it built them: every model sees exactly the same images."""
    sets = []
    for entry in (suite or {}).get("entries", []):
        stored = np.load(Path(suite["dir"]) / entry["file"], allow_pickle=False)
        if hashlib.sha256(np.ascontiguousarray(stored).tobytes()).hexdigest() != entry["sha256"]:
            raise RuntimeError(f"robustness set {entry['name']} does not match its checksum")
        sets.append((entry["name"], stored))
    return sets


def _confidence(outputs: np.ndarray) -> np.ndarray:
    """Probability of the predicted digit (softmax first if the outputs are not probabilities)."""
    outputs = outputs.astype("float64")
    if outputs.size and (outputs.min() < -1e-3 or np.abs(outputs.sum(axis=1) - 1).max() > 1e-3):
        outputs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs /= outputs.sum(axis=1, keepdims=True)
    return outputs.max(axis=1)


def prediction_arrays(
    predict,
    x_test: np.ndarray,
    suite: list[tuple[str, np.ndarray]],
    suite_job: dict | None,
    probe_seed: int | None = None,
    checks: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """One model's predictions file, but for the worker's CPU time: the clean test set's
    probabilities, the invariance probes' predicted digits (given their seed; on the test positions
    ``checks["probe_indices"]`` when given), the private check set's (``checks["x_private"]``), then
    (with a suite) the predicted digit and its confidence on every perturbed image, each part timed."""
    checks = checks or {}
    started, cpu = time.perf_counter(), time.process_time()
    probabilities = predict(x_test).astype("float32")
    arrays = {
        "probabilities": probabilities,
        "clean_seconds": np.float64(time.perf_counter() - started),
        "clean_cpu_seconds": np.float64(time.process_time() - cpu),
    }
    if probe_seed is not None:
        started, cpu = time.perf_counter(), time.process_time()
        arrays.update(probe_predictions(predict, x_test, probe_seed, checks.get("probe_indices")))
        arrays["probe_seconds"] = np.float64(time.perf_counter() - started)
        arrays["probe_cpu_seconds"] = np.float64(time.process_time() - cpu)
    if "x_private" in checks:
        started, cpu = time.perf_counter(), time.process_time()
        arrays.update(private_predictions(predict, checks))
        arrays["private_seconds"] = np.float64(time.perf_counter() - started)
        arrays["private_cpu_seconds"] = np.float64(time.process_time() - cpu)
    if suite:
        started, cpu = time.perf_counter(), time.process_time()
        predicted, confidence, offsets = [], [], [0]
        for _, images in suite:
            outputs = predict(images.astype("float32") / np.float32(255.0))
            predicted.append(outputs.argmax(axis=1).astype("uint8"))
            confidence.append(_confidence(outputs).astype("float16"))
            offsets.append(offsets[-1] + len(images))
        arrays.update(
            suite_names=np.array([n for n, _ in suite]),
            suite_offsets=np.array(offsets, "int64"),
            suite_predicted=np.concatenate(predicted),
            suite_confidence=np.concatenate(confidence),
            suite_checksum=np.array(suite_job["checksum"]),
            suite_seconds=np.float64(time.perf_counter() - started),
            suite_cpu_seconds=np.float64(time.process_time() - cpu),
        )
    return arrays


def run_evaluation(job: dict, events: Events) -> None:
    """Predict the clean test set and every robustness set; one ``<name>.predictions.npz`` per model
    (format: ``harness.analysis.analyse``). A model that cannot be loaded or predicted is reported
    (``evaluate_failed``) and the next one still runs."""
    configure_tensorflow(job["threads"], job["seed"])
    custom_objects = None
    if job.get("module_path"):
        if KEPT_PREPARATION in Path(job["module_path"]).read_text(encoding="utf-8"):
            # the data preparation kept for the factories has nothing to read here (its models are
            # trained): every MNIST loader fails at once, never the network, never this worker's test set
            install_loaders(Path(os.devnull))
        module = import_student_module(job["module_path"])
        custom_objects = {k: v for k, v in vars(module).items() if not k.startswith("__")}
    with np.load(job["data"]) as npz:
        x_test = npz["x_test"]
        # the probe's positions and the private check set, when the grading process wrote them
        wanted = ("probe_indices", "x_private", "private_indices", "x_control", "x_control_private")
        checks = {key: npz[key] for key in wanted if key in npz.files}
    suite = _load_suite_sets(job.get("suite"))
    for item in wait_for_go(job, events)["models"]:
        name = item["name"]
        try:
            model = keras.saving.load_model(
                item["model_file"], safe_mode=custom_objects is None, custom_objects=custom_objects, compile=False
            )
            arrays = prediction_arrays(
                _predictor(model), x_test, suite, job.get("suite"), job.get("probe_seed"), checks
            )
            arrays["worker_cpu_seconds"] = np.float64(time.process_time())  # since the worker started
            np.savez_compressed(Path(job["out_dir"]) / f"{name}.predictions.npz", **arrays)
            events.emit(
                "evaluated",
                name=name,
                clean_seconds=float(arrays["clean_seconds"]),
                suite_seconds=float(arrays.get("suite_seconds", 0.0)),
            )
        except BaseException as error:
            events.emit("evaluate_failed", name=name, **failure(error))


def main(argv: list[str]) -> int:
    """Run the evaluation job ``argv[0]``; the process's exit status."""
    return serve(argv, run_evaluation, failure=failure, configure=set_limits)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The worker: the only process that runs student code. ``python -m harness.workers.worker JOB.json``.

Two jobs, each in a fresh process (and, where available, a sandbox):

* ``train``: import the student's extracted module, build each factory under a fixed seed,
  train it under the protocol on the training split it was given (never the test set), save
  it as a ``.keras`` file;
* ``evaluate``: load saved models with Keras safe mode and write their predictions on the test
  images. It imports no student code unless the job says the model needs it. It is started
  while the models train and waits for the list of models to predict (``go_file``).

The worker reports progress as JSON lines in the job's ``events`` file; the parent process
(``harness.training.train``) reads them, enforces the time limits and writes the results.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402  (after the log level is set)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

KNOWN_SETTINGS = {"epochs", "batch_size", "callbacks", "augmentation"}
HARNESS_OWNED_SETTINGS = {"validation_split", "validation_data", "x", "y", "shuffle", "verbose"}
SALIENT_LAYER_KEYS = (
    "filters", "kernel_size", "strides", "padding", "units", "activation", "rate", "pool_size",
    "kernel_regularizer", "factor", "height_factor", "width_factor", "momentum", "axis",
)
INPUT_SHAPE = (28, 28, 1)
CLASSES = 10


class Events:
    """Append-only JSON-lines progress file; one os.write per line so lines never interleave."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": time.time(), **fields}, default=str) + "\n"
        os.write(self.fd, line.encode("utf-8"))


class ModelRejected(Exception):
    """The factory's return value cannot be trained under the protocol."""


def configure_tensorflow(threads: int, seed: int) -> str:
    """Thread pools, op determinism (on GPU too) and seeds; returns the device that will train."""
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)  # several workers can share one GPU
    return f"gpu ({len(gpus)}: {', '.join(g.name for g in gpus)})" if gpus else "cpu"


def import_student_module(path: str):
    spec = importlib.util.spec_from_file_location("student_submission", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["student_submission"] = module
    spec.loader.exec_module(module)
    return module


def describe_model(model) -> dict:
    """Layers (nested models flattened), optimizer, learning rate and loss of a built model."""
    layers = []

    def visit(layer) -> None:
        inner = getattr(layer, "layers", None)
        if inner and layer is not model:
            layers.append({"class_name": type(layer).__name__, "config": {"nested": True}})
        for sub in inner or []:
            visit(sub)
        if not inner:
            config = {}
            try:
                full = layer.get_config()
            except Exception:
                full = {}
            for key in SALIENT_LAYER_KEYS:
                if key in full and full[key] is not None:
                    value = full[key]
                    if isinstance(value, dict) and "class_name" in value:
                        value = {"class_name": value["class_name"], "config": value.get("config", {})}
                    config[key] = value
            layers.append({"class_name": type(layer).__name__, "config": config})

    for layer in model.layers:
        visit(layer)
    optimizer = getattr(model, "optimizer", None)
    learning_rate = None
    if optimizer is not None:
        try:
            learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except Exception:
            learning_rate = None
    loss = getattr(model, "loss", None)
    return {
        "layers": layers,
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
        "learning_rate": learning_rate,
        "loss": loss if isinstance(loss, str) or loss is None else getattr(loss, "name", type(loss).__name__),
    }


def check_and_compile(model, training: dict) -> str:
    """Reject what the protocol cannot train; make sure the model reports accuracy. Returns who compiled it."""
    if not isinstance(model, keras.Model):
        raise ModelRejected(f"the factory returned {type(model).__name__}, not a Keras model "
                            "(did it forget `return model`?)")
    try:
        output = model(np.zeros((2, *INPUT_SHAPE), dtype="float32"), training=False)
    except Exception as error:
        raise ModelRejected(f"the model does not accept images of shape {INPUT_SHAPE} "
                            f"({type(error).__name__}: {str(error).splitlines()[0][:300]})") from error
    shape = tuple(getattr(output, "shape", ()))
    if shape != (2, CLASSES):
        raise ModelRejected(f"the model's output has shape {('batch', *shape[1:])}; the harness expects "
                            f"(batch, {CLASSES}): one probability per digit")
    compiled_by = "student"
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        compiled_by = "harness"
        optimizer, loss = training["optimizer"], training["loss"]
    else:
        optimizer, loss = model.optimizer, model.loss
    # Recompiled with the student's own optimizer and loss so that every history has `accuracy`.
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return compiled_by


def resolve_settings(module, name: str) -> tuple[dict, list[str]]:
    """The student's TRAINING_CONFIG entry for `name`, validated. Returns (settings, ignored keys)."""
    table = getattr(module, "TRAINING_CONFIG", None) or {}
    if not isinstance(table, dict):
        raise ModelRejected("TRAINING_CONFIG must be a dict keyed by factory name")
    entry = table.get(name, table.get(name.removeprefix("create_"), {}))
    if callable(entry):
        entry = entry()
    if not isinstance(entry, dict):
        raise ModelRejected(f"TRAINING_CONFIG[{name!r}] must be a dict or a function returning one")
    settings, ignored = {}, []
    for key, value in entry.items():
        if key not in KNOWN_SETTINGS:
            ignored.append(key if key not in HARNESS_OWNED_SETTINGS else f"{key} (set by the harness)")
            continue
        settings[key] = value
    for key in ("epochs", "batch_size"):
        if key in settings and (not isinstance(settings[key], int) or isinstance(settings[key], bool)
                                or not 1 <= settings[key] <= 100_000):
            raise ModelRejected(f"TRAINING_CONFIG[{name!r}][{key!r}] must be a positive integer")
    callbacks = settings.get("callbacks", [])
    if callable(callbacks):
        callbacks = callbacks()
    if not isinstance(callbacks, (list, tuple)) or not all(isinstance(c, keras.callbacks.Callback) for c in callbacks):
        raise ModelRejected(f"TRAINING_CONFIG[{name!r}]['callbacks'] must be a list of Keras callbacks")
    settings["callbacks"] = list(callbacks)
    augmentation = settings.get("augmentation")
    if augmentation is not None and not (callable(augmentation) or hasattr(augmentation, "flow")):
        raise ModelRejected(f"TRAINING_CONFIG[{name!r}]['augmentation'] must be Keras preprocessing layers "
                            "or an ImageDataGenerator")
    return settings, ignored


class WallClockBudget(keras.callbacks.Callback):
    """Stop cleanly after the batch during which the model's wall-clock budget runs out."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.exhausted, self.start = seconds, False, 0.0

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.start > self.seconds:
            self.exhausted = True
            self.model.stop_training = True


class EpochReporter(keras.callbacks.Callback):
    """Report each finished epoch to the parent (progress display, and proof of life)."""

    def __init__(self, events: Events, name: str) -> None:
        super().__init__()
        self.events, self.name = events, name

    def on_epoch_end(self, epoch, logs=None):
        self.events.emit("epoch", name=self.name, epoch=epoch + 1,
                         logs={k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})


def training_inputs(split: dict, settings: dict, batch_size: int, seed: int):
    """fit()'s data argument: arrays, a tf.data pipeline with augmentation layers, or a generator."""
    augmentation = settings.get("augmentation")
    x, y = split["x_train"], split["y_train"]
    if augmentation is None:
        return {"x": x, "y": y, "batch_size": batch_size, "shuffle": True}, None
    if hasattr(augmentation, "flow"):
        return {"x": augmentation.flow(x, y, batch_size=batch_size, shuffle=True, seed=seed)}, \
            f"{type(augmentation).__name__}"
    dataset = (tf.data.Dataset.from_tensor_slices((x, y))
               .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
               .batch(batch_size)
               .map(lambda images, labels: (augmentation(images, training=True), labels))
               .prefetch(1))
    layers = getattr(augmentation, "layers", [augmentation])
    return {"x": dataset}, " + ".join(type(layer).__name__ for layer in layers)


def train_one(module, name: str, job: dict, split: dict, events: Events) -> dict:
    profile, training, seed = job["profile"], job["training"], job["seed"]
    result: dict[str, Any] = {"name": name}
    events.emit("model", name=name, phase="build")
    keras.utils.set_random_seed(seed)
    factory = getattr(module, name)
    model = factory()
    compiled_by = check_and_compile(model, training)
    spec = describe_model(model)
    spec["compiled_by"] = compiled_by
    result.update(spec=spec, params=int(model.count_params()))
    settings, ignored = resolve_settings(module, name)
    declared = {k: (v if isinstance(v, (int, float, str)) else type(v).__name__) for k, v in settings.items()}
    declared["callbacks"] = [type(c).__name__ for c in settings["callbacks"]]
    epochs = job["epochs_override"] or _effective_epochs(profile, settings.get("epochs"), training["epochs"])
    batch_size = int(settings.get("batch_size", training["batch_size"]))
    data, augmentation_name = training_inputs(split, settings, batch_size, seed)
    budget = WallClockBudget(profile["model_budget_s"])
    callbacks = [*settings["callbacks"], budget, EpochReporter(events, name)]
    result["settings"] = {
        "declared": declared if any(k in settings for k in KNOWN_SETTINGS - {"callbacks"}) or settings["callbacks"] else {},
        "epochs": epochs, "batch_size": batch_size,
        "callbacks": [type(c).__name__ for c in settings["callbacks"]],
        "augmentation": augmentation_name, "ignored_keys": ignored,
    }
    events.emit("model", name=name, phase="train", epochs=epochs)
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    history = model.fit(**data, epochs=epochs, validation_data=(split["x_val"], split["y_val"]),
                        callbacks=callbacks, verbose=0)
    result["train_seconds"] = time.perf_counter() - started
    result["history"] = {k: [float(v) for v in values] for k, values in history.history.items()
                         if k != "learning_rate"}
    result["epochs_run"] = len(result["history"].get("loss", []))
    result["stopped_by_budget"] = budget.exhausted
    events.emit("model", name=name, phase="save")
    model_file = Path(job["out_dir"]) / f"{name}.keras"
    model.save(model_file)
    result["model_file"] = model_file.name
    result["status"] = "ok"
    return result


def _effective_epochs(profile: dict, declared: int | None, default: int) -> int:
    wanted = profile.get("epochs") or declared or default
    return max(1, min(int(wanted), int(profile["max_epochs"])))


LIMITS: dict = {}  # the worker's resource limits (from the job), for the reasons below


def _limit_breach(error: BaseException) -> tuple[str, str] | None:
    """(status, reason) when `error` is a resource limit refusing something, else None."""
    import errno

    code = getattr(error, "errno", None)
    if isinstance(error, MemoryError) or isinstance(error, tf.errors.ResourceExhaustedError):
        return "out_of_memory", (f"out of memory ({type(error).__name__}): the worker's limit is "
                                 f"{LIMITS.get('memory_mb', '?')} MiB of address space per process")
    if code == errno.EAGAIN or (isinstance(error, RuntimeError) and "can't start new thread" in str(error)):
        return "killed", (f"could not start a process or thread: the worker's limit of {LIMITS.get('processes', '?')} "
                          f"processes and threads was reached ({type(error).__name__})")
    if code in (errno.EMFILE, errno.ENFILE):
        return "killed", f"too many open files: the worker's limit is {LIMITS.get('open_files', '?')}"
    if code == errno.EFBIG:
        return "killed", f"a file grew past the worker's output limit of {LIMITS.get('output_mb', '?')} MiB"
    if code == errno.ENOSPC:
        return "killed", (f"no space left: the worker's private /tmp holds {LIMITS.get('tmp_mb', '?')} MiB "
                          "(or the disk is full)")
    return None


def _failure(error: BaseException) -> dict:
    status = "invalid" if isinstance(error, ModelRejected) else "error"
    message = str(error).strip().splitlines()[0][:500] if str(error).strip() else ""
    reason = message if status == "invalid" else f"{type(error).__name__}: {message}"
    breach = _limit_breach(error)
    if breach is not None:
        status, reason = breach
    return {"status": status, "reason": reason, "traceback": traceback.format_exc(limit=-8)}


def run_training(job: dict, events: Events) -> None:
    events.emit("device", device=configure_tensorflow(job["threads"], job["seed"]))
    with np.load(job["data"]) as npz:
        split = {key: npz[key] for key in ("x_train", "y_train", "x_val", "y_val")}
    events.emit("import")
    try:
        module = import_student_module(job["module_path"])
    except BaseException as error:  # SystemExit and KeyboardInterrupt from student code count too
        events.emit("import_failed", **_failure(error))
        return
    events.emit("imported")
    for name in job["factories"]:
        try:
            result = train_one(module, name, job, split, events)
        except BaseException as error:
            result = {"name": name, **_failure(error)}
        events.emit("model_done", name=name, result=result)
        keras.backend.clear_session()


PREDICT_BATCH = 256  # measured on 2 CPU cores: small batches keep a small CNN's activations in cache


def _predictor(model):
    """A compiled forward pass in inference mode (several times faster than ``model.predict`` on
    CPU for the suite's many small sets); ``model.predict`` if the model cannot be traced."""
    try:
        forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                              input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)])
        forward(tf.zeros([1, *INPUT_SHAPE]))
    except Exception:
        return lambda x: np.asarray(model.predict(x, batch_size=PREDICT_BATCH, verbose=0))

    def predict(x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.zeros((0, CLASSES), "float32")
        return np.concatenate([np.asarray(forward(x[i:i + PREDICT_BATCH]))
                               for i in range(0, len(x), PREDICT_BATCH)])
    return predict


def _load_suite_sets(suite: dict | None) -> list[tuple[str, np.ndarray]]:
    """The robustness suite's perturbed sets (uint8), each checked against the sha256 the grading
    process recorded when it built them: every model sees exactly the same images."""
    import hashlib

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


def _wait_for_models(job: dict, events: Events) -> list[dict]:
    """The models to predict: from ``go_file``, which the grading process writes (atomically) once
    they are trained; this worker was started beforehand, so that TensorFlow's start overlaps training."""
    events.emit("ready")
    path, deadline = Path(job["go_file"]), time.monotonic() + float(job["wait_s"])
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no models to evaluate arrived within {job['wait_s']:.0f} s")
        time.sleep(0.05)
    models = json.loads(path.read_text(encoding="utf-8"))["models"]
    events.emit("go", models=len(models))
    return models


def run_evaluation(job: dict, events: Events) -> None:
    """Predict the clean test set and every robustness set; one ``<name>.predictions.npz`` per model
    (format: ``harness/analysis.py``)."""
    configure_tensorflow(job["threads"], job["seed"])
    custom_objects = None
    if job.get("module_path"):
        module = import_student_module(job["module_path"])
        custom_objects = {k: v for k, v in vars(module).items() if not k.startswith("__")}
    with np.load(job["data"]) as npz:
        x_test = npz["x_test"]
    suite = _load_suite_sets(job.get("suite"))
    for item in _wait_for_models(job, events):
        name = item["name"]
        try:
            model = keras.saving.load_model(item["model_file"], safe_mode=custom_objects is None,
                                            custom_objects=custom_objects, compile=False)
            predict = _predictor(model)
            started, cpu = time.perf_counter(), time.process_time()
            probabilities = predict(x_test).astype("float32")
            arrays = {"probabilities": probabilities, "clean_seconds": np.float64(time.perf_counter() - started),
                      "clean_cpu_seconds": np.float64(time.process_time() - cpu)}
            if suite:
                started, cpu = time.perf_counter(), time.process_time()
                predicted, confidence, offsets = [], [], [0]
                for _, images in suite:
                    outputs = predict(images.astype("float32") / np.float32(255.0))
                    predicted.append(outputs.argmax(axis=1).astype("uint8"))
                    confidence.append(_confidence(outputs).astype("float16"))
                    offsets.append(offsets[-1] + len(images))
                arrays.update(suite_names=np.array([n for n, _ in suite]), suite_offsets=np.array(offsets, "int64"),
                              suite_predicted=np.concatenate(predicted), suite_confidence=np.concatenate(confidence),
                              suite_checksum=np.array(job["suite"]["checksum"]),
                              suite_seconds=np.float64(time.perf_counter() - started),
                              suite_cpu_seconds=np.float64(time.process_time() - cpu))
            arrays["worker_cpu_seconds"] = np.float64(time.process_time())  # since the worker started
            np.savez(Path(job["out_dir"]) / f"{name}.predictions.npz", **arrays)
            events.emit("evaluated", name=name, clean_seconds=float(arrays["clean_seconds"]),
                        suite_seconds=float(arrays.get("suite_seconds", 0.0)))
        except BaseException as error:
            events.emit("evaluate_failed", name=name, **_failure(error))


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    LIMITS.update(job.get("limits") or {})
    events = Events(job["events"])
    events.emit("started", pid=os.getpid())
    try:
        (run_training if job["mode"] == "train" else run_evaluation)(job, events)
    except BaseException as error:
        events.emit("worker_failed", **_failure(error))
        return 1
    events.emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

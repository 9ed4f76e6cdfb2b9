"""The training worker: the only process that runs the student's factories.
``python -m harness.workers.train JOB.json``.

It imports the student's extracted module, builds each factory under a fixed seed, trains it
under the protocol on the training split it was given (never the test set) and saves it as a
``.keras`` file. It reports progress as JSON lines in the job's ``events`` file; the grader
(``harness.training.train``) reads them, enforces the time limits and writes the results.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

import keras  # noqa: E402  (after the log level is set)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from harness.workers.batchnorm import batchnorm_report  # noqa: E402
from harness.workers.dataset_maps import checked_maps, dataset_maps, describe, mapped_dataset  # noqa: E402
from harness.workers.keras_setup import (  # noqa: E402
    CLASSES,
    INPUT_SHAPE,
    ModelRejected,
    configure_tensorflow,
    failure,
    flat_input_adapter,
    import_student_module,
    model_of,
    raw_pixel_generator,
    raw_pixel_rescaling,
    set_limits,
)
from harness.workers.labels import SPARSE, sparse_from_logits  # noqa: E402
from harness.workers.notebook import KEPT_PREPARATION, install_loaders  # noqa: E402
from harness.workers.protocol import Events, serve, wait_for_go  # noqa: E402

# Every model is built and trained by this one runtime (Keras 2 code is rewritten for it at ingest,
# harness/ingest/legacy.py): recorded per model, so that a result says what trained it.
RUNTIME = f"Keras {keras.__version__} (TensorFlow {tf.__version__}, backend {keras.backend.backend()})"
KNOWN_SETTINGS = {"epochs", "batch_size", "callbacks", "augmentation"}
HARNESS_OWNED_SETTINGS = {"validation_split", "validation_data", "x", "y", "shuffle", "verbose"}
SALIENT_LAYER_KEYS = (
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "units",
    "activation",
    "rate",
    "pool_size",
    "kernel_regularizer",
    "factor",
    "height_factor",
    "width_factor",
    "momentum",
    "axis",
)


def describe_model(model) -> dict:
    """Layers (nested models flattened), optimizer, learning rate (and its schedule) and loss of a built model."""
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
    # a schedule given to the optimizer: its rate above is only where it starts
    schedule = getattr(optimizer, "_learning_rate", None)
    loss = getattr(model, "loss", None)
    return {
        "layers": layers,
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
        "learning_rate": learning_rate,
        "schedule": type(schedule).__name__
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)
        else None,
        "loss": loss
        if isinstance(loss, str) or loss is None
        else getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__,
    }


def check_and_compile(model, training: dict) -> str:
    """Reject what the protocol cannot train; make sure the model reports accuracy. Returns who compiled it."""
    if not isinstance(model, keras.Model):
        raise ModelRejected(
            f"the factory returned {type(model).__name__}, not a Keras model (did it forget `return model`?)"
        )
    try:
        output = model(np.zeros((2, *INPUT_SHAPE), dtype="float32"), training=False)
    except Exception as error:
        raise ModelRejected(
            f"the model does not accept images of shape {INPUT_SHAPE} "
            f"({type(error).__name__}: {str(error).splitlines()[0][:300]})"
        ) from error
    shape = tuple(getattr(output, "shape", ()))
    if shape != (2, CLASSES):
        raise ModelRejected(
            f"the model's output has shape {('batch', *shape[1:])}; the harness expects "
            f"(batch, {CLASSES}): one probability per digit"
        )
    compiled_by = "student"
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        compiled_by = "harness"
        optimizer, loss = training["optimizer"], training["loss"]
    else:
        optimizer, loss = model.optimizer, for_one_hot_labels(model.loss)
    # Recompiled with the student's own optimizer and loss so that every history has `accuracy`.
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return compiled_by


def for_one_hot_labels(loss):
    """The student's loss for the harness's one-hot labels: sparse categorical cross-entropy (integer labels,
    the TensorFlow tutorials' choice) becomes categorical cross-entropy with the same ``from_logits``; any
    other loss is kept as it is."""
    logits = sparse_from_logits(loss)
    return loss if logits is None else keras.losses.CategoricalCrossentropy(from_logits=logits)


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
        if key in settings and (
            not isinstance(settings[key], int) or isinstance(settings[key], bool) or not 1 <= settings[key] <= 100_000
        ):
            raise ModelRejected(f"TRAINING_CONFIG[{name!r}][{key!r}] must be a positive integer")
    callbacks = settings.get("callbacks", [])
    if callable(callbacks):
        callbacks = callbacks()
    if not isinstance(callbacks, (list, tuple)) or not all(isinstance(c, keras.callbacks.Callback) for c in callbacks):
        raise ModelRejected(f"TRAINING_CONFIG[{name!r}]['callbacks'] must be a list of Keras callbacks")
    settings["callbacks"] = list(callbacks)
    augmentation = settings.get("augmentation")
    if augmentation is not None and not (
        callable(augmentation) or hasattr(augmentation, "flow") or dataset_maps(augmentation) is not None
    ):
        raise ModelRejected(
            f"TRAINING_CONFIG[{name!r}]['augmentation'] must be Keras preprocessing layers, an ImageDataGenerator "
            "or a tf.data map ({'map': function, 'batched': False})"
        )
    return settings, ignored


class WallClockBudget(keras.callbacks.Callback):
    """Stop cleanly after the batch during which the model's wall-clock budget runs out."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.exhausted, self.start = seconds, False, 0.0

    def on_train_begin(self, logs=None):
        """Start the budget's clock."""
        self.start = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        """Stop training once the budget is spent (checked after every batch)."""
        if time.monotonic() - self.start > self.seconds:
            self.exhausted = True
            self.model.stop_training = True


class EpochReporter(keras.callbacks.Callback):
    """Report each finished epoch to the parent (progress display, and proof of life)."""

    def __init__(self, events: Events, name: str) -> None:
        super().__init__()
        self.events, self.name = events, name

    def on_epoch_end(self, epoch, logs=None):
        """Report the epoch's metrics to the grader."""
        self.events.emit(
            "epoch",
            name=self.name,
            epoch=epoch + 1,
            logs={k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"},
        )


def training_inputs(split: dict, settings: dict, batch_size: int, seed: int, notes: list[dict]):
    """fit()'s data argument: arrays, a tf.data pipeline with augmentation layers or the student's own
    maps, or a generator; what is not reproduced goes to `notes`."""
    augmentation = settings.get("augmentation")
    x, y = split["x_train"], split["y_train"]
    maps = dataset_maps(augmentation)
    if maps is not None:
        maps, unfit = checked_maps(maps, x, y)
        notes += unfit
        if maps:
            return {"x": mapped_dataset(x, y, maps, batch_size, seed)}, describe(maps)
        augmentation = None  # none of them augments: the harness's own batches
    if augmentation is None:
        return {"x": x, "y": y, "batch_size": batch_size, "shuffle": True}, None
    if hasattr(augmentation, "flow"):
        return {
            "x": augmentation.flow(x, y, batch_size=batch_size, shuffle=True, seed=seed)
        }, f"{type(augmentation).__name__}"
    dataset = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda images, labels: (augmentation(images, training=True), labels))
        .prefetch(1)
    )
    layers = getattr(augmentation, "layers", [augmentation])
    return {"x": dataset}, " + ".join(type(layer).__name__ for layer in layers)


def train_one(module, name: str, job: dict, split: dict, events: Events) -> dict:
    """Build, check, train and save the factory `name`; its result for the grader (raises on failure).

    The seed is set again before ``fit`` so that training starts from the same state whatever
    the factory consumed of the random streams.
    """
    profile, training, seed = job["profile"], job["training"], job["seed"]
    result: dict[str, Any] = {"name": name, "runtime": RUNTIME}
    events.emit("model", name=name, phase="build")
    keras.utils.set_random_seed(seed)
    factory = getattr(module, name)
    model = flat_input_adapter(model_of(factory()))
    student_loss = getattr(model, "loss", None)
    raw_pixels = raw_pixel_rescaling(model)  # before the first call: Rescaling(1./255) meant for 0–255 pixels
    compiled_by = check_and_compile(model, training)
    settings, ignored = resolve_settings(module, name)
    if hasattr(settings.get("augmentation"), "flow"):
        raw_pixels = raw_pixel_generator(settings["augmentation"]) or raw_pixels
    spec = describe_model(model)
    # what the harness adapted so that its images and labels mean to the model what the student's did
    spec.update(compiled_by=compiled_by, raw_pixels=raw_pixels)
    if sparse_from_logits(student_loss) is not None:
        spec["loss_from"] = SPARSE
    result.update(spec=spec, params=int(model.count_params()))
    declared = {k: (v if isinstance(v, (int, float, str)) else type(v).__name__) for k, v in settings.items()}
    if maps := dataset_maps(settings.get("augmentation")):
        declared["augmentation"] = describe(maps)
    declared["callbacks"] = [type(c).__name__ for c in settings["callbacks"]]
    epochs = job["epochs_override"] or _effective_epochs(profile, settings.get("epochs"), training["epochs"])
    batch_size = int(settings.get("batch_size", training["batch_size"]))
    augmentation_notes: list[dict] = []
    data, augmentation_name = training_inputs(split, settings, batch_size, seed, augmentation_notes)
    budget = WallClockBudget(profile["model_budget_s"])
    # after the student's callbacks: EarlyStopping restores its best weights before the statistics are re-estimated
    batchnorm, precise = batchnorm_report(model, profile, split, batch_size)
    callbacks = [*settings["callbacks"], budget, *precise, EpochReporter(events, name)]
    result["settings"] = {
        "declared": declared
        if any(k in settings for k in KNOWN_SETTINGS - {"callbacks"}) or settings["callbacks"]
        else {},
        "epochs": epochs,
        "batch_size": batch_size,
        "callbacks": [type(c).__name__ for c in settings["callbacks"]],
        "augmentation": augmentation_name,
        "ignored_keys": ignored,
    }
    if augmentation_notes:
        result["settings"]["augmentation_notes"] = augmentation_notes
    events.emit("model", name=name, phase="train", epochs=epochs)
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    history = model.fit(
        **data, epochs=epochs, validation_data=(split["x_val"], split["y_val"]), callbacks=callbacks, verbose=0
    )
    result["train_seconds"] = time.perf_counter() - started
    result["history"] = {k: [float(v) for v in values] for k, values in history.history.items() if k != "learning_rate"}
    result["epochs_run"] = len(result["history"].get("loss", []))
    result["stopped_by_budget"] = budget.exhausted
    result["batchnorm"] = batchnorm
    events.emit("model", name=name, phase="save")
    model_file = Path(job["out_dir"]) / f"{name}.keras"
    model.save(model_file)
    result["model_file"] = model_file.name
    result["status"] = "ok"
    return result


def _effective_epochs(profile: dict, declared: int | None, default: int) -> int:
    """The profile's epochs, else the student's, else the protocol's; capped by the profile."""
    wanted = profile.get("epochs") or declared or default
    return max(1, min(int(wanted), int(profile["max_epochs"])))


def _with_import_hint(reported: dict, error: BaseException, environment: list[str]) -> dict:
    """A module the submission imports but this environment lacks: say which, and how to fix it."""
    if isinstance(error, ModuleNotFoundError) and error.name:
        top = error.name.split(".")[0]
        if top in environment:
            where = (
                f"{top} is a package the course declares (reference/protocol.toml, [environment]) but it is "
                f'not installed where the harness grades: the instructor installs it (pip install "harness[course]")'
            )
        else:
            where = (
                f"if {top} is a package, the course does not declare it: the instructor adds it to [environment] "
                "in the protocol file and installs it where the harness grades"
            )
        reported["reason"] += (
            f" — if {top}.py (or a folder {top}/) is your own file, hand it in beside the notebook (in a folder "
            f"or a .zip); {where}"
        )
    return reported


def student_view(split: dict, folder: Path) -> Path:
    """The training split as ``mnist.load_data()`` gives MNIST (uint8 images, integer labels); its
    validation images stand in for the test set: student code never sees a test image."""
    path = folder / "mnist.npz"
    np.savez(
        path,
        x_train=_as_loaded(split["x_train"]),
        y_train=np.argmax(split["y_train"], axis=1).astype(np.uint8),
        x_test=_as_loaded(split["x_val"]),
        y_test=np.argmax(split["y_val"], axis=1).astype(np.uint8),
    )
    return path


def _as_loaded(images: np.ndarray) -> np.ndarray:
    """Preprocessed images (float32 in [0, 1], 28×28×1) back to what the loader gives (uint8, 28×28)."""
    return np.round(np.asarray(images).reshape(-1, 28, 28) * 255).astype(np.uint8)


def import_with_data(job: dict, split: dict):
    """Import the student's module; when it kept data preparation that its factories read, its MNIST
    loaders are served the :func:`student_view` of the training split while it is imported."""
    if KEPT_PREPARATION not in Path(job["module_path"]).read_text(encoding="utf-8"):
        return import_student_module(job["module_path"])
    with tempfile.TemporaryDirectory(prefix="harness-data-") as folder:
        install_loaders(student_view(split, Path(folder)))
        return import_student_module(job["module_path"])


def run_training(job: dict, events: Events) -> None:
    """The training job: import the student's module once, then train each factory in turn; a
    factory's failure is reported as its result and the next one still runs. A worker started warm
    (``go_file``: TensorFlow imported before its submission was known) gets the module, the factories
    and the seed from the grader when it has them; TensorFlow is configured after, before its first op."""
    if job.get("go_file"):
        job = {**job, **wait_for_go(job, events)}
        if job.get("cancel"):
            return
    events.emit("device", device=configure_tensorflow(job["threads"], job["seed"]))
    with np.load(job["data"]) as npz:
        split = {key: npz[key] for key in ("x_train", "y_train", "x_val", "y_val")}
    events.emit("import")
    try:
        module = import_with_data(job, split)
    except BaseException as error:  # SystemExit and KeyboardInterrupt from student code count too
        events.emit("import_failed", **_with_import_hint(failure(error), error, job.get("environment", [])))
        return
    events.emit("imported")
    for name in job["factories"]:
        try:
            result = train_one(module, name, job, split, events)
        except BaseException as error:
            result = {"name": name, "runtime": RUNTIME, **failure(error)}
        events.emit("model_done", name=name, result=result)
        keras.backend.clear_session()


def main(argv: list[str]) -> int:
    """Run the training job ``argv[0]``; the process's exit status."""
    return serve(argv, run_training, failure=failure, configure=set_limits)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

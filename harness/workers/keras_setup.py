"""What the training and evaluation workers share: TensorFlow's set-up, the student's module, failures.

Imported only by :mod:`harness.workers.train` and :mod:`harness.workers.evaluate`, which set
TensorFlow's log level before they (and so this module) import it.
"""

from __future__ import annotations

import errno
import importlib.util
import math
import re
import sys
import traceback
from types import ModuleType

import keras
import tensorflow as tf

from harness.workers import addons_keras3, display_stubs, subclassing

INPUT_SHAPE = (28, 28, 1)
CLASSES = 10

subclassing.install()  # a student's keras.Model subclass is saved and loaded with its own arguments

LIMITS: dict = {}  # the worker's resource limits (from the job), named in the reasons of `failure`


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


def model_of(returned):
    """What a factory returned, or the one Keras model in the tuple it returned (``return model, history``
    from a factory that also trained, its ``history`` now None: harness/ingest/inner_training.py)."""
    if isinstance(returned, (tuple, list)):
        models = [item for item in returned if isinstance(item, keras.Model)]
        if len(models) == 1:
            return models[0]
    return returned


def flat_input_adapter(model):
    """A model that takes the 784 pixels in another shape is given the harness's ``(28, 28, 1)`` images in
    that shape by a first layer: flattened (an MLP on ``x.reshape(-1, 784)``, ``input_shape=(784,)``) or
    reshaped (an LSTM over the 28 rows, ``(28, 28)``; channels first, ``(1, 28, 28)``: one channel, the same
    order). Its own compile is kept. Any other model is returned as it is."""
    try:
        shape = tuple(model.inputs[0].shape[1:])
    except Exception:  # a subclassed model has no symbolic inputs: it takes what its call takes
        return model
    if len(model.inputs) != 1 or shape == INPUT_SHAPE or None in shape or math.prod(shape) != math.prod(INPUT_SHAPE):
        return model
    first = keras.layers.Flatten() if len(shape) == 1 else keras.layers.Reshape(shape)
    adapted = keras.Sequential([keras.Input(INPUT_SHAPE), first, model], name=model.name)
    if getattr(model, "optimizer", None) is not None and getattr(model, "compiled", False):
        adapted.compile(optimizer=model.optimizer, loss=model.loss)
    return adapted


# A Rescaling at the model's input with a scale this small was written for 0–255 pixels (1/255, 1/127.5);
# the harness's images are already divided by 255 (the assignment's preprocessing).
RAW_PIXEL_SCALE = 0.01
PIXEL_RANGE = 255.0
# Layers that may come before it and leave pixel values as they are (or only move them around).
PASS_THROUGH = ("InputLayer", "Reshape", "Resizing", "Flatten", "Permute")


def raw_pixel_rescaling(model) -> str | None:
    """A model whose first computing layer is a ``Rescaling`` written for raw pixels (``Rescaling(1./255)``,
    the student's data left 0–255) would see the harness's images divided by 255 twice and train on
    values under 0.004: its scale is multiplied by 255 (offset kept), so that it computes on the
    harness's images what it computes on raw pixels. Returns the layer as the student wrote it, or None."""
    for layer in _leading_layers(model):
        if type(layer).__name__ != "Rescaling":
            return None
        scale = layer.scale
        if _for_raw_pixels(scale):
            layer.scale = float(scale) * PIXEL_RANGE
            return f"Rescaling(scale={scale:.6g}, offset={layer.offset:.6g})"
        return None
    return None


def _for_raw_pixels(scale) -> bool:
    """A scale written for pixels from 0 to 255 (1/255, 1/127.5): a number, at most RAW_PIXEL_SCALE."""
    return isinstance(scale, (int, float)) and 0 < scale <= RAW_PIXEL_SCALE


def _leading_layers(model):
    """The layers a model's input goes through first, inside nested Sequential blocks too (a
    ``data_augmentation`` block), skipping those that keep pixel values (reshapes, random augmentation)."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Sequential):
            yield from _leading_layers(layer)
            if any(type(inner).__name__ == "Rescaling" for inner in layer.layers):
                return
            continue
        if type(layer).__name__ in PASS_THROUGH or type(layer).__name__.startswith("Random"):
            continue
        yield layer
        return


def raw_pixel_generator(generator) -> str | None:
    """The same for an ``ImageDataGenerator(rescale=1./255)`` given as the model's augmentation: its
    ``rescale`` is multiplied by 255. Returns the setting as the student wrote it, or None."""
    rescale = getattr(generator, "rescale", None)
    if _for_raw_pixels(rescale):
        generator.rescale = float(rescale) * PIXEL_RANGE
        return f"ImageDataGenerator(rescale={rescale:.6g})"
    return None


def import_student_module(path: str) -> ModuleType:
    """Run the student's extracted module as ``student_submission``, registered in ``sys.modules``
    as an ordinary import would be. Packages the grading machine lacks are stood in for first: a
    plotting import draws nothing, TensorFlow Addons' names are Keras 3's (what the ingest's rewrites name)."""
    display_stubs.install()
    addons_keras3.install()
    spec = importlib.util.spec_from_file_location("student_submission", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["student_submission"] = module
    spec.loader.exec_module(module)
    return module


def set_limits(job: dict) -> None:
    """Remember the job's resource limits, for the reasons of the failures they cause."""
    LIMITS.update(job.get("limits") or {})


def limit_breach(error: BaseException) -> tuple[str, str] | None:
    """(status, reason) when `error` is a resource limit refusing something, else None."""
    code = getattr(error, "errno", None)
    if isinstance(error, MemoryError) or isinstance(error, tf.errors.ResourceExhaustedError):
        return "out_of_memory", (
            f"out of memory ({type(error).__name__}): the worker's limit is "
            f"{LIMITS.get('memory_mb', '?')} MiB of address space per process"
        )
    if code == errno.EAGAIN or (isinstance(error, RuntimeError) and "can't start new thread" in str(error)):
        return "killed", (
            f"could not start a process or thread: the worker's limit of {LIMITS.get('processes', '?')} "
            f"processes and threads was reached ({type(error).__name__})"
        )
    if code in (errno.EMFILE, errno.ENFILE):
        return "killed", f"too many open files: the worker's limit is {LIMITS.get('open_files', '?')}"
    if code == errno.EFBIG:
        return "killed", f"a file grew past the worker's output limit of {LIMITS.get('output_mb', '?')} MiB"
    if code == errno.ENOSPC:
        return "killed", (
            f"no space left: the worker's private /tmp holds {LIMITS.get('tmp_mb', '?')} MiB (or the disk is full)"
        )
    return None


# What a download attempt says in the sandbox, which has no network.
NO_NETWORK = re.compile(
    r"URL fetch failure|Name or service not known|Temporary failure in name resolution|Network is unreachable"
)


def failure(error: BaseException) -> dict:
    """Status, reason and traceback of a failure, for an event; called while `error` is handled."""
    status = "invalid" if isinstance(error, ModelRejected) else "error"
    message = str(error).strip().splitlines()[0][:500] if str(error).strip() else ""
    reason = message if status == "invalid" else f"{type(error).__name__}: {message}"
    breach = limit_breach(error)
    if breach is not None:
        status, reason = breach
    elif NO_NETWORK.search(message):
        reason += (
            " — the model downloads a file (pretrained weights: keras.applications' weights='imagenet'?), and "
            "student code runs without network: pretrained weights cannot be used; weights=None trains the same "
            "architecture from scratch"
        )
    return {"status": status, "reason": reason, "traceback": traceback.format_exc(limit=-8)}

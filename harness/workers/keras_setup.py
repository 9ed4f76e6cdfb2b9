"""What the training and evaluation workers share: TensorFlow's set-up, the student's module, failures.

Imported only by :mod:`harness.workers.train` and :mod:`harness.workers.evaluate`, which set
TensorFlow's log level before they (and so this module) import it.
"""

from __future__ import annotations

import errno
import importlib.util
import sys
import traceback
from types import ModuleType

import keras
import tensorflow as tf

from harness.workers import subclassing

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
    """A model that takes flattened images (an MLP on ``x.reshape(-1, 784)``, ``input_shape=(784,)``) is
    given the harness's ``(28, 28, 1)`` images flattened by a first ``Flatten`` layer; its own compile
    is kept. Any other model is returned as it is."""
    try:
        shape = tuple(model.inputs[0].shape[1:])
    except Exception:  # a subclassed model has no symbolic inputs: it takes what its call takes
        return model
    if len(model.inputs) != 1 or shape != (INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2],):
        return model
    adapted = keras.Sequential([keras.Input(INPUT_SHAPE), keras.layers.Flatten(), model], name=model.name)
    if getattr(model, "optimizer", None) is not None and getattr(model, "compiled", False):
        adapted.compile(optimizer=model.optimizer, loss=model.loss)
    return adapted


def import_student_module(path: str) -> ModuleType:
    """Run the student's extracted module as ``student_submission``, registered in ``sys.modules``
    as an ordinary import would be."""
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


def failure(error: BaseException) -> dict:
    """Status, reason and traceback of a failure, for an event; called while `error` is handled."""
    status = "invalid" if isinstance(error, ModelRejected) else "error"
    message = str(error).strip().splitlines()[0][:500] if str(error).strip() else ""
    reason = message if status == "invalid" else f"{type(error).__name__}: {message}"
    breach = limit_breach(error)
    if breach is not None:
        status, reason = breach
    return {"status": status, "reason": reason, "traceback": traceback.format_exc(limit=-8)}

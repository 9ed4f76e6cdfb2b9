"""``tensorflow_datasets``'s MNIST, served from the file the harness mounts (never the network).

The loader cell (harness/workers/notebook.py) runs this file's source as the module
``tensorflow_datasets`` when the package is not installed where the harness grades, or uses
:func:`load` in place of the real ``tfds.load`` for ``"mnist"`` when it is. Only what MNIST
notebooks call is here: ``load`` (splits and their slices ``"train[:80%]"``, ``as_supervised``,
``with_info``, ``batch_size`` including ``-1``), ``as_numpy``, ``Split`` and the progress-bar
switches. Any other name raises with the reason. Its ``"test"`` split is whatever the mounted file
calls its test set: in discovery and ``--execute`` that is the end of the training set, so student
code never sees a test image.

Standard library, numpy and TensorFlow only: it runs in the student's namespace, in the sandbox.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import tensorflow as tf

DATA = ""  # set by the loader cell: the mounted .npz (keys x_train, y_train, x_test, y_test)
_REAL_LOAD = None  # the installed package's own load, for other data sets
SLICE = re.compile(r"^(train|test)(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?$")
__version__ = "harness-mnist"


class Split:
    """``tfds.Split.TRAIN`` and ``tfds.Split.TEST``."""

    TRAIN = "train"
    TEST = "test"


def _arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28, 1) uint8 and labels int64 of one split, sliced as tfds slices."""
    match = SLICE.match(str(split).replace(" ", ""))
    if match is None:
        raise ValueError(f"the harness serves MNIST's 'train' and 'test' splits (and their slices), not {split!r}")
    name, start, start_pct, end, end_pct = match.groups()
    with np.load(DATA) as data:
        x, y = data[f"x_{name}"], data[f"y_{name}"]
    first, last = _bound(start, start_pct, len(x)), _bound(end, end_pct, len(x))
    x, y = x[first:last], y[first:last]
    return x.reshape(-1, 28, 28, 1).astype("uint8"), y.astype("int64")


def _bound(text: str | None, percent: str, size: int) -> int | None:
    """One end of a slice: ``80`` with ``%`` is 80 % of the split, rounded as tfds rounds."""
    if not text:
        return None
    value = int(text)
    return round(value * size / 100) if percent else value


def _dataset(split: str, as_supervised: bool, batch_size: int | None):
    x, y = _arrays(split)
    if batch_size == -1:  # the whole split as tensors, as tfds returns it
        return (tf.constant(x), tf.constant(y)) if as_supervised else {"image": tf.constant(x), "label": tf.constant(y)}
    data = tf.data.Dataset.from_tensor_slices((x, y) if as_supervised else {"image": x, "label": y})
    return data.batch(batch_size) if batch_size else data


def _info() -> SimpleNamespace:
    """The ``DatasetInfo`` fields MNIST notebooks read: split sizes, label count and names, image shape."""
    with np.load(DATA) as data:
        sizes = {"train": len(data["y_train"]), "test": len(data["y_test"])}
    return SimpleNamespace(
        name="mnist",
        splits={k: SimpleNamespace(name=k, num_examples=v) for k, v in sizes.items()},
        features={
            "image": SimpleNamespace(shape=(28, 28, 1), dtype=tf.uint8),
            "label": SimpleNamespace(num_classes=10, names=[str(i) for i in range(10)]),
        },
        supervised_keys=("image", "label"),
        description="MNIST, served by the grading harness from its own copy",
    )


def load(name, split=None, *, batch_size=None, as_supervised=False, with_info=False, **_ignored):
    """``tfds.load("mnist", split=…)``: a ``tf.data.Dataset`` per split (a list for a list of splits, a
    dict when no split is given), optionally with the data set's info."""
    if not str(name).split(":")[0].strip().lower() == "mnist":
        if _REAL_LOAD is not None:
            return _REAL_LOAD(
                name, split=split, batch_size=batch_size, as_supervised=as_supervised, with_info=with_info, **_ignored
            )
        raise ModuleNotFoundError(
            f"tensorflow_datasets is not installed where the harness grades: it serves only 'mnist', not {name!r}",
            name="tensorflow_datasets",
        )
    if split is None:
        data = {s: _dataset(s, as_supervised, batch_size) for s in ("train", "test")}
    elif isinstance(split, (list, tuple)):
        data = [_dataset(s, as_supervised, batch_size) for s in split]
    else:
        data = _dataset(split, as_supervised, batch_size)
    return (data, _info()) if with_info else data


def as_numpy(data):
    """Datasets as iterators of numpy values; tensors (``batch_size=-1``) as numpy arrays."""
    if isinstance(data, tf.data.Dataset):
        return data.as_numpy_iterator()
    return tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, data)


def disable_progress_bar() -> None:
    """Nothing to disable: nothing is downloaded."""


enable_progress_bar = display_progress_bar = disable_progress_bar


def __getattr__(name: str):
    raise AttributeError(
        f"tensorflow_datasets.{name}: tensorflow_datasets is not installed where the harness grades; it serves "
        "tfds.load('mnist', …) and tfds.as_numpy only"
    )

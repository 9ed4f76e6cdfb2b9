"""MNIST for the harness: loading, validation, hashing, the assignment's preprocessing.

The data set comes from Keras's own loader (``keras.datasets.mnist.load_data()``) unless a
local ``.npz`` is given with ``--data PATH`` or the environment variable ``HARNESS_MNIST_NPZ``
(keys ``x_train``, ``y_train``, ``x_test``, ``y_test``, the layout of Keras's ``mnist.npz``).

>>> raw = load_mnist("mnist.npz")                                    # doctest: +SKIP
>>> split = training_split(raw, train_images=2000, validation_split=0.2)  # doctest: +SKIP
>>> split.x_train.shape, split.x_val.shape                            # doctest: +SKIP
((1600, 28, 28, 1), (400, 28, 28, 1))
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config.environment import DATA_ENV
from harness.errors import DataUnavailable

KEYS = ("x_train", "y_train", "x_test", "y_test")
HOW_TO_PROVIDE = (
    "Give the harness a local copy of MNIST: `--data /path/to/mnist.npz` or "
    f"`export {DATA_ENV}=/path/to/mnist.npz` (keys x_train, y_train, x_test, y_test, as in "
    "Keras's mnist.npz, downloadable from "
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz), "
    "or run once with network access so that keras.datasets.mnist.load_data() can cache it."
)


@dataclass(frozen=True)
class RawMnist:
    """MNIST as loaded, before preprocessing: the four arrays, their source, the file's and the arrays' sha256."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    file_sha256: str
    content_sha256: str


@dataclass(frozen=True)
class TrainingSplit:
    """What a training worker gets: training and validation data, never the test set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def preprocess_images(x: np.ndarray) -> np.ndarray:
    """The assignment's preprocessing: reshape to (-1, 28, 28, 1) and divide by 255."""
    return (x.reshape(-1, 28, 28, 1) / 255.0).astype("float32")


def one_hot(y: np.ndarray, classes: int = 10) -> np.ndarray:
    """Labels to one-hot float32 rows, like ``to_categorical(y, 10)``."""
    return np.eye(classes, dtype="float32")[np.asarray(y, dtype="int64")]


def sha256_file(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' raw C-order bytes in KEYS order (independent of the zip wrapper)."""
    digest = hashlib.sha256()
    for key in KEYS:
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def resolve_data_path(path: str | os.PathLike | None) -> Path | None:
    """The local .npz to use: the explicit path, else $HARNESS_MNIST_NPZ, else None (Keras)."""
    chosen = path or os.environ.get(DATA_ENV)
    return Path(chosen).expanduser() if chosen else None


def _validate(arrays: dict[str, np.ndarray], source: str) -> None:
    missing = [key for key in KEYS if key not in arrays]
    if missing:
        raise DataUnavailable(f"{source} lacks the key(s) {', '.join(missing)}. {HOW_TO_PROVIDE}")
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataUnavailable(f"{source}: x_{part} has shape {x.shape}, expected (N, 28, 28). {HOW_TO_PROVIDE}")
        if y.shape != (x.shape[0],):
            raise DataUnavailable(f"{source}: y_{part} has shape {y.shape}, expected ({x.shape[0]},). {HOW_TO_PROVIDE}")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataUnavailable(f"{source}: y_{part} has labels outside 0..9. {HOW_TO_PROVIDE}")
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DataUnavailable(f"{source}: x_{part} has pixels outside 0..255. {HOW_TO_PROVIDE}")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataUnavailable(f"No MNIST file at {path}. {HOW_TO_PROVIDE}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise DataUnavailable(f"{path} is not a readable .npz file ({error}). {HOW_TO_PROVIDE}") from error


def _keras_cache_path() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"


def load_mnist(path: str | os.PathLike | None = None) -> RawMnist:
    """Load and validate MNIST (uint8 images, integer labels) and hash it."""
    local = resolve_data_path(path)
    if local is not None:
        arrays = _read_npz(local)
        source = str(local)
    else:
        try:
            import keras  # seconds to import, and only needed without a local .npz

            (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        except Exception as error:  # network errors come in many types
            raise DataUnavailable(
                f"keras.datasets.mnist.load_data() failed ({type(error).__name__}: {error}). {HOW_TO_PROVIDE}"
            ) from error
        arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
        local = _keras_cache_path()
        source = f"keras.datasets.mnist ({local})"
    _validate(arrays, source)
    return RawMnist(
        **{key: arrays[key] for key in KEYS},
        source=source,
        file_sha256=sha256_file(local) if local.is_file() else "",
        content_sha256=content_sha256(arrays),
    )


def training_split(raw: RawMnist, train_images: int, validation_split: float) -> TrainingSplit:
    """First `train_images` training images; the last `validation_split` of them validate."""
    x = preprocess_images(raw.x_train[:train_images])
    y = one_hot(raw.y_train[:train_images])
    n_val = int(round(len(x) * validation_split))
    cut = len(x) - n_val
    return TrainingSplit(x[:cut], y[:cut], x[cut:], y[cut:])


def held_out_test_set(raw: RawMnist, test_images: int) -> tuple[np.ndarray, np.ndarray]:
    """First `test_images` test images, preprocessed, with their integer labels."""
    return preprocess_images(raw.x_test[:test_images]), raw.y_test[:test_images].astype("int64")

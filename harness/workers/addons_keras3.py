"""TensorFlow Addons' most used names, served by Keras 3's own classes, for submissions written before 2024.

TensorFlow Addons ended in 2024 and never supported Keras 3: ``import tensorflow_addons as tfa`` fails
where the harness grades, although what MNIST students take from it mostly exists in Keras 3 now
(AdamW, GroupNormalization, mish…). The ingest rewrites the import to ``tensorflow_addons_keras3``
(harness/ingest/legacy.py, recorded as a rewrite in the result) and :func:`install` registers that
module here. Each name below trains as TensorFlow Addons' did; a name without a Keras 3 equivalent
raises an AttributeError that says so, and the factory that uses it fails with that reason.

The one conversion that is not a rename: TensorFlow Addons' decoupled weight decay subtracts
``weight_decay × w`` at each step, Keras 3's subtracts ``weight_decay × learning_rate × w``, so the
Keras weight decay is TensorFlow Addons' divided by the (initial) learning rate.

Keras and the standard library only: it runs in the sandbox, in the training and evaluation workers
and in the notebook kernel (the loader cell runs this file's source).
"""

from __future__ import annotations

import sys
import types

import keras

NAME = "tensorflow_addons_keras3"


def _keras_weight_decay(weight_decay: float, learning_rate) -> float:
    """TensorFlow Addons' per-step decay as Keras 3's (which multiplies it by the learning rate)."""
    initial = learning_rate(0) if callable(learning_rate) else learning_rate
    return float(weight_decay) / float(initial)


def AdamW(weight_decay, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-07, amsgrad=False, **kwargs):  # noqa: N802
    """``tfa.optimizers.AdamW``: Keras 3's AdamW with the same decay per step."""
    return keras.optimizers.AdamW(
        learning_rate=learning_rate,
        weight_decay=_keras_weight_decay(weight_decay, learning_rate),
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        amsgrad=amsgrad,
        **_optimizer_options(kwargs),
    )


def SGDW(weight_decay, learning_rate=0.001, momentum=0.0, nesterov=False, **kwargs):  # noqa: N802
    """``tfa.optimizers.SGDW``: Keras 3's SGD, whose weight decay is decoupled too."""
    return keras.optimizers.SGD(
        learning_rate=learning_rate,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=_keras_weight_decay(weight_decay, learning_rate),
        **_optimizer_options(kwargs),
    )


def _optimizer_options(kwargs: dict) -> dict:
    """The Keras 3 optimizer options among TensorFlow Addons' keyword arguments (``name`` is dropped:
    TensorFlow Addons' default names are not Keras's)."""
    return {k: v for k, v in kwargs.items() if k in ("clipnorm", "clipvalue", "global_clipnorm")}


def InstanceNormalization(**kwargs):  # noqa: N802
    """``tfa.layers.InstanceNormalization``: a group normalisation with one group per channel."""
    return keras.layers.GroupNormalization(groups=-1, **kwargs)


def gelu(x, approximate: bool = True):
    """``tfa.activations.gelu``: its default is the tanh approximation, Keras's is the exact form."""
    return keras.activations.gelu(x, approximate=approximate)


def F1Score(num_classes=None, average=None, threshold=None, name="f1_score", dtype=None):  # noqa: N802
    """``tfa.metrics.F1Score``: Keras 3's, which reads the number of classes from the labels."""
    return keras.metrics.F1Score(average=average, threshold=threshold, name=name, dtype=dtype)


def _projective(images, transforms, interpolation: str, fill_mode: str, fill_value: float):
    """TensorFlow Addons' ``transform`` on HW, HWC or NHWC images."""
    images = keras.ops.convert_to_tensor(images)
    rank = len(images.shape)
    batch = images if rank == 4 else (images[None, ..., None] if rank == 2 else images[None])
    moved = keras.ops.image.affine_transform(
        batch, transforms, interpolation=interpolation, fill_mode=fill_mode, fill_value=fill_value
    )
    return moved if rank == 4 else (moved[0, ..., 0] if rank == 2 else moved[0])


def rotate(images, angles, interpolation="nearest", fill_mode="constant", name=None, fill_value=0.0):
    """``tfa.image.rotate``: counterclockwise by `angles` radians, about the image's centre."""
    height, width = _height_width(images)
    angles = keras.ops.reshape(keras.ops.cast(angles, "float32"), (-1,))
    cos, sin = keras.ops.cos(angles), keras.ops.sin(angles)
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    zeros = keras.ops.zeros_like(angles)
    transforms = keras.ops.stack([cos, -sin, x_offset, sin, cos, y_offset, zeros, zeros], axis=1)
    return _projective(images, transforms, interpolation, fill_mode, fill_value)


def translate(images, translations, interpolation="nearest", fill_mode="constant", name=None, fill_value=0.0):
    """``tfa.image.translate``: moved by ``[dx, dy]`` pixels (one pair, or one per image)."""
    moves = keras.ops.reshape(keras.ops.cast(translations, "float32"), (-1, 2))
    ones, zeros = keras.ops.ones_like(moves[:, 0]), keras.ops.zeros_like(moves[:, 0])
    transforms = keras.ops.stack([ones, zeros, -moves[:, 0], zeros, ones, -moves[:, 1], zeros, zeros], axis=1)
    return _projective(images, transforms, interpolation, fill_mode, fill_value)


def _height_width(images) -> tuple[int, int]:
    shape = keras.ops.shape(images)
    return (shape[0], shape[1]) if len(shape) in (2, 3) else (shape[1], shape[2])


# What each TensorFlow Addons submodule serves: its name → the Keras 3 object (or this module's function).
SERVED = {
    "optimizers": {"AdamW": AdamW, "SGDW": SGDW},
    "layers": {"GroupNormalization": keras.layers.GroupNormalization, "InstanceNormalization": InstanceNormalization},
    "activations": {"gelu": gelu, "mish": keras.activations.mish},
    "metrics": {"F1Score": F1Score},
    "image": {"rotate": rotate, "translate": translate},
}


class _Served(types.ModuleType):
    """One TensorFlow Addons submodule: its served names, and a reason for any other."""

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        part = self.__name__.removeprefix(NAME).lstrip(".")
        where = f"tensorflow_addons.{part}.{name}" if part else f"tensorflow_addons.{name}"
        known = ", ".join(f"{sub}.{n}" for sub, names in SERVED.items() for n in names)
        raise AttributeError(
            f"{where}: TensorFlow Addons does not install with Keras 3 and the harness knows no Keras 3 "
            f"equivalent of this name (it serves {known}); write it with Keras 3's own layers or optimizers"
        )


def install() -> None:
    """Register ``tensorflow_addons_keras3`` and its submodules (what the rewritten imports name)."""
    if NAME in sys.modules:
        return
    top = _Served(NAME)
    top.__path__ = []
    sys.modules[NAME] = top
    for part, names in SERVED.items():
        module = _Served(f"{NAME}.{part}")
        module.__dict__.update(names)
        setattr(top, part, module)
        sys.modules[module.__name__] = module

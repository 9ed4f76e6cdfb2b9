"""Precise BatchNorm: re-estimate BatchNormalization population statistics after training.

Keras keeps a moving average of each BatchNormalization layer's batch statistics (momentum 0.99)
and uses it at inference. After a few hundred steps — a cheap grading profile — that average still
carries its initial mean 0 and variance 1, so a model that trained well predicts at chance level on
validation and test images. The remedy is the "precise BatchNorm" practice (Wu & Johnson, 2021):
run training images through the model with its weights frozen, each BatchNormalization layer in
batch-statistics mode and every other layer (Dropout, augmentation) in inference mode, and set each
layer's statistics to the exact average of the batches' statistics.

Training itself is unchanged: the moving averages never enter a gradient. During ``fit`` the
re-estimation runs before each validation pass (so the validation accuracy that the history and
the student's callbacks see is the model's real one) and Keras's own averages are put back after
it; at the end of training the re-estimated statistics are kept and saved with the model.
"""

from __future__ import annotations

import keras
import numpy as np


def batchnorm_layers(model) -> list:
    """The model's trainable BatchNormalization layers, nested models and custom layers included.

    A frozen layer (``trainable=False``) runs in inference mode in Keras and keeps its statistics:
    it is left as the student set it.
    """
    try:
        layers = model._flatten_layers(include_self=False, recursive=True)
    except (AttributeError, TypeError):  # not a Keras 3 layer tree: nothing to re-estimate
        return []
    return [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def _batch_statistics_call(call):
    """`call` always in training mode: batch statistics, and the moving averages updated."""

    def in_training_mode(inputs, training=None, mask=None):
        return call(inputs, training=True, mask=mask)

    return in_training_mode


def recalibrate(model, layers: list, images: np.ndarray, batch_size: int) -> None:
    """Set each layer's moving mean and variance to the average of its batch statistics over `images`.

    With momentum ``1 - 1/k`` at the k-th batch, Keras's own update computes the running mean of
    the batch statistics exactly; the model is called in inference mode, so only the
    BatchNormalization layers (patched to training mode) see batch statistics.
    """
    saved = [(layer.call, layer.momentum) for layer in layers]
    try:
        for layer in layers:
            layer.call = _batch_statistics_call(layer.call)
        for k, start in enumerate(range(0, len(images), batch_size), start=1):
            for layer in layers:
                layer.momentum = 1.0 - 1.0 / k
            model(images[start : start + batch_size], training=False)
    finally:
        for layer, (call, momentum) in zip(layers, saved, strict=True):
            del layer.call  # back to the class's method
            if layer.call != call:
                layer.call = call
            layer.momentum = momentum


def _statistics(layers: list) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (keras.ops.convert_to_numpy(layer.moving_mean), keras.ops.convert_to_numpy(layer.moving_variance))
        for layer in layers
    ]


def _restore(layers: list, statistics: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for layer, (mean, variance) in zip(layers, statistics, strict=True):
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(variance)


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimate the statistics before every validation pass (Keras's own put back after it) and
    at the end of training; report how the validation accuracy depends on them."""

    def __init__(self, layers: list, images: np.ndarray, batch_size: int, validation: tuple, report: dict) -> None:
        super().__init__()
        self.layers, self.images, self.batch_size = layers, images, batch_size
        self.validation = validation
        self.kept: list | None = None
        self.report = report  # the model's `batchnorm` record: the end of training adds its two accuracies

    def on_test_begin(self, logs=None):
        """Validation is about to run: measure it with re-estimated statistics."""
        self.kept = _statistics(self.layers)
        recalibrate(self.model, self.layers, self.images, self.batch_size)

    def on_test_end(self, logs=None):
        """Give training back Keras's own moving averages, as if nothing had happened."""
        if self.kept is not None:
            _restore(self.layers, self.kept)
            self.kept = None

    def on_train_end(self, logs=None):
        """Keep re-estimated statistics in the saved model; record what Keras's own would have given."""
        self.report["val_accuracy_moving"] = self._val_accuracy()
        recalibrate(self.model, self.layers, self.images, self.batch_size)
        self.report["val_accuracy_recalibrated"] = self._val_accuracy()

    def _val_accuracy(self) -> float:
        x, y = self.validation
        predicted = np.argmax(self.model.predict(x, batch_size=512, verbose=0), axis=1)
        return float(np.mean(predicted == np.argmax(y, axis=1)))


def batchnorm_report(model, profile: dict, split: dict, batch_size: int) -> tuple[dict | None, list]:
    """(what the result records, the callbacks to add to ``fit``) for `model` under `profile`.

    None and no callback when the model has no BatchNormalization layer; a record without a
    callback when the profile does not re-estimate (``bn_recalibration_images = 0``: the full
    protocol, exactly the assignment's Keras training).
    """
    layers = batchnorm_layers(model)
    if not layers:
        return None, []
    images = int(profile.get("bn_recalibration_images") or 0)
    record = {"layers": len(layers), "recalibrated": images > 0, "images": min(images, len(split["x_train"]))}
    if images <= 0:
        return record, []
    validation = (split["x_val"], split["y_val"])
    return record, [PreciseBatchNorm(layers, split["x_train"][:images], batch_size, validation, record)]

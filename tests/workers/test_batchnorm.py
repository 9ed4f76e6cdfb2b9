"""Precise BatchNorm in the training worker (harness/workers/batchnorm.py), in-process on tiny models."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from harness.workers.batchnorm import PreciseBatchNorm, batchnorm_layers, batchnorm_report, recalibrate

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(3.0, 2.0, size=(96, 4)).astype("float32")


def value(variable) -> np.ndarray:
    return keras.ops.convert_to_numpy(variable)


def normalising(*before) -> keras.Model:
    return keras.Sequential([keras.Input((4,)), *before, keras.layers.BatchNormalization(), keras.layers.Dense(2)])


def batch_average(x: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """What precise BatchNorm must give: the mean over batches of each batch's mean and variance."""
    batches = [x[i : i + batch] for i in range(0, len(x), batch)]
    return np.mean([b.mean(axis=0) for b in batches], axis=0), np.mean([b.var(axis=0) for b in batches], axis=0)


def test_statistics_are_the_average_of_the_batches_statistics():
    model = normalising()
    (layer,) = batchnorm_layers(model)
    recalibrate(model, [layer], IMAGES, batch_size=32)
    mean, variance = batch_average(IMAGES, 32)
    np.testing.assert_allclose(value(layer.moving_mean), mean, rtol=1e-5)
    np.testing.assert_allclose(value(layer.moving_variance), variance, rtol=1e-4)


def test_the_layer_is_left_as_it_was():
    model = normalising()
    (layer,) = batchnorm_layers(model)
    recalibrate(model, [layer], IMAGES, batch_size=32)
    assert "call" not in vars(layer), "the patched call must not outlive the re-estimation"
    assert layer.momentum == pytest.approx(0.99)
    before = value(layer.moving_mean)
    model(IMAGES[:8], training=False)
    np.testing.assert_array_equal(value(layer.moving_mean), before)  # inference mode again


def test_dropout_before_the_layer_stays_in_inference_mode():
    model = normalising(keras.layers.Dropout(0.9))
    (layer,) = batchnorm_layers(model)
    recalibrate(model, [layer], IMAGES, batch_size=32)
    np.testing.assert_allclose(value(layer.moving_mean), batch_average(IMAGES, 32)[0], rtol=1e-5)


def test_nested_and_frozen_layers():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(name="inner_bn")])
    frozen = keras.layers.BatchNormalization(name="frozen_bn")
    frozen.trainable = False
    model = keras.Sequential([keras.Input((4,)), inner, frozen, keras.layers.Dense(2)])
    assert [layer.name for layer in batchnorm_layers(model)] == ["inner_bn"]


def test_validation_sees_reestimated_statistics_and_training_keeps_keras_averages():
    model = normalising()
    (layer,) = batchnorm_layers(model)
    keras_mean = np.full(4, 0.5, dtype="float32")
    layer.moving_mean.assign(keras_mean)
    callback = PreciseBatchNorm([layer], IMAGES, 32, (IMAGES, np.eye(2)[np.zeros(96, int)]), report={})
    callback.set_model(model)
    callback.on_test_begin()
    np.testing.assert_allclose(value(layer.moving_mean), batch_average(IMAGES, 32)[0], rtol=1e-5)
    callback.on_test_end()
    np.testing.assert_array_equal(value(layer.moving_mean), keras_mean)


def test_what_the_result_records():
    split = {"x_train": np.zeros((100, 4), "float32"), "x_val": np.zeros((10, 4)), "y_val": np.zeros((10, 2))}
    record, callbacks = batchnorm_report(normalising(), {"bn_recalibration_images": 4096}, split, 32)
    assert record == {"layers": 1, "recalibrated": True, "images": 100} and len(callbacks) == 1
    record, callbacks = batchnorm_report(normalising(), {"bn_recalibration_images": 0}, split, 32)
    assert record == {"layers": 1, "recalibrated": False, "images": 0} and callbacks == []
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert batchnorm_report(plain, {"bn_recalibration_images": 4096}, split, 32) == (None, [])

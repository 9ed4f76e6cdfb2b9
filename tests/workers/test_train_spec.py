"""What the training worker records of the model it trained (harness/workers/train.py, ``describe_model``):
the evidence the modifications are read from when no source says it."""

from __future__ import annotations

import pytest

keras = pytest.importorskip("keras")

from harness.workers.train import describe_model  # noqa: E402  (after Keras is known to be there)


def _compiled(learning_rate):
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="categorical_crossentropy")
    return model


def test_a_learning_rate_schedule_in_the_optimizer_is_recorded_with_its_starting_rate():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=375, decay_rate=0.8)
    spec = describe_model(_compiled(schedule))
    assert spec["schedule"] == "ExponentialDecay"
    assert spec["learning_rate"] == pytest.approx(1e-3)


def test_a_constant_rate_has_no_schedule():
    spec = describe_model(_compiled(5e-4))
    assert spec["schedule"] is None
    assert spec["learning_rate"] == pytest.approx(5e-4)

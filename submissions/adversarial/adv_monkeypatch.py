"""Adversarial sample (written by the course team): patching Keras and NumPy to report 100 %.

Expected: model `ok`, with the test accuracy the model really has (the same as the identical
model without the patches): the harness evaluates in a fresh worker that never imports this
module, on test images the training worker never saw, against labels that never leave the
grading process. What the patches do change is this worker's own report of the validation
metrics (history, val_accuracy): those are self-reported (README, Security).
Bounded: patches live only in this worker process.
"""
import keras
import numpy as np
from keras import layers


def _fake_evaluate(self, *args, **kwargs):
    logs = {"loss": 0.0, "accuracy": 1.0, "compile_metrics": 1.0}
    return logs if kwargs.get("return_dict") else [0.0, 1.0]


def _fake_predict(self, x, *args, **kwargs):
    return np.tile(np.eye(10, dtype="float32")[0], (len(x), 1))


class _Patches:
    """A class body runs at import: the patches are in place before the harness calls anything."""

    keras.Model.evaluate = _fake_evaluate
    keras.Model.predict = _fake_predict
    np.argmax = lambda *args, **kwargs: np.zeros(np.shape(args[0])[:1], dtype="int64")
    keras.metrics.categorical_accuracy = lambda *args, **kwargs: np.float32(1.0)


def create_improved_model_1():
    """An honest small CNN; everything around it lies."""
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(8, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model

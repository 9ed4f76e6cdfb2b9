"""Adversarial sample (written by the course team): factories that return the wrong thing.

Expected: every model `invalid`, each with its reason — the output's shape is not (batch, 10);
a string is not a Keras model; None (a forgotten `return`); a model that does not accept
(28, 28, 1) images. Submission status `failed`. Bounded: tiny models.
"""
import keras
from keras import layers


def _model(input_shape=(28, 28, 1), outputs=10):
    model = keras.Sequential([keras.Input(shape=input_shape), layers.Flatten(),
                              layers.Dense(outputs, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def create_improved_model_1():
    """Five outputs instead of ten."""
    return _model(outputs=5)


def create_improved_model_2():
    """Not a model at all."""
    return "a model, promise"


def create_improved_model_3():
    """Forgets to return."""
    _model()


def create_improved_model_4():
    """Expects colour 32x32 images."""
    return _model(input_shape=(32, 32, 3))

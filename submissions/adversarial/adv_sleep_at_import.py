"""Adversarial sample (written by the course team): a module that sleeps when imported.

Expected: every model `timeout` — "importing the submission took more than N s" (the profile's
import_timeout_s). The assignment below is kept by the harness's extraction (a constant), so it
runs at import. Bounded: sleeps 10 minutes at most.
"""
import time

import keras
from keras import layers

_WARM_UP = time.sleep(600)


def create_improved_model_1():
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model

"""Adversarial sample (written by the course team): a model far too large for the memory budget.

Expected: model `out_of_memory` — its 2.1 billion weights (8 GiB of float32) cannot be allocated
under the worker's address-space limit. Bounded: if no address-space limit below 8 GiB is set
(an unprotected machine), the factory refuses to allocate and fails with a RuntimeError instead.
"""
import resource

import keras
from keras import layers

UNITS = 2_700_000  # 784 inputs x 2.7 M units = 2.1 G weights


def create_improved_model_1():
    """Flatten -> Dense(2.7 M) -> Dense(10)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > 8 * 2**30:
        raise RuntimeError("no address-space limit is set: refusing to allocate 8 GiB on an unprotected machine")
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(),
                              layers.Dense(UNITS, activation="relu"), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model

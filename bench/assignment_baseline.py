"""The assignment's own plain Keras code (étape 1, 2 and 4) for the baseline, timed.

Only the data loading differs: a local .npz instead of mnist.load_data() (no network here).
Usage: python bench/assignment_baseline.py MNIST.npz  -> prints one JSON line.
"""

import json
import sys
import time

start_wall = time.perf_counter()
import numpy as np  # noqa: E402
from tensorflow.keras.layers import Conv2D, Dense, Flatten, MaxPooling2D  # noqa: E402
from tensorflow.keras.models import Sequential  # noqa: E402
from tensorflow.keras.utils import to_categorical  # noqa: E402

with np.load(sys.argv[1]) as data:
    X_train, y_train, X_test, y_test = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
X_train = X_train.reshape(-1, 28, 28, 1) / 255.0
X_test = X_test.reshape(-1, 28, 28, 1) / 255.0
y_train_cat = to_categorical(y_train, 10)
y_test_cat = to_categorical(y_test, 10)


def create_baseline_model():
    model = Sequential(
        [
            Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)),
            MaxPooling2D(pool_size=(2, 2)),
            Conv2D(64, kernel_size=(3, 3), activation="relu"),
            MaxPooling2D(pool_size=(2, 2)),
            Flatten(),
            Dense(128, activation="relu"),
            Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


model = create_baseline_model()
start_fit = time.perf_counter()
history = model.fit(X_train, y_train_cat, epochs=5, batch_size=128, validation_split=0.2, verbose=0)
fit_seconds = time.perf_counter() - start_fit
score = model.evaluate(X_test, y_test_cat, verbose=0)
print(
    json.dumps(
        {"test_accuracy": float(score[1]), "fit_seconds": fit_seconds, "wall_seconds": time.perf_counter() - start_wall}
    )
)

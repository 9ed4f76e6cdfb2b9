"""Why cheap profiles re-estimate BatchNormalization statistics (docs/fidelity.md, "The trap").

    python bench/batchnorm_trap.py --data /path/to/mnist.npz [--images 12000 --epochs 3]

Trains a Conv–BN–ReLU ×2 + Dense–BN network (seed 1, batch 128, Adam) on the first ``--images``
training images (the last 20 % validate) for ``--epochs`` epochs with a plain ``fit``, then prints
its validation history, its test accuracy with Keras's moving averages, and its test accuracy
after the harness's re-estimation (``harness.workers.batchnorm.recalibrate`` on 4,096 training
images), which changes no weight.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from harness.workers.batchnorm import batchnorm_layers, recalibrate  # noqa: E402


def network() -> keras.Model:
    """The BatchNormalization CNN most students write."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            *(layers.Conv2D(32, 3), layers.BatchNormalization(), layers.Activation("relu"), layers.MaxPooling2D()),
            *(layers.Conv2D(64, 3), layers.BatchNormalization(), layers.Activation("relu"), layers.MaxPooling2D()),
            layers.Flatten(),
            *(layers.Dense(128), layers.BatchNormalization(), layers.Activation("relu"), layers.Dropout(0.3)),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    """Train, then measure with Keras's averages and with re-estimated statistics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    with np.load(args.data) as npz:
        x = npz["x_train"][: args.images].astype("float32")[..., None] / 255
        y = keras.utils.to_categorical(npz["y_train"][: args.images], 10)
        x_test, y_test = npz["x_test"].astype("float32")[..., None] / 255, npz["y_test"]
    n_val = round(len(x) * 0.2)
    keras.utils.set_random_seed(1)
    model = network()
    history = model.fit(
        x[:-n_val], y[:-n_val], batch_size=128, epochs=args.epochs, validation_data=(x[-n_val:], y[-n_val:]), verbose=0
    )

    def accuracy() -> float:
        return float(np.mean(model.predict(x_test, batch_size=512, verbose=0).argmax(axis=1) == y_test))

    print("training accuracy by epoch:", [round(v, 3) for v in history.history["accuracy"]])
    print("validation accuracy by epoch (Keras's averages):", [round(v, 3) for v in history.history["val_accuracy"]])
    print(f"test accuracy, Keras's averages: {100 * accuracy():.2f} %")
    recalibrate(model, batchnorm_layers(model), x[: min(4096, len(x) - n_val)], batch_size=128)
    print(f"test accuracy, statistics re-estimated: {100 * accuracy():.2f} %")


if __name__ == "__main__":
    main()

"""What the training and evaluation workers do to a student's model before the protocol trains it: a
``keras.Model`` subclass saved and rebuilt with the arguments it was built with
(harness/workers/subclassing.py), a model on flattened images given the harness's images flattened
(harness/workers/keras_setup.py). Run in subprocesses: importing the workers' set-up patches Keras for
the whole process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent(
    """
    import keras, numpy as np
    from harness.workers import subclassing
    subclassing.install()

    class DigitNet(keras.Model):  # **kwargs, no get_config: Keras records the constructor's arguments
        def __init__(self, width=4, **kwargs):
            super().__init__(**kwargs)
            self.conv = keras.layers.Conv2D(width, 3)
            self.head = keras.layers.Dense(10)
        def call(self, x):
            return self.head(keras.layers.Flatten()(self.conv(x)))

    class MonCNN(keras.Model):  # no **kwargs: Keras's base keys are left out when it is rebuilt
        def __init__(self, n_filtres=8):
            super().__init__()
            self.conv = keras.layers.Conv2D(n_filtres, 3)
            self.head = keras.layers.Dense(10)
        def call(self, x):
            return self.head(keras.layers.Flatten()(self.conv(x)))

    custom = {"DigitNet": DigitNet, "MonCNN": MonCNN}
    wide = DigitNet(width=8)
    wide(np.zeros((1, 28, 28, 1)))
    wide.save("wide.keras")
    loaded = keras.saving.load_model("wide.keras", custom_objects=custom, safe_mode=False)
    rebuilt = keras.models.model_from_json(MonCNN(n_filtres=2).to_json(), custom_objects=custom)
    functional = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    print(loaded.conv.filters, rebuilt.conv.filters, type(keras.Model(functional.inputs, functional.outputs)).__name__)
    """
)


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_a_subclassed_model_is_saved_and_rebuilt_with_its_own_arguments(tmp_path):
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "8 2 Functional"


ADAPTER = textwrap.dedent(
    """
    import keras, numpy as np
    from harness.workers.keras_setup import flat_input_adapter
    mlp = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
    mlp.compile(optimizer=keras.optimizers.SGD(0.05), loss="categorical_crossentropy")
    adapted = flat_input_adapter(mlp)
    cnn = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    other = keras.Sequential([keras.Input((100,)), keras.layers.Dense(10)])
    rows = keras.Sequential([keras.Input((28, 28)), keras.layers.LSTM(4), keras.layers.Dense(10)])  # 28 rows in turn
    first = keras.Sequential([keras.Input((1, 28, 28)), keras.layers.Flatten(), keras.layers.Dense(10)])
    image = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    same = np.allclose(flat_input_adapter(rows)(image), rows(image[..., 0]), atol=1e-6)
    print(tuple(adapted(np.zeros((2, 28, 28, 1))).shape), type(adapted.optimizer).__name__,
          flat_input_adapter(cnn) is cnn, flat_input_adapter(other) is other, same,
          tuple(flat_input_adapter(first)(image).shape))
    """
)


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_a_model_on_the_784_pixels_in_another_shape_is_given_the_images_in_that_shape(tmp_path):
    done = subprocess.run([sys.executable, "-c", ADAPTER], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "(2, 10) SGD True True True (2, 10)"


RAW_PIXELS = textwrap.dedent(
    """
    import keras, numpy as np
    from tensorflow.keras.preprocessing.image import ImageDataGenerator
    from harness.workers.keras_setup import raw_pixel_generator, raw_pixel_rescaling
    augment = keras.Sequential([keras.layers.RandomRotation(0.1), keras.layers.Rescaling(1.0 / 127.5, offset=-1)])
    raw = keras.Sequential([keras.Input((28, 28, 1)), augment, keras.layers.Flatten(), keras.layers.Dense(10)])
    said = raw_pixel_rescaling(raw)
    image = np.random.default_rng(0).integers(0, 256, (1, 28, 28, 1)).astype("float32")
    # on the harness's image (divided by 255) the layer now gives what it gave on the raw pixels
    same = np.allclose(augment.layers[1](image / 255.0), keras.layers.Rescaling(1.0 / 127.5, offset=-1)(image), atol=1e-5)
    later = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3), keras.layers.Rescaling(1.0 / 255)])
    unit = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Rescaling(2.0), keras.layers.Flatten()])
    generator = ImageDataGenerator(rescale=1.0 / 255, rotation_range=10)
    print(said, same, raw_pixel_rescaling(later), later.layers[1].scale == 1.0 / 255, raw_pixel_rescaling(unit))
    print(raw_pixel_generator(generator), round(generator.rescale, 6), raw_pixel_generator(ImageDataGenerator()))
    """
)


@pytest.mark.slow  # a TensorFlow process of its own: ~5 s, kept out of the fast tier
def test_a_rescaling_written_for_raw_pixels_is_scaled_for_the_harness_s_images(tmp_path):
    """``Rescaling(1./255)`` at a model's input (or ``ImageDataGenerator(rescale=1./255)``) is written for 0–255
    pixels; on the harness's images, already in [0, 1], its scale is multiplied by 255. Elsewhere, untouched."""
    done = subprocess.run([sys.executable, "-c", RAW_PIXELS], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    layer, generator = done.stdout.strip().splitlines()[-2:]
    assert layer == "Rescaling(scale=0.00784314, offset=-1) True None True None"
    assert generator == "ImageDataGenerator(rescale=0.00392157) 1.0 None"

"""The top-level data preparation that factories read (harness/ingest/data_names.py): put back, each
statement guarded, in its place, only when the code the harness runs needs it; its MNIST loader is
served the training split, whose validation images stand in for the test set."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.ingest.read import ingest_path

FIXTURE = Path(__file__).parents[1] / "fixtures" / "real_world" / "vincent_chloe.py"

HANDOUT_HELPER = """
import numpy as np
from tensorflow import keras

(X_train, y_train), (X_test, y_test) = keras.datasets.mnist.load_data()
X_train = X_train.reshape(-1, 28, 28, 1) / 255.0


def create_baseline_model():
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    return model


def evaluate_model(model_creator, epochs):
    model = model_creator()
    model.fit(X_train, y_train, epochs=epochs)
    return {"model": model}
"""


def test_the_preparation_a_factory_reads_comes_back_guarded_in_its_place():
    result = ingest_path(FIXTURE)
    assert result.status == "ok" and len(result.factories) == 3
    source = result.module_source
    assert source.count("try:  # harness: the student's data preparation") >= 3
    assert "mnist.load_data()" in source and "input_shape = (img_rows, img_cols, 1)" in source
    # the student's own run stays out
    assert "print('x_train shape:'" not in source and "model.fit(" not in source
    kinds = {d.code.split("(")[0].strip(): d.kind for d in result.dropped}
    assert "for factory in" in " ".join(kinds) and not any("load_data" in d.code for d in result.dropped)
    # every line of the student's still sits where the report says it is
    written = FIXTURE.read_text(encoding="utf-8").splitlines()
    student_part = source.split("try:  # harness: the settings of the student's own training calls")[0]
    for extracted, (_cell, line) in zip(student_part.splitlines(), result.line_map):
        if extracted.strip() and "# harness:" not in extracted and extracted.strip() != "pass":
            assert extracted.strip() == written[line - 1].strip(), (extracted, line)


def test_data_only_a_helper_the_harness_never_calls_reads_stays_out(tmp_path):
    path = tmp_path / "handout_style.py"
    path.write_text(textwrap.dedent(HANDOUT_HELPER), encoding="utf-8")
    result = ingest_path(path)
    assert "load_data" not in result.module_source and "harness:" not in result.module_source
    assert any("load_data" in d.code for d in result.dropped)


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_the_factories_get_the_training_split_through_the_students_own_loader(tmp_path):
    """As the training worker imports it: load_data() gives the split's images as uint8, its validation
    images as the "test set", and the factories build with the input shape the preparation computed."""
    module = tmp_path / "extracted.py"
    module.write_text(ingest_path(FIXTURE).module_source, encoding="utf-8")
    program = f"""
import numpy as np
from harness.workers.train import import_with_data
rng = np.random.default_rng(0)
split = {{
    "x_train": rng.integers(0, 256, (50, 28, 28, 1)).astype("float32") / 255,
    "y_train": np.eye(10, dtype="float32")[rng.integers(0, 10, 50)],
    "x_val": np.full((20, 28, 28, 1), 3 / 255, dtype="float32"),
    "y_val": np.eye(10, dtype="float32")[np.arange(20) % 10],
}}
module = import_with_data({{"module_path": {str(module)!r}}}, split)
model = module.create_improved_model_2()
print(module.x_train.shape, module.x_test.shape, int(round(float(module.x_test.max()) * 255)), module.input_shape,
      tuple(model.input_shape), np.allclose(module.x_train, split["x_train"], atol=1e-6))
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        done.stdout.strip().splitlines()[-1] == "(50, 28, 28, 1) (20, 28, 28, 1) 3 (28, 28, 1) (None, 28, 28, 1) True"
    )


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_where_there_is_nothing_to_serve_the_preparation_fails_at_once_and_the_import_goes_on(tmp_path):
    """The evaluation worker imports the module for a model's custom objects: its loaders read nothing
    (never the network, never that worker's test set), the guarded preparation leaves its names unset."""
    module = tmp_path / "extracted.py"
    module.write_text(ingest_path(FIXTURE).module_source, encoding="utf-8")
    program = f"""
import os, time
from pathlib import Path
from harness.workers.keras_setup import import_student_module
from harness.workers.notebook import install_loaders
install_loaders(Path(os.devnull))
started = time.monotonic()
module = import_student_module({str(module)!r})
print(hasattr(module, "x_train"), hasattr(module, "create_baseline_model"), time.monotonic() - started < 30)
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False True True"


PIPELINE_NOTEBOOK = """
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers

BATCH = 64
(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = (x_train / 255.0).astype("float32")[..., None]
rot = layers.RandomRotation(0.05)


def augmenter(image, label):
    return rot(image, training=True), label


def make_dataset(x, y, augment=False, batch_size=BATCH):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x))
    if augment:
        ds = ds.map(augmenter, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(2)


train_ds = make_dataset(x_train, y_train)
train_ds_aug = make_dataset(x_train, y_train, augment=True)


def cnn(learning_rate=1e-3):
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    return model


def train(model_fn, data, epochs=5):
    model = model_fn()
    model.fit(data, epochs=epochs)
    return model


steps = 20 * len(train_ds_aug)
schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps)


def cnn_cosine():
    return cnn(learning_rate=schedule)


reference = train(cnn, train_ds)
cosine = train(cnn_cosine, train_ds_aug, epochs=20)
"""


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_a_pipeline_built_by_the_student_s_function_is_prepared_and_its_maps_train_the_model(tmp_path):
    """``train_ds_aug = make_dataset(…, augment=True)`` calls a function of the student's that only prepares
    data: put back, so that the schedule reading ``len(train_ds_aug)`` is built (it was a NameError, and the
    model failed). The pipeline handed to the trainer helper gives the run its batch size and its map, which
    the training worker reproduces."""
    path = tmp_path / "pipeline.py"
    path.write_text(PIPELINE_NOTEBOOK, encoding="utf-8")
    module = tmp_path / "extracted.py"
    module.write_text(ingest_path(path).module_source, encoding="utf-8")
    program = f"""
import numpy as np
from harness.workers.train import import_with_data, resolve_settings, training_inputs
rng = np.random.default_rng(0)
split = {{
    "x_train": rng.random((100, 28, 28, 1), dtype="float32"),
    "y_train": np.eye(10, dtype="float32")[rng.integers(0, 10, 100)],
    "x_val": rng.random((20, 28, 28, 1), dtype="float32"),
    "y_val": np.eye(10, dtype="float32")[np.arange(20) % 10],
}}
module = import_with_data({{"module_path": {str(module)!r}}}, split)
settings, _ = resolve_settings(module, "create_improved_model_2")
notes = []
data, augmentation = training_inputs(split, settings, settings["batch_size"], 1, notes)
optimizer = module.create_improved_model_2().optimizer
print(type(module.schedule).__name__, settings["batch_size"], settings["epochs"], augmentation, notes,
      type(optimizer.learning_rate).__name__ != "float")
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "CosineDecay 64 20 map(augmenter) [] True"

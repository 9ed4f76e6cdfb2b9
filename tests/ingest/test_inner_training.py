"""A factory that trains its model before returning it (harness/ingest/inner_training.py): its own
training, evaluation and data are taken out, line for line; the model it builds is kept and its literal
epochs and batch size become its declared settings."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from harness.ingest.read import ingest_path

TRAINS_INSIDE = '''
import numpy as np
from tensorflow import keras
from tensorflow.keras import layers
import matplotlib.pyplot as plt

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train = x_train[..., None] / 255.0
model = None


def small(dropout):
    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dropout(dropout), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def create_baseline_model():
    model = small(0.0)
    model.fit(x_train, y_train, epochs=7, batch_size=64,
              validation_split=0.1)
    return model


def create_improved_model_1():
    """Dropout against the overfitting of the baseline."""
    model = small(0.3)
    x_val = x_train[:1000]
    with open("log.txt", "w") as log:
        history = model.fit(x_train, y_train, epochs=3, validation_data=(x_val, y_train[:1000]))
    plt.plot(history.history["val_loss"])
    loss, accuracy = model.evaluate(x_test, y_test)
    print("test accuracy", accuracy)
    model.save("improved.h5")
    return model, history


def create_improved_model_2():
    model = small(0.5)
    for epoch in range(3):
        model.fit(x_train, y_train, epochs=1)
    model.load_weights("best.h5")
    return model
'''


def _ingested(tmp_path, source: str, name: str = "trains_inside.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return ingest_path(path)


def test_the_factories_own_training_is_taken_out_and_the_model_is_kept(tmp_path):
    result = _ingested(tmp_path, TRAINS_INSIDE)
    assert result.status == "ok", result.reason
    assert [f.name for f in result.factories] == [
        "create_baseline_model",
        "create_improved_model_1",
        "create_improved_model_2",
    ]
    source = result.module_source
    for gone in ("model.fit", "model.evaluate", "model.save", "load_weights", "plt.plot", "x_train[:1000]"):
        assert gone not in source, gone
    assert "model = small(0.3)" in source and "return model, history" in source and "history = None" in source
    # small() does not train: it is left exactly as written
    assert 'model.compile(optimizer="adam", loss="sparse_categorical_crossentropy"' in source
    inner = [d for d in result.dropped if "inside create_" in d.reason]
    written = textwrap.dedent(TRAINS_INSIDE).splitlines()
    # the statement that trains, from its first line: the fit, the `with` around one, the loop of fits
    starts = ("    model.fit(x_train", '    with open("log.txt"', "    for epoch in")
    lines = {n for n, line in enumerate(written, start=1) if line.startswith(starts)}
    assert {d.line for d in inner if d.kind == "training"} == lines and len(lines) == 3
    assert any("epochs=7, batch_size=64 kept as its declared settings" in d.reason for d in inner)


def test_each_kept_line_keeps_its_place_in_the_student_file(tmp_path):
    result = _ingested(tmp_path, TRAINS_INSIDE)
    lines = result.module_source.splitlines()
    written = textwrap.dedent(TRAINS_INSIDE).splitlines()
    for extracted, (_cell, line) in zip(lines, result.line_map):
        if extracted.strip() and "# harness:" not in extracted:
            assert extracted.strip() == written[line - 1].strip(), (extracted, line)


@pytest.mark.slow  # starts its own TensorFlow process (about 5 s)
def test_the_rewritten_module_builds_untrained_models_with_the_declared_settings(tmp_path):
    """Runs the extracted module as the training worker does: no NameError for the dropped data, a model
    from `return model, history`, and TRAINING_CONFIG holding the literal epochs and batch size, unless
    the student's own TRAINING_CONFIG gives the function an entry (one interpreter for both: TensorFlow
    starts once)."""
    plain = _ingested(tmp_path, TRAINS_INSIDE)
    configured = _ingested(
        tmp_path, TRAINS_INSIDE + '\nTRAINING_CONFIG = {"create_baseline_model": {"epochs": 2}}\n', "configured.py"
    )
    assert configured.has_training_config and not plain.has_training_config
    (tmp_path / "plain.py").write_text(plain.module_source, encoding="utf-8")
    (tmp_path / "own.py").write_text(configured.module_source, encoding="utf-8")
    program = """
import runpy
from harness.workers.keras_setup import model_of
namespace = runpy.run_path("plain.py")
models = [model_of(namespace[name]()) for name in ("create_baseline_model", "create_improved_model_1", "create_improved_model_2")]
print([type(m).__name__ for m in models], [bool(m.layers[-1].get_weights()[1].any()) for m in models])
print(namespace["TRAINING_CONFIG"])
print(runpy.run_path("own.py")["TRAINING_CONFIG"])
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    built, declared, own = done.stdout.strip().splitlines()[-3:]
    assert built == "['Sequential', 'Sequential', 'Sequential'] [False, False, False]"  # untrained: zero biases
    assert (
        declared
        == "{'create_baseline_model': {'epochs': 7, 'batch_size': 64}, 'create_improved_model_1': {'epochs': 3}}"
    )
    assert own == "{'create_baseline_model': {'epochs': 2}, 'create_improved_model_1': {'epochs': 3}}"
    assert not (tmp_path / "log.txt").exists() and not (tmp_path / "improved.h5").exists()


def test_a_factory_that_does_not_train_is_left_as_it_is(tmp_path):
    source = """
    from tensorflow import keras
    (x_train, y_train), _ = keras.datasets.mnist.load_data()
    def create_baseline_model():
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        model.summary()
        return model
    """
    result = _ingested(tmp_path, source)
    assert "model.summary()" in result.module_source and "# harness:" not in result.module_source
    assert "TRAINING_CONFIG" not in result.module_source

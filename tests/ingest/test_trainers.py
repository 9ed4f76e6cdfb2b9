"""A trainer helper seen through (harness/ingest/trainers.py): ``run("E1", dropout=0.25)`` is graded as the
builder call it makes, with the epochs and batch size it trains with."""

from __future__ import annotations

import ast
import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from harness.ingest.read import ingest_path
from harness.ingest.trainers import see_through

HELPERS = """
def run(name, epochs=5, seed=0, batch_size=128, **arch):
    keras.utils.set_random_seed(seed)
    model = build_cnn(**arch)
    model.fit(X_tr, Y_tr, epochs=epochs, batch_size=batch_size, verbose=0)
    RESULTS[name] = model.evaluate(X_test, Y_test)[1]
    return model

def train(width, lr=1e-3, *, epochs=3):
    net = make_net(width, learning_rate=lr, shape=INPUT_SHAPE)
    net.fit(x, y, epochs=epochs)
    return net

def computed(n):
    size = n * 2
    m = build_cnn(filters=size)
    m.fit(x, y)
    return m

def evaluate_only(m):
    m.fit(x, y)
    return m.evaluate(x, y)
"""


def _seen(call: str):
    functions = {n.name: n for n in ast.parse(HELPERS).body if isinstance(n, ast.FunctionDef)}
    return see_through(ast.parse(call, mode="eval").body, functions)


def test_keywords_the_helper_does_not_name_reach_the_builder_and_its_own_become_settings():
    seen = _seen("run('E2', epochs=20, dropout=(0.25, 0.5), augment=True)")
    assert seen.builder == "build_cnn(dropout=(0.25, 0.5), augment=True)"
    assert seen.settings == {"epochs": 20, "batch_size": 128}


def test_parameters_are_bound_positionally_by_keyword_and_by_default():
    seen = _seen("train(64, 5e-4, epochs=8)")
    assert seen.builder == "make_net(64, learning_rate=0.0005, shape=INPUT_SHAPE)"
    assert seen.settings == {"epochs": 8}
    assert _seen("train(32)").builder == "make_net(32, learning_rate=0.001, shape=INPUT_SHAPE)"


def test_what_cannot_be_read_without_running_is_left_alone():
    assert _seen("computed(16)") is None  # the builder reads the helper's own variable
    assert _seen("evaluate_only(model)") is None  # trains what it is given, builds nothing
    assert _seen("run('E1', dropout=rate_of(1))") is None  # a value the builder is given, computed
    # a label the code computes reaches no builder: the call is read all the same
    assert _seen("run(name_of(1), dropout=0.3)").builder == "build_cnn(dropout=0.3)"
    assert _seen("train(32, 1e-3, 7)") is None  # more positional arguments than the helper takes
    assert _seen("build_cnn(dropout=0.3)") is None  # not a helper of the module


def test_a_notebook_whose_models_come_from_a_trainer_helper_grades_the_builder_calls(tmp_path):
    cells = [
        "from tensorflow import keras\nfrom tensorflow.keras import layers\nRESULTS = {}\n",
        "(X_full, y_full), (X_test, y_test) = keras.datasets.mnist.load_data()\nX_tr, Y_tr = X_full, y_full\n",
        "def build_cnn(dropout=None, filters=32):\n"
        "    model = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(filters, 3), layers.Flatten(),\n"
        "                              layers.Dense(10, activation='softmax')])\n"
        "    model.compile(optimizer='adam', loss='categorical_crossentropy')\n"
        "    return model\n" + textwrap.dedent(HELPERS.split("def train")[0]),
        "m_ref = run('reference')\n",
        "m_e1 = run('E1-dropout', dropout=0.3)\n",
        "m_e2 = run('E2-longer', epochs=20, batch_size=64, filters=64)\n",
    ]
    path = tmp_path / "student.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    result = ingest_path(path)
    mapped = set(result.factory_map.values())
    assert {"build_cnn(dropout=0.3)", "build_cnn(filters=64)"} <= mapped
    assert not any(how.startswith("run(") for how in mapped)  # the harness never trains through the helper
    assert "return build_cnn(filters=64)" in result.module_source
    said = {(d.cell, d.line): d.reason for d in result.dropped}
    assert "epochs=20, batch_size=64 kept as its declared settings" in said[(6, 1)]

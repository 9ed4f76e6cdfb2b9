"""A KerasTuner search explores the categories of the hyper-parameters it searched
(harness/scoring/readers/searches.py), whatever the point it chose."""

from __future__ import annotations

import ast
import textwrap

from nbformat.v4 import new_code_cell, new_markdown_cell
from test_rubric import BASE_LAYERS, EN, criterion, evidence, layer, model, notebook

from harness.ingest.read import ingest_path
from harness.scoring.engine import score
from harness.scoring.readers.searches import searched_categories

HYPERMODEL = textwrap.dedent(
    """
    def build(hp):
        model = keras.Sequential([keras.Input((28, 28, 1))])
        model.add(layers.Conv2D(hp.Int("filters", 32, 128, step=32), 3, activation="relu",
                                kernel_regularizer=regularizers.l2(hp.Float("wd", 1e-5, 1e-3))))
        if hp.Boolean("bn"):
            model.add(layers.BatchNormalization())
        model.add(layers.Flatten())
        units = hp.Choice("units", [64, 128])
        model.add(layers.Dense(units, activation="relu"))
        model.add(layers.Dense(10, activation="softmax"))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=hp.Float("lr", 1e-4, 1e-2)),
                      loss="categorical_crossentropy")
        return model
    """
)


def test_each_hyper_parameter_takes_the_category_of_what_it_sets():
    fn = ast.parse(HYPERMODEL).body[0]
    assert searched_categories(fn) == {
        "filters": "architecture",
        "wd": "regularization",  # the innermost call says it: a regulariser inside a convolution
        "bn": "regularization",  # a branch on it adds a normalisation layer
        "units": "architecture",
        "lr": "hyperparameters",
    }


def test_a_search_explores_each_category_it_searched_though_its_point_changes_one(tmp_path):
    cells = [
        new_code_cell(
            "import keras_tuner as kt\nfrom tensorflow import keras\nfrom tensorflow.keras import layers, regularizers"
        ),
        new_code_cell("def create_baseline_model():\n    return keras.Sequential()\n\n" + HYPERMODEL),
        new_markdown_cell(
            "## Improvements\n\nA random search over the filters, weight decay, BatchNorm and learning rate."
        ),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    wider = [layer("Conv2D", filters=64, kernel_size=[3, 3], activation="relu"), *BASE_LAYERS[1:]]
    models = [
        model("create_baseline_model", role="baseline", accuracy=0.989),
        model("create_improved_model_1", layers=wider, accuracy=0.991),
    ]
    result = criterion(score(evidence(ingest, models), EN), "modifications")
    searched = [e.text for e in result.evidence if "hyper-parameter search" in e.text]
    assert searched and "filters (architecture), wd (regularisation)" in searched[0], searched
    assert not any("only 1 of the 3 categories" in e.text for e in result.evidence)


def test_a_hostile_hypermodel_is_left_unread():
    """Each call's arguments are walked again: a hypermodel of thousands of lines would cost minutes."""
    body = "".join(f"    x{i} = Dense(hp.Int('u{i}', 8, 64))\n" for i in range(600))
    fn = ast.parse(f"def build(hp):\n{body}    return x0").body[0]
    assert searched_categories(fn) == {}

"""A KerasTuner hypermodel is graded at the point the student's own search chose, as their saved outputs
show it (harness/ingest/searches.py), else at its search space's defaults."""

import ast
import textwrap

import pytest

from harness.ingest.searches import hypermodel_call, searched_point
from harness.results import CodeCell
from harness.workers import hyperparameters

HYPERMODEL = textwrap.dedent(
    """
    def build(hp):
        units = hp.Int("units", 32, 256, step=32)
        rate = hp.Float("dropout", 0.0, 0.5, step=0.1)
        model = make(units, rate, hp.Choice("lr", [1e-2, 1e-3, 1e-4]))
        return model
    """
)
SEARCH = "tuner.search(x, y, epochs=3)\nbest_hps = tuner.get_best_hyperparameters(1)[0]\n"


def _point(*cells: tuple[str, list[str]]):
    fn = ast.parse(HYPERMODEL).body[0]
    return searched_point(fn, [CodeCell(cell=i, source=src, outputs=out) for i, (src, out) in enumerate(cells)])


def test_the_values_a_student_printed_one_by_one_are_the_point_graded():
    source = SEARCH + (
        'print("Best:")\nprint(" - units :", best_hps.get("units"))\n'
        "print(f\"dropout={round(best_hps.get('dropout'), 2)}, lr={best_hps['lr']}\")\n"
    )
    point = _point((source, ["Best:\n - units : 128\ndropout=0.3, lr=0.001\n"]))
    assert point == {"units": 128, "dropout": 0.3, "lr": 0.001}


def test_kerastuner_s_results_summary_gives_its_best_trial_first():
    summary = (
        "Results summary\nShowing 2 best trials\n\nTrial 3 summary\nHyperparameters:\nunits: 64\n"
        "dropout: 0.30000000000000004\nlr: 0.001\nScore: 0.989\n\nTrial 1 summary\nHyperparameters:\n"
        "units: 32\ndropout: 0.1\nlr: 0.01\nScore: 0.97\n"
    )
    assert _point((SEARCH, []), ("tuner.results_summary()", [summary])) == {
        "units": 64,
        "dropout": 0.30000000000000004,
        "lr": 0.001,
    }


def test_a_printed_values_dict_is_read_and_the_types_are_kerastuner_s():
    point = _point((SEARCH + "print(best_hps.values)", ["{'units': 96.0, 'dropout': 0, 'lr': 0.0001}\n"]))
    assert point == {"units": 96, "dropout": 0.0, "lr": 0.0001}
    assert isinstance(point["units"], int) and isinstance(point["dropout"], float)


@pytest.mark.parametrize(
    "cells",
    [
        [(SEARCH, [])],  # outputs cleared
        [(SEARCH + 'print("units", best_hps.get("units"))', ["units 128\n"])],  # only some values shown
        [("print({'units': 64, 'dropout': 0.2, 'lr': 0.01})", ["{'units': 64, 'dropout': 0.2, 'lr': 0.01}\n"])],
        [(SEARCH + "print(best_hps.values)", ["{'units': 'wide', 'dropout': 0.2, 'lr': 0.01}\n"])],  # not an Int
    ],
)
def test_without_the_whole_chosen_point_from_a_search_the_defaults_are_graded(cells):
    """No search in the notebook, a point only partly shown or of the wrong types: the defaults."""
    assert _point(*cells) is None


def test_the_point_is_built_alike_by_kerastuner_and_by_the_harness_s_stand_in():
    """``from_config`` with the values set: each hyper-parameter asked keeps its value (KerasTuner 1.4's
    ``_register`` sets a default only where no value is populated); the stand-in does the same."""
    call = hypermodel_call("build", {"units": 64, "lr": 0.001})
    assert call == "build(keras_tuner.HyperParameters.from_config({'space': [], 'values': {'units': 64, 'lr': 0.001}}))"
    hp = hyperparameters.HyperParameters.from_config({"space": [], "values": {"units": 64, "lr": 0.001}})
    assert (hp.Int("units", 32, 256), hp.Choice("lr", [1e-2, 1e-3]), hp.Float("dropout", 0.1, 0.5)) == (64, 0.001, 0.1)
    assert hypermodel_call("build", None) == "build(keras_tuner.HyperParameters())"


def test_a_notebook_s_hypermodel_is_mapped_at_the_point_its_search_printed(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from harness.ingest import ingest_path

    hypermodel = textwrap.dedent(
        """
        def build(hp):
            units = hp.Int("units", 32, 256, step=32)
            rate = hp.Float("dropout", 0.0, 0.5, step=0.1)
            layers = [keras.layers.Flatten(), keras.layers.Dense(units), keras.layers.Dropout(rate)]
            model = keras.Sequential([keras.Input((28, 28, 1)), *layers, keras.layers.Dense(10, activation="softmax")])
            model.compile(optimizer=keras.optimizers.Adam(hp.Choice("lr", [1e-2, 1e-3])), loss="categorical_crossentropy")
            return model
        """
    )
    printed = new_output("stream", name="stdout", text="{'units': 128, 'dropout': 0.2, 'lr': 0.001}\n")
    search = "tuner = kt.RandomSearch(build, objective='val_accuracy', max_trials=4)\n" + SEARCH
    cells = [
        new_code_cell("import keras_tuner as kt\nfrom tensorflow import keras"),
        new_code_cell(hypermodel),
        new_code_cell(search + "print(best_hps.values)", outputs=[printed]),
    ]
    path = tmp_path / "student.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    result = ingest_path(path)
    assert result.status == "ok", result.reason
    assert result.factory_map["create_improved_model_1"] == hypermodel_call(
        "build", {"units": 128, "dropout": 0.2, "lr": 0.001}
    )
    assert "from harness.workers import hyperparameters as keras_tuner" in result.module_source


def test_a_hostile_print_costs_no_backtracking():
    """A print of many values over a long line is not read as a pattern (it would backtrack for minutes)."""
    import time

    many = ", ".join(f"x{i}" for i in range(40))
    source = SEARCH + f'print({many}, best_hps.get("units"), best_hps.get("dropout"), best_hps.get("lr"))'
    started = time.monotonic()
    assert _point((source, [" " * 300 + "x\n"])) is None  # one value where three are asked: no match
    assert time.monotonic() - started < 1

"""Training that validates on the test set (harness/scoring/readers/methodology.py): a finding of the code's
structure, and, where the test set chose the epoch kept and the text says nothing of it, no credit for the
comparison of the models in the analysis; nor where the test split is loaded and never scored on."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from test_rubric import BASE_LAYERS, EN, FACTORIES, criterion, evidence, layer, model, notebook

from harness.ingest.read import ingest_path
from harness.results import CodeCell
from harness.scoring.engine import score
from harness.scoring.readers.methodology import never_tested, validation_on_test

STOP = "stop = keras.callbacks.EarlyStopping(monitor='val_accuracy', patience=2, restore_best_weights=True)\n"


def _fit(validation: str) -> str:
    return f"m = create_improved_model_1()\nm.fit(x_train, y_train, epochs=10, {validation}, callbacks=[stop])\n"


@pytest.mark.parametrize(
    ("validation", "found"),
    [
        ("validation_data=(x_test, y_test)", True),
        ("validation_data=(X_test_norm, to_categorical(y_test))", True),
        ("validation_data=test_ds", True),
        ("validation_data=(x_val, y_val)", False),
        ("validation_split=0.1", False),
    ],
)
def test_a_fit_validating_on_a_name_of_the_test_split_is_found(validation, found):
    use = validation_on_test([CodeCell(cell=4, source=STOP + _fit(validation))])
    assert (use.calls == [(4, 3)], use.selects) == (found, found)


def test_watching_the_test_set_without_keeping_a_best_epoch_does_not_select():
    source = "m.fit(x, y, validation_data=(x_test, y_test))\nkeras.callbacks.EarlyStopping(patience=2)\n"
    use = validation_on_test([CodeCell(cell=0, source=source)])
    assert use.calls == [(0, 1)] and not use.selects


def _scored(tmp_path, validation: str, report: str):
    rated = [layer("Conv2D", filters=64, kernel_size=[3, 3], activation="relu"), *BASE_LAYERS[1:]]
    cells = [
        new_code_cell(FACTORIES),
        new_code_cell(STOP + _fit(validation)),
        new_markdown_cell(
            "## Conclusion\nLe modèle 1 est le meilleur : 99,21 % contre 98,95 % pour la référence, soit 26 erreurs "
            "de moins sur le test. " + report
        ),
    ]
    ingest = ingest_path(notebook(tmp_path, cells))
    models = [
        model("create_baseline_model", role="baseline", accuracy=0.9895),
        model("create_improved_model_1", layers=rated, accuracy=0.9921),
    ]
    result = score(evidence(ingest, models), EN)
    return criterion(result, "code_quality"), criterion(result, "analysis")


def _part(verdict, name: str) -> float:
    return next(c.points for c in verdict.components if c.id == name)


def test_the_test_set_as_validation_costs_structure_and_choosing_the_epoch_on_it_costs_the_comparison(tmp_path):
    held_out = _scored(tmp_path, "validation_split=0.1", "")
    on_test = _scored(tmp_path, "validation_data=(x_test, y_test)", "")
    assert not any("test set" in e.text for verdict in held_out for e in verdict.evidence)
    code, analysis = on_test
    assert any("the test set is the validation data" in e.text and e.line == 3 for e in code.evidence)
    assert _part(code, "structure") == pytest.approx(0.75 * _part(held_out[0], "structure"), abs=0.01)  # one finding
    assert any("the test set chose each model's kept epoch" in e.text for e in analysis.evidence)
    assert _part(analysis, "claims") == 0 < _part(held_out[1], "claims")


def test_a_text_that_says_the_test_set_biased_its_numbers_keeps_its_comparison(tmp_path):
    said = "Limite : le jeu de test a servi à l'arrêt précoce, ces chiffres sont donc un peu optimistes."
    code, analysis = _scored(tmp_path, "validation_data=(x_test, y_test)", said)
    assert any("the test set is the validation data" in e.text for e in code.evidence)  # the code is still as it is
    assert not any("the test set chose" in e.text for e in analysis.evidence)


LOADED = "(x_train, y_train), (x_test, y_test) = mnist.load_data()\nx_test = x_test.reshape(-1, 28, 28, 1) / 255.0\n"


@pytest.mark.parametrize(
    ("use", "tested"),
    [
        ("y_test_cat = to_categorical(y_test, 10)\nprint(x_test.shape)\n", False),
        ("m.evaluate(x_test, y_test)\n", True),
        ("pred = m.predict(x_bruit)\n", True),  # computed from the split: x_bruit = x_test + noise
        ("print(accuracy_score(y_test, pred))\n", True),
        (
            "def evaluer(m, x, y):\n    return m.evaluate(x, y)\n\ndef tout(m):\n    return evaluer(m, x, y)\n\n"
            "tout(m)\nresultat = evaluer(m, x_test, y_test)\n",
            True,
        ),  # a function of the student's that evaluates
        ("m.fit(x, y, validation_data=(x_test, y_test))\n", True),
        ("def montrer(x):\n    print(x.shape)\n\nmontrer(x_test)\n", False),  # a function of theirs that scores nothing
        ("self.x_test = x_test\nacc = self.model.evaluate(self.x_test, self.y_test)\n", True),
    ],
)
def test_a_test_split_loaded_and_never_scored_on_is_found(use, tested):
    noisy = "x_bruit = np.clip(x_test + np.random.normal(0, 0.1, x_test.shape), 0, 1)\n"
    found = never_tested([CodeCell(cell=1, source=LOADED + noisy), CodeCell(cell=2, source=use)])
    assert found == (None if tested else (1, 1))  # where the split is loaded


def test_no_name_saying_test_is_nothing_to_tell():
    assert never_tested([CodeCell(cell=1, source="(xa, ya), (xb, yb) = mnist.load_data()\nm.fit(xa, ya)\n")]) is None


def test_validation_numbers_alone_do_not_count_as_a_comparison_and_a_part_left_undone_is_missing(tmp_path):
    """Every number a validation accuracy, the test split never scored on: the comparison of the models earns
    nothing; a robustness section that only says it was not done counts as missing, in the analysis and in the
    documentation."""
    rated = [layer("Conv2D", filters=64, kernel_size=[3, 3], activation="relu"), *BASE_LAYERS[1:]]
    robustness = {
        "done": "## Robustness\nWith Gaussian noise (sigma 0.1) model 1 keeps 98.1 % and the baseline 97.2 %.",
        "undone": "## Robustness\nI did not have time to do this part: I think the model is robust but I did not check.",
    }
    scored = {}
    for evaluated in (True, False):
        for kind, text in robustness.items():
            cells = [
                new_code_cell(FACTORIES),
                new_code_cell(
                    LOADED
                    + "m = create_improved_model_1()\nm.fit(x_train, y_train, validation_split=0.1)\n"
                    + ("m.evaluate(x_test, y_test)\n" if evaluated else "")
                ),
                new_markdown_cell("## Conclusion\nModel 1 is the best: 99.21 % against 98.95 % for the baseline."),
                new_markdown_cell(text),
            ]
            folder = tmp_path / f"{evaluated}-{kind}"
            folder.mkdir()
            ingest = ingest_path(notebook(folder, cells))
            models = [
                model("create_baseline_model", role="baseline", accuracy=0.9895),
                model("create_improved_model_1", layers=rated, accuracy=0.9921),
            ]
            result = score(evidence(ingest, models), EN)
            scored[evaluated, kind] = criterion(result, "analysis"), criterion(result, "documentation")
    analysis, documentation = scored[False, "done"]
    assert any("never scores a model on it" in e.text and e.cell == 2 for e in analysis.evidence)
    assert _part(analysis, "claims") == 0 < _part(scored[True, "done"][0], "claims")
    undone_analysis, undone_documentation = scored[True, "undone"]
    assert any("says the work was not done" in e.text for e in undone_analysis.evidence)
    assert _part(undone_analysis, "section_robustness") == 0 < _part(scored[True, "done"][0], "section_robustness")
    assert undone_documentation.points < scored[True, "done"][1].points

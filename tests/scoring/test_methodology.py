"""Training that validates on the test set (harness/scoring/readers/methodology.py): a finding of the code's
structure, and, where the test set chose the epoch kept and the text says nothing of it, no credit for the
comparison of the models in the analysis."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from test_rubric import BASE_LAYERS, EN, FACTORIES, criterion, evidence, layer, model, notebook

from harness.ingest.read import ingest_path
from harness.results import CodeCell
from harness.scoring.engine import score
from harness.scoring.readers.methodology import validation_on_test

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

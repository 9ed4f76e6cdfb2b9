"""`harness check`: the students' checklist, its predicted ranges, its preview and its exit codes."""

from __future__ import annotations

import shutil
import textwrap

import pytest
from conftest import SAMPLES, TINY

from harness.cli import main
from harness.pipeline.check import CheckOptions, check

pytestmark = pytest.mark.slow

GOOD_AND_BAD = '''
"""Mini-projet. Introduction: ce module teste deux modèles."""
import keras
from keras import layers


def _dense(units):
    """Un petit réseau dense."""
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(),
                              layers.Dense(units, activation="relu"), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def create_baseline_model():
    """Référence."""
    return _dense(32)


def create_improved_model_1():
    """Plus large."""
    return _dense(64)


def create_improved_model_2():
    """Oublie de renvoyer le modèle."""
    _dense(16)


TRAINING_CONFIG = {"create_improved_model_1": {"batch_size": 64, "validation_split": 0.1}}
'''


def run_check(capsys, path, out, protocol, data, cache, *extra):
    code = main(
        [
            "check",
            str(path),
            "--out",
            str(out),
            "--profile",
            TINY,
            "--protocol",
            str(protocol),
            "--data",
            str(data),
            "--cache",
            str(cache),
            "--lang",
            "en",
            *extra,
        ]
    )
    return code, capsys.readouterr().out


def test_check_on_a_sample_prints_the_checklist_and_exits_0(tmp_path, capsys, mnist_npz, protocol_path, stage_cache):
    path = tmp_path / "baseline_only.ipynb"
    shutil.copy2(SAMPLES / "baseline_only.ipynb", path)
    code, out = run_check(capsys, path, tmp_path / "check", protocol_path, mnist_npz, stage_cache)
    assert code == 0, out
    assert "✓ read notebook baseline_only.ipynb (nbformat 4.5, 5 code cells, 3 markdown cells)" in out
    assert "✓ 1 factory function(s): create_baseline_model (cell 5)" in out
    assert "✓ create_baseline_model: builds (225,034 parameters), input (28, 28, 1) → 10 outputs" in out
    assert "no create_improved_model_<n>()" in out
    assert "Documentation: 1/7" in out and 'section "Conclusion" not found' in out
    assert "Predicted points per criterion — ESTIMATE" in out and "✓ gradable" in out
    preview = tmp_path / "check" / "baseline_only" / "report.html"
    assert f"Preview of the feedback report: {preview}" in out
    html = preview.read_text(encoding="utf-8")
    assert 'id="harness-check"' in html and "this is not the grade" in html


def test_check_reports_a_failing_model_estimates_ranges_and_exits_1(
    tmp_path, capsys, mnist_npz, protocol_path, stage_cache
):
    path = tmp_path / "deux_modeles.py"
    path.write_text(textwrap.dedent(GOOD_AND_BAD), encoding="utf-8")
    reports = check(
        CheckOptions(
            path=path,
            out=tmp_path / "check",
            cache=stage_cache,
            data=mnist_npz,
            protocol=protocol_path,
            profile=TINY,
            language="en",
            log=lambda line: None,
        )
    )
    report = reports[0]
    assert report.exit_code == 1
    assert len(report.reasons) == 1 and report.reasons[0].startswith("create_improved_model_2: invalid")
    assert "NoneType" in report.reasons[0]
    text = "\n".join(report.lines)
    assert "✗ create_improved_model_2: invalid" in text and "NOT GRADABLE as is (1 problem(s))" in text
    assert "TRAINING_CONFIG key ignored: validation_split (set by the harness)" in text
    assert "training settings: batch_size=64" in text
    estimates = {e.id: e for e in report.estimates}
    improvement = estimates["improvement"]
    assert improvement.low == 0 and improvement.high == improvement.max_points  # depends on accuracy
    assert estimates["documentation"].fixed  # depends on the text only
    assert report.total_low < report.total_high <= 20
    # the total's range is that of the scenarios' totals: within the sums of the criteria's bounds (the
    # former check, sum of minima <= minimum of sums, held for any numbers)
    assert sum(e.low for e in report.estimates) <= report.total_low
    assert report.total_high <= sum(e.high for e in report.estimates)


def test_check_of_an_unreadable_notebook_exits_1_with_the_reason(
    tmp_path, capsys, mnist_npz, protocol_path, stage_cache
):
    code, out = run_check(
        capsys, SAMPLES / "broken.ipynb", tmp_path / "check", protocol_path, mnist_npz, stage_cache, "--ascii"
    )
    assert code == 1
    assert "[!!] NOT GRADABLE as is" in out and "Syntax error in cell 8, line 12" in out
    assert "✓" not in out and "✗" not in out


def test_check_cannot_run_without_data_or_a_submission(tmp_path, capsys):
    assert (
        main(
            [
                "check",
                str(SAMPLES / "baseline_only.ipynb"),
                "--out",
                str(tmp_path / "o"),
                "--data",
                str(tmp_path / "missing.npz"),
            ]
        )
        == 2
    )
    assert "MNIST is not available" in capsys.readouterr().err
    assert main(["check", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "o")]) == 2
    assert "no notebook" in capsys.readouterr().err

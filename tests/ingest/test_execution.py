"""--execute: notebooks run top to bottom with nbclient in the sandbox; grading still retrains the models."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import SAMPLES, run_grade

from harness.ingest.execution import (
    ExecuteOptions,
    execute_notebook,
    neutralise,
    notebook_data_file,
    printed_accuracies,
)
from harness.pipeline.data import load_mnist
from harness.sandbox import bubblewrap_available

SMALL = ExecuteOptions(train_images=300, test_images=100, max_epochs=1, cell_timeout_s=120, deadline_s=300)


def test_printed_accuracies_are_read_from_text():
    text = (
        "Modèle de référence - Précision: 98.91%\n"
        "Test accuracy: 0.9912\n"
        "313/313 ━━━━━━━━━━━━━━━━━━━━ 1s 2ms/step - accuracy: 0.9891 - loss: 0.0345\n"
        "Epoch 1/5 - accuracy: 0.90\n"
        "précision du modèle 2 : 99,3 %\n"
        "nothing here 0.5\n"
    )
    found = printed_accuracies(7, text)
    assert [(a.cell, a.value) for a in found] == [(7, 0.9891), (7, 0.9912), (7, 0.993)]


def test_colab_and_shell_lines_are_neutralised_with_a_record():
    source = "!pip install -q tensorflow\nfrom google.colab import drive\ndrive.mount('/content/drive')\nx = 1\n  files = !ls"
    cleaned, dropped = neutralise(source, 4)
    assert cleaned.splitlines() == ["pass", "pass", "pass", "x = 1", "  pass"]
    assert [(d.cell, d.line, d.kind) for d in dropped] == [
        (4, 1, "shell"),
        (4, 2, "colab"),
        (4, 3, "colab"),
        (4, 5, "shell"),
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory, mnist_npz, protocol_path, stage_cache):
    """failing_cell.ipynb graded with --execute on the tiny profile."""
    folder = tmp_path_factory.mktemp("execute")
    shutil.copy2(SAMPLES / "failing_cell.ipynb", folder / "failing_cell.ipynb")
    return run_grade(
        [folder / "failing_cell.ipynb"],
        folder / "out",
        protocol=protocol_path,
        data=mnist_npz,
        cache=stage_cache,
        workers=1,
        execute=True,
        execute_options=SMALL,
        robustness=False,
    )


@pytest.mark.slow
def test_execute_records_the_failing_cell_and_still_grades_the_models(executed):
    result = executed.result("failing_cell")
    record = result.execution
    assert record is not None and record.status == "failed"
    assert record.failed_cells == [10] and record.first_failure == 10
    failing = next(c for c in record.cells if c.cell == 10)
    assert (failing.status, failing.error_name, failing.error_message) == ("error", "KeyError", "'acc'")
    assert all(c.status == "ok" for c in record.cells if c.cell != 10)
    assert [c.cell for c in record.cells] == [2, 3, 5, 7, 8, 10]  # every code cell, numbered as in Jupyter
    assert [a.cell for a in record.accuracies] == [8, 8]  # the two accuracies cell 8 printed
    assert "injected" in record.data_note and "300 training" in record.data_note
    # how the kernel was isolated: the same as every worker here ("plain process, NO SANDBOX" passed before)
    assert record.sandbox.startswith("bubblewrap") if bubblewrap_available() else "NO SANDBOX" in record.sandbox
    # grading does not depend on it: both models were retrained and evaluated by the harness
    assert result.status == "ok"
    assert [(m.name, m.status) for m in result.models] == [
        ("create_baseline_model", "ok"),
        ("create_improved_model_1", "ok"),
    ]
    assert all(m.test_accuracy is not None for m in result.models)
    quality = next(c for c in result.score.criteria if c.id == "code_quality")
    assert any("--execute" in e.text and e.cell == 10 for e in quality.evidence)
    html = (executed.out / "failing_cell" / "report.html").read_text(encoding="utf-8")
    assert 'id="execution"' in html and "KeyError" in html


@pytest.mark.slow
def test_cell_timeout_interrupts_one_cell_and_the_deadline_stops_the_notebook(tmp_path, mnist_npz):
    data = notebook_data_file(load_mnist(mnist_npz), tmp_path / "data", 100, 50)
    notebook = nbformat.v4.new_notebook()
    sources = [
        "x = 41",
        "import time\ntime.sleep(60)",
        "print('after', x + 1)",
        "time.sleep(60)",
        "time.sleep(60)",
        "print('never')",
    ]
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = tmp_path / "slow.ipynb"
    nbformat.write(notebook, path)
    # 4 s per cell, 10 s for the student's cells: cell 2 is interrupted and cell 3 still runs; then the
    # deadline passes during the sleeping cells and the last one is never started
    record = execute_notebook(path, data, tmp_path / "run", ExecuteOptions(cell_timeout_s=4, deadline_s=10))
    status = {c.cell: c.status for c in record.cells}
    assert (status[1], status[2], status[3]) == ("ok", "timeout", "ok"), status
    assert record.cells[2].output.strip() == "after 42"
    assert status[6] == "not_run" and {status[4], status[5]} <= {"timeout", "not_run"}
    assert record.status == "timeout" and "deadline" in record.reason
    assert 2 in record.failed_cells and record.first_failure == 2

"""What the grading process reads of a submission is bounded in size, memory and time.

Ingest runs in the grading process, in the batch's threads (and every ``ast.parse`` there takes one
shared lock): a notebook of hundreds of MB of saved outputs, ten thousand cells or JSON nested
beyond reason must be refused or read within a stated bound, with a reason the report says in
French, never stall or swell the batch. The inputs are generated here, in ``tmp_path``: a
300 MiB notebook is a sparse file (refused on its size, never read), the others are tens of MB.
"""

from __future__ import annotations

import base64
import json
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from harness.ingest import ingest_path
from harness.ingest.read import MAX_CELLS, MAX_CODE_CHARS, MAX_NOTEBOOK_MB
from harness.util.i18n import Translator

FACTORY = (
    "import keras\n\n\ndef create_baseline_model():\n"
    "    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])\n"
)
REFUSED_WITHIN_S = 5.0  # a refusal reads a size, a count or a JSON prefix, never the whole code
MEMORY_FACTOR = 2.5  # the grader's peak allocation while reading a notebook, as a multiple of its size


def _code_cell(source: str, outputs: list | None = None) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": outputs or [], "source": source}


def _write_notebook(path: Path, cells: list[dict]) -> Path:
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}), "utf-8")
    return path


def _ingested_in(path: Path) -> tuple[object, float]:
    started = time.monotonic()
    result = ingest_path(path)
    return result, time.monotonic() - started


def _in_french(reason: str) -> str:
    said = Translator("fr").stored(reason)
    assert said != reason, f"no French for {reason!r} in templates/i18n/fr.toml"
    return said


def test_a_notebook_over_the_size_cap_is_refused_without_being_read(tmp_path):
    path = tmp_path / "enorme.ipynb"
    with open(path, "wb") as handle:  # sparse: 300 MiB on paper, nothing on disk
        handle.truncate(300 * 2**20)
    result, seconds = _ingested_in(path)
    assert result.status == "invalid"
    assert result.reason.startswith(f"enorme.ipynb is too large to read (300 MiB; at most {MAX_NOTEBOOK_MB} MiB)")
    assert seconds < REFUSED_WITHIN_S
    assert _in_french(result.reason).startswith("enorme.ipynb est trop volumineux pour être lu (300 Mio")


def test_a_notebook_of_embedded_images_is_read_within_its_memory_bound(tmp_path):
    image = base64.b64encode(os.urandom(3 * 2**20)).decode()  # a 4 MiB plot saved in the notebook
    shown = {"output_type": "display_data", "data": {"image/png": image, "text/plain": "<Figure>"}, "metadata": {}}
    path = _write_notebook(tmp_path / "images.ipynb", [_code_cell(FACTORY)] + [_code_cell("plt.show()", [shown])] * 12)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        result, _ = _ingested_in(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status == "ok", result.reason
    assert [f.name for f in result.factories] == ["create_baseline_model"]
    assert result.code_cells[1].outputs == ["<Figure>"]  # the text the harness reads is kept
    assert peak < MEMORY_FACTOR * size, f"peak {peak / size:.2f} × the notebook's size"


def test_ten_thousand_cells_are_refused_at_once(tmp_path):
    cells = [_code_cell(FACTORY)] + [_code_cell(f"x{i} = {i}\nprint(x{i})") for i in range(10_000)]
    result, seconds = _ingested_in(_write_notebook(tmp_path / "cellules.ipynb", cells))
    assert result.status == "invalid"
    assert result.reason == f"cellules.ipynb has 10001 cells; the harness reads at most {MAX_CELLS}."
    assert seconds < REFUSED_WITHIN_S, f"{seconds:.1f} s"
    assert (
        _in_french(result.reason) == f"cellules.ipynb compte 10001 cellules ; le correcteur en lit au plus {MAX_CELLS}."
    )


def test_the_most_cells_allowed_are_read(tmp_path):
    cells = [_code_cell(FACTORY)] + [_code_cell(f"x{i} = {i}\nprint(x{i})") for i in range(MAX_CELLS - 1)]
    result, seconds = _ingested_in(_write_notebook(tmp_path / "long.ipynb", cells))
    assert result.status == "ok", result.reason
    assert seconds < 60, f"{seconds:.1f} s for {MAX_CELLS} cells"  # 3.5 s measured on 2 loaded cores


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_json_nested_beyond_reason_is_refused_with_its_reason(tmp_path, depth):
    path = tmp_path / "profond.ipynb"
    nested = "[" * depth + "]" * depth
    path.write_text(f'{{"cells": [], "metadata": {{"x": {nested}}}, "nbformat": 4, "nbformat_minor": 4}}', "utf-8")
    result, seconds = _ingested_in(path)
    assert result.status == "invalid"
    assert result.reason == "profond.ipynb is not a readable notebook: its JSON is nested too deeply."
    assert seconds < REFUSED_WITHIN_S
    assert "imbriqué trop profondément" in _in_french(result.reason)


def test_nesting_within_json_s_reach_is_answered(tmp_path):
    """Deep enough to pass the JSON parser, deep for nbformat's recursive conversion and validation."""
    path = tmp_path / "imbrique.ipynb"
    nested = "[" * 700 + "]" * 700
    cells = [_code_cell(FACTORY)]
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4})[:-1] + f', "x": {nested}}}',
        "utf-8",
    )
    result, seconds = _ingested_in(path)
    assert result.status in ("ok", "invalid") and (result.status == "ok" or result.reason)
    assert seconds < REFUSED_WITHIN_S * 4


@pytest.mark.parametrize("suffix", [".py", ".ipynb"])
def test_too_much_code_is_refused_before_it_is_parsed(tmp_path, suffix):
    line = "x = 1  # " + "y" * 90 + "\n"
    source = FACTORY + line * (MAX_CODE_CHARS // len(line) + 10)
    if suffix == ".py":
        path = tmp_path / "long.py"
        path.write_text(source, "utf-8")
    else:
        path = _write_notebook(tmp_path / "long.ipynb", [_code_cell(source)])
    result, seconds = _ingested_in(path)
    assert result.status == "invalid"
    assert (
        result.reason
        == f"long{suffix} holds {len(source)} characters of code; the harness reads at most {MAX_CODE_CHARS}."
    )
    assert seconds < REFUSED_WITHIN_S
    assert "caractères de code" in _in_french(result.reason)


def test_a_module_too_large_to_hold_the_code_allowed_is_refused_unread(tmp_path):
    path = tmp_path / "geant.py"
    with open(path, "wb") as handle:  # sparse: more bytes than MAX_CODE_CHARS characters can take
        handle.truncate(MAX_CODE_CHARS * 4 + 2**20)
    result, seconds = _ingested_in(path)
    assert result.status == "invalid"
    assert result.reason == f"geant.py is too large to read (9 MiB of code; at most {MAX_CODE_CHARS} characters)."
    assert seconds < REFUSED_WITHIN_S
    assert "Mio de code" in _in_french(result.reason)

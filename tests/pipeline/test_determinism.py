"""Two cold runs of one submission give the same numbers and a byte-identical gradebook.

The submission (``tests/fixtures/tiny_class/chloe.py``) has everything that draws random numbers
while training: an augmentation layer (``RandomRotation``), ``Dropout`` and callbacks
(``EarlyStopping`` restoring the best weights, ``ReduceLROnPlateau``). Each run starts from
nothing: its own output folder (so its own stage cache), its own per-user reference and suite
caches, so the reference is trained again too. Every number of ``result.json`` but the timings
must be equal, and ``grades.csv`` byte for byte.

The private check set (docs/integrity.md) is drawn from a secret seed that each output folder
draws for itself; it is an input of the run like the data, so both runs are given the same one
(``HARNESS_PRIVATE_SEED``, as an instructor does to reproduce a class elsewhere). Measured without
it: every number the same but the private set's three (its accuracy and changed shares), and the
same ``grades.csv``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES, TINY, needs_bwrap, run_grade

from harness.config.environment import PRIVATE_SEED_ENV, REFERENCE_CACHE_ENV, SUITE_CACHE_ENV

pytestmark = [pytest.mark.slow, needs_bwrap]

SUBMISSION = FIXTURES / "tiny_class" / "chloe.py"


def _numbers(value, where: str = "") -> dict[str, float]:
    """Every number (and flag) of a result, by its path, but how long things took."""
    found = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if not key.endswith("seconds"):  # wall and CPU time depend on the machine's load
                found.update(_numbers(item, f"{where}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_numbers(item, f"{where}[{index}]"))
    elif isinstance(value, (int, float)):
        found[where] = value
    return found


def _cold_run(tmp_path: Path, name: str, monkeypatch, mnist_npz, protocol_path, suite_path) -> Path:
    folder = tmp_path / name
    klass = folder / "class"
    klass.mkdir(parents=True)
    shutil.copy2(SUBMISSION, klass / SUBMISSION.name)
    monkeypatch.setenv(REFERENCE_CACHE_ENV, str(folder / "reference-cache"))  # the reference trained again
    monkeypatch.setenv(SUITE_CACHE_ENV, str(folder / "suite-cache"))
    monkeypatch.setenv(PRIVATE_SEED_ENV, "1515")  # the secret both runs share (see the module's docstring)
    graded = run_grade(
        [klass / SUBMISSION.name],
        folder / "out",
        protocol=protocol_path,
        data=mnist_npz,
        cache=None,  # OUT/.cache: empty
        profile=TINY,
        workers=1,
        suite=suite_path,
        reports=False,  # the numbers and the gradebook are compared, not the pages
    )
    result = graded.result(SUBMISSION.stem)
    assert result.status == "ok", result.reason
    assert all("train" not in m.from_cache for m in result.models), "a cold run used a cache"
    assert graded.summary.reference is not None and not graded.summary.reference.from_cache
    return folder / "out"


def test_two_cold_runs_give_identical_numbers_and_gradebook(
    tmp_path, monkeypatch, mnist_npz, protocol_path, suite_path
):
    first = _cold_run(tmp_path, "first", monkeypatch, mnist_npz, protocol_path, suite_path)
    second = _cold_run(tmp_path, "second", monkeypatch, mnist_npz, protocol_path, suite_path)
    a, b = (json.loads((out / SUBMISSION.stem / "result.json").read_text("utf-8")) for out in (first, second))
    assert [m["name"] for m in a["models"]] == ["create_improved_model_1"]
    numbers_a, numbers_b = _numbers(a), _numbers(b)
    assert ".models[0].test_accuracy" in numbers_a and ".reference.model.test_accuracy" in numbers_a
    paths = numbers_a.keys() | numbers_b.keys()
    assert {k: (numbers_a.get(k), numbers_b.get(k)) for k in paths if numbers_a.get(k) != numbers_b.get(k)} == {}
    assert (first / "grades.csv").read_bytes() == (second / "grades.csv").read_bytes()

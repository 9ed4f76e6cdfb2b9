"""``harness score`` after ``harness score``: nothing moves (scores, result.json, the gradebook)."""

from __future__ import annotations

import pytest
from conftest import copy_of

from harness.pipeline import rescore


@pytest.mark.slow
def test_scoring_twice_changes_nothing(graded, tmp_path):
    out = copy_of(graded, tmp_path / "out")
    rescore(out, language="en")
    first = {p.relative_to(out): p.read_bytes() for p in [out / "grades.csv", *sorted(out.glob("*/result.json"))]}
    rescore(out, language="en")
    second = {p.relative_to(out): p.read_bytes() for p in [out / "grades.csv", *sorted(out.glob("*/result.json"))]}
    assert second.keys() == first.keys() and len(first) > 2
    assert [name for name in first if first[name] != second[name]] == []

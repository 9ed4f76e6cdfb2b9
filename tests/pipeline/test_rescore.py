"""``harness score`` after ``harness score``: nothing moves (scores, result.json, the gradebook)."""

from __future__ import annotations

import pytest
from conftest import copy_of

from harness.cli import main
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


@pytest.mark.slow
def test_scoring_without_reports_keeps_the_gradebook_and_leaves_no_stale_report(graded, tmp_path):
    """``harness score --no-reports``: the same marks as a full re-scoring, the dashboard redrawn, and no
    student's report left showing the marks of the last scoring ('harness report OUT' draws them again)."""
    out = copy_of(graded, tmp_path / "out")
    drawn = sorted(out.glob("*/report.html"))
    assert drawn
    assert main(["score", str(out), "--lang", "en", "--no-reports"]) in (0, 1)
    assert not list(out.glob("*/report.html")) and (out / "index.html").is_file()
    quick = (out / "grades.csv").read_bytes()
    rescore(out, language="en")
    assert (out / "grades.csv").read_bytes() == quick and sorted(out.glob("*/report.html")) == drawn

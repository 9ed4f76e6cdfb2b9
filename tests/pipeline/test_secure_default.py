"""Secure by default: ``harness grade`` runs no student code without bubblewrap unless told to (--no-sandbox),
and a run without a sandbox says so in every result and on the dashboard."""

from __future__ import annotations

import os
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO, run_info

from harness.cli import main
from harness.commands import grade as grade_command
from harness.errors import SandboxUnavailable
from harness.pipeline import session
from harness.pipeline.session import GradeOptions, isolation, require_sandbox
from harness.report.feedback import review_flags
from harness.report.render import render_dashboard
from harness.results import CriterionScore, Score, SubmissionResult
from harness.util.i18n import Translator

# a notebook without factories: grading it runs its cells (discovery), one of which writes this file
STUDENT = FIXTURES / "no_sandbox" / "writes_a_marker.ipynb"
MARKER = Path("/tmp/HARNESS-TEST-MARKER-unsandboxed-student-code")


def test_grade_without_bubblewrap_refuses_before_any_student_code(tmp_path, mnist_npz):
    """No `bwrap` on PATH: exit 2 with how to get it; no output folder, no worker, no student cell ran."""
    MARKER.unlink(missing_ok=True)
    no_bwrap = tmp_path / "bin"  # a PATH with nothing on it: bubblewrap_available() finds no bwrap
    no_bwrap.mkdir()
    out = tmp_path / "out"
    env = {**os.environ, "PATH": str(no_bwrap), "HARNESS_MNIST_NPZ": str(mnist_npz)}
    command = [sys.executable, "-m", "harness", "grade", str(STUDENT), "--out", str(out), "--profile", "smoke"]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    for hint in ("apt-get install bubblewrap", "WSL 2", "--no-sandbox", "harness demo", "Rien n'a été exécuté"):
        assert hint in run.stderr, run.stderr
    assert not out.exists()  # refused before the lock, the archives, discovery or any worker
    assert not MARKER.exists()
    assert not (REPO / MARKER.name).exists()


@pytest.mark.parametrize("flags, required", [([], True), (["--require-sandbox"], True), (["--no-sandbox"], False)])
def test_grade_requires_the_sandbox_unless_no_sandbox_is_given(monkeypatch, tmp_path, flags, required):
    seen = []

    def stop(options):
        seen.append(options)
        raise SandboxUnavailable("stopped by the test")

    monkeypatch.setattr(grade_command, "grade", stop)
    assert main(["grade", str(STUDENT), "--out", str(tmp_path / "out"), *flags]) == 2
    assert seen[0].use_bubblewrap is required


def test_require_sandbox_refuses_in_the_run_language_and_lets_no_sandbox_through(monkeypatch, tmp_path):
    monkeypatch.setattr(session, "bubblewrap_available", lambda: False)
    options = GradeOptions(paths=[STUDENT], out=tmp_path, use_bubblewrap=True, language="en")
    with pytest.raises(SandboxUnavailable, match="Nothing was run") as refused:
        require_sandbox(options)
    assert "sudo apt-get install bubblewrap" in str(refused.value)
    require_sandbox(GradeOptions(paths=[STUDENT], out=tmp_path, use_bubblewrap=False))  # the instructor's choice
    require_sandbox(GradeOptions(paths=[STUDENT], out=tmp_path, use_bubblewrap=None))  # harness check's fallback


def test_every_result_records_how_the_run_was_isolated(tmp_path):
    def options(**changes) -> GradeOptions:
        return GradeOptions(paths=[], out=tmp_path, **changes)

    assert isolation(options(use_bubblewrap=True), True) == "bubblewrap"
    assert isolation(options(use_bubblewrap=False), False) == "none: --no-sandbox"
    assert isolation(options(use_bubblewrap=None), False) == "none: bubblewrap not available"
    assert isolation(options(use_bubblewrap=False, unsandboxed_because="harness demo"), False) == "none: harness demo"


def result(student: str, sandbox: str) -> SubmissionResult:
    run = run_info(started_at="2026-12-05T00:00:00", sandbox=sandbox)
    criteria = [CriterionScore(id="code_quality", title="Code", points=3, max_points=4, reason="r")]
    score = Score(total=3, max_total=4, criteria=criteria, rubric="default")
    return SubmissionResult(student=student, status="ok", submission_sha256="x", source="a.py", run=run, score=score)


def test_the_dashboard_says_who_was_graded_without_a_sandbox(tmp_path):
    """Even when every model came from the cache (no worker said anything), the run's record shows it."""
    t = Translator("fr")
    results = [
        result("alice", "none: --no-sandbox"),
        result("bob", "none: --no-sandbox"),
        result("carol", "bubblewrap"),
    ]
    assert review_flags(results[0], t) == ["no-sandbox"] and review_flags(results[2], t) == []
    html = unescape(render_dashboard(tmp_path, results, None, t).read_text(encoding="utf-8"))
    assert t("dashboard_no_sandbox", n=2, why="--no-sandbox") in html
    sandboxed = render_dashboard(tmp_path, results[2:], None, t).read_text(encoding="utf-8")
    assert "data-no-sandbox" not in sandboxed

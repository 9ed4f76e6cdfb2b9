"""SIGTERM and Ctrl-C (SIGINT) stop ``harness grade`` cleanly, and the next run resumes.

A real ``harness grade`` process grades a tiny class (``tests/fixtures/tiny_class/``, three small
submissions) with one worker; once a submission is graded and the next one's worker runs, the
grader gets SIGTERM; the same command, run again, keeps the graded submission and is stopped
the same way with SIGINT; a third run completes the class. Each stop must kill every worker at
once (no submission finished after the signal, no process left), keep the results written
before it byte for byte, write no result for the submission it interrupted (a "failed" result
would be kept by the next run as if it were a grade), leave no temporary file, and exit 143 or
130.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, TINY, needs_bwrap

from harness.results import SubmissionResult
from harness.sandbox.processes import processes_in

pytestmark = [pytest.mark.slow, needs_bwrap]

CLASS = FIXTURES / "tiny_class"
STOP_WITHIN_S = 30  # a poll of every runner, the threads joined, the lock released: seconds, not a training


def _results(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted(out.glob("*/result.json")) if p.parent.name[0] != "_"}


def _stop_mid_batch(command: list[str], out: Path, log: Path, signum: int) -> tuple[int, dict[str, bytes], float]:
    """Run `command` until one more submission is graded and the next one's worker runs, then send
    `signum` to the grader alone (as a terminal's Ctrl-C or `kill PID`); (exit code, results at the
    signal, seconds from the signal to the exit)."""
    done_before = set(_results(out))
    with open(log, "wb") as handle:
        grader = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 900
            while grader.poll() is None and time.monotonic() < deadline:
                if set(_results(out)) - done_before and [
                    p for p in processes_in(out / ".work", nested=True) if p != grader.pid
                ]:
                    break
                time.sleep(0.1)
            at_signal = _results(out)
            sent = time.monotonic()
            os.kill(grader.pid, signum)
            code = grader.wait(timeout=STOP_WITHIN_S * 4)
            return code, at_signal, time.monotonic() - sent
        finally:
            if grader.poll() is None:
                os.killpg(grader.pid, signal.SIGKILL)
                grader.wait()


def _no_worker_left(out: Path) -> list[int]:
    for _ in range(30):  # bubblewrap's sandboxed child dies with bwrap: the kernel delivers it
        if not processes_in(out, nested=True):
            break
        time.sleep(0.1)
    return processes_in(out, nested=True)


def test_sigterm_then_ctrl_c_stop_cleanly_and_the_next_run_resumes(tmp_path, mnist_npz, protocol_path, suite_path):
    klass = tmp_path / "class"
    shutil.copytree(CLASS, klass)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "harness.cli", "grade", *sorted(map(str, klass.iterdir())), "--out", str(out),
        "--profile", TINY, "--protocol", str(protocol_path), "--data", str(mnist_npz), "--suite", str(suite_path),
        "--workers", "1",
    ]  # fmt: skip
    kept: dict[str, bytes] = {}
    for signum, expected_code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        log = tmp_path / f"{signal.Signals(signum).name}.log"
        code, at_signal, seconds = _stop_mid_batch(command, out, log, signum)
        text = log.read_text(encoding="utf-8", errors="replace")
        assert code == expected_code, text
        assert f"stopped by {signal.Signals(signum).name}" in text
        assert seconds < STOP_WITHIN_S, f"{seconds:.0f} s from the signal to the exit: the workers were waited for"
        assert _no_worker_left(out) == [], "workers outlived the stop"
        after = _results(out)
        assert after == at_signal, "a submission was finished, or given a result, after the signal"
        assert len(after) < len(list(klass.iterdir())), "the signal came after the class was graded"
        for student, content in kept.items():  # the earlier runs' results, kept byte for byte
            assert after[student] == content, f"{student} was graded again"
        for student in after:
            assert SubmissionResult.read(out / student / "result.json").status == "ok"
        assert [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".result.json.")] == []
        kept = after
    last = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert last.returncode == 0, last.stdout + last.stderr
    final = _results(out)
    assert set(final) == {p.stem for p in klass.iterdir()}
    for student, content in kept.items():
        assert final[student] == content
        assert f"{student}: unchanged since the last run" in last.stdout

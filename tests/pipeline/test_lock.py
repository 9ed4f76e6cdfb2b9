"""One grader per output folder: a second one stops naming the first, or queues with --wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import FIXTURES, REPO

from harness.cli import main
from harness.errors import OutputFolderBusy
from harness.pipeline.lock import output_lock

HOLDER = FIXTURES / "processes" / "hold_lock.py"


@pytest.fixture
def holder(tmp_path):
    """Start another process holding `tmp_path/out`'s lock for `seconds`; killed at the end."""
    started: list[subprocess.Popen] = []

    def start(seconds: float) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(
            [sys.executable, str(HOLDER), str(tmp_path / "out"), str(seconds)], stdout=subprocess.PIPE, env=env
        )
        started.append(process)
        assert process.stdout.readline().strip() == b"locked"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_second_grader_stops_with_a_message_naming_the_first(holder, tmp_path, capsys):
    other = holder(60)
    # before the fix both ran: score read and rewrote the gradebook while the other grader wrote it
    assert main(["score", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert f"process {other.pid} on " in message and "hold_lock.py" in message and "--wait" in message
    assert main(["grade", str(tmp_path / "nothing.ipynb"), "--out", str(tmp_path / "out")]) == 2


def test_wait_queues_behind_the_other_grader(holder, tmp_path):
    other = holder(1.5)
    said: list[str] = []
    started = time.monotonic()
    with output_lock(tmp_path / "out", wait=True, log=said.append):
        waited = time.monotonic() - started
    assert waited > 1.0 and said and f"process {other.pid}" in said[0]  # got the folder once the other was done


def test_a_killed_grader_leaves_no_stale_lock(holder, tmp_path):
    other = holder(60)
    with pytest.raises(OutputFolderBusy):
        with output_lock(tmp_path / "out"):
            pass
    other.send_signal(signal.SIGKILL)
    other.wait()
    with output_lock(tmp_path / "out"):
        assert f"process {os.getpid()} " in (tmp_path / "out" / ".harness.lock").read_text()
    assert (tmp_path / "out" / ".harness.lock").read_text() == ""  # released: no holder named

"""The stop flag of ``harness/sandbox/interrupt.py``: a running worker is killed at the runner's next
poll, and a signal becomes :class:`Interrupted` in the main thread (the whole ``harness grade`` is
stopped in tests/sandbox/test_interrupt.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.errors import Interrupted
from harness.sandbox import Limits, run_command
from harness.sandbox.interrupt import clear_stop, request_stop, stop_on_signals, stop_requested
from harness.sandbox.processes import die_with_parent

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def _processes_in(folder: Path) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if Path(os.readlink(f"/proc/{entry.name}/cwd")) == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(autouse=True)
def no_stop_left():
    yield
    clear_stop()  # a stop left set would make every later worker of the test session refuse to start


def _run_sleeper(scratch: Path) -> None:
    run_command(SLEEPER, dict(os.environ), scratch, limits=Limits(), threads=1, watch=lambda events, elapsed: None)


def test_a_running_worker_is_killed_when_the_grader_stops(tmp_path):
    threading.Timer(1.0, request_stop, args=(signal.SIGTERM,)).start()
    started = time.monotonic()
    with pytest.raises(Interrupted) as stopped:
        _run_sleeper(tmp_path)
    assert stopped.value.signum == signal.SIGTERM and stopped.value.signal_name == "SIGTERM"
    assert time.monotonic() - started < 10, "the worker ran on after the stop"
    assert _processes_in(tmp_path) == []


def test_no_worker_starts_once_the_grader_is_stopping(tmp_path):
    request_stop(signal.SIGINT)
    with pytest.raises(Interrupted):
        _run_sleeper(tmp_path)
    assert not (tmp_path / "worker.log").exists()  # nothing was started


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_main_thread_and_every_worker(signum):
    previous = signal.getsignal(signum)
    with pytest.raises(Interrupted) as stopped:
        with stop_on_signals():
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler runs here
    assert stopped.value.signum == signum
    assert stop_requested() is None, "the stop outlived the grading it was for"
    assert signal.getsignal(signum) is previous


def test_a_worker_whose_grader_died_before_it_asked_to_die_with_it_ends_itself():
    """The kill -9 campaign's orphan: the grader killed between a worker's fork and its PR_SET_PDEATHSIG.
    The kernel never signals a death that came before the request, so the child compares its parent
    with the grader's id read before the fork; here the "grader" is a process that is not its parent,
    as a dead grader's reaper would be."""
    not_the_parent = os.getppid()  # pytest's own parent: alive, and not the child's parent
    child = subprocess.Popen(SLEEPER, preexec_fn=lambda: die_with_parent(not_the_parent))
    assert child.wait(timeout=30) == -signal.SIGKILL
    with_its_grader = subprocess.Popen(SLEEPER, preexec_fn=lambda: die_with_parent(os.getppid()))
    try:
        with pytest.raises(subprocess.TimeoutExpired):  # the real parent alive: the worker runs on
            with_its_grader.wait(timeout=1)
    finally:
        with_its_grader.kill()
        with_its_grader.wait()

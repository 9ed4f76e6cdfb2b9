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
from conftest import needs_bwrap

import harness
from harness.errors import Interrupted
from harness.sandbox import Limits, run_command
from harness.sandbox.interrupt import clear_stop, request_stop, stop_on_signals, stop_requested
from harness.sandbox.processes import die_with_parent, processes_in
from harness.sandbox.runner import LIFELINE_ENV, lifeline

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


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
    assert processes_in(tmp_path) == []


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


LIVES_ON_ITS_LIFELINE = [sys.executable, "-c", "import harness.workers, time; time.sleep(120)"]


def test_a_worker_ends_itself_once_its_lifeline_reads_end_of_file():
    with lifeline() as read_end:
        env = {**os.environ, "PYTHONPATH": str(Path(harness.__file__).parent.parent), LIFELINE_ENV: str(read_end)}
        worker = subprocess.Popen(LIVES_ON_ITS_LIFELINE, env=env, pass_fds=(read_end,))
        try:
            with pytest.raises(subprocess.TimeoutExpired):  # the grader's end open: the worker runs on
                worker.wait(timeout=3)
        except BaseException:
            worker.kill()
            raise
    assert worker.wait(timeout=30) == -signal.SIGKILL  # the grader's end closed, as at its death


# A grader that starts a sandboxed worker the way run_job does, through a shell that leaves it running
# in the background and exits: bubblewrap asks for its parent-death signal once its parent is already
# gone, so the kernel never sends it. That is what a grader killed in bubblewrap's first milliseconds
# leaves (bubblewrap forks the sandboxed process, then asks; the kill -9 test hit that window).
_ORPHANING_GRADER = """
import subprocess, sys, time
from pathlib import Path
from harness.sandbox.bubblewrap import wrap
from harness.sandbox.runner import LIFELINE_ENV, lifeline
with lifeline() as read_end:
    argv, env, _ = wrap(sys.argv[2:], scratch=Path(sys.argv[1]), readable=[], use_bubblewrap=True,
                        extra_env={LIFELINE_ENV: str(read_end)})
    subprocess.Popen(["/bin/sh", "-c", '"$@" &', "sh", *argv], env=env, cwd=sys.argv[1], start_new_session=True,
                     pass_fds=(read_end,))
    time.sleep(300)
"""


@needs_bwrap
def test_a_sandboxed_worker_whose_grader_was_killed_before_the_parent_death_signal_ends_itself(tmp_path):
    grader = subprocess.Popen([sys.executable, "-c", _ORPHANING_GRADER, str(tmp_path), *LIVES_ON_ITS_LIFELINE])
    try:
        deadline = time.monotonic() + 60
        while not processes_in(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_in(tmp_path), "the sandboxed worker never started"
        time.sleep(1)  # the worker is past its imports, watching its lifeline
    finally:
        grader.kill()
        grader.wait()
    for _ in range(300):  # a loaded machine may take seconds to start the worker's Python, which then ends
        if not processes_in(tmp_path):
            break
        time.sleep(0.1)
    orphans = processes_in(tmp_path)
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    assert orphans == [], "the sandboxed worker outlived its grader"

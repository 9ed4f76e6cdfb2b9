"""The reaper (``harness/sandbox/reaper.py``): what a worker leaves when its grader is killed with
``kill -9`` is killed all the same, whatever never asked to die with its parent (bubblewrap's sandboxed
child, blocked on its start-up handshake when bubblewrap was killed in its first milliseconds, was the
CI's orphan)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import harness
from harness.sandbox.processes import processes_in

# A grader running one worker through run_command; the worker (a shell) starts a grandchild that has
# neither a parent-death signal nor a lifeline, as bubblewrap's blocked child has neither.
_GRADER = """
import os, sys
from pathlib import Path
from harness.sandbox import Limits, run_command
from harness.sandbox.reaper import reaper_pid
scratch = Path(sys.argv[1])
print(os.getpid(), flush=True)
run_command(["/bin/sh", "-c", sys.argv[2]], dict(os.environ), scratch, limits=Limits(), threads=1,
            watch=lambda events, elapsed: None)
print(reaper_pid(), flush=True)
"""

_ORPHAN = "sleep 600 & wait"


def _grader(scratch: Path, script: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(harness.__file__).parent.parent)}
    return subprocess.Popen(
        [sys.executable, "-c", _GRADER, str(scratch), script],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _gone(pid_or_folder, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = processes_in(pid_or_folder) if isinstance(pid_or_folder, Path) else _alive(pid_or_folder)
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_what_a_worker_left_dies_with_a_grader_killed_by_kill_minus_9(tmp_path):
    grader = _grader(tmp_path, _ORPHAN)
    try:
        deadline = time.monotonic() + 60
        while len(processes_in(tmp_path)) < 2 and time.monotonic() < deadline:  # the shell and its sleep
            time.sleep(0.1)
        assert len(processes_in(tmp_path)) == 2, "the worker never started"
    finally:
        os.killpg(grader.pid, signal.SIGKILL)
        grader.wait()
    survived = not _gone(tmp_path)
    for pid in processes_in(tmp_path):
        os.kill(pid, signal.SIGKILL)
    assert not survived, "the worker's grandchild outlived its grader"


def test_the_reaper_ends_with_a_grader_that_ends_well_and_kills_nothing_it_released(tmp_path):
    keeper = subprocess.Popen(["sleep", "600"], cwd=tmp_path)  # not the worker's: never the reaper's to kill
    try:
        (tmp_path / "scratch").mkdir()
        grader = _grader(tmp_path / "scratch", "true")
        out, _ = grader.communicate(timeout=120)
        assert grader.returncode == 0
        reaper = int(out.split()[-1])
        assert _gone(reaper), "the reaper outlived the grader"
        assert keeper.poll() is None
    finally:
        keeper.kill()
        keeper.wait()

"""The local Ray cluster's processes die with the grader (harness/pipeline/ray_reaper.py): tried on real
processes standing for Ray's (one with the session on its command line, one holding a log file open in
it), without starting Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import REPO

# a "grader": starts the reaper for SESSION, holds a log of the session open itself, then waits or ends
GRADER = textwrap.dedent(
    """
    import sys, time
    from harness.pipeline import ray_reaper
    session, how = sys.argv[1], sys.argv[2]
    log = open(session + "/driver.log", "w")
    reaper = ray_reaper.start(session)
    print(reaper.pid, flush=True)
    if how == "normal":
        ray_reaper.stop(reaper)
        print("survived", flush=True)
    else:
        time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _stand_ins(session: Path) -> list[subprocess.Popen]:
    """Two of the session's processes (its folder on the command line; a file open in it) and one outsider."""
    holder = f"f = open({str(session / 'agent.log')!r}, 'w'); import time; time.sleep(120)"
    return [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", f"--session-dir={session}"]),
        subprocess.Popen([sys.executable, "-c", holder]),
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]),
    ]


def _grader(session: Path, how: str) -> tuple[subprocess.Popen, int]:
    grader = subprocess.Popen(
        [sys.executable, "-c", GRADER, str(session), how],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return grader, int(grader.stdout.readline())


def _wait_for(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def session(tmp_path):
    """A session folder, two of its processes and an outsider; every one of them killed at the end."""
    folder = tmp_path / "session_1"
    folder.mkdir()
    processes = _stand_ins(folder)
    time.sleep(0.5)  # the holder has opened its log
    yield folder, processes
    for process in processes:
        process.kill()
        process.wait()


def test_a_grader_killed_with_sigkill_takes_its_session_s_processes_with_it(session):
    folder, (ray_like, holder, outsider) = session
    grader, reaper = _grader(folder, "kill")
    os.kill(grader.pid, signal.SIGKILL)
    grader.wait()
    assert _wait_for(lambda: not _alive(ray_like.pid) and not _alive(holder.pid))
    assert _wait_for(lambda: not _alive(reaper))
    assert outsider.poll() is None  # nothing else is touched
    assert not folder.exists()  # the cluster's files go with it


def test_a_grader_that_ends_normally_is_spared_and_its_session_cleaned(session):
    folder, (ray_like, holder, outsider) = session
    grader, _ = _grader(folder, "normal")
    assert grader.stdout.readline().strip() == "survived"  # it holds a session file itself
    assert grader.wait(timeout=30) == 0
    assert not _alive(ray_like.pid) and not _alive(holder.pid) and outsider.poll() is None
    assert not folder.exists()


def test_ctrl_c_to_the_process_group_does_not_set_the_reaper_off(tmp_path):
    """SIGINT and SIGTERM reach the whole foreground group: the reaper waits for its pipe to close."""
    session = tmp_path / "session_3"
    session.mkdir()
    grader, reaper = _grader(session, "kill")
    try:
        time.sleep(0.5)  # its signal handlers are set
        os.kill(reaper, signal.SIGINT)
        os.kill(reaper, signal.SIGTERM)
        time.sleep(0.5)
        assert _alive(reaper)
    finally:
        grader.kill()
        grader.wait()
    assert _wait_for(lambda: not _alive(reaper))

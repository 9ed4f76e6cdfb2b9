"""The local Ray cluster of a run dies with its grader, however the grader ends.

``harness grade --backend ray`` without ``--address`` starts a Ray cluster of its own on this machine.
Ray ties its head services to the driver, but not the agents its raylet starts (``ray::DashboardAgent``,
``ray::RuntimeEnvAgent``): measured with ``bench/kill_campaign.py --backend ray``, both were still
running 30 s after the grader was killed with SIGKILL, holding the session's files, forever. So the
grader gives its cluster a temporary folder of its own (``ray.init(_temp_dir=…)``) and, before starting
the cluster, starts this small process and keeps a pipe to it open; when the pipe closes — the grader's
normal end, an exception, or ``kill -9``, even while the cluster starts — it kills every process that
runs in that folder (named on its command line or among its open files), removes the folder, then exits.
It ignores SIGINT and SIGTERM: a Ctrl-C reaches the whole process group, and the grader must stop its
cluster first.

Run as ``python harness/pipeline/ray_reaper.py FOLDER`` with the pipe as its standard input;
:func:`start` does that. It imports nothing of the harness: it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def start(session_dir: str) -> subprocess.Popen:
    """Start the reaper of the Ray cluster whose files are in `session_dir`; closing its stdin (or dying)
    sets it off."""
    return subprocess.Popen(
        # the file itself, not ``-m``: importing the harness's packages would take seconds
        [sys.executable, str(Path(__file__).resolve()), session_dir],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )


def stop(reaper: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """The grader's normal end: close the pipe and wait for the reaper to finish its round."""
    if reaper.stdin is not None:
        reaper.stdin.close()
    try:
        reaper.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        reaper.kill()


def session_processes(session_dir: str, spared: set[int]) -> list[int]:
    """Processes (but the `spared`) whose command line names `session_dir` or that hold a file open in it."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            command = Path(f"/proc/{entry.name}/cmdline").read_bytes().decode("utf-8", "replace")
            files = [os.readlink(fd.path) for fd in os.scandir(f"/proc/{entry.name}/fd")]
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if session_dir in command or any(f.startswith(session_dir) for f in files):
            found.append(int(entry.name))
    return found


def main() -> int:
    """Wait for the pipe to close, then kill the session's processes (twice: a raylet may start one more),
    never the grader that started it (at a normal end it is still there, done with Ray), and remove the
    folder."""
    session_dir, grader = os.path.realpath(sys.argv[1]), os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while sys.stdin.buffer.read(4096):
        pass
    for _ in range(2):
        for pid in session_processes(session_dir, {os.getpid(), grader}):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    shutil.rmtree(session_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The reaper: one small process per grader that kills what the workers leave when the grader dies.

Why a process of its own: nothing in a grader runs after ``kill -9`` (or the out-of-memory killer), and
one orphan escapes both the parent-death signal and the lifeline. Bubblewrap's sandboxed child waits
for bubblewrap on an event counter before it asks for its own parent-death signal and before Python
starts; a grader killed in that window takes bubblewrap with it and leaves the child blocked for ever,
in the worker's scratch folder (CI's ``test_kill_minus_9_mid_batch_then_resume`` found one).

The reaper runs in its own session (a kill of the grader's process group spares it) and reads the
grader's messages on its standard input, whose only write end the grader holds: end-of-file means the
grader has gone, however it went. It then kills every worker still registered: its process group,
its cgroups, and any process whose working directory is inside its scratch folder or whose command
line names it (bubblewrap's clone is in a session of its own and still outside that folder when the
grader dies: ``bench/spawn_race.py`` found it); it keeps looking for ``SETTLE_SECONDS`` at least, for
a clone still being made, then exits. A grader that ends normally closes the pipe too, with
nothing registered.

The grader side is three calls, made by :func:`harness.sandbox.runner.run_command`: :func:`watch`
before a worker starts, :func:`group` once it has, :func:`release` once it is killed and about to be
reaped. Where the reaper cannot start (no POSIX processes), the calls do nothing: the parent-death
signal, the lifeline and the cgroups still stand. ``harness/pipeline/ray_reaper.py`` does the same for
the local Ray cluster of a run.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.sandbox.cgroups import kill_cgroup
from harness.sandbox.processes import processes_in, processes_naming

_lock = threading.Lock()
_process: subprocess.Popen | None = None
_owner: int | None = None  # the process that started it: a forked grader starts its own
_tokens = itertools.count(1)

# Keep looking that long after the grader's end, found or not: bubblewrap's clone into its new
# namespaces can take seconds in the kernel (a network namespace), and shows in /proc only then.
SETTLE_SECONDS = 10.0
KILL_ROUNDS = 400  # a process may fork while it is killed: kill again until nothing is left
ROUND_SECONDS = 0.05


def watch(scratch: Path, cgroup_folders: list[Path]) -> int:
    """Register a worker about to start in `scratch`, with the cgroups it will join; returns its token."""
    token = next(_tokens)
    _send({"id": token, "scratch": str(scratch), "cgroups": [str(f) for f in cgroup_folders]})
    return token


def group(token: int, pid: int) -> None:
    """The worker `token` started as process `pid`, the leader of its own process group."""
    _send({"id": token, "group": pid})


def release(token: int) -> None:
    """The worker `token` is killed and about to be reaped: nothing of it is the reaper's to kill."""
    _send({"id": token, "done": True})


def reaper_pid() -> int | None:
    """This grader's reaper's process id; None before the first worker or where there is none."""
    with _lock:
        return _process.pid if _process is not None and _owner == os.getpid() else None


def _send(message: dict) -> None:
    global _process
    with _lock:
        process = _started()
        if process is None:
            return
        try:
            process.stdin.write(json.dumps(message) + "\n")
            process.stdin.flush()
        except (OSError, ValueError):
            _process = None  # the reaper was killed: the next worker starts a new one


def _started() -> subprocess.Popen | None:
    global _process, _owner
    if os.name != "posix":
        return None
    if _process is not None and _owner == os.getpid() and _process.poll() is None:
        return _process
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    try:
        _process = subprocess.Popen(
            [sys.executable, "-c", "from harness.sandbox.reaper import main; main()"],  # -m: runpy's double import
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",  # never inside an output folder: the reaper is nobody's leftover
            env={**os.environ, "PYTHONPATH": path},
            start_new_session=True,
            text=True,
        )
    except OSError:
        _process = None
    _owner = os.getpid()
    return _process


def main() -> None:
    """The reaper itself: follow the grader's messages until end-of-file, then kill what is registered."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the grader's to handle
    watched: dict[int, dict] = {}
    for line in sys.stdin:
        try:
            message = json.loads(line)
            token = int(message["id"])
        except (ValueError, KeyError, TypeError):
            continue
        if message.get("done"):
            watched.pop(token, None)
        elif "group" in message and token in watched:
            watched[token]["group"] = int(message["group"])
        elif "scratch" in message:
            watched[token] = {"scratch": Path(message["scratch"]), "cgroups": message["cgroups"], "group": None}
    settled = time.monotonic() + SETTLE_SECONDS
    for _ in range(KILL_ROUNDS if watched else 0):
        if not _kill(list(watched.values())) and time.monotonic() > settled:
            break
        time.sleep(ROUND_SECONDS)


def _kill(workers: list[dict]) -> bool:
    """Kill one round of what the workers left; True if anything was found alive."""
    found = False
    for worker in workers:
        if worker["group"] is not None:
            found |= _signal(lambda pgid=worker["group"]: os.killpg(pgid, signal.SIGKILL))
        for folder in worker["cgroups"]:
            found |= kill_cgroup(Path(folder))
        for pid in set(processes_in(worker["scratch"], nested=True) + processes_naming(worker["scratch"])):
            found |= _signal(lambda pid=pid: os.kill(pid, signal.SIGKILL))
    return found


def _signal(send) -> bool:
    try:
        send()
    except (ProcessLookupError, PermissionError):
        return False
    return True

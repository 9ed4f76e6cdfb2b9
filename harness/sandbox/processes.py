"""Counting and tying the worker's processes: where no pids cgroup caps them, the runner counts them.

Linux's ``/proc`` is read; elsewhere the counts are 0 (not checked) and ``die_with_parent`` does
nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path


def user_task_count() -> int:
    """Processes + threads of this real uid (what RLIMIT_NPROC counts); 0 where there is no /proc."""
    if not os.path.isdir("/proc"):
        return 0
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


def processes_in(folder: Path | str, nested: bool = False) -> list[int]:
    """Processes whose working directory is `folder` (with `nested`, or inside it): every worker runs in
    its scratch folder, so this finds what a worker left; [] where there is no /proc."""
    folder, found = Path(folder), []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else []:
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(f"/proc/{entry.name}/cwd"))
            except OSError:
                continue
            if cwd == folder or (nested and folder in cwd.parents):
                found.append(int(entry.name))
    return found


def processes_naming(folder: Path | str) -> list[int]:
    """Processes with `folder`, or a path inside it, among their arguments. A sandbox's bubblewrap (and
    the namespace's first process it clones, which keeps its command line) names the worker's scratch
    folder from its first instant, long before its working directory is there; [] where there is no /proc."""
    folder, found = Path(folder), []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else []:
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            paths = (Path(os.fsdecode(arg)) for arg in argv[1:] if arg.startswith(b"/"))
            if any(path == folder or folder in path.parents for path in paths):
                found.append(int(entry.name))
    return found


def tree_tasks(root_pid: int) -> int:
    """Processes + threads of `root_pid` and all its descendants (polled when no pids cgroup); 0 where
    there is no /proc (macOS, Windows): the process count is then not checked."""
    if not os.path.isdir("/proc"):
        return 0
    children: dict[int, list[int]] = {}
    threads: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        threads[pid] = int(fields[17])
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += threads.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Ask the kernel to SIGKILL this (child) process when the thread that started it dies.

    `parent`: the grader's process id, read before the fork. A grader killed between the fork and
    this call is already gone, and the kernel never sends the signal for a death before the request
    (the kill -9 campaign found such a worker outliving its grader): the child then ends itself."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)

"""One grader per output folder: ``OUT/.harness.lock``, held for the whole run.

Two graders writing one class folder (a second terminal, a cron job) would interleave results,
caches and gradebooks. ``harness grade``, ``score`` and ``report`` hold an exclusive ``flock`` on
the lock file while they run; a second one stops with a message naming the holder (its process
id, host, command and start time, written in the file), or with ``--wait`` queues behind it.

The operating system releases a ``flock`` when its holder exits, however it exits (``kill -9``
included), so a lock is never stale and the file is never deleted (deleting a lock file another
process has open is a race of its own).

>>> with output_lock(Path("out")):  # doctest: +SKIP
...     grade_the_class()
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import OutputFolderBusy

LOCK_FILE = ".harness.lock"


def _holder_line() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    command = " ".join([program, *sys.argv[1:]])
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return f"process {os.getpid()} on {socket.gethostname()} ({command}), since {started}"


def _read_holder(fd: int) -> str:
    # the holder writes its line just after taking the lock: an empty file is one that is starting
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    return text or "another grader (starting)"


@contextmanager
def output_lock(
    out: Path, wait: bool = False, log: Callable[[str], None] = print, create: bool = True
) -> Iterator[None]:
    """Hold `out`'s lock for the block. Busy: raise OutputFolderBusy naming the holder, or with `wait`
    say who is ahead and block until it is done. A missing `out` is created, or with `create=False`
    (``harness score`` on a mistyped folder) left missing, with nothing to lock."""
    out = Path(out)
    if not create and not out.is_dir():
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            if not wait:
                raise OutputFolderBusy(
                    f"{out} is being written by {holder}; wait for it to finish, or pass --wait to queue behind it"
                ) from None
            log(f"waiting for {out}: in use by {holder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, (_holder_line() + "\n").encode("utf-8"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # the next reader sees no holder rather than a finished one
    finally:
        os.close(fd)  # releases the lock

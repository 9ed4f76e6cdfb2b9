"""A worker ends when its grader does, whatever the moment the grader died.

The grader starts each worker with the read end of a pipe whose only write end it holds itself
(``HARNESS_LIFELINE_FD``). Nothing is ever written to it: the read returns end-of-file exactly when
the grader has gone, however it went (``kill -9`` included), and the worker then kills itself.

The kernel's parent-death signal is not enough on its own: bubblewrap forks the sandboxed process
and asks for the signal in the child, and a grader killed between that fork and that request
leaves the child running, its parent already gone (the kill -9 campaign hit this about once in ten
kills landing in the first milliseconds of a worker). An end-of-file does not have that window: it
is there to read whenever the reader starts.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "HARNESS_LIFELINE_FD"


def hold(environ: dict | os._Environ = os.environ) -> threading.Thread | None:
    """Watch the lifeline named in `environ` (then dropped from it: student code has no use for
    it) on a daemon thread; None when this process was given none."""
    value = environ.pop(ENV, None)
    if value is None or not value.isdigit():
        return None
    fd = int(value)
    try:
        os.set_inheritable(fd, False)  # a process the student starts holds no copy
    except OSError:
        return None
    watcher = threading.Thread(target=_watch, args=(fd,), name="harness-lifeline", daemon=True)
    watcher.start()
    return watcher


def _watch(fd: int) -> None:
    try:
        while os.read(fd, 1):
            pass  # nothing is written on purpose; bytes here mean someone else's pipe: keep reading
    except OSError:
        return  # closed by student code: the parent-death signal and the deadlines still stand
    os.kill(os.getpid(), signal.SIGKILL)

"""How every worker talks to the grader: a job file in, progress events out.

A worker is started as ``python -m harness.workers.<name> JOB.json``. The job file is JSON
written by the grader; its ``events`` entry names the JSON-lines file the worker appends its
progress to. The grader reads that file through its own descriptor and trusts nothing in it
beyond the event names it expects (``harness.sandbox.runner``).

Every worker reports ``started`` first and ``done`` last; a worker whose job raised reports
``worker_failed`` instead of ``done`` and exits with status 1.

>>> sys.exit(serve(sys.argv[1:], run_my_job))    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Events:
    """Append-only JSON-lines progress file; one os.write per line so lines never interleave."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, event: str, **fields: Any) -> None:
        """Append one event, stamped with the worker's wall clock."""
        line = json.dumps({"event": event, "time": time.time(), **fields}, default=str) + "\n"
        os.write(self.fd, line.encode("utf-8"))


# run(job, events): the worker's job; failure(error) -> the fields of its ``worker_failed`` event
Run = Callable[[dict, Events], None]
Failure = Callable[[BaseException], dict]


def read_job(path: str | Path) -> dict:
    """The job the grader wrote for this worker."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def wait_for_go(job: dict, events: Events) -> dict:
    """What the grader writes (atomically) to the job's ``go_file`` once it knows: a worker started
    beforehand, so that its TensorFlow start overlaps other work, reports ``ready`` and waits up to
    ``wait_s`` for it, then reports ``go``."""
    events.emit("ready")
    path, deadline = Path(job["go_file"]), time.monotonic() + float(job["wait_s"])
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing to do arrived within {float(job['wait_s']):.0f} s")
        time.sleep(0.05)
    go = json.loads(path.read_text(encoding="utf-8"))
    events.emit("go")
    return go


def error_reason(error: BaseException) -> dict:
    """The ``worker_failed`` fields of a worker with no failure reporting of its own."""
    return {"reason": f"{type(error).__name__}: {error}"}


def serve(
    argv: list[str], run: Run, *, failure: Failure = error_reason, configure: Callable[[dict], None] | None = None
) -> int:
    """A worker's entry point: read the job file ``argv[0]``, run `run(job, events)`, report start,
    failure and end; returns the process's exit status.

    `configure(job)` runs before anything is reported (the training and evaluation workers read
    their resource limits there, to explain a failure that hits one); `failure(error)` gives the
    fields of the ``worker_failed`` event, and is called while the error is being handled (so it
    may read the traceback).
    """
    job = read_job(argv[0])
    # The student's code sees the command line of `python their_file.py`: no argument. A script that
    # picks its runs from sys.argv[1:] ("all of them when none is named") was handed the job file.
    del sys.argv[1:]
    if configure is not None:
        configure(job)
    events = Events(job["events"])
    events.emit("started", pid=os.getpid())
    try:
        run(job, events)
    except BaseException as error:  # SystemExit and KeyboardInterrupt from student code too
        events.emit("worker_failed", **failure(error))
        return 1
    events.emit("done")
    return 0

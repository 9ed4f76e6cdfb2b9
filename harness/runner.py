"""Start a worker job in the sandbox, watch its progress events, stop it at its deadlines.

>>> outcome = run_job(job, scratch, readable=[train_npz], threads=2, watch=my_watch)  # doctest: +SKIP
>>> outcome.events[-1]["event"]                                                     # doctest: +SKIP
'done'
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness.sandbox import Limits, wrap

POLL_SECONDS = 0.2
LOG_TAIL_BYTES = 8000

# watch(events_so_far, seconds_since_start) -> None to go on, or a reason to stop the worker
Watch = Callable[[list[dict], float], "str | None"]


@dataclass
class JobOutcome:
    events: list[dict] = field(default_factory=list)
    returncode: int | None = None
    stopped_because: str | None = None
    log_tail: str = ""
    isolation: str = ""

    @property
    def signal_name(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return None


def _read_events(path: Path, offset: int) -> tuple[list[dict], int]:
    if not path.exists():
        return [], offset
    with open(path, "rb") as handle:
        handle.seek(offset)
        chunk = handle.read()
    complete = chunk[: chunk.rfind(b"\n") + 1]
    events = []
    for line in complete.splitlines():
        try:
            event = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # a line student code wrote into our file is ignored, not trusted
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            events.append(event)
    return events, offset + len(complete)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_job(job: dict, scratch: Path, *, readable: list[Path], threads: int, watch: Watch,
            limits: Limits, use_bubblewrap: bool | None = None) -> JobOutcome:
    """Run ``python -m harness.worker`` on `job` in `scratch`; return what it reported."""
    scratch.mkdir(parents=True, exist_ok=True)
    events_path = scratch / "events.jsonl"
    events_path.unlink(missing_ok=True)
    job = {**job, "events": str(events_path), "threads": threads}
    job_path = scratch / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    argv, env, isolation = wrap([sys.executable, "-m", "harness.worker", str(job_path)], scratch=scratch,
                                readable=readable, threads=threads, use_bubblewrap=use_bubblewrap)
    log_path = scratch / "worker.log"
    outcome = JobOutcome(isolation=isolation)
    started = time.monotonic()
    offset = 0
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, env=env, cwd=scratch, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=limits.apply)
        try:
            while True:
                returncode = process.poll()
                new, offset = _read_events(events_path, offset)
                outcome.events.extend(new)
                if returncode is not None:
                    outcome.returncode = returncode
                    break
                reason = watch(outcome.events, time.monotonic() - started)
                if reason:
                    outcome.stopped_because = reason
                    _kill_group(process)
                    outcome.returncode = process.wait()
                    break
                time.sleep(POLL_SECONDS)
        finally:
            if process.poll() is None:
                _kill_group(process)
                process.wait()
            _kill_group(process)  # anything the worker left behind in its session
    new, offset = _read_events(events_path, offset)
    outcome.events.extend(new)
    with open(log_path, "rb") as handle:
        handle.seek(max(0, log_path.stat().st_size - LOG_TAIL_BYTES))
        outcome.log_tail = handle.read().decode("utf-8", "replace")
    return outcome

"""Warm training workers: Python and TensorFlow started before the submission that will use them.

A training worker spends its first seconds importing TensorFlow (about 4.5 s on 2 cores, 10-20 s
under load) before it reads a line of the student's code. A :class:`WarmTrainer` is started with
everything a run shares (the training split, the threads, the limits, the sandbox) and no
submission; the grader hands it one (:meth:`WarmTrainer.run`) when it has one, and the worker
trains that submission's models and ends. A worker is never reused: each serves exactly one
submission, in a scratch folder of its own. :class:`WarmPool` keeps one started ahead of the next
submission of a batch, so its start overlaps the current submission's training.

>>> pool = WarmPool(job, out / ".work" / "warm")        # doctest: +SKIP
>>> warm = pool.take()        # started while the previous submission trained; the next one starts now
>>> models, worker = train_submission(source, factories, job, warm.scratch, models_out, warm=warm)  # doctest: +SKIP
>>> pool.close()
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.sandbox import JobOutcome
from harness.training.ahead import StartedAhead

IDLE_LIMIT_S = 24 * 3600.0  # how long a warm worker waits for its submission before it gives up
IDLE_SLACK_S = 60.0  # ... and how much longer the grader lets it before stopping it
WORKER = "harness.workers.train"


class WarmTrainer(StartedAhead):
    """One training worker, started before its submission is known; it serves one submission."""

    def __init__(self, job, scratch: Path) -> None:
        self.went_at: float | None = None  # seconds after the start at which the submission was handed over
        self.watch: Callable[[list[dict], float], str | None] | None = None
        self.on_event: Callable[[dict], None] | None = None
        super().__init__(
            {"mode": "train", "wait_s": IDLE_LIMIT_S},
            scratch,
            worker=WORKER,
            readable=[job.train_data],
            threads=job.threads,
            limits=job.limits,
            use_bubblewrap=job.use_bubblewrap,
            on_event=self._event,
        )

    def _watch(self, events: list[dict], elapsed: float) -> str | None:
        """Before its submission: only the idle limit; after: the submission's deadlines, from the handover."""
        if self.went_at is None or self.watch is None:
            return (
                f"the warm worker waited more than {IDLE_LIMIT_S:.0f} s"
                if elapsed > IDLE_LIMIT_S + IDLE_SLACK_S
                else None
            )
        return self.watch(events, elapsed - self.went_at)

    def _event(self, event: dict) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def run(
        self, job: dict, watch: Callable[[list[dict], float], str | None], on_event: Callable[[dict], None] | None
    ) -> JobOutcome | None:
        """Hand the worker its submission (`job`: the training job's fields, as ``run_job`` takes them) and
        wait until it ends; its outcome, with `watch` applied from now; None if it could not be started."""
        self.watch, self.on_event = watch, on_event
        self.went_at = time.monotonic() - self.started
        self.send(job)
        return self.wait()

    def cancel(self) -> None:
        """Nothing to train after all: the worker is told so and ends."""
        if self.went_at is None:
            self.went_at = time.monotonic() - self.started
            self.send({"cancel": True})
        self.thread.join()


class WarmPool:
    """Keeps one warm training worker started ahead of the next submission that needs one."""

    def __init__(self, job, folder: Path) -> None:
        self.job, self.folder = job, folder
        self.lock = threading.Lock()
        self.numbers = itertools.count(1)
        self.idle: WarmTrainer | None = None
        self.closed = False

    def take(self) -> WarmTrainer | None:
        """A started worker for one submission (None once closed); the next taker's starts now."""
        with self.lock:
            if self.closed:
                return None
            worker = self.idle or self._start()
            self.idle = self._start()
            return worker

    def _start(self) -> WarmTrainer:
        return WarmTrainer(self.job, self.folder / f"warm-{next(self.numbers)}")

    def close(self) -> None:
        """No more submissions: the idle worker is told so and ends."""
        with self.lock:
            self.closed, idle, self.idle = True, self.idle, None
        if idle is not None:
            idle.cancel()
            shutil.rmtree(idle.scratch, ignore_errors=True)

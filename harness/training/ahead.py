"""A sandboxed worker started ahead of its work: it starts TensorFlow, then waits for ``go.json``.

TensorFlow's start takes ~4.5 s on 2 cores (10-20 s under load). The evaluation worker
(``harness.training.evaluate``) and the warm training worker (``harness.training.warm``) are
therefore started before what they will do is known, in a thread of the grading process that
drives ``run_job``; the grader writes ``go.json`` into the worker's folder when it knows, and waits
for the worker to end. The worker side reads it with ``harness.workers.protocol.wait_for_go``.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import Interrupted
from harness.sandbox import JobOutcome, Limits, run_job

GO_FILE = "go.json"  # what the worker is to do, written (atomically) when the grader knows


class StartedAhead:
    """One worker process run in a thread from now on; :meth:`send` tells it what to do, :meth:`wait`
    waits for its end. Subclasses give `_watch(events, elapsed)`, the runner's deadline check."""

    def __init__(
        self,
        job: dict,
        scratch: Path,
        *,
        worker: str,
        readable: list[Path],
        threads: int,
        limits: Limits,
        use_bubblewrap: bool | None,
        on_event: Callable[[dict], None] | None = None,
    ) -> None:
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        self.scratch = scratch
        self.started = time.monotonic()
        self.outcome: JobOutcome | None = None
        self.interrupted: Interrupted | None = None

        def run() -> None:
            try:
                self.outcome = run_job(
                    {**job, "go_file": str(scratch / GO_FILE)},
                    scratch,
                    worker=worker,
                    readable=readable,
                    threads=threads,
                    watch=self._watch,
                    limits=limits,
                    use_bubblewrap=use_bubblewrap,
                    on_event=on_event,
                )
            except Interrupted as stop:  # raised again in the thread that waits for the worker
                self.interrupted = stop

        self.thread = threading.Thread(target=run, name=f"{worker}:{scratch}", daemon=True)
        self.thread.start()

    def _watch(self, events: list[dict], elapsed: float) -> str | None:
        raise NotImplementedError

    def send(self, go: dict) -> None:
        """Tell the worker what to do: ``go.json``, whole or absent, as the worker polls for it."""
        pending = self.scratch / f".{GO_FILE}.tmp"
        pending.write_text(json.dumps(go), encoding="utf-8")
        os.replace(pending, self.scratch / GO_FILE)

    def wait(self) -> JobOutcome | None:
        """The worker's outcome once it has ended (None if it could not be started); a stop of the
        grader (Ctrl-C, SIGTERM) that ended it is raised here."""
        self.thread.join()
        if self.interrupted is not None:
            raise self.interrupted
        return self.outcome

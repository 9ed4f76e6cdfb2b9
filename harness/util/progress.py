"""Progress of a grading run: submissions done, current model and epoch, ETA.

On a terminal one status line is redrawn in place; elsewhere (CI logs, files) plain lines are
printed at each model and submission boundary.

>>> progress = Progress.for_stream(sys.stdout, print)   # doctest: +SKIP
>>> progress.start(total=30)                             # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """A grading run's progress, shared by the grading threads: submissions done, what each one is running, ETA."""

    def __init__(self, log: Callable[[str], None], stream: TextIO | None = None, live: bool = False) -> None:
        self.log, self.stream, self.live = log, stream, live
        self.lock = threading.Lock()
        self.total = self.done = 0
        self.started = time.monotonic()
        self.current: dict[str, str] = {}

    @classmethod
    def for_stream(cls, stream: TextIO, log: Callable[[str], None]) -> Progress:
        """A progress redrawn in place when ``stream`` is a terminal, else logged as plain lines."""
        return cls(log, stream, live=hasattr(stream, "isatty") and stream.isatty())

    def start(self, total: int) -> None:
        """Start counting: ``total`` submissions, none done, the clock reset."""
        with self.lock:
            self.total, self.done, self.started = total, 0, time.monotonic()

    def eta(self) -> str:
        """Time left, estimated from the submissions done so far ("—" before the first and after the last)."""
        if not self.done or self.done >= self.total:
            return "—"
        seconds = (time.monotonic() - self.started) / self.done * (self.total - self.done)
        return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"

    def _status_line(self) -> str:
        running = "; ".join(f"{who}: {what}" for who, what in sorted(self.current.items()))
        return f"[{self.done}/{self.total}, ETA {self.eta()}] {running}"[:200]

    def _redraw(self) -> None:
        if self.live and self.stream is not None:
            self.stream.write("\r\033[K" + self._status_line())
            self.stream.flush()

    def message(self, text: str) -> None:
        """A line that stays (a finished submission, a warning)."""
        with self.lock:
            if self.live and self.stream is not None:
                self.stream.write("\r\033[K")
            self.log(text)
            self._redraw()

    def submission_done(self, student: str, text: str) -> None:
        """Count a submission as done and log its line."""
        with self.lock:
            self.done += 1
            self.current.pop(student, None)
        self.message(f"[{self.done}/{self.total}] {text}")

    def worker_event(self, student: str) -> Callable[[dict], None]:
        """A callback for the worker's progress events of one submission."""

        def on_event(event: dict) -> None:
            kind = event.get("event")
            with self.lock:
                if kind == "model":
                    epochs = f" ({event['epochs']} epochs)" if event.get("epochs") else ""
                    self.current[student] = f"{event.get('name')} {event.get('phase')}{epochs}"
                elif kind == "epoch":
                    self.current[student] = f"{event.get('name')} epoch {event.get('epoch')}"
                else:
                    return
                if self.live:
                    self._redraw()
                    return
            if kind == "model" and event.get("phase") == "train":
                self.log(f"  {student}: training {event.get('name')}{epochs}")

        return on_event

    def finish(self) -> None:
        """Clear the status line (on a terminal)."""
        if self.live and self.stream is not None:
            self.stream.write("\r\033[K")
            self.stream.flush()


def silent() -> Progress:
    """A progress that prints nothing."""
    return Progress(lambda _: None)

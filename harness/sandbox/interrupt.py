"""Stopping the grader cleanly on Ctrl-C (SIGINT) or SIGTERM: every worker killed, no result invented.

A signal only reaches the grading process's main thread, while workers are watched by other
threads (one per submission, one per early evaluation worker). So stopping is a flag that every
runner loop reads at each poll (``harness/sandbox/runner.py``): once it is set, each running
worker is killed and its thread raises :class:`~harness.errors.Interrupted`, a ``BaseException``
that no ``except Exception`` turns into a submission's result; the submissions finished before
keep theirs, and the next run resumes from them.

>>> with stop_on_signals():        # doctest: +SKIP
...     grade(options)             # Ctrl-C: Interrupted(SIGINT) once every worker is dead
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import Interrupted

_stop = threading.Event()
_signal = [int(signal.SIGINT)]


def request_stop(signum: int = signal.SIGINT) -> None:
    """Every running worker is killed at its runner's next poll, and no new one starts."""
    _signal[0] = int(signum)
    _stop.set()


def stop_requested() -> int | None:
    """The signal that asked the grader to stop, or None."""
    return _signal[0] if _stop.is_set() else None


def clear_stop() -> None:
    """Workers may run again (a library caller grading again after an interrupted run)."""
    _stop.clear()


def _on_signal(signum: int, frame) -> None:
    request_stop(signum)  # first: the other threads' workers stop even if the main thread is busy
    raise Interrupted(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread and stop every worker, for the
    block; the previous handlers are put back after it. Outside the main thread (where Python cannot
    set handlers) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear_stop()
    previous = {number: signal.signal(number, _on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        clear_stop()


@contextmanager
def workers_stopped() -> Iterator[None]:
    """Stop every worker for the block (Ctrl-C reached a library caller without :func:`stop_on_signals`):
    waiting for the submissions' threads then takes a poll, not their whole training."""
    already = stop_requested()
    if already is None:
        request_stop(signal.SIGINT)
    try:
        yield
    finally:
        if already is None:
            clear_stop()

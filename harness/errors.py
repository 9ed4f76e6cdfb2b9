"""Errors that stop a run before it starts (``harness`` exits 2 with their message).

They live here, apart from the stages that raise them, so that the command line can catch
them without importing the pipeline (and TensorFlow with it); so does :class:`Interrupted`, which
stops a run that has started.
"""

import signal


class CannotStart(RuntimeError):
    """The run cannot start: its message says what is missing and how to provide it."""


class DataUnavailable(CannotStart):
    """MNIST could not be loaded; the message says how to provide it."""


class SandboxUnavailable(CannotStart):
    """bubblewrap was required (or is needed) but cannot isolate workers here."""


class OutputFolderBusy(CannotStart):
    """Another grader holds the output folder's lock; the message names it and mentions --wait."""


class Interrupted(BaseException):
    """The grader was told to stop (Ctrl-C, SIGTERM) while it ran: not a run that cannot start, but one
    stopped on purpose. A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception``
    of the pipeline records it as a submission's failure: an interrupted submission has no result and
    is graded by the next run. ``harness grade`` exits with 128 + the signal's number (130, 143)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        super().__init__(self.signal_name)

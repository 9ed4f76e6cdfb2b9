"""Errors that stop a run before it starts (``harness`` exits 2 with their message).

They live here, apart from the stages that raise them, so that the command line can catch
them without importing the pipeline (and TensorFlow with it).
"""


class CannotStart(RuntimeError):
    """The run cannot start: its message says what is missing and how to provide it."""


class DataUnavailable(CannotStart):
    """MNIST could not be loaded; the message says how to provide it."""


class SandboxUnavailable(CannotStart):
    """bubblewrap was required (or is needed) but cannot isolate workers here."""


class OutputFolderBusy(CannotStart):
    """Another grader holds the output folder's lock; the message names it and mentions --wait."""

"""Where student code runs: bubblewrap isolation, resource limits, and the process runner.

The grader starts every worker through this package's public API; what runs inside the
sandbox lives in :mod:`harness.workers`.
"""
from harness.sandbox.bubblewrap import Limits, SandboxUnavailable, bubblewrap_available, profile_limits, wrap
from harness.sandbox.runner import JobOutcome, run_command, run_job

__all__ = ["JobOutcome", "Limits", "SandboxUnavailable", "bubblewrap_available", "profile_limits", "run_command",
           "run_job", "wrap"]

"""Where student code runs: bubblewrap isolation, resource limits, and the process runner.

The grader starts every worker through this package's public API; what runs inside the
sandbox lives in :mod:`harness.workers`. Modules: ``limits`` (what a worker may use),
``bubblewrap`` (what it may see), ``cgroups`` and ``processes`` (how its processes are capped
and counted), ``runner`` (starting, watching and stopping it).
"""

from harness.sandbox.bubblewrap import SandboxUnavailable, bubblewrap_available, wrap
from harness.sandbox.limits import Limits
from harness.sandbox.runner import JobOutcome, run_command, run_job

__all__ = ["JobOutcome", "Limits", "SandboxUnavailable", "bubblewrap_available", "run_command", "run_job", "wrap"]

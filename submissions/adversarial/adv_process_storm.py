"""Adversarial sample (written by the course team): a storm of child processes.

Expected: model `killed` — "... limit of N processes and threads was reached" (a pids cgroup
refuses the spawn and the harness stops the worker; without one the harness counts the worker's
tasks and stops it). Bounded: at most 400 children, each `sleep 60`; they are never waited for.
"""
import os
import shutil

CHILDREN = 400


def create_improved_model_1():
    """Spawns sleeping children until the system says no."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    started = [os.posix_spawn(sleep, ["sleep", "60"], dict(os.environ)) for _ in range(CHILDREN)]
    raise RuntimeError(f"no process limit stopped {len(started)} child processes")

"""Adversarial sample (written by the course team): a storm of child processes.

Expected: model `killed` — "the worker's limit of N processes and threads was reached" (a pids
cgroup refuses the fork; without one the harness counts the worker's tasks and stops it).
Bounded: at most 400 children, each sleeps 60 s and exits; they are never waited for.
"""
import os
import time

CHILDREN = 400


def create_improved_model_1():
    """Forks until the system says no."""
    started = []
    for _ in range(CHILDREN):
        pid = os.fork()
        if pid == 0:  # the child: sleep a while, then leave without running any cleanup
            time.sleep(60)
            os._exit(0)
        started.append(pid)
    raise RuntimeError(f"no process limit stopped {len(started)} child processes")

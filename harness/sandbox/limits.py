"""Resource limits of a worker (:class:`Limits`), per profile from the protocol file.

They apply with or without bubblewrap: address space, CPU time, open files and file size with
``setrlimit`` in the child before it becomes the worker; the number of processes and threads and
the resident memory of the whole worker with a cgroup of its own where one can be created
(:mod:`harness.sandbox.cgroups`), else by counting the worker's tasks (``harness.sandbox.runner``).

>>> limits = Limits(memory_mb=4096, cpu_seconds_per_thread=600)
>>> limits.cpu_seconds(threads=2)
1200
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

try:
    import resource
except ImportError:  # Windows: no rlimits (see README, "Without bubblewrap")
    resource = None


class CgroupView(Protocol):
    """What :meth:`Limits.describe` reads of a worker's cgroups (a ``harness.sandbox.cgroups.WorkerCgroup``,
    not imported here: that module imports this one)."""

    pids: Path | None
    memory: Path | None


@dataclass(frozen=True)
class Limits:
    """Per-worker resource caps. Defaults per profile live in ``reference/protocol.toml`` ([limits.*]).

    ``memory_mb`` is the address space of each process (``RLIMIT_AS``: TensorFlow reserves about
    3 GiB of it before training); ``resident_mb`` is the resident memory of the whole worker,
    enforced by a memory cgroup where one can be created. ``cpu_seconds_per_thread`` times the
    worker's threads is its CPU-time cap (``RLIMIT_CPU``). ``processes`` counts processes and
    threads of the whole worker. ``output_mb`` caps what the worker writes (its folder and its log,
    and any single file); ``tmp_mb`` its private ``/tmp`` and ``/dev/shm`` (bubblewrap only).
    """

    memory_mb: int = 6144
    resident_mb: int = 3072
    cpu_seconds_per_thread: int = 3600
    processes: int = 256
    open_files: int = 512
    output_mb: int = 512
    tmp_mb: int = 128

    @classmethod
    def from_table(cls, table: dict) -> Limits:
        """Limits from a protocol file's table; unknown names and non-positive values are refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"unknown limit(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        values = {}
        for key, value in table.items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"limit {key} must be a positive integer, not {value!r}")
            values[key] = value
        return cls(**values)

    def replace(self, **changes) -> Limits:
        """A copy with some limits changed; None values are ignored (handy for CLI options)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def cpu_seconds(self, threads: int) -> int:
        """The worker's CPU-time cap for `threads` threads."""
        return self.cpu_seconds_per_thread * max(1, threads)

    def as_budgets(self) -> dict[str, float]:
        """The limits as ``limit_<name>`` budgets (a run's recorded settings)."""
        return {f"limit_{k}": float(v) for k, v in dataclasses.asdict(self).items()}

    def apply(self, threads: int = 1, nproc: int | None = None) -> None:
        """setrlimit in the (child) process about to become the worker; inherited by all it starts."""
        if resource is None:
            return
        cpu = self.cpu_seconds(threads)
        caps = {
            resource.RLIMIT_AS: (self.memory_mb * 2**20,) * 2,
            # SIGXCPU at the soft limit; SIGKILL 10 s later if student code ignores SIGXCPU
            resource.RLIMIT_CPU: (cpu, cpu + 10),
            resource.RLIMIT_NOFILE: (self.open_files,) * 2,
            resource.RLIMIT_FSIZE: (self.output_mb * 2**20,) * 2,
            resource.RLIMIT_CORE: (0, 0),
        }
        if nproc is not None:
            caps[resource.RLIMIT_NPROC] = (nproc, nproc)
        for which, (soft, hard) in caps.items():
            _, current_hard = resource.getrlimit(which)
            if current_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, current_hard), min(hard, current_hard)
            resource.setrlimit(which, (soft, hard))

    def describe(self, threads: int, cgroup: CgroupView | None, enforced: bool = True) -> str:
        """What is actually capped for a worker, and how, in words (a result's ``sandbox`` field)."""
        if not enforced:
            return (
                f"limits: only the deadlines and the output limit of {self.output_mb} MiB (this system has no "
                "setrlimit or process groups: memory, CPU time, processes and open files are not capped)"
            )
        resident = (
            f"resident memory {self.resident_mb} MiB (cgroup)"
            if cgroup and cgroup.memory
            else "no resident-memory cap (no cgroup)"
        )
        tasks = (
            "(cgroup)"
            if cgroup and cgroup.pids
            else "(counted every 0.2 s, no cgroup)"
            if os.path.isdir("/proc")
            else "(not counted: no /proc)"
        )
        return (
            f"limits: address space {self.memory_mb} MiB per process, {resident}, "
            f"CPU time {self.cpu_seconds(threads)} s, {self.processes} processes and threads {tasks}, "
            f"{self.open_files} open files, output {self.output_mb} MiB"
        )

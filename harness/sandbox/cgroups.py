"""A cgroup of its own for each worker, where this process may create one (root, or delegation).

The pids cgroup caps processes + threads of the whole worker (``RLIMIT_NPROC`` counts every
process of the user, and root ignores it); the memory cgroup caps its resident memory, children
included. Both cgroup v1 (one hierarchy per controller) and v2 (one folder) are handled.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from pathlib import Path

from harness.sandbox.limits import Limits


def _own_cgroup(controller: str) -> Path | None:
    """Where this process sits in `controller`'s hierarchy (cgroup v1), or in the v2 hierarchy."""
    base = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return base / controller / path.lstrip("/")
    if (base / "cgroup.controllers").exists():
        for line in lines:
            if line.startswith("0::"):
                return base / line[3:].lstrip("/")
    return None


class WorkerCgroup:
    """A pids and a memory cgroup for one worker, when this process may create them (root, delegation).

    The pids cgroup is a hard cap on processes + threads (``RLIMIT_NPROC`` counts every process of
    a user, and root ignores it); the memory cgroup caps the resident memory of the whole worker,
    children included. Created before the worker starts, joined by the child before it execs.
    """

    _counter = 0

    def __init__(self, pids: Path | None, memory: Path | None) -> None:
        self.pids, self.memory = pids, memory

    @classmethod
    def create(cls, limits: Limits) -> WorkerCgroup | None:
        """Both cgroups set to `limits`, or those of them this process may create; None if neither."""
        if sys.platform != "linux":
            return None
        cls._counter += 1
        name = f"harness-{os.getpid()}-{cls._counter}-{time.monotonic_ns() % 10**9}"
        pids_max = {"pids.max": str(limits.processes)}
        memory_max = {
            "memory.limit_in_bytes": str(limits.resident_mb * 2**20),  # v1
            "memory.max": str(limits.resident_mb * 2**20),
            "memory.swap.max": "0",
        }  # v2
        pids_parent, memory_parent = _own_cgroup("pids"), _own_cgroup("memory")
        if pids_parent is not None and pids_parent == memory_parent:  # cgroup v2: one folder, both
            folder = _make_cgroup(pids_parent, name, {**pids_max, **memory_max})
            if folder is None:
                return None
            return cls(
                folder if (folder / "pids.max").exists() else None, folder if (folder / "memory.max").exists() else None
            )
        pids = _make_cgroup(pids_parent, name, pids_max)
        memory = _make_cgroup(memory_parent, name, memory_max)
        if pids is None and memory is None:
            return None
        return cls(pids, memory)

    def join(self) -> None:
        """Move the calling process into the cgroups (called in the child, before exec)."""
        for folder in {self.pids, self.memory} - {None}:
            with open(folder / "cgroup.procs", "w") as handle:
                handle.write(str(os.getpid()))

    def tasks(self) -> int | None:
        """Processes + threads in the pids cgroup now; None without one."""
        if self.pids is None:
            return None
        try:
            return int((self.pids / "pids.current").read_text())
        except (OSError, ValueError):
            return None

    def process_limit_hit(self) -> bool:
        """The worker tried to pass its process cap at least once."""
        return self.pids is not None and _event_count(self.pids / "pids.events", "max") > 0

    def oom_killed(self) -> bool:
        """The memory cgroup's OOM killer fired."""
        if self.memory is None:
            return False
        return (
            _event_count(self.memory / "memory.oom_control", "oom_kill") > 0
            or _event_count(self.memory / "memory.events", "oom_kill") > 0
        )

    def memory_limit_hit(self) -> bool:
        """The worker's resident memory reached its cap at least once (the kernel then reclaims,
        which can stall a worker for a long time before its OOM killer fires)."""
        if self.memory is None:
            return False
        try:
            if (self.memory / "memory.failcnt").exists():
                return int((self.memory / "memory.failcnt").read_text()) > 0
        except (OSError, ValueError):
            return False
        return _event_count(self.memory / "memory.events", "max") > 0

    def peak_resident_mb(self) -> float | None:
        """The worker's peak resident memory, where the kernel records it."""
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            if self.memory is not None and (self.memory / name).exists():
                try:
                    return int((self.memory / name).read_text()) / 2**20
                except (OSError, ValueError):
                    return None
        return None

    def folders(self) -> list[Path]:
        """The cgroup folders this worker joins (one or two)."""
        return sorted({self.pids, self.memory} - {None})

    def kill_all(self) -> None:
        """SIGKILL every process left in the cgroups (a worker's escaped or daemonised children)."""
        for folder in self.folders():
            kill_cgroup(folder)

    def remove(self) -> None:
        """Kill what is left in the cgroups, then delete them."""
        self.kill_all()
        for folder in self.folders():
            _remove_cgroup(folder)


def _make_cgroup(parent: Path | None, name: str, settings: dict[str, str]) -> Path | None:
    if parent is None or not parent.is_dir():
        return None
    _remove_stale(parent)
    folder = parent / name
    try:
        folder.mkdir()
    except OSError:
        return None
    written = False
    for key, value in settings.items():
        if not (folder / key).exists():
            continue
        try:
            (folder / key).write_text(value)
            written = written or key in ("pids.max", "memory.limit_in_bytes", "memory.max")
        except OSError:
            pass
    if not written or not os.access(folder / "cgroup.procs", os.W_OK):
        _remove_cgroup(folder)
        return None
    return folder


def _event_count(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_pids(folder: Path) -> list[int]:
    try:
        return [int(p) for p in (folder / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def kill_cgroup(folder: Path) -> bool:
    """SIGKILL every process in the cgroup `folder`; True if there was any."""
    found = bool(_cgroup_pids(folder))
    if (folder / "cgroup.kill").exists():
        try:
            (folder / "cgroup.kill").write_text("1")
        except OSError:
            pass
    for _ in range(50):  # a process may fork while we kill: the pids cap bounds how often
        pids = _cgroup_pids(folder)
        if not pids:
            return found
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    return found


def _remove_cgroup(folder: Path) -> None:
    for _ in range(100):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            kill_cgroup(folder)
            time.sleep(0.05)


def _remove_stale(parent: Path) -> None:
    """Remove empty cgroups left by a grader that was killed (its pid is in the name and is gone).

    Only empty ones, a minute old at least: a cgroup in use, or one another grader (perhaps in
    another pid namespace) has just created, is never touched."""
    try:
        entries = list(parent.glob("harness-*"))
    except OSError:
        return
    for folder in entries:
        try:
            pid = int(folder.name.split("-")[1])
            old = time.time() - folder.stat().st_mtime > 60
        except (IndexError, ValueError, OSError):
            continue
        if old and pid != os.getpid() and not Path(f"/proc/{pid}").exists() and not _cgroup_pids(folder):
            try:
                folder.rmdir()
            except OSError:
                pass


@functools.lru_cache(maxsize=1)
def cgroups_available() -> tuple[bool, bool]:
    """(pids, memory): whether this process can give a worker its own cgroup of each kind."""
    probe = WorkerCgroup.create(Limits())
    if probe is None:
        return False, False
    found = probe.pids is not None, probe.memory is not None
    probe.remove()
    return found

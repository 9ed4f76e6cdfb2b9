"""Run a worker command isolated from the grader: bubblewrap when present, else a plain process.

Under bubblewrap the worker sees a read-only system (``/usr``, ``/bin``, ``/lib*``, a few files
of ``/etc``), the Python interpreter, its standard library and site-packages, the harness's own
modules, the data files it was given and its own scratch folder (the only writable place, with
a small private ``/tmp``), nothing else: no network (a private loopback only), no home, no
output folder, no test set, no rubric, no other student's files, no other process. It runs as
``nobody`` in a user namespace of its own and cannot create another one.

Resource limits (:class:`Limits`) apply with or without bubblewrap: address space, CPU time,
open files and file size with ``setrlimit``; the number of processes and threads, and resident
memory of the whole worker, with a cgroup of its own where this process may create one
(:class:`WorkerCgroup`), else by counting the worker's tasks (see ``harness.sandbox.runner``).

>>> limits = Limits(memory_mb=4096, cpu_seconds_per_thread=600)
>>> argv, env, how = wrap(["python3", "-c", "print(1)"], scratch=Path("/tmp/x"), readable=[],
...                       limits=limits)  # doctest: +SKIP
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
try:
    import resource
except ImportError:  # Windows: no rlimits (see README, "Without bubblewrap")
    resource = None
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

HARNESS_MOUNT = "/opt/harness-src"
SANDBOX_UID = 65534  # nobody, inside the sandbox's own user namespace

# What of /etc a Python + TensorFlow worker needs; the rest (shadow, ssh keys, …) stays unseen.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
             "localtime", "timezone", "hosts", "host.conf", "os-release", "alternatives", "fonts")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


class SandboxUnavailable(RuntimeError):
    """Bubblewrap was required (use_bubblewrap=True) but cannot run here."""


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
    def from_table(cls, table: dict) -> "Limits":
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

    def replace(self, **changes) -> "Limits":
        """A copy with some limits changed; None values are ignored (handy for CLI options)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def cpu_seconds(self, threads: int) -> int:
        return self.cpu_seconds_per_thread * max(1, threads)

    def as_budgets(self) -> dict[str, float]:
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

    def describe(self, threads: int, cgroup: "WorkerCgroup | None", enforced: bool = True) -> str:
        if not enforced:
            return (f"limits: only the deadlines and the output limit of {self.output_mb} MiB (this system has no "
                    "setrlimit or process groups: memory, CPU time, processes and open files are not capped)")
        resident = (f"resident memory {self.resident_mb} MiB (cgroup)" if cgroup and cgroup.memory
                    else "no resident-memory cap (no cgroup)")
        tasks = ("(cgroup)" if cgroup and cgroup.pids else "(counted every 0.2 s, no cgroup)" if os.path.isdir("/proc")
                 else "(not counted: no /proc)")
        return (f"limits: address space {self.memory_mb} MiB per process, {resident}, "
                f"CPU time {self.cpu_seconds(threads)} s, {self.processes} processes and threads {tasks}, "
                f"{self.open_files} open files, output {self.output_mb} MiB")


def profile_limits(profile: str, protocol_path: Path | None = None) -> Limits:
    """The limits of `profile` from the protocol file's ``[limits.<profile>]`` (else ``[limits.default]``)."""
    if protocol_path is None:
        from harness.resources import bundled

        protocol_path = bundled("reference", "protocol.toml")
    data = tomllib.loads(Path(protocol_path).read_text(encoding="utf-8")).get("limits", {})
    table = {**data.get("default", {}), **data.get(profile, {})}
    return Limits.from_table(table)


# --------------------------------------------------------------------------- cgroups

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
    def create(cls, limits: Limits) -> "WorkerCgroup | None":
        if sys.platform != "linux":
            return None
        cls._counter += 1
        name = f"harness-{os.getpid()}-{cls._counter}-{time.monotonic_ns() % 10**9}"
        pids_max = {"pids.max": str(limits.processes)}
        memory_max = {"memory.limit_in_bytes": str(limits.resident_mb * 2**20),  # v1
                      "memory.max": str(limits.resident_mb * 2**20), "memory.swap.max": "0"}  # v2
        pids_parent, memory_parent = _own_cgroup("pids"), _own_cgroup("memory")
        if pids_parent is not None and pids_parent == memory_parent:  # cgroup v2: one folder, both
            folder = _make_cgroup(pids_parent, name, {**pids_max, **memory_max})
            if folder is None:
                return None
            return cls(folder if (folder / "pids.max").exists() else None,
                       folder if (folder / "memory.max").exists() else None)
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
        if self.pids is None:
            return None
        try:
            return int((self.pids / "pids.current").read_text())
        except (OSError, ValueError):
            return None

    def process_limit_hit(self) -> bool:
        return self.pids is not None and _event_count(self.pids / "pids.events", "max") > 0

    def oom_killed(self) -> bool:
        if self.memory is None:
            return False
        return (_event_count(self.memory / "memory.oom_control", "oom_kill") > 0
                or _event_count(self.memory / "memory.events", "oom_kill") > 0)

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
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            if self.memory is not None and (self.memory / name).exists():
                try:
                    return int((self.memory / name).read_text()) / 2**20
                except (OSError, ValueError):
                    return None
        return None

    def kill_all(self) -> None:
        """SIGKILL every process left in the cgroups (a worker's escaped or daemonised children)."""
        for folder in {self.pids, self.memory} - {None}:
            _kill_cgroup(folder)

    def remove(self) -> None:
        self.kill_all()
        for folder in {self.pids, self.memory} - {None}:
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


def _kill_cgroup(folder: Path) -> None:
    if (folder / "cgroup.kill").exists():
        try:
            (folder / "cgroup.kill").write_text("1")
        except OSError:
            pass
    for _ in range(50):  # a process may fork while we kill: the pids cap bounds how often
        pids = _cgroup_pids(folder)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


def _remove_cgroup(folder: Path) -> None:
    for _ in range(100):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            _kill_cgroup(folder)
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


# --------------------------------------------------------------------------- processes

def user_task_count() -> int:
    """Processes + threads of this real uid (what RLIMIT_NPROC counts); 0 where there is no /proc."""
    if not os.path.isdir("/proc"):
        return 0
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return count


def tree_tasks(root_pid: int) -> int:
    """Processes + threads of `root_pid` and all its descendants (polled when no pids cgroup); 0 where
    there is no /proc (macOS, Windows): the process count is then not checked."""
    if not os.path.isdir("/proc"):
        return 0
    children: dict[int, list[int]] = {}
    threads: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        threads[pid] = int(fields[17])
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += threads.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this (child) process when the thread that started it dies."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


# --------------------------------------------------------------------------- bubblewrap

@functools.lru_cache(maxsize=1)
def bubblewrap_available() -> bool:
    """True when bwrap exists and can actually create its namespaces here (the flags `wrap` uses)."""
    bwrap = shutil.which("bwrap")
    if not bwrap or sys.platform != "linux":
        return False
    probe = [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID),
             "--gid", str(SANDBOX_UID), "--disable-userns", "--die-with-parent", "--new-session", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _python_mounts() -> list[Path]:
    """What the worker's Python needs, and only that: the interpreter, libpython, stdlib, site-packages.

    Never a whole prefix or a ``sys.path`` entry that is not a site-packages folder: with an
    editable install the repository (submissions, output folders) is on ``sys.path``.
    """
    found: set[Path] = set()
    executable = Path(sys.executable)
    found |= {executable, executable.resolve()}
    venv_cfg = Path(sys.prefix) / "pyvenv.cfg"
    if venv_cfg.exists():
        found.add(venv_cfg)
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        found.add(Path(paths[key]))
    for entry in sys.path:
        if entry and Path(entry).name in ("site-packages", "dist-packages") and Path(entry).is_dir():
            found.add(Path(entry))
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        libdir = Path(sysconfig.get_config_var("LIBDIR") or "/nonexistent")
        version = sysconfig.get_config_var("LDVERSION") or sysconfig.get_python_version()
        found |= set(libdir.glob(f"libpython{version}*.so*"))
    return sorted(p for p in found if p.exists() and not _under_system(p))


def _under_system(path: Path) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in SYSTEM_DIRS)


def _harness_package() -> Path:
    return Path(__file__).resolve().parent.parent


def worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker: deterministic hashing, sized thread pools, quiet TensorFlow."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONNOUSERSITE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "OMP_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        # glibc reserves 64 MiB of address space per malloc arena (up to 8 per core): cap it so
        # that the address-space limit means the same on a 2-core laptop and a 64-core server
        "MALLOC_ARENA_MAX": "4",
        "MPLBACKEND": "Agg",
        "KERAS_BACKEND": "tensorflow",
        # passed on only when set: an empty value would hide every GPU from the worker
        **({"CUDA_VISIBLE_DEVICES": os.environ["CUDA_VISIBLE_DEVICES"]} if "CUDA_VISIBLE_DEVICES" in os.environ else {}),
        # Windows: Python and TensorFlow's DLLs need these (there is no sandbox there anyway)
        **({name: os.environ[name] for name in ("SYSTEMROOT", "PATH", "PATHEXT", "COMSPEC")
            if name in os.environ} if os.name == "nt" else {}),
    }


def gpu_device_nodes() -> list[str]:
    """The NVIDIA device nodes a worker needs to use a GPU (``/dev/nvidia0``, ``nvidiactl``,
    ``nvidia-uvm``…): bubblewrap's ``/dev`` has none of them unless they are bound in."""
    return sorted(str(p) for p in Path("/dev").glob("nvidia*") if p.is_char_device())


def _check_not_exposed(mounts: list[Path], scratch: Path) -> None:
    """Refuse to start when a read-only mount would show the scratch folder's surroundings (OUT)."""
    scratch = scratch.resolve()
    for mount in mounts:
        mount = mount.resolve()
        if mount.is_dir() and (mount == scratch.parent or mount in scratch.parents):
            raise SandboxUnavailable(f"refusing to sandbox: {mount} would be mounted and contains the "
                                     f"output folder ({scratch}); install the harness's Python elsewhere")


def wrap(argv: list[str], *, scratch: Path, readable: list[Path], threads: int = 1,
         use_bubblewrap: bool | None = None, limits: Limits | None = None) -> tuple[list[str], dict[str, str], str]:
    """The command, environment and a description of the isolation for running `argv`.

    `scratch` is the worker's only writable folder; `readable` are extra files it may read
    (the training data, the model files). Paths inside `argv` must be under these.
    ``use_bubblewrap=None`` uses bubblewrap when it works here; ``True`` requires it
    (:class:`SandboxUnavailable` otherwise); ``False`` runs a plain process.
    """
    limits = limits or Limits()
    env = worker_env(threads)
    package = _harness_package()
    if use_bubblewrap is None:
        use_bubblewrap = bubblewrap_available()
    elif use_bubblewrap and not bubblewrap_available():
        raise SandboxUnavailable("bubblewrap was required but `bwrap` is missing or cannot create namespaces here")
    if not use_bubblewrap:
        env["HOME"] = str(scratch)
        env["TMPDIR"] = str(scratch)
        env["PYTHONPATH"] = str(package.parent)
        return argv, env, ("plain process, NO SANDBOX (bubblewrap not available): no filesystem or network "
                           "isolation, student code can read and write what the grading user can and open "
                           "network connections")
    python = _python_mounts()
    _check_not_exposed(python, scratch)
    tmp_bytes = str(limits.tmp_mb * 2**20)
    bwrap = [shutil.which("bwrap"), "--die-with-parent", "--unshare-all", "--unshare-user",
             "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--disable-userns", "--new-session",
             "--hostname", "sandbox", "--clearenv", "--proc", "/proc", "--dev", "/dev",
             "--size", tmp_bytes, "--tmpfs", "/dev/shm", "--size", tmp_bytes, "--tmpfs", "/tmp"]
    for system in SYSTEM_DIRS:
        if Path(system).exists():
            bwrap += ["--ro-bind", system, system]
    for name in ETC_FILES:
        bwrap += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for path in python:
        bwrap += ["--ro-bind", str(path), str(path)]
    for path in python:  # an installed harness carries the rubric and the reference: hide them
        if path.is_dir() and (path / "harness").is_dir() and path.name in ("site-packages", "dist-packages"):
            bwrap += ["--size", "4096", "--tmpfs", str(path / "harness"), "--remount-ro", str(path / "harness")]
    for module in sorted(package.rglob("*.py")):  # the harness's modules alone, not its folder
        bwrap += ["--ro-bind", str(module), f"{HARNESS_MOUNT}/harness/{module.relative_to(package).as_posix()}"]
    for path in readable:
        bwrap += ["--ro-bind", str(path), str(path)]
    for node in gpu_device_nodes():
        bwrap += ["--dev-bind", node, node]
    bwrap += ["--bind", str(scratch), str(scratch), "--remount-ro", "/dev", "--remount-ro", "/",
              "--chdir", str(scratch)]
    env.update(HOME=str(scratch), TMPDIR="/tmp", PYTHONPATH=HARNESS_MOUNT)
    for key, value in env.items():
        bwrap += ["--setenv", key, value]
    return bwrap + argv, env, ("bubblewrap: no network, read-only system, private scratch folder and /tmp, "
                               "no view of the output folder, the test set or other submissions")

"""Run a worker command isolated from the grader: bubblewrap when present, else a plain process.

Under bubblewrap the worker sees a read-only system, its own scratch folder (writable), the
Python installation and the harness package (read-only) and the data files it was given,
nothing else: no network, no home, no output folder, no other student's files.

>>> limits = Limits(memory_mb=4096, cpu_seconds=600)
>>> argv, how = wrap(["python3", "-c", "print(1)"], scratch=Path("/tmp/x"), readable=[], limits=limits)  # doctest: +SKIP
"""
from __future__ import annotations

import functools
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

SANDBOX_HOME = "/sandbox"
HARNESS_MOUNT = "/opt/harness-src"


@dataclass(frozen=True)
class Limits:
    """Per-worker resource caps, applied with setrlimit in the worker before it starts."""

    memory_mb: int = 6144
    cpu_seconds: int = 3600
    processes: int = 512
    open_files: int = 1024
    file_size_mb: int = 512

    def apply(self) -> None:
        caps = {
            resource.RLIMIT_AS: self.memory_mb * 1024 * 1024,
            resource.RLIMIT_CPU: self.cpu_seconds,
            resource.RLIMIT_NOFILE: self.open_files,
            resource.RLIMIT_FSIZE: self.file_size_mb * 1024 * 1024,
            resource.RLIMIT_NPROC: self.processes,
            resource.RLIMIT_CORE: 0,
        }
        for which, value in caps.items():
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value if hard == resource.RLIM_INFINITY else hard))


@functools.lru_cache(maxsize=1)
def bubblewrap_available() -> bool:
    """True when bwrap exists and can actually create namespaces here."""
    bwrap = shutil.which("bwrap")
    if not bwrap or sys.platform != "linux":
        return False
    probe = [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _python_roots() -> list[Path]:
    """Folders the worker's Python needs: its prefixes and every site-packages on sys.path."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        roots.add(Path(sysconfig.get_paths()[key]))
    roots |= {Path(p) for p in sys.path if p and Path(p).is_dir() and "site-packages" in p}
    return sorted(r.resolve() for r in roots if r.exists())


def _harness_package() -> Path:
    return Path(__file__).resolve().parent


def worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker: deterministic hashing, sized thread pools, quiet TensorFlow."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "OMP_NUM_THREADS": str(threads),
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "MPLBACKEND": "Agg",
        "KERAS_BACKEND": "tensorflow",
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    }


def wrap(argv: list[str], *, scratch: Path, readable: list[Path], threads: int = 1,
         use_bubblewrap: bool | None = None) -> tuple[list[str], dict[str, str], str]:
    """The command, environment and a description of the isolation for running `argv`.

    `scratch` is the worker's only writable folder; `readable` are extra files it may read
    (the training data, the model files). Paths inside `argv` must be under these.
    """
    env = worker_env(threads)
    package = _harness_package()
    if use_bubblewrap is None:
        use_bubblewrap = bubblewrap_available()
    if not use_bubblewrap:
        env["HOME"] = str(scratch)
        env["PYTHONPATH"] = str(package.parent)
        return argv, env, "process (no bubblewrap: resource limits only, no filesystem or network isolation)"
    bwrap = [shutil.which("bwrap"), "--die-with-parent", "--unshare-all", "--new-session",
             "--clearenv", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for system in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc"):
        if Path(system).exists():
            bwrap += ["--ro-bind", system, system]
    for root in _python_roots():
        bwrap += ["--ro-bind", str(root), str(root)]
    bwrap += ["--ro-bind", str(package), f"{HARNESS_MOUNT}/harness"]
    for path in readable:
        bwrap += ["--ro-bind", str(path), str(path)]
    bwrap += ["--bind", str(scratch), str(scratch), "--chdir", str(scratch)]
    env.update(HOME=str(scratch), PYTHONPATH=HARNESS_MOUNT)
    for key, value in env.items():
        bwrap += ["--setenv", key, value]
    return bwrap + argv, env, "bubblewrap (no network, read-only system, private scratch folder)"

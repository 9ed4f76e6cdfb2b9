"""Run a worker command isolated from the grader: bubblewrap when present, else a plain process.

Under bubblewrap the worker sees a read-only system (``/usr``, ``/bin``, ``/lib*``, a few files
of ``/etc``), the Python interpreter, its standard library and site-packages, the worker code
(``harness/__init__.py`` and ``harness/workers/``, nothing else of the harness), the data files
it was given and its own scratch folder (the only writable place, with a small private
``/tmp``), nothing else: no network (a private loopback only), no home, no output folder, no
test set, no rubric, no other student's files, no other process. It runs as ``nobody`` in a
user namespace of its own and cannot create another one.

Resource limits (:class:`~harness.sandbox.limits.Limits`) apply with or without bubblewrap
(``harness.sandbox.runner`` sets and enforces them).

>>> limits = Limits(memory_mb=4096, cpu_seconds_per_thread=600)
>>> argv, env, how = wrap(["python3", "-c", "print(1)"], scratch=Path("/tmp/x"), readable=[],
...                       limits=limits)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SandboxUnavailable
from harness.sandbox.limits import Limits

HARNESS_MOUNT = "/opt/harness-src"
SANDBOX_UID = 65534  # nobody, inside the sandbox's own user namespace

# What of /etc a Python + TensorFlow worker needs; the rest (shadow, ssh keys, …) stays unseen.
ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "passwd",
    "group",
    "nsswitch.conf",
    "localtime",
    "timezone",
    "hosts",
    "host.conf",
    "os-release",
    "alternatives",
    "fonts",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")


@functools.lru_cache(maxsize=1)
def bubblewrap_available() -> bool:
    """True when bwrap exists and can actually create its namespaces here (the flags `wrap` uses)."""
    bwrap = shutil.which("bwrap")
    if not bwrap or sys.platform != "linux":
        return False
    probe = [
        bwrap,
        "--ro-bind",
        "/",
        "/",
        "--unshare-all",
        "--unshare-user",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "true",
    ]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class PythonLayout:
    """Where an interpreter's parts are: what a worker's Python needs to start and import its packages.

    One shape for every installation: a system or pyenv interpreter (prefix = base prefix), a venv
    (prefix holds ``pyvenv.cfg`` and site-packages; the standard library stays in the base prefix),
    conda (extension modules load the environment's own shared libraries from ``lib/``), and
    ``pip install --user`` (a user site-packages in the home folder).
    """

    executable: Path
    prefix: Path
    base_prefix: Path
    stdlib: tuple[Path, ...]  # folders that hold the standard library (os.py) or its extensions (lib-dynload)
    site_packages: tuple[Path, ...]  # every site-packages or dist-packages folder on sys.path, the user's included
    user_site: Path | None  # the user site-packages, when Python put it on sys.path
    libpython: tuple[Path, ...]
    conda_libs: tuple[Path, ...]  # conda's <prefix>/lib: libssl, libffi, BLAS… that its extensions link against

    @classmethod
    def current(cls) -> PythonLayout:
        """The running interpreter's layout (the one whose workers are started: ``sys.executable``)."""
        entries = [Path(e) for e in sys.path if e]
        user_site = Path(site.getusersitepackages()) if site.ENABLE_USER_SITE else None
        prefixes = dict.fromkeys(Path(p) for p in (sys.prefix, sys.base_prefix))
        return cls(
            executable=Path(sys.executable),
            prefix=Path(sys.prefix),
            base_prefix=Path(sys.base_prefix),
            stdlib=_stdlib_folders(entries),
            site_packages=tuple(e for e in entries if e.name in ("site-packages", "dist-packages") and e.is_dir()),
            user_site=user_site if user_site in entries else None,
            libpython=_libpython(),
            conda_libs=tuple(p / "lib" for p in prefixes if (p / "conda-meta").is_dir()),
        )


def _stdlib_folders(entries: list[Path]) -> tuple[Path, ...]:
    """The standard library's folders: where ``os.py`` is, ``lib-dynload`` and a zipped stdlib, all in the
    base installation (a venv's ``lib/pythonX.Y``, sysconfig's ``platstdlib`` there, holds only site-packages)."""
    zipped = [e for e in entries if e.suffix == ".zip" and e.name.startswith("python") and e.is_file()]
    found = [Path(os.__file__).parent, *(e for e in entries if e.name == "lib-dynload"), *zipped]
    return tuple(dict.fromkeys(found))


def _libpython() -> tuple[Path, ...]:
    """libpython, for an interpreter linked against it (pyenv with --enable-shared, conda)."""
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return ()
    libdir = Path(sysconfig.get_config_var("LIBDIR") or "/nonexistent")
    version = sysconfig.get_config_var("LDVERSION") or sysconfig.get_python_version()
    return tuple(sorted(libdir.glob(f"libpython{version}*.so*")))


def python_mounts(layout: PythonLayout | None = None) -> list[Path]:
    """What the worker's Python needs, and only that: the interpreter, libpython, stdlib, site-packages
    (and conda's shared libraries, and a venv's ``pyvenv.cfg``, without which it is not a venv).

    Never a whole prefix or a ``sys.path`` entry that is not a site-packages folder: with an
    editable install the repository (submissions, output folders) is on ``sys.path``.
    """
    layout = layout or PythonLayout.current()
    found = {layout.executable, layout.executable.resolve(), *layout.stdlib, *layout.site_packages, *layout.libpython}
    found |= set(layout.conda_libs)
    if layout.prefix != layout.base_prefix:
        found.add(layout.prefix / "pyvenv.cfg")
    return sorted(p for p in found if p.exists() and not _under_system(p))


def _under_system(path: Path) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in SYSTEM_DIRS)


def _harness_package() -> Path:
    """The ``harness`` package folder of this checkout or installation."""
    return Path(__file__).resolve().parent.parent


def worker_modules() -> list[Path]:
    """The harness files a worker may see: ``harness/__init__.py`` and ``harness/workers/*.py``
    (what runs in the sandbox imports nothing else of the harness)."""
    package = _harness_package()
    return [package / "__init__.py", *sorted((package / "workers").glob("*.py"))]


def worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker: deterministic hashing, sized thread pools, quiet TensorFlow."""
    return {
        **_user_site_env(PythonLayout.current()),
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
        # glibc reserves 64 MiB of address space per malloc arena (up to 8 per core): cap it so
        # that the address-space limit means the same on a 2-core laptop and a 64-core server
        "MALLOC_ARENA_MAX": "4",
        "MPLBACKEND": "Agg",
        "KERAS_BACKEND": "tensorflow",
        # passed on only when set: an empty value would hide every GPU from the worker
        **(
            {"CUDA_VISIBLE_DEVICES": os.environ["CUDA_VISIBLE_DEVICES"]} if "CUDA_VISIBLE_DEVICES" in os.environ else {}
        ),
        # Windows: Python and TensorFlow's DLLs need these (there is no sandbox there anyway)
        **(
            {name: os.environ[name] for name in ("SYSTEMROOT", "PATH", "PATHEXT", "COMSPEC") if name in os.environ}
            if os.name == "nt"
            else {}
        ),
    }


def _user_site_env(layout: PythonLayout) -> dict[str, str]:
    """Where the worker's Python finds the user's site-packages: the grader's own when its packages are
    there (``pip install --user``: mounted read-only), none otherwise. HOME is the scratch folder, so
    without PYTHONUSERBASE Python would look for it, and run its .pth files, in a folder the student writes."""
    if layout.user_site is None:
        return {"PYTHONNOUSERSITE": "1"}
    return {"PYTHONUSERBASE": site.getuserbase()}


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
            raise SandboxUnavailable(
                f"refusing to sandbox: {mount} would be mounted and contains the "
                f"output folder ({scratch}); install the harness's Python elsewhere"
            )


def wrap(
    argv: list[str],
    *,
    scratch: Path,
    readable: list[Path],
    threads: int = 1,
    use_bubblewrap: bool | None = None,
    limits: Limits | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str], str]:
    """The command, environment and a description of the isolation for running `argv`.

    `scratch` is the worker's only writable folder; `readable` are extra files it may read
    (the training data, the model files). Paths inside `argv` must be under these.
    ``use_bubblewrap=None`` uses bubblewrap when it works here; ``True`` requires it
    (:class:`SandboxUnavailable` otherwise); ``False`` runs a plain process. `extra_env` is added
    to the worker's environment.
    """
    limits = limits or Limits()
    env = {**worker_env(threads), **(extra_env or {})}
    package = _harness_package()
    if use_bubblewrap is None:
        use_bubblewrap = bubblewrap_available()
    elif use_bubblewrap and not bubblewrap_available():
        raise SandboxUnavailable("bubblewrap was required but `bwrap` is missing or cannot create namespaces here")
    if not use_bubblewrap:
        env["HOME"] = str(scratch)
        env["TMPDIR"] = str(scratch)
        env["PYTHONPATH"] = str(package.parent)
        return (
            argv,
            env,
            (
                "plain process, NO SANDBOX (bubblewrap not available): no filesystem or network "
                "isolation, student code can read and write what the grading user can and open "
                "network connections"
            ),
        )
    python = python_mounts()
    _check_not_exposed(python, scratch)
    tmp_bytes = str(limits.tmp_mb * 2**20)
    bwrap = [
        shutil.which("bwrap"),
        "--die-with-parent",
        "--unshare-all",
        "--unshare-user",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--disable-userns",
        "--new-session",
        "--hostname",
        "sandbox",
        "--clearenv",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        tmp_bytes,
        "--tmpfs",
        "/dev/shm",
        "--size",
        tmp_bytes,
        "--tmpfs",
        "/tmp",
    ]
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
    for module in worker_modules():  # the worker code alone, file by file: not the grader, not its folder
        bwrap += ["--ro-bind", str(module), f"{HARNESS_MOUNT}/harness/{module.relative_to(package).as_posix()}"]
    for path in readable:
        bwrap += ["--ro-bind", str(path), str(path)]
    for node in gpu_device_nodes():
        bwrap += ["--dev-bind", node, node]
    bwrap += [
        "--bind",
        str(scratch),
        str(scratch),
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        str(scratch),
    ]
    env.update(HOME=str(scratch), TMPDIR="/tmp", PYTHONPATH=HARNESS_MOUNT)
    for key, value in env.items():
        bwrap += ["--setenv", key, value]
    return (
        bwrap + argv,
        env,
        (
            "bubblewrap: no network, read-only system, private scratch folder and /tmp, "
            "no view of the output folder, the test set or other submissions"
        ),
    )

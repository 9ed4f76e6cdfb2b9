"""The sandbox's read-only mounts for every Python layout this machine can make: a venv, pyenv, the
system interpreter, ``pip install --user`` (a user site-packages); conda's by hand (no conda here).

Each real layout is read from inside its own interpreter (a subprocess running
``tests/fixtures/python_layouts/report_mounts.py``), and a worker that interpreter starts must
import its packages, sandboxed where bubblewrap works and as a plain process: the mounts are enough,
and never more than Python's own folders (never the repository, on ``sys.path`` here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO

from harness.sandbox import bubblewrap
from harness.sandbox.bubblewrap import PythonLayout, python_mounts

REPORT = FIXTURES / "python_layouts" / "report_mounts.py"
VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
SYSTEM_PYTHON = Path("/usr/bin/python3")
# The interpreter the tests' own venv (CI's, a developer's) was made from: a user site or pyenv's layout is
# that interpreter's, since a venv turns the user site off and hides the base prefix.
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable))


def report(python: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    """What `python` computes for itself (the repository on PYTHONPATH, as an editable install puts it)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    run = subprocess.run(
        [str(python), str(REPORT), *args], cwd=REPO, env=environment, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.splitlines()[-1])


def assert_only_python(found: dict) -> None:
    """Every mount is the interpreter, libpython, a venv's pyvenv.cfg, a standard-library or site-packages
    folder; none is the repository or a folder above it."""
    for mount in map(Path, found["mounts"]):
        assert not (mount == REPO or mount in REPO.parents), mount
        if mount.is_dir():
            assert mount.name in ("site-packages", "dist-packages", "lib-dynload") or (mount / "os.py").exists(), mount
        else:
            assert mount.name.startswith(("python", "libpython", "pyvenv.cfg")), mount


def assert_workers_import(found: dict) -> None:
    """The probe's worker ran (sandboxed when bubblewrap works here) and imported what it was asked to."""
    for how in ("sandboxed", "plain"):
        if how in found:
            returncode, _, stderr = found[how]
            assert returncode == 0, (how, stderr)
    if bubblewrap.bubblewrap_available():
        assert "sandboxed" in found


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A real virtual environment of the interpreter running the tests, with a package of its own."""
    folder = tmp_path_factory.mktemp("layouts") / "venv"
    command = [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)]
    subprocess.run(command, check=True, timeout=300)
    probe = folder / "lib" / VERSION / "site-packages" / "venv_only_probe"
    probe.mkdir(parents=True)
    (probe / "__init__.py").write_text("", encoding="utf-8")
    return folder


def test_a_venv_mounts_its_site_packages_and_the_base_standard_library(venv):
    found = report(venv / "bin" / "python", "--import", "json, venv_only_probe")
    assert Path(found["prefix"]) == venv and Path(found["base_prefix"]) != venv
    mounts = set(map(Path, found["mounts"]))
    lib = venv / "lib" / VERSION
    assert {lib / "site-packages", venv / "pyvenv.cfg", venv / "bin" / "python"} <= mounts
    assert lib not in mounts  # it holds site-packages only, not the standard library (os.py)
    assert Path(found["stdlib"][0]) in mounts and (Path(found["stdlib"][0]) / "os.py").exists()
    assert_only_python(found)
    assert_workers_import(found)
    prefixes = {found[how][1].split()[0] for how in ("sandboxed", "plain") if how in found}
    assert prefixes == {str(venv)}  # the worker's Python knew it was in the venv


@pytest.mark.skipif(".pyenv" not in sys.base_prefix, reason="the interpreter running the tests is not pyenv's")
def test_a_pyenv_interpreter_mounts_its_parts_never_its_whole_prefix():
    found = report(BASE_PYTHON, "--import", "json")
    mounts = set(map(Path, found["mounts"]))
    prefix = Path(sys.base_prefix)
    assert prefix / "lib" / VERSION in mounts and prefix / "lib" / VERSION / "site-packages" in mounts
    assert prefix not in mounts and prefix / "lib" not in mounts and prefix / "bin" not in mounts
    assert_only_python(found)
    assert_workers_import(found)


def test_the_system_interpreter_needs_nothing_beyond_usr():
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"no system interpreter at {SYSTEM_PYTHON}")
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True
    )
    if version.stdout.strip() != b"True":
        pytest.skip(f"{SYSTEM_PYTHON} is older than the harness's Python (3.11)")
    found = report(SYSTEM_PYTHON, "--import", "json", env={"PYTHONNOUSERSITE": "1"})
    assert found["mounts"] == []  # /usr is mounted read-only whole anyway
    assert_workers_import(found)


def test_a_user_site_install_is_mounted_and_used_by_the_worker(tmp_path):
    """``pip install --user`` puts packages in ``$PYTHONUSERBASE/lib/pythonX.Y/site-packages``: the worker,
    whose HOME is its scratch folder, must still find them there (read-only), not in its own folder."""
    base = tmp_path / "userbase"
    probe = base / "lib" / VERSION / "site-packages" / "user_only_probe"
    probe.mkdir(parents=True)
    (probe / "__init__.py").write_text("", encoding="utf-8")
    found = report(BASE_PYTHON, "--import", "user_only_probe", env={"PYTHONUSERBASE": str(base)})
    assert found["user_site"] == str(probe.parent) and str(probe.parent) in found["mounts"]
    assert found["env"]["PYTHONUSERBASE"] == str(base) and "PYTHONNOUSERSITE" not in found["env"]
    assert_only_python(found)
    assert_workers_import(found)


def test_without_a_user_site_the_worker_reads_none():
    """HOME is the worker's scratch folder, which it writes: a user site there would run its .pth files."""
    layout = replace(PythonLayout.current(), user_site=None)
    assert bubblewrap._user_site_env(layout) == {"PYTHONNOUSERSITE": "1"}


def test_conda_mounts_its_shared_libraries_never_the_whole_prefix(tmp_path, monkeypatch):
    """No conda on this machine: its layout, made by hand, read as the running interpreter's. Conda's
    extension modules load libssl, libffi or BLAS from <prefix>/lib by their rpath."""
    prefix = tmp_path / "miniconda3" / "envs" / "course"
    for folder in ("conda-meta", "bin", f"lib/{VERSION}/site-packages"):
        (prefix / folder).mkdir(parents=True)
    (prefix / "lib" / "libssl.so.3").write_bytes(b"")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    monkeypatch.setattr(sys, "base_prefix", str(prefix))
    layout = PythonLayout.current()
    assert layout.conda_libs == (prefix / "lib",)
    mounts = python_mounts(layout)
    assert prefix / "lib" in mounts and prefix not in mounts and prefix / "bin" not in mounts
    assert prefix / "pyvenv.cfg" not in mounts  # not a venv

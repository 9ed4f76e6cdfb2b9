"""With CI=true the sandbox tests fail, never skip, where bubblewrap is missing or unusable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import FIXTURES, REPO

BROKEN_BWRAP = FIXTURES / "processes" / "broken_bwrap"  # a `bwrap` that exits 1, first on PATH
ONE_SANDBOX_TEST = "tests/sandbox/test_sandbox.py::test_bubblewrap_mounts_nothing_around_the_scratch_folder"


def run_with_broken_bwrap(ci: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CI": ci, "PATH": f"{BROKEN_BWRAP}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", ONE_SANDBOX_TEST]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("ci, outcome", [("true", "1 error"), ("", "1 skipped")])
def test_an_unusable_bubblewrap_fails_the_sandbox_tests_in_ci_and_skips_them_elsewhere(ci, outcome):
    run = run_with_broken_bwrap(ci)
    assert outcome in run.stdout, run.stdout[-2000:]
    assert (run.returncode != 0) == (ci == "true")
    if ci:
        assert "CI=true: install bubblewrap" in run.stdout

"""Atomic writes: whole or absent, never a shared temporary name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from harness.util.atomic import atomic_write, remove_leftovers, savez_atomic, write_json_atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"v": 1})

    def broken(handle):
        handle.write(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"v": 1} and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_concurrent_writers_of_one_file_never_collide(tmp_path):
    """The bug this guards: two grading threads wrote the same fixed temporary name, and one rename failed."""
    target = tmp_path / "data.npz"
    errors = []

    def write(value):
        try:
            for _ in range(20):
                savez_atomic(target, x=np.full(1000, value))
        except Exception as error:  # pragma: no cover - what the test looks for
            errors.append(error)

    threads = [threading.Thread(target=write, args=(v,)) for v in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with np.load(target) as data:
        assert len(set(data["x"].tolist())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"]


# A writer killed with SIGKILL in the middle of atomic_write: its temporary file stays behind.
KILLED_WRITER = """
import sys, time
from pathlib import Path
from harness.util.atomic import atomic_write

def write(handle):
    handle.write(b"half of a gradebook")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)

atomic_write(Path(sys.argv[1]), write)
"""


def test_what_a_killed_write_leaves_is_removed_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    (out / "alice").mkdir(parents=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(out / "grades.csv")], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".grades.csv."), left
    # the stage cache's staging folder of an interrupted store, beside a complete entry
    models = out / ".cache" / "models"
    models.mkdir(parents=True)
    staging = Path(tempfile.mkdtemp(prefix=".0123abcd.", dir=models))  # as StageCache.store names it
    (staging / "model.json").write_text("{", encoding="utf-8")
    kept = [out / ".harness.lock", out / "alice" / "result.json", models / "0123abcd" / "model.json"]
    scratch = out / ".work" / "a1b2c3" / ".go.json.abcdefgh.tmp"  # a worker's own folder: not ours to sweep
    for path in [*kept, scratch]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}", encoding="utf-8")
    removed = remove_leftovers(out, skip=(".work",))
    assert sorted(p.name for p in removed) == sorted([left[0], staging.name])
    assert all(p.exists() for p in [*kept, scratch])
    assert not (out / left[0]).exists() and not staging.exists()
    assert not (out / "grades.csv").exists()  # the killed write never replaced anything


def test_in_a_shared_cache_only_old_leftovers_are_removed(tmp_path):
    """The per-user caches are shared by graders of other output folders: a fresh staging folder may be
    another run's write in progress; one an hour old is a killed run's."""
    models = tmp_path / "reference" / "62"
    models.mkdir(parents=True)
    old = Path(tempfile.mkdtemp(prefix=".6214e0c4.", dir=models))
    old_file = models / ".model.json.abcd1234.tmp"
    old_file.write_text("{", encoding="utf-8")
    fresh = Path(tempfile.mkdtemp(prefix=".6214e0c4.", dir=models))
    entry = models / "6214e0c4" / "model.json"
    entry.parent.mkdir()
    entry.write_text("{}", encoding="utf-8")
    two_hours_ago = time.time() - 7200
    for path in (old, old_file, entry, entry.parent):
        os.utime(path, (two_hours_ago, two_hours_ago))
    removed = remove_leftovers(tmp_path, older_than_s=3600)
    assert sorted(removed) == sorted([old, old_file])
    assert fresh.exists() and entry.exists()

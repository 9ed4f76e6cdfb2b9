"""Files written whole or not at all: one helper for every file the grader writes.

A reader (another grading thread, a Ray worker, a second grader on the same folder, the next
run after a kill) must never see half a file, and two writers of the same file must never
share a temporary name: each write goes to its own ``mkstemp`` file in the target's folder,
then ``os.replace`` moves it into place (atomic on POSIX and Windows within one filesystem).

>>> from pathlib import Path; import tempfile
import time
>>> target = Path(tempfile.mkdtemp()) / "a.json"
>>> _ = write_json_atomic(target, {"x": 1}); target.read_text()
'{\\n "x": 1\\n}'
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], *, fsync: bool = True) -> Path:
    """Call ``write(handle)`` on a fresh temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """`data` into `path`, whole or not at all."""
    return atomic_write(path, lambda handle: handle.write(data))


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """`text` into `path`, whole or not at all."""
    return write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: Path, data: Any) -> Path:
    """`data` as indented UTF-8 JSON (non-ASCII kept), whole or not at all."""
    return write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=1))


def savez_atomic(path: Path, *, compressed: bool = False, **arrays: Any) -> Path:
    """NumPy arrays as an ``.npz`` file, whole or not at all (``np.savez`` or ``np.savez_compressed``)."""
    save = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda handle: save(handle, **arrays), fsync=False)


# What a write killed midway leaves: ``atomic_write``'s ``.<name>.<8 random>.tmp`` files, and the stage
# cache's ``.<key>.<8 random>`` staging and ``.<key>.old.<8 random>`` folders (``tempfile``'s random part).
_LEFT_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_LEFT_FOLDER = re.compile(r"^\..+\.[a-z0-9_]{8}$")


def remove_leftovers(folder: Path, skip: tuple[str, ...] = (), older_than_s: float | None = None) -> list[Path]:
    """Remove, under `folder` (not in its top-level entries named in `skip`), what writes interrupted by a
    kill left behind; return what was removed. Without `older_than_s`, only where no other process may be
    writing: under the output folder's lock, before any worker starts. With it, only what was last
    modified that long ago: in a folder other graders share (the per-user caches), a fresh one may be
    another run's write in progress."""
    cutoff = None if older_than_s is None else time.time() - older_than_s

    def stale(path: Path) -> bool:
        try:
            return cutoff is None or path.stat().st_mtime < cutoff
        except FileNotFoundError:  # its writer finished (or another sweep took it) meanwhile
            return False

    removed = []
    for root, dirs, files in os.walk(folder):
        if Path(root) == Path(folder):
            dirs[:] = [d for d in dirs if d not in skip]
        for name in [d for d in dirs if _LEFT_FOLDER.match(d)]:
            dirs.remove(name)
            if stale(Path(root) / name):
                shutil.rmtree(Path(root) / name, ignore_errors=True)
                removed.append(Path(root) / name)
        for name in files:
            if _LEFT_FILE.match(name) and stale(Path(root) / name):
                (Path(root) / name).unlink(missing_ok=True)
                removed.append(Path(root) / name)
    return removed

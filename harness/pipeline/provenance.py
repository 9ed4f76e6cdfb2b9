"""What a class was graded under, kept beside its results: the protocol, the rubric, the overrides.

``harness grade`` copies them into ``OUT/``; ``harness score`` re-scores with the kept rubric unless
given another (and then keeps that one, with the overrides it applied); ``harness report --lang en``
re-scores with exactly what produced the current grades, so that every reason reads in English
while every point stays what it was.

>>> keep_scoring(out, rubric=Path("strict.toml"), overrides=None)   # doctest: +SKIP
>>> kept(out).rubric                                                 # doctest: +SKIP
PosixPath('OUT/rubric.toml')
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.resources import bundled

PROTOCOL_FILE = "protocol.toml"
RUBRIC_FILE = "rubric.toml"
OVERRIDES_STEM = "overrides"  # overrides.toml or overrides.csv, as the instructor wrote it


@dataclass(frozen=True)
class Kept:
    """The protocol, rubric and overrides files kept in ``OUT/`` (None: not kept)."""

    protocol: Path | None
    rubric: Path | None
    overrides: Path | None


def _copy(source: Path, target: Path) -> None:
    with contextlib.suppress(shutil.SameFileError):  # e.g. `harness score OUT --rubric OUT/rubric.toml`
        shutil.copyfile(source, target)


def keep_protocol(out: Path, protocol: Path | None) -> None:
    """Copy the protocol the class is graded under (default: the bundled one) into ``OUT/``."""
    _copy(Path(protocol) if protocol else bundled("reference", "protocol.toml"), out / PROTOCOL_FILE)


def keep_scoring(out: Path, rubric: Path | None, overrides: Path | None) -> None:
    """The rubric and overrides the stored scores were computed with (no overrides: none kept)."""
    _copy(Path(rubric) if rubric else bundled("rubric", "default.toml"), out / RUBRIC_FILE)
    target = out / f"{OVERRIDES_STEM}{Path(overrides).suffix.lower()}" if overrides else None
    if target is not None:
        _copy(Path(overrides), target)
    for stale in out.glob(f"{OVERRIDES_STEM}.*"):
        if stale != target:
            stale.unlink()


def kept(out: Path) -> Kept:
    """The protocol, rubric and overrides files kept in ``out`` (None for each one that is missing)."""

    def found(path: Path) -> Path | None:
        return path if path.is_file() else None

    overrides = sorted(out.glob(f"{OVERRIDES_STEM}.*"))
    return Kept(found(out / PROTOCOL_FILE), found(out / RUBRIC_FILE), overrides[0] if overrides else None)

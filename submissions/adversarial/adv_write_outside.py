"""Adversarial sample (written by the course team): writing outside its own folder.

Expected: model `error` — "PermissionError: writes outside the worker's folder: ..." listing the
attempts (under bubblewrap the home folder, the output folder, the grades and the harness are
absent or read-only; /tmp is private to the sandbox and vanishes with it). Bounded: it only
creates new marker files named HARNESS-ADVERSARIAL-MARKER-*; existing files (other students'
results, grades.csv) are opened for writing to test access but never changed.
"""
import pwd
from pathlib import Path

MARKER = "HARNESS-ADVERSARIAL-MARKER-write_outside"


def _targets():
    scratch = Path.cwd()  # the harness runs the worker in OUT/.work/<id>/train
    out = scratch.parents[2] if len(scratch.parents) > 2 else scratch.parent
    home = Path(pwd.getpwuid(0).pw_dir)  # the real home of root, not $HOME (the sandbox's folder)
    new_files = [home / MARKER, Path("/tmp") / MARKER, out / MARKER, out / ".work" / MARKER,
                 out.parent / MARKER,  # the folder holding OUT (often the course's repository)
                 Path("/opt/harness-src/harness") / MARKER]
    existing = [out / "grades.csv", out / "index.html", *sorted(out.glob("*/result.json"))[:5]]
    return new_files, existing


def create_improved_model_1():
    """Tries to leave files around the machine, and to open the grades for writing."""
    created, opened, refused = [], [], []
    new_files, existing = _targets()
    for path in new_files:
        try:
            with open(path, "x") as handle:
                handle.write("written by submissions/adversarial/adv_write_outside.py\n")
            created.append(str(path))
        except OSError as error:
            refused.append(f"{path} ({error.strerror})")
    for path in existing:
        try:
            with open(path, "r+"):
                pass  # opened for writing; nothing is written
            opened.append(str(path))
        except OSError as error:
            refused.append(f"{path} ({error.strerror})")
    raise PermissionError(f"writes outside the worker's folder: refused {len(refused)}: {'; '.join(refused)}"
                          + (f" | created {created}" if created else "") + (f" | opened for writing {opened}" if opened else ""))

"""The one place that finds the course's files: ``reference/``, ``rubric/``, ``templates/`` and the demo class ``submissions/``.

They live at the top of the repository (instructors edit them without touching code) and are
installed inside the package as ``harness/reference`` and so on, so that ``pip install .``
carries them.

>>> bundled("reference", "protocol.toml").name
'protocol.toml'
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPO_ROOT = _PACKAGE.parent


def bundled(folder: str, name: str = "") -> Path:
    """Path of a file shipped in ``reference/``, ``rubric/``, ``templates/`` or ``submissions/``.

    Installed, these folders are the subpackages ``harness.<folder>``; in a source checkout
    that was not installed they are the repository's top-level folders.
    """
    base = _PACKAGE / folder  # no __init__.py: importlib.resources cannot see it
    if not base.is_dir():
        base = _REPO_ROOT / folder
    return base / name if name else base

"""A report's figures, kept between renders: re-scoring changes the grade, never the figures.

Rendering a report draws a dozen matplotlib figures from the stored models (learning curves,
comparison bars, confusion matrices, galleries, robustness), which takes far longer than scoring.
They depend only on the models, the reference, the language and the image files they show, so
they are stored next to the report (``OUT/<student>/figures.json``) under a digest of exactly
those inputs; ``harness score`` after a rubric or override change redraws nothing, while a
re-graded model, another language or a new harness version redraws everything.

>>> digest(["a", 1]) == digest(["a", 1]) != digest(["a", 2])
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import __version__
from harness.util.atomic import write_json_atomic

FILE = "figures.json"


def _default(value: Any):
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Path):  # by content: a copied or moved output folder keeps its figures
        return [value.name, hashlib.sha256(value.read_bytes()).hexdigest() if value.is_file() else None]
    return str(value)


def digest(parts: list[Any]) -> str:
    """sha256 of the figures' inputs (pydantic models and files by content)."""
    text = json.dumps([__version__, *parts], default=_default, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cached(path: Path, parts: list[Any], draw: Callable[[], dict]) -> dict:
    """The figures stored at `path` when their inputs' digest matches, else `draw()` (stored)."""
    key = digest(parts)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("key") == key:
            return stored["figures"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    figures = draw()
    try:
        write_json_atomic(path, {"key": key, "figures": figures})
    except (OSError, TypeError):
        pass  # an unwritable folder or an unserialisable figure only costs a redraw next time
    return figures

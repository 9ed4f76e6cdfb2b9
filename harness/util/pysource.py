"""Parsing Python source safely from several grading threads at once.

CPython 3.11 counts the depth of ``ast.parse``'s tree construction per interpreter, not per
thread: two threads parsing at once can fail with ``SystemError: AST constructor recursion depth
mismatch`` (python/cpython#106905). Grading threads ingest one submission while they score
another, so every ``ast.parse`` of the grading process goes through one lock.

>>> type(parse("x = 1")).__name__
'Module'
"""

from __future__ import annotations

import ast
import threading

_PARSING = threading.Lock()


def parse(source: str, **kwargs) -> ast.Module:
    """``ast.parse(source, **kwargs)``, one thread at a time."""
    with _PARSING:
        return ast.parse(source, **kwargs)


def call_name(node: ast.AST) -> str | None:
    """The name a call calls: ``f`` for ``f(…)``, ``fit`` for ``x.fit(…)``; None for anything else."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            return node.func.id
        if isinstance(node.func, ast.Attribute):
            return node.func.attr
    return None

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
import io
import re
import threading
import time
import tokenize
import traceback

_PARSING = threading.Lock()


_MISMATCH = "recursion depth mismatch"
PARSE_ATTEMPTS = 5


def parse(source: str, **kwargs) -> ast.Module:
    """``ast.parse(source, **kwargs)``, one thread at a time. Code outside the harness parses too, without
    this lock (the standard library's ``traceback`` does, to place its ``^^^`` marks): a parse it
    overlaps fails with the mismatch, and is tried again (a real-world class graded on 2 workers lost a
    submission to it once, 2026-12-04)."""
    with _PARSING:
        for attempt in range(PARSE_ATTEMPTS):
            try:
                return ast.parse(source, **kwargs)
            except SystemError as error:
                if _MISMATCH not in str(error) or attempt == PARSE_ATTEMPTS - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))  # the other parse is short: let it end
    raise AssertionError("unreachable")


def formatted_traceback(error: BaseException) -> str:
    """``traceback.format_exception(error)`` under the parsing lock: it parses source lines itself
    (Python 3.11 places its ``^^^`` marks from an AST)."""
    with _PARSING:
        return "".join(traceback.format_exception(error))


_NOT_UTF8 = "not UTF-8 text, and no declaration (# -*- coding: latin-1 -*-) names another encoding"
# PEP 263: an encoding declaration in a comment on line 1 or 2
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+", re.ASCII)


def decode(data: bytes) -> str:
    """Python source bytes as text, decoded as Python decodes them: a UTF-8 byte-order mark
    (Windows editors write one) is dropped, a PEP 263 declaration (``# -*- coding: latin-1 -*-``)
    is honoured. Raises ValueError with the reason when the bytes are not text in that encoding.

    The text is stored and handed to workers as UTF-8, so a declaration of another encoding is
    replaced by a comment saying what it was (on the same line: line numbers do not move);
    left in place, it would make Python read the UTF-8 copy as that encoding.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except SyntaxError as error:  # an unknown encoding, a declaration contradicting the BOM, or no UTF-8
        if error.msg.startswith("invalid or missing"):
            raise ValueError(_NOT_UTF8) from error
        raise ValueError(error.msg) from error
    except UnicodeDecodeError as error:
        raise ValueError(f"not {encoding.upper()} text ({error})" if encoding != "utf-8" else _NOT_UTF8) from error
    if encoding in ("utf-8", "utf-8-sig"):
        return text
    lines = text.split("\n", 2)
    for index in range(min(2, len(lines))):
        if _CODING.match(lines[index]):
            lines[index] = f"# (read as {encoding}; stored as UTF-8 by the harness)"
            break
    return "\n".join(lines)


def call_name(node: ast.AST) -> str | None:
    """The name a call calls: ``f`` for ``f(…)``, ``fit`` for ``x.fit(…)``; None for anything else."""
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            return node.func.id
        if isinstance(node.func, ast.Attribute):
            return node.func.attr
    return None


def called_names(node: ast.AST) -> set[str]:
    """Names of everything called inside `node`: `f` for f(...), `fit` for x.fit(...)."""
    return {name for sub in ast.walk(node) if (name := call_name(sub)) is not None}


def imported_names(trees: list[tuple[int | None, ast.Module]]) -> set[str]:
    """The names the top-level imports of `trees` ((cell, tree) pairs) bind: ``keras``, ``ImageDataGenerator``."""
    names = set()
    for _, tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
    return names


def imported_packages(nodes) -> set[str]:
    """The top-level packages the ``import`` statements among `nodes` name (``torch`` for
    ``from torch.nn import Linear``); relative imports are the submission's own and are left out."""
    imported: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    return imported


def read_names(node: ast.AST) -> set[str]:
    """Names `node` reads."""
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}


def stored_names(node: ast.AST) -> list[str]:
    """Names `node` sets, in order of appearance, once each."""
    names = [sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)]
    return list(dict.fromkeys(names))


def is_literal(node: ast.expr) -> bool:
    """Whether `node` is a Python literal (``ast.literal_eval`` accepts it): a value known without running anything."""
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def literal_truth(test: ast.expr, values: dict[str, ast.expr]) -> bool | None:
    """Whether a test holds for names bound to literals (`values`): ``name == "dropout"``, ``!=``, ``in``
    or ``not in`` a literal, a plain flag, ``not`` one of these; None for any other test, or a name whose
    value is not a literal (only a run could tell)."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = literal_truth(test.operand, values)
        return None if inner is None else not inner
    if isinstance(test, ast.Name):
        value = values.get(test.id)
        return bool(value.value) if isinstance(value, ast.Constant) else None
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.left, ast.Name)):
        return None
    left, right = values.get(test.left.id), test.comparators[0]
    if not (isinstance(left, ast.Constant) and is_literal(right)):
        return None
    value, against = left.value, ast.literal_eval(right)
    checks = {ast.Eq: lambda: value == against, ast.NotEq: lambda: value != against}
    checks |= {ast.In: lambda: value in against, ast.NotIn: lambda: value not in against}
    try:
        return checks[type(test.ops[0])]() if type(test.ops[0]) in checks else None
    except TypeError:  # ``"a" in 3``
        return None


def assigned_once(trees) -> dict[str, ast.expr]:
    """Top-level names of the parsed code (`trees`: (cell, module) pairs, in order) assigned exactly once,
    with the value they are assigned: a module's constants and tables, as a reader takes them. An
    assignment in a top-level ``try:`` is top-level too (the extracted module keeps one there when what
    it reads may have been dropped)."""
    seen: dict[str, list[ast.expr]] = {}
    for _, tree in trees:
        for node in (n for top in tree.body for n in (top.body if isinstance(top, ast.Try) else [top])):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        seen.setdefault(target.id, []).append(node.value)
    return {name: values[0] for name, values in seen.items() if len(values) == 1}


def required_arguments(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> int:
    """How many arguments a call of `function` must give (``lambda p=params: …`` needs none)."""
    arguments = function.args
    required = len(arguments.posonlyargs) + len(arguments.args) - len(arguments.defaults)
    return required + sum(1 for default in arguments.kw_defaults if default is None)

"""Reading the student's code for the rubric: lint findings, comments, dead code (structure: :mod:`.structure`).

The code is every code cell of the notebook (or the module), as the student wrote it, with shell
and magic lines blanked: what a linter can read. Each finding keeps its cell and line.
Linting is delegated to ruff (or pyflakes when ruff is not installed); the few other checks are
small AST walks: functions never used, statements after ``return``/``raise``, commented-out code,
a run's output pasted as comments.

>>> student_code([CodeCell(cell=3, source="x = 1\\n!pip install keras")]).locate(2)
(3, 2)
"""

from __future__ import annotations

import ast
import functools
import io
import json
import re
import shutil
import subprocess
import tokenize
from dataclasses import dataclass

from harness.ingest.read import blank_shell_and_magic_lines
from harness.resources import bundled
from harness.results import CodeCell
from harness.util.pysource import parse as parse_python

STATEMENT_NODES = (
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Import,
    ast.ImportFrom,
    ast.Return,
    ast.Delete,
    ast.Raise,
    ast.For,
    ast.While,
    ast.If,
    ast.With,
    ast.FunctionDef,
    ast.ClassDef,
)


@dataclass
class StudentCode:
    """The student's code as one text, and where each of its lines comes from."""

    source: str
    origin: list[tuple[int | None, int]]  # line of `source` (from 1) -> (cell, line in the cell)

    def locate(self, line: int) -> tuple[int | None, int]:
        """The (cell, line in the cell) of a line of the flattened code."""
        return self.origin[line - 1] if 0 < line <= len(self.origin) else (None, line)

    @property
    def code_lines(self) -> int:
        """Lines that hold code (neither blank nor only a comment)."""
        return len(code_line_numbers(self.source))


def code_line_numbers(source: str) -> set[int]:
    """The numbers (from 1) of the lines of `source` that hold code: neither blank nor only a comment."""
    return {n for n, line in enumerate(source.splitlines(), 1) if line.strip() and not line.strip().startswith("#")}


def student_code(cells: list[CodeCell]) -> StudentCode:
    """The code cells as one text for linting, shell and magic lines blanked, each line's origin kept."""
    parts, origin = [], []
    for cell in cells:
        text = blank_shell_and_magic_lines(cell.source, cell.cell, [])
        lines = text.splitlines()
        parts.extend(lines)
        origin.extend((cell.cell, number) for number in range(1, len(lines) + 1))
        parts.append("")
        origin.append((cell.cell, len(lines) + 1))
    return StudentCode("\n".join(parts) + "\n", origin)


# --------------------------------------------------------------------------- the handout's lines


def _normal(line: str) -> str:
    """A line as compared with the handout: without spaces and with one quote style, so that
    reformatting the handout's code does not make it the student's."""
    return "".join(line.split()).replace("'", '"')


def _telling(normal: str) -> bool:
    """Whether a normalised line says who wrote it: blank lines and lone brackets do not."""
    return len(normal.strip("()[]{}:,")) > 1


@functools.cache
def handout_lines() -> frozenset[str]:
    """The handout's lines (``reference/handout.py``, every code block of the assignment, and the
    reference CNN), normalised."""
    lines: set[str] = set()
    for name in ("handout.py", "baseline.py"):
        for line in bundled("reference", name).read_text(encoding="utf-8").splitlines():
            lines.add(_normal(line))
    return frozenset(lines)


def own_lines(code: StudentCode) -> set[int]:
    """The lines of the flattened code that the student wrote or changed: neither the handout's
    nor blank or a lone bracket."""
    handout = handout_lines()
    normals = (_normal(line) for line in code.source.splitlines())
    return {n for n, normal in enumerate(normals, 1) if _telling(normal) and normal not in handout}


# --------------------------------------------------------------------------- lint


@dataclass(frozen=True)
class Finding:
    """A linter remark on the student's code: line, rule code, message."""

    line: int
    code: str
    message: str


def _ruff_binary() -> str | None:
    try:
        # imported here: ruff is optional (lint falls back to pyflakes, then to a ruff on PATH)
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except Exception:  # not installed, or the package without its binary
        return shutil.which("ruff")


def lint(
    source: str, linter: str = "ruff", select: list[str] | None = None, ignore: list[str] | None = None
) -> tuple[str, list[Finding]]:
    """(tool used, findings). ruff with `select`/`ignore` rule codes; pyflakes when asked or when
    ruff is not available (then `ignore` applies to pyflakes messages' names, not codes)."""
    binary = _ruff_binary() if linter == "ruff" else None
    if binary:
        command = [
            binary,
            "check",
            "--output-format",
            "json",
            "--no-cache",
            "--isolated",
            "--quiet",
            "--target-version",
            "py310",
            "--select",
            ",".join(select or ["F"]),
        ]
        if ignore:
            command += ["--ignore", ",".join(ignore)]
        try:
            run = subprocess.run([*command, "-"], input=source, capture_output=True, text=True, timeout=60)
            # 0: clean, 1: findings; anything else is ruff failing (no thread to spawn on a loaded machine…):
            # its empty output would read as clean code
            if run.returncode in (0, 1):
                items = json.loads(run.stdout or "[]")
                return "ruff", [
                    Finding(item["location"]["row"], item["code"] or "E999", item["message"]) for item in items
                ]
        except (OSError, subprocess.TimeoutExpired, ValueError, KeyError):
            pass  # fall back to pyflakes below
    # imported here: pyflakes is the fallback linter, needed only when ruff is missing or fails
    from pyflakes import api
    from pyflakes.reporter import Reporter  # (the same fallback)

    collected: list[Finding] = []

    class _Collect(Reporter):
        def __init__(self) -> None:
            super().__init__(io.StringIO(), io.StringIO())

        def flake(self, message) -> None:
            name = type(message).__name__
            if name not in (ignore or []):
                collected.append(Finding(message.lineno, name, message.message % message.message_args))

        def syntaxError(self, filename, msg, lineno, offset, text) -> None:  # noqa: N802 (pyflakes' API)
            collected.append(Finding(lineno or 1, "SyntaxError", msg))

    api.check(source, "submission", _Collect())
    return "pyflakes", collected


# --------------------------------------------------------------------------- comments


def comment_stats(source: str, lines: set[int] | None = None) -> tuple[int, int, int]:
    """(comment lines, documented functions, functions) of the student's code; with `lines`, only
    the comments on those lines and the functions defined on them (the student's own). Commented-out
    code is not a comment: it is dead code (:func:`commented_code`); a run's output pasted as
    comments (:func:`pasted_output`) explains nothing either."""
    output = pasted_output(source.splitlines())
    mine = (lambda n: n not in output) if lines is None else (lambda n: n in lines and n not in output)

    def prose(comment: str) -> bool:
        text = comment.strip().lstrip("#").strip()
        return bool(re.search(r"[^\W\d_]{2}", text)) and not is_code(text)

    comments = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and mine(token.start[0]) and prose(token.string):
                comments += 1
    except (tokenize.TokenError, IndentationError, SyntaxError):
        comments = sum(
            1
            for n, line in enumerate(source.splitlines(), 1)
            if line.strip().startswith("#") and mine(n) and prose(line)
        )
    try:
        tree = parse_python(source)
    except SyntaxError:
        return comments, 0, 0
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and mine(n.lineno)]
    return comments, sum(1 for f in functions if _documents(ast.get_docstring(f))), len(functions)


# a docstring left to be written: "TODO", "TODO: explain where the BN goes", "à compléter", "..."
PLACEHOLDER = re.compile(r"\b(?:todo|fixme|tbd|xxx)\b|a completer|à compléter|^\W*$", re.IGNORECASE)


def _documents(docstring: str | None) -> bool:
    """A docstring that says something: not empty, and not left to be written (a TODO in it)."""
    return bool(docstring) and not PLACEHOLDER.search(docstring)


def displayed_expressions(cells: list[CodeCell]) -> set[tuple[int | None, int]]:
    """(cell, line) of each notebook cell's last statement when it is a bare expression (``results``,
    ``drop_rate``): Jupyter shows its value, so it is no "useless expression" (ruff's B018, which reads
    the cells flattened into one file)."""
    shown = set()
    for cell in cells:
        try:
            body = parse_python(blank_shell_and_magic_lines(cell.source, cell.cell, [])).body
        except (SyntaxError, ValueError):
            continue
        if body and isinstance(body[-1], ast.Expr):
            shown.add((cell.cell, body[-1].lineno))
    return shown


# --------------------------------------------------------------------------- dead code


@dataclass(frozen=True)
class DeadCode:
    """Code that never runs: an unused function, unreachable statements, commented-out code."""

    kind: str  # "unused_function", "unreachable", "commented_code"
    line: int  # in the student's code
    name: str  # the function's name, the first line of the code


def dead_code(source: str, keep: set[str]) -> list[DeadCode]:
    """Functions defined but never used (other than `keep`: the factories), statements that can
    never run (after return, raise, break, continue), and blocks of commented-out code."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        return []
    found: list[DeadCode] = []
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    used |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for node in tree.body:
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.name not in used | keep
            and not node.name.startswith("__")
        ):
            found.append(DeadCode("unused_function", node.lineno, node.name))
    lines = source.splitlines()
    for node in ast.walk(tree):
        for body in (getattr(node, name, None) for name in ("body", "orelse", "finalbody")):
            if not isinstance(body, list):
                continue
            for index, statement in enumerate(body[:-1]):
                if isinstance(statement, (ast.Return, ast.Raise, ast.Break, ast.Continue)):
                    after = body[index + 1]
                    found.append(DeadCode("unreachable", after.lineno, lines[after.lineno - 1].strip()[:80]))
                    break
    found.extend(commented_code(lines))
    return sorted(found, key=lambda d: d.line)


def commented_code(lines: list[str]) -> list[DeadCode]:
    """Runs of whole-line comments that parse as Python statements (an assignment, a call, an
    import, a return…), one finding per run. Prose ("# Normalisation et reshaping") does not parse."""
    found, run_start, run_code = [], None, []

    def close() -> None:
        if run_start is not None and run_code:
            found.append(DeadCode("commented_code", run_start, run_code[0][:80]))

    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if not stripped.startswith("#"):
            close()
            run_start, run_code = None, []
            continue
        text = stripped.lstrip("#").strip()
        if is_code(text):
            if run_start is None or not run_code:
                run_start = number
            run_code.append(text)
        elif run_code:
            close()
            run_start, run_code = None, []
    close()
    return found


def pasted_output(lines: list[str], min_run: int = 3) -> set[int]:
    """The lines of comment runs that are mostly a program's output (training logs, printed
    accuracies, a classification report): at least `min_run` lines, most of them digit-heavy."""
    found: set[int] = set()
    run: list[int] = []

    def close() -> None:
        texts = [lines[n - 1].strip().lstrip("#").strip() for n in run]
        numeric = sum(1 for text in texts if _digit_heavy(text))
        if len(run) >= min_run and numeric >= 0.5 * sum(1 for text in texts if text):
            found.update(run)

    for number, line in enumerate([*lines, ""], start=1):
        if line.strip().startswith("#"):
            run.append(number)
        else:
            if run:
                close()
            run = []
    return found


def looks_like_code_or_output(text: str) -> bool:
    """Whether a comment's text is a statement of code or a line of a program's output, not a sentence."""
    return is_code(text) or _digit_heavy(text)


def _digit_heavy(text: str) -> bool:
    characters = [c for c in text if c.isalnum()]
    return bool(characters) and sum(c.isdigit() for c in characters) >= 0.3 * len(characters)


def is_code(text: str) -> bool:
    """Whether a comment's text parses as one statement of code (commented-out code), not a sentence."""
    if not text or text.startswith(("!", "%")):
        return False
    try:
        tree = parse_python(text)
    except SyntaxError:
        try:
            tree = parse_python(text + "\n    pass")  # "for x in y:" / "def f():" alone
        except SyntaxError:
            return False
    if len(tree.body) != 1:
        return False
    node = tree.body[0]
    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Call)
    return isinstance(node, STATEMENT_NODES)

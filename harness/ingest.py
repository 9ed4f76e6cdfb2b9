"""Ingest: find submissions and extract their code statically, without running any of it.

A path may be one notebook (``.ipynb``), one module (``.py``), a student's folder, or a class
folder holding any of these. From the code the harness keeps imports, function and class
definitions and constant assignments; it drops shell escapes, magics, Colab-only lines and
every top-level statement that trains, evaluates, plots or prints, so the student's own
training never runs. Every dropped statement is recorded with its reason.

>>> result = ingest_file(Path("submissions/baseline_only.ipynb"))     # doctest: +SKIP
>>> [f.name for f in result.factories]                                 # doctest: +SKIP
['create_baseline_model']
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Literal

import nbformat

from harness.results import (
    CodeCell,
    DroppedStatement,
    Factory,
    IgnoredItem,
    IngestResult,
    MarkdownCell,
)

SUBMISSION_SUFFIXES = (".ipynb", ".py")
BASELINE_FACTORY = "create_baseline_model"
IMPROVED_FACTORY = re.compile(r"^create_improved_model(?:_\w+)?$")
LOOKS_LIKE_FACTORY = re.compile(r"^(create|build|make|get)_\w*model\w*$", re.IGNORECASE)
TRAINING_CONFIG = "TRAINING_CONFIG"

# Method and function names whose call at top level means training, evaluating, plotting,
# loading data or printing: the student's own run, which the harness never repeats.
RUN_CALLS = {
    "fit", "fit_generator", "evaluate", "evaluate_generator", "predict", "predict_classes",
    "train_on_batch", "test_on_batch", "load_data", "load_model", "load_weights", "save",
    "save_weights", "summary", "show", "savefig", "plot", "imshow", "figure", "subplot",
    "subplots", "print", "display", "mount", "flow", "flow_from_directory",
}
COLAB_MODULES = ("google.colab",)
# Cell magics whose body is ordinary Python; any other cell magic hides a foreign language.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
SHELL_OR_MAGIC = re.compile(r"^(\s*)(?:[!%]|\w+\s*=\s*[!%])")


# --------------------------------------------------------------------------- discovery

def student_id(path: Path) -> str:
    """A student's id: the file's stem or the folder's name, NFC-normalised, accents kept."""
    name = path.stem if path.is_file() else path.name
    return unicodedata.normalize("NFC", name).strip()


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix in SUBMISSION_SUFFIXES and not p.name.startswith("."))


def _has_submissions_below(folder: Path) -> bool:
    return any(p.is_dir() and not p.name.startswith(".") and
               (_candidates(p) or _has_submissions_below(p)) for p in folder.iterdir())


def _is_student_folder(folder: Path) -> bool:
    """One student's folder: at most one notebook (a .py alone if no notebook), no subfolders of work."""
    files = _candidates(folder)
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    modules = [p for p in files if p.suffix == ".py"]
    if _has_submissions_below(folder):
        return False
    return len(notebooks) == 1 or (not notebooks and len(modules) == 1)


def discover(paths: list[Path]) -> tuple[list[Path], list[IgnoredItem]]:
    """Submission paths (files or student folders) under `paths`, and what was ignored and why.

    A folder given on the command line is a student's folder when it holds exactly one
    notebook (or, without notebooks, one module); otherwise it is a class folder whose files
    and subfolders are walked.
    """
    found: list[Path] = []
    ignored: list[IgnoredItem] = []

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.is_dir():
                if _is_student_folder(entry):
                    found.append(entry)
                elif _candidates(entry) or _has_submissions_below(entry):
                    walk(entry)
                else:
                    ignored.append(IgnoredItem(name=str(entry), reason="folder without a notebook or .py module"))
            elif entry.suffix in SUBMISSION_SUFFIXES:
                found.append(entry)
            else:
                ignored.append(IgnoredItem(name=str(entry), reason=f"not a submission ({entry.suffix or 'no extension'})"))

    for path in paths:
        path = Path(path)
        if not path.exists():
            ignored.append(IgnoredItem(name=str(path), reason="does not exist"))
        elif path.is_file():
            found.append(path)
        elif _is_student_folder(path):
            found.append(path)
        else:
            walk(path)
    return found, ignored


def assign_ids(paths: list[Path]) -> dict[str, Path]:
    """Student ids for submission paths; clashing names get their parent folder as prefix."""
    by_id: dict[str, list[Path]] = {}
    for path in paths:
        by_id.setdefault(student_id(path), []).append(path)
    ids: dict[str, Path] = {}
    for name, group in by_id.items():
        for path in group:
            unique = name if len(group) == 1 else f"{student_id(path.parent)}-{name}"
            ids[unique] = path
    return ids


# --------------------------------------------------------------------------- reading

def submission_files(path: Path) -> list[Path]:
    """Every file that makes up a submission (one file, or a folder's files)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def submission_sha256(path: Path) -> str:
    """Content hash of a submission: its files' relative names and bytes."""
    digest = hashlib.sha256()
    root = path if path.is_dir() else path.parent
    for file in submission_files(path):
        digest.update(str(file.relative_to(root)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def _read_notebook(path: Path) -> tuple[list[CodeCell], list[MarkdownCell]]:
    try:
        notebook = nbformat.read(path, as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as error:
        raise IngestError(f"{path.name} is not a valid notebook: it is not JSON ({error}).") from error
    except Exception as error:  # nbformat raises many types for malformed notebooks
        raise IngestError(f"{path.name} is not a readable notebook ({type(error).__name__}: {error}).") from error
    code, markdown = [], []
    for index, cell in enumerate(notebook.cells, start=1):  # cells numbered from 1, as people count
        if cell.cell_type == "code":
            code.append(CodeCell(cell=index, source=cell.source))
        elif cell.cell_type == "markdown":
            markdown.append(MarkdownCell(cell=index, text=cell.source))
    return code, markdown


class IngestError(Exception):
    """The submission cannot be read; the message is shown to the student."""


# --------------------------------------------------------------------------- extraction

def _blank_shell_and_magic_lines(source: str, cell: int | None, dropped: list[DroppedStatement]) -> str:
    """Replace `!cmd`, `%magic` and `x = !cmd` lines with `pass` (same indent, same line numbers)."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].strip()[2:].split()[0] if lines[0].strip()[2:] else ""
        if magic not in PYTHON_CELL_MAGICS:
            dropped.append(DroppedStatement(cell=cell, line=1, kind="magic", code=lines[0].strip(),
                                            reason=f"cell magic %%{magic}: not Python"))
            return ""
        dropped.append(DroppedStatement(cell=cell, line=1, kind="magic", code=lines[0].strip(),
                                        reason="cell magic line removed, the cell's Python is kept"))
        lines[0] = ""
    for number, line in enumerate(lines, start=1):
        match = SHELL_OR_MAGIC.match(line)
        if match:
            kind = "shell" if line.lstrip().startswith("!") or "!" in line.split("=", 1)[-1][:3] else "magic"
            dropped.append(DroppedStatement(cell=cell, line=number, kind=kind, code=line.strip()[:120],
                                            reason="shell escape" if kind == "shell" else "IPython magic"))
            lines[number - 1] = match.group(1) + "pass"
    return "\n".join(lines)


def python_source(cells: list[CodeCell]) -> str:
    """All code cells as one Python text, shell and magic lines blanked: what a linter should read."""
    return "\n\n".join(_blank_shell_and_magic_lines(c.source, c.cell, []) for c in cells) + "\n"


def _called_names(node: ast.AST) -> set[str]:
    """Names of everything called inside `node`: `f` for f(...), `fit` for x.fit(...)."""
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Name):
                names.add(func.id)
            elif isinstance(func, ast.Attribute):
                names.add(func.attr)
    return names


def _read_names(node: ast.AST) -> set[str]:
    return {sub.id for sub in ast.walk(node) if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load)}


def _target_names(targets: list[ast.expr]) -> set[str]:
    return {sub.id for target in targets for sub in ast.walk(target) if isinstance(sub, ast.Name)}


def _is_main_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _is_import_only(nodes: list[ast.stmt]) -> bool:
    return all(isinstance(n, (ast.Import, ast.ImportFrom, ast.Pass)) for n in nodes)


def _imported_module(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [alias.name for alias in node.names]


class _Extractor:
    """Classifies top-level statements of successive cells into kept and dropped."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.line_map: list[tuple[int | None, int]] = []  # extracted line -> (cell, line in cell)
        self.dropped: list[DroppedStatement] = []
        self.tainted: set[str] = set()
        self.student_functions: set[str] = set()
        self.functions: dict[str, tuple[ast.FunctionDef, int | None]] = {}

    def add_cell(self, source: str, cell: int | None) -> None:
        source = _blank_shell_and_magic_lines(source, cell, self.dropped)
        if not source.strip():
            return
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            where = f"cell {cell}, line {error.lineno}" if cell is not None else f"line {error.lineno}"
            text = (error.text or "").strip()
            raise IngestError(
                f"Syntax error in {where}: {error.msg}" + (f" — `{text}`" if text else "") +
                ". The harness cannot read code that does not parse; fix it and run the cell again."
            ) from error
        lines = source.splitlines()
        for node in tree.body:
            if isinstance(node, ast.Pass):
                continue  # what a blanked shell or magic line became
            verdict = self._classify(node)
            first = node.lineno
            if hasattr(node, "decorator_list") and node.decorator_list:
                first = min(d.lineno for d in node.decorator_list)
            segment = "\n".join(lines[first - 1:node.end_lineno])
            if verdict is None:
                self.kept.append(segment)
                self.line_map.extend((cell, n) for n in range(first, node.end_lineno + 1))
                self.line_map.append((cell, node.end_lineno))  # the blank line joining statements
            else:
                kind, reason = verdict
                self.dropped.append(DroppedStatement(
                    cell=cell, line=first, kind=kind, code=segment.splitlines()[0][:120] if segment else "",
                    reason=reason))

    def _classify(self, node: ast.stmt) -> tuple[str, str] | None:
        """None to keep the statement, else (kind, reason) to drop it."""
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = _imported_module(node)
            if any(m.startswith(COLAB_MODULES) for m in modules):
                self._taint(node)
                return "colab", "Colab-only import"
            return None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.tainted.discard(node.name)
            if isinstance(node, ast.FunctionDef):
                self.student_functions.add(node.name)
                self.functions[node.name] = (node, None)
            return None
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None  # docstring
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            return self._classify_assignment(node)
        if isinstance(node, ast.Try) and _is_import_only(node.body):
            return None
        if _is_main_guard(node):
            return "main", "`if __name__ == \"__main__\"` block: the student's own run"
        self._taint(node)
        calls = _called_names(node)
        if isinstance(node, ast.Expr):
            if calls & {"fit", "fit_generator", "train_on_batch"}:
                return "training", "top-level training: the harness retrains every model itself"
            if calls & {"evaluate", "predict", "evaluate_generator"}:
                return "evaluation", "top-level evaluation: the harness evaluates with its own code"
            if calls & {"show", "plot", "imshow", "figure", "subplot", "subplots", "savefig"}:
                return "plotting", "top-level plotting"
            return "statement", "top-level statement: only definitions and constants are kept"
        return "statement", f"top-level {type(node).__name__.lower()} block: only definitions and constants are kept"

    def _classify_assignment(self, node: ast.Assign | ast.AnnAssign) -> tuple[str, str] | None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not all(isinstance(t, (ast.Name, ast.Tuple, ast.List)) for t in targets):
            self._taint(node)
            return "statement", "assignment into an attribute or item (a side effect)"
        names = _target_names(targets)
        value = node.value
        if value is None:
            return None
        uses_dropped = _read_names(value) & self.tainted
        if uses_dropped:
            self.tainted |= names
            return "depends_on_dropped", f"uses {', '.join(sorted(uses_dropped))}, defined by a dropped statement"
        calls = _called_names(value)
        if names == {TRAINING_CONFIG}:
            self.tainted -= names
            return None
        if calls & {"fit", "fit_generator", "train_on_batch"}:
            kind, reason = "training", "top-level training: the harness retrains every model itself"
        elif calls & {"evaluate", "predict", "evaluate_generator"}:
            kind, reason = "evaluation", "top-level evaluation: the harness evaluates with its own code"
        elif calls & {"load_data"}:
            kind, reason = "data", "data loading: the harness supplies the data"
        elif calls & {"subplots", "figure", "subplot", "imshow", "plot"}:
            kind, reason = "plotting", "top-level plotting"
        elif calls & self.student_functions:
            used = ", ".join(sorted(calls & self.student_functions))
            kind, reason = "statement", f"calls {used} at top level: the harness calls factories itself"
        elif calls & {"Sequential", "Model"}:
            kind, reason = "statement", "builds a model at top level"
        elif calls & RUN_CALLS:
            kind, reason = "statement", "top-level call with side effects"
        else:
            self.tainted -= names
            return None
        self.tainted |= names
        return kind, reason

    def _taint(self, node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                self.tainted.add(sub.id)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.tainted |= {(a.asname or a.name).split(".")[0] for a in node.names}

    def source(self) -> str:
        return "\n\n".join(self.kept) + "\n"


def _factories(extractor: _Extractor, module_source: str) -> tuple[list[Factory], list[IgnoredItem]]:
    """The factories the harness will call, and lookalike functions it will not, with why."""
    tree = ast.parse(module_source)
    line_map = extractor.line_map
    defined: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            defined[node.name] = node  # a later definition replaces an earlier one, as when run
    factories, ignored = [], []
    for name, node in defined.items():
        is_factory = name == BASELINE_FACTORY or IMPROVED_FACTORY.match(name)
        if not is_factory:
            if LOOKS_LIKE_FACTORY.match(name):
                ignored.append(IgnoredItem(
                    name=name, reason="not a factory name the harness calls: use create_baseline_model "
                                      "or create_improved_model_<n>"))
            continue
        args = node.args
        required = len(args.posonlyargs) + len(args.args) - len(args.defaults)
        required += sum(1 for d in args.kw_defaults if d is None)
        if required > 0:
            ignored.append(IgnoredItem(name=name, reason="takes arguments; a factory must take none"))
            continue
        cell, line = line_map[node.lineno - 1] if node.lineno - 1 < len(line_map) else (None, node.lineno)
        factories.append(Factory(
            name=name, role="baseline" if name == BASELINE_FACTORY else "improved",
            cell=cell, line=line, has_docstring=ast.get_docstring(node) is not None))
    factories.sort(key=lambda f: (f.role != "baseline", _natural_key(f.name)))
    return factories, ignored


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def extract(cells: list[CodeCell]) -> tuple[str, _Extractor]:
    """Kept source of successive code cells (a module is one cell with `cell=None`)."""
    extractor = _Extractor()
    for code in cells:
        extractor.add_cell(code.source, code.cell)
    return extractor.source(), extractor


def _choose_file(folder: Path, ignored: list[IgnoredItem]) -> Path:
    files = _candidates(folder)
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    chosen = notebooks[0] if notebooks else files[0]
    for entry in sorted(folder.rglob("*")):
        if entry.is_file() and entry != chosen and "__pycache__" not in entry.parts:
            ignored.append(IgnoredItem(name=str(entry.relative_to(folder)),
                                       reason="only the notebook (or the single module) of a folder is graded"))
    return chosen


def ingest_path(path: Path, student: str | None = None) -> IngestResult:
    """Ingest one submission (a file or a student's folder); never raises for bad content."""
    path = Path(path)
    student = student or student_id(path)
    ignored_files: list[IgnoredItem] = []
    kind: Literal["notebook", "module", "folder"]
    if path.is_dir():
        kind = "folder"
        main_file = _choose_file(path, ignored_files)
    else:
        main_file = path
        kind = "notebook" if path.suffix == ".ipynb" else "module"
    result = IngestResult(student=student, source=str(path), kind=kind, main_file=main_file.name,
                          sha256=submission_sha256(path), ignored_files=ignored_files)
    try:
        if main_file.suffix == ".ipynb":
            code_cells, markdown = _read_notebook(main_file)
        else:
            try:
                text = main_file.read_text(encoding="utf-8")
            except UnicodeDecodeError as error:
                raise IngestError(f"{main_file.name} is not UTF-8 text ({error}).") from error
            code_cells, markdown = [CodeCell(cell=None, source=text)], []
        module_source, extractor = extract(code_cells)
        factories, ignored_functions = _factories(extractor, module_source)
    except IngestError as error:
        return result.model_copy(update={"status": "invalid", "reason": str(error)})
    has_config = any(TRAINING_CONFIG in _target_names(n.targets if isinstance(n, ast.Assign) else [n.target])
                     for n in ast.parse(module_source).body if isinstance(n, (ast.Assign, ast.AnnAssign)))
    update = dict(
        code_cells=code_cells, markdown=markdown, module_source=module_source,
        line_map=extractor.line_map, dropped=extractor.dropped, factories=factories,
        ignored_functions=ignored_functions, has_training_config=has_config,
    )
    if not factories:
        update.update(status="invalid", reason=(
            "No factory found: define create_baseline_model() and/or create_improved_model_1(), "
            "create_improved_model_2(), … each returning a Keras model"
            + (f" (found {', '.join(i.name for i in ignored_functions)}, which the harness does not call)"
               if ignored_functions else "") + "."))
    return result.model_copy(update=update)

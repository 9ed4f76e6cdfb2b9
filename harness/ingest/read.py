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
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from pathlib import Path
from typing import Literal

import nbformat

from harness.util.pysource import parse as parse_python
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
# Methods that change the object they are called on: a dropped `results.append(model.evaluate(...))`
# leaves `results` without what later statements expect in it.
MUTATING_METHODS = {"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "remove",
                    "clear", "add", "discard", "sort", "reverse"}
COLAB_MODULES = ("google.colab",)
# Cell magics whose body is ordinary Python; any other cell magic hides a foreign language.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
SHELL_OR_MAGIC = re.compile(r"^(\s*)(?:!(?!=)|%|\w+\s*=\s*(?:!(?!=)|%))")


# --------------------------------------------------------------------------- discovery

# Moodle's "download all submissions": one folder per student and submission plugin,
# "Jean Dupont_12345_assignsubmission_file_" (or files named "Jean Dupont_12345_assignsubmission_file_x.ipynb").
MOODLE_NAME = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<rest>.*)$")
ARCHIVE_SUFFIXES = (".zip",)
ARCHIVE_MAX_MEMBERS = 5000
ARCHIVE_MAX_FILE_BYTES = 200 * 2**20
ARCHIVE_MAX_TOTAL_BYTES = 1024 * 2**20
ARCHIVE_MAX_DEPTH = 2            # a zip inside a zip (a student's upload inside Moodle's download)
SKIPPED_NAMES = {"__MACOSX": "macOS archive metadata", ".DS_Store": "macOS folder metadata",
                 ".ipynb_checkpoints": "Jupyter autosave checkpoints", "__pycache__": "Python bytecode cache",
                 "Thumbs.db": "Windows thumbnail cache", "desktop.ini": "Windows folder settings"}


def moodle_name(name: str) -> str | None:
    """The student's name in a Moodle download's folder or file name, else None."""
    match = MOODLE_NAME.match(unicodedata.normalize("NFC", name).strip())
    return match.group("name").strip() if match else None


def student_id(path: Path) -> str:
    """A student's id: the file's stem or the folder's name, NFC-normalised, accents kept.

    A Moodle download's name keeps only the student's name:
    ``Jean Dupont_12345_assignsubmission_file_`` → ``Jean Dupont``.
    """
    name = path.stem if path.is_file() else path.name
    name = unicodedata.normalize("NFC", name).strip()
    return moodle_name(name) or name


def _candidates(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix in SUBMISSION_SUFFIXES and not p.name.startswith("."))


def _has_submissions_below(folder: Path) -> bool:
    return any(p.is_dir() and not p.name.startswith(".") and p.name not in SKIPPED_NAMES and
               (_candidates(p) or _has_submissions_below(p)) for p in folder.iterdir())


def _is_student_folder(folder: Path) -> bool:
    """One student's folder: at most one notebook (a .py alone if no notebook), no subfolders of work.

    A Moodle folder (``Jean Dupont_12345_assignsubmission_file_``) is always one student's,
    whatever it holds: its first notebook is graded and the other files are listed as ignored.
    """
    files = _candidates(folder)
    if moodle_name(folder.name) and (files or _has_submissions_below(folder)):
        return True
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    modules = [p for p in files if p.suffix == ".py"]
    if _has_submissions_below(folder):
        return False
    return len(notebooks) == 1 or (not notebooks and len(modules) == 1)


def _zip_member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author wrote it: zips without the UTF-8 flag (Windows, old macOS)
    store names as bytes that zipfile reads as cp437; UTF-8 bytes are recovered when they decode."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return unicodedata.normalize("NFC", name)


def _safe_member_parts(name: str) -> list[str] | None:
    """The member's path parts, or None when it would land outside the extraction folder."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        return None
    return parts


def extract_archive(archive: Path, dest_root: Path, ignored: list[IgnoredItem], depth: int = 0) -> Path | None:
    """Extract a zip safely into ``dest_root/<sha256[:12]>/<archive stem>/``; None if it cannot be read.

    No member is written outside that folder (absolute names and ``..`` are refused), links are
    not extracted, and the member count and sizes are capped (a zip bomb stops the extraction).
    A single top-level folder is flattened, so the student id is the archive's name. Every
    member not extracted is added to `ignored` with the reason.
    """
    label = str(archive)
    try:
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
        handle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        ignored.append(IgnoredItem(name=label, reason=f"not a readable zip archive ({error})"))
        return None
    stem = unicodedata.normalize("NFC", archive.stem).strip() or "archive"
    target = Path(dest_root) / digest / stem
    done_marker = target.parent / ".extracted"
    with handle:
        members = handle.infolist()
        if len(members) > ARCHIVE_MAX_MEMBERS:
            ignored.append(IgnoredItem(name=label, reason=f"archive has {len(members)} entries "
                                                          f"(more than {ARCHIVE_MAX_MEMBERS}): not extracted"))
            return None
        entries: list[tuple[zipfile.ZipInfo, list[str]]] = []
        for info in members:
            name = _zip_member_name(info)
            parts = _safe_member_parts(name)
            where = f"{label}:{name}"
            if parts is None:
                ignored.append(IgnoredItem(name=where, reason="unsafe path in the archive (absolute or '..'): not extracted"))
                continue
            if not parts:
                continue
            skipped = next((SKIPPED_NAMES[p] for p in parts if p in SKIPPED_NAMES), None)
            if skipped:
                if not info.is_dir():
                    ignored.append(IgnoredItem(name=where, reason=f"{skipped}: not extracted"))
                continue
            mode = (info.external_attr >> 16) & 0o170000
            if mode == 0o120000:
                ignored.append(IgnoredItem(name=where, reason="symbolic link in the archive: not extracted"))
                continue
            if info.flag_bits & 0x1:
                ignored.append(IgnoredItem(name=where, reason="encrypted member: not extracted"))
                continue
            if info.is_dir():
                continue
            entries.append((info, parts))
        # one wrapping folder (not a Moodle student folder) is flattened
        tops = {parts[0] for _, parts in entries}
        if len(tops) == 1 and all(len(parts) > 1 for _, parts in entries) and not moodle_name(next(iter(tops))):
            entries = [(info, parts[1:]) for info, parts in entries]
        if done_marker.exists() and target.is_dir():
            return target
        if target.parent.exists():
            shutil.rmtree(target.parent)
        target.mkdir(parents=True)
        total = 0
        for info, parts in entries:
            where = f"{label}:{'/'.join(parts)}"
            if info.file_size > ARCHIVE_MAX_FILE_BYTES:
                ignored.append(IgnoredItem(name=where, reason=f"file of {info.file_size / 2**20:.0f} MiB "
                                                              f"(limit {ARCHIVE_MAX_FILE_BYTES // 2**20} MiB): not extracted"))
                continue
            out_path = target.joinpath(*parts)
            if not out_path.resolve().is_relative_to(target.resolve()):
                ignored.append(IgnoredItem(name=where, reason="unsafe path in the archive: not extracted"))
                continue
            out_path.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with handle.open(info) as source, open(out_path, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        written += len(chunk)
                        total += len(chunk)
                        if written > ARCHIVE_MAX_FILE_BYTES or total > ARCHIVE_MAX_TOTAL_BYTES:
                            raise ValueError("size limit")
                        sink.write(chunk)
            except ValueError:
                out_path.unlink(missing_ok=True)
                ignored.append(IgnoredItem(name=where, reason="larger than declared or over the archive's "
                                                              f"size limit ({ARCHIVE_MAX_TOTAL_BYTES // 2**20} MiB "
                                                              "in all): extraction stopped"))
                break
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as error:
                out_path.unlink(missing_ok=True)
                ignored.append(IgnoredItem(name=where, reason=f"could not be extracted ({error})"))
    # zips inside the archive (a student's upload inside Moodle's download), extracted in place
    if depth + 1 < ARCHIVE_MAX_DEPTH:
        for inner in sorted(target.rglob("*.zip")):
            parent = inner.parent
            extracted = extract_archive(inner, dest_root, ignored, depth + 1)
            if extracted is not None:
                place = parent / extracted.name if not (parent / extracted.name).exists() else parent / f"{extracted.name}-zip"
                shutil.copytree(extracted, place)
                inner.unlink()
    else:
        for inner in sorted(target.rglob("*.zip")):
            ignored.append(IgnoredItem(name=f"{label}:{inner.relative_to(target)}",
                                       reason=f"archive nested more than {ARCHIVE_MAX_DEPTH} deep: not extracted"))
    done_marker.write_text(label, encoding="utf-8")
    return target


def default_archive_dir() -> Path:
    """Where archives are extracted when the caller names no folder (a per-user temporary folder)."""
    return Path(tempfile.gettempdir()) / f"harness-archives-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def discover(paths: list[Path], extract_to: Path | None = None) -> tuple[list[Path], list[IgnoredItem]]:
    """Submission paths (files or student folders) under `paths`, and what was ignored and why.

    A folder given on the command line is a student's folder when it holds exactly one
    notebook (or, without notebooks, one module); otherwise it is a class folder whose files
    and subfolders are walked. A ``.zip`` (a student's archive, or Moodle's "download all
    submissions") is extracted safely into `extract_to` (default: a temporary folder) and
    treated as the folder it contains; Moodle folders (``Jean Dupont_12345_assignsubmission_file_``)
    are one student each, whose id is the student's name.
    """
    found: list[Path] = []
    ignored: list[IgnoredItem] = []
    archives = Path(extract_to) if extract_to is not None else default_archive_dir()

    def take_folder(folder: Path) -> None:
        if _is_student_folder(folder):
            found.append(folder)
        elif _candidates(folder) or _has_submissions_below(folder) or \
                any(p.suffix.lower() in ARCHIVE_SUFFIXES for p in folder.rglob("*") if p.is_file()):
            walk(folder)
        else:
            ignored.append(IgnoredItem(name=str(folder), reason="folder without a notebook or .py module"))

    def take_archive(archive: Path) -> None:
        extracted = extract_archive(archive, archives, ignored)
        if extracted is None:
            return
        if any(extracted.rglob("*.zip")) or not (_candidates(extracted) or _has_submissions_below(extracted)):
            if not any(p.suffix in SUBMISSION_SUFFIXES for p in extracted.rglob("*")):
                ignored.append(IgnoredItem(name=str(archive), reason="archive without a notebook or .py module"))
                return
        take_folder(extracted)

    def folder_with_archive(folder: Path) -> bool:
        """A student's folder that holds a zip and no notebook or module (a Moodle folder, or any folder
        with exactly one zip): grade the zip's content under the folder's name."""
        if _candidates(folder) or _has_submissions_below(folder):
            return False
        zips = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ARCHIVE_SUFFIXES)
        if not zips or (len(zips) > 1 and not moodle_name(folder.name)):
            return False  # several zips in a plain folder: each is a submission (walked)
        extracted = extract_archive(zips[0], archives, ignored)
        if extracted is None:
            return True
        named = extracted.parent / folder.name  # keep the folder's name, so the id is the student's
        if not named.exists():
            shutil.copytree(extracted, named)
        for other in zips[1:]:
            ignored.append(IgnoredItem(name=str(other), reason="only one archive per student is graded"))
        if _candidates(named) or _has_submissions_below(named):
            found.append(named)
        else:
            ignored.append(IgnoredItem(name=str(zips[0]), reason="archive without a notebook or .py module"))
        return True

    def walk(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.name in SKIPPED_NAMES:
                ignored.append(IgnoredItem(name=str(entry), reason=SKIPPED_NAMES[entry.name]))
                continue
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.is_dir():
                if folder_with_archive(entry):
                    continue
                take_folder(entry)
            elif entry.suffix in SUBMISSION_SUFFIXES:
                found.append(entry)
            elif entry.suffix.lower() in ARCHIVE_SUFFIXES:
                take_archive(entry)
            else:
                ignored.append(IgnoredItem(name=str(entry), reason=f"not a submission ({entry.suffix or 'no extension'})"))

    for path in paths:
        path = Path(path)
        if not path.exists():
            ignored.append(IgnoredItem(name=str(path), reason="does not exist"))
        elif path.is_file() and path.suffix.lower() in ARCHIVE_SUFFIXES:
            take_archive(path)
        elif path.is_file():
            found.append(path)
        elif moodle_name(path.name) and folder_with_archive(path):
            continue
        elif _is_student_folder(path):
            found.append(path)
        else:
            walk(path)
    return found, ignored


def assign_ids(paths: list[Path]) -> dict[str, Path]:
    """Student ids for submission paths, one per path.

    A name shared by several submissions gets its parent folders as prefix (`2024-groupe1-mini_projet`),
    as many as it takes to be unique, then a number.
    """
    by_id: dict[str, list[Path]] = {}
    for path in paths:
        by_id.setdefault(student_id(path), []).append(path)
    ids = {name: group[0] for name, group in by_id.items() if len(group) == 1}
    for name, group in by_id.items():
        if len(group) == 1:
            continue
        for path in group:
            unique, parent = name, path.parent
            while unique == name or unique in ids:
                if parent == parent.parent or not student_id(parent):
                    unique = next(f"{name} ({n})" for n in range(2, len(paths) + 2) if f"{name} ({n})" not in ids)
                    break
                unique, parent = f"{student_id(parent)}-{unique}", parent.parent
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
            code.append(CodeCell(cell=index, source=cell.source, outputs=_text_outputs(cell)))
        elif cell.cell_type == "markdown":
            markdown.append(MarkdownCell(cell=index, text=cell.source))
    return code, markdown


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MAX_OUTPUT_CHARS = 6000  # per output; longer ones (training logs) keep their first and last halves


def _text_outputs(cell) -> list[str]:
    """The saved text outputs of a code cell: what the student's own run printed (never executed here)."""
    texts = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            text = output.get("text", "")
        elif kind in ("execute_result", "display_data"):
            text = output.get("data", {}).get("text/plain", "")
        elif kind == "error":
            text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
        else:
            continue
        text = ANSI_ESCAPE.sub("", "".join(text) if isinstance(text, list) else str(text))
        text = "\n".join(([part for part in line.split("\r") if part.strip()] or [""])[-1]
                         for line in text.split("\n"))  # progress bars rewritten with \r: their last state
        if len(text) > MAX_OUTPUT_CHARS:
            half = MAX_OUTPUT_CHARS // 2
            text = text[:half] + "\n[…]\n" + text[-half:]
        if text.strip():
            texts.append(text)
    return texts


class IngestError(Exception):
    """The submission cannot be read; the message is shown to the student."""


# --------------------------------------------------------------------------- extraction

def _blank_shell_and_magic_lines(source: str, cell: int | None, dropped: list[DroppedStatement]) -> str:
    """Replace `!cmd`, `%magic` and `x = !cmd` lines with `pass` (same indent, same line numbers)."""
    try:
        parse_python(source)
        return source  # plain Python: `(a\n != b)` or `(a\n % b)` are continuations, not magics
    except SyntaxError:
        pass
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


def _base_name(node: ast.expr) -> set[str]:
    """{'results'} for `results`, `results["a"]`, `results.scores[0]`; empty for anything else."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()


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
            tree = parse_python(source)
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
            # By columns, not whole lines: `import os; drive.mount(...)` keeps only its first statement.
            segment = "\n".join(lines[first - 1:node.lineno - 1] + [ast.get_source_segment(source, node, padded=True)])
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
        """Names a dropped statement defines, or changes in place (`results["m1"] = …`, `scores.append(…)`,
        `del table[k]`): the statements after it that use them are dropped too."""
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                self.tainted.add(sub.id)
            elif isinstance(sub, (ast.Subscript, ast.Attribute)) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                self.tainted |= _base_name(sub.value)
            elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in MUTATING_METHODS:
                self.tainted |= _base_name(sub.func.value)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.tainted |= {(a.asname or a.name).split(".")[0] for a in node.names}

    def source(self) -> str:
        return "\n\n".join(self.kept) + "\n"


def _factories(extractor: _Extractor, module_source: str) -> tuple[list[Factory], list[IgnoredItem]]:
    """The factories the harness will call, and lookalike functions it will not, with why."""
    tree = parse_python(module_source)
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
    files = _candidates(folder) or sorted(  # a Moodle folder may hold its notebook one level down
        p for p in folder.rglob("*") if p.is_file() and p.suffix in SUBMISSION_SUFFIXES
        and not any(part in SKIPPED_NAMES or part.startswith(".") for part in p.relative_to(folder).parts))
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    chosen = notebooks[0] if notebooks else files[0]
    for entry in sorted(folder.rglob("*")):
        if entry.is_file() and entry != chosen and "__pycache__" not in entry.parts:
            ignored.append(IgnoredItem(name=str(entry.relative_to(folder)),
                                       reason="only the notebook (or the single module) of a folder is graded"))
    return chosen


# --------------------------------------------------------------------------- other names

MODEL_CONSTRUCTORS = {"Sequential", "Model", "Functional"}


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def model_returning_functions(module_source: str) -> dict[str, str]:
    """Top-level functions that return a Keras model, read statically: {name: what it returns}.

    A function returns a model when it returns ``Sequential(...)``/``Model(...)`` (or a subclass
    defined in the module), a variable assigned from one, or the result of another such function.
    """
    try:
        tree = parse_python(module_source)
    except SyntaxError:
        return {}
    constructors = set(MODEL_CONSTRUCTORS)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
                (isinstance(b, ast.Name) and b.id in MODEL_CONSTRUCTORS) or
                (isinstance(b, ast.Attribute) and b.attr in MODEL_CONSTRUCTORS) for b in node.bases):
            constructors.add(node.name)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    found: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        known = constructors | set(found)
        for name, fn in functions.items():
            if name in found:
                continue
            bound: dict[str, str] = {}
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and _call_name(node.value) in known:
                    for target in _target_names(node.targets):
                        bound[target] = _call_name(node.value)
            for node in ast.walk(fn):
                if not isinstance(node, ast.Return) or node.value is None:
                    continue
                made = _call_name(node.value)
                if made in known:
                    found[name] = f"{made}(…)"
                elif isinstance(node.value, ast.Name) and node.value.id in bound:
                    found[name] = f"{bound[node.value.id]}(…)"
                if name in found:
                    changed = True
                    break
    return found


def _required_args(fn: ast.FunctionDef) -> int:
    args = fn.args
    required = len(args.posonlyargs) + len(args.args) - len(args.defaults)
    return required + sum(1 for d in args.kw_defaults if d is None)


def candidate_factories(module_source: str, factory_names: set[str]) -> list[IgnoredItem]:
    """Functions that return a Keras model under other names than the convention's, with how to use them."""
    try:
        functions = {n.name: n for n in parse_python(module_source).body if isinstance(n, ast.FunctionDef)}
    except SyntaxError:
        return []
    candidates = []
    for name, made in model_returning_functions(module_source).items():
        if name in factory_names:
            continue
        if _required_args(functions[name]):
            reason = (f"returns a Keras model ({made}) but takes arguments: wrap it in a zero-argument "
                      "create_improved_model_<n>() to have it graded")
        else:
            reason = (f"returns a Keras model ({made}): name it create_improved_model_<n>, or grade it as is "
                      f"with --factory-map create_improved_model_1={name}")
        candidates.append(IgnoredItem(name=name, reason=reason))
    return candidates


def is_factory_name(name: str) -> bool:
    return name == BASELINE_FACTORY or bool(IMPROVED_FACTORY.match(name))


def _apply_factory_map(module_source: str, factory_map: dict[str, str], existing: set[str]
                       ) -> tuple[str, dict[str, str], list[IgnoredItem]]:
    """The module with one zero-argument alias per mapping (``create_improved_model_1`` calling the
    student's ``build_cnn``), TRAINING_CONFIG entries keyed by the student's names copied to the
    harness's names; returns (source, mappings applied, mappings refused with why)."""
    tree = parse_python(module_source)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    applied, refused, aliases = {}, [], []
    for target, own in factory_map.items():
        if not is_factory_name(target):
            refused.append(IgnoredItem(name=f"{target}={own}", reason=f"--factory-map: {target} is not a factory name "
                                       "(create_baseline_model or create_improved_model_<n>)"))
        elif own not in functions:
            refused.append(IgnoredItem(name=f"{target}={own}", reason=f"--factory-map: {own}() is not defined "
                                       "at the top level of the submission"))
        elif target in existing:
            refused.append(IgnoredItem(name=f"{target}={own}", reason=f"--factory-map: {target}() is already defined"))
        elif _required_args(functions[own]):
            refused.append(IgnoredItem(name=f"{target}={own}", reason=f"--factory-map: {own}() takes arguments"))
        else:
            applied[target] = own
            aliases.append(f"def {target}():  # --factory-map {target}={own}\n    return {own}()\n")
    if not applied:
        return module_source, applied, refused
    remap = ("\nif isinstance(globals().get(\"TRAINING_CONFIG\"), dict):  # --factory-map: settings under the "
             "student's names\n    for _harness_name, _own_name in " + repr(applied) + ".items():\n"
             "        if _own_name in TRAINING_CONFIG and _harness_name not in TRAINING_CONFIG:\n"
             "            TRAINING_CONFIG[_harness_name] = TRAINING_CONFIG[_own_name]\n")
    return module_source + "\n\n" + "\n\n".join(aliases) + remap, applied, refused


def notebook_format(path: Path) -> str | None:
    """The nbformat version a notebook was saved with ('3.0', '4.5'), read from its JSON."""
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8-sig"))
        return f"{int(data['nbformat'])}.{int(data.get('nbformat_minor', 0))}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ingest_path(path: Path, student: str | None = None, factory_map: dict[str, str] | None = None) -> IngestResult:
    """Ingest one submission (a file or a student's folder); never raises for bad content.

    `factory_map` ({harness name: the student's function}, ``--factory-map``) grades functions
    named otherwise, e.g. ``{"create_improved_model_1": "build_cnn"}``.
    """
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
    if main_file.suffix == ".ipynb":
        result = result.model_copy(update={"notebook_format": notebook_format(main_file)})
    applied: dict[str, str] = {}
    if factory_map:
        mapped_source, applied, refused = _apply_factory_map(module_source, factory_map, {f.name for f in factories})
        ignored_functions = ignored_functions + refused
        if applied:
            module_source = mapped_source
            mapped, _ = _factories(extractor, module_source)
            where = {n.name: n for n in parse_python(module_source).body if isinstance(n, ast.FunctionDef)}
            line_map = extractor.line_map
            fixed = []
            for factory in mapped:
                own = applied.get(factory.name)
                if own:
                    node = where[own]
                    cell, line = line_map[node.lineno - 1] if node.lineno - 1 < len(line_map) else (None, node.lineno)
                    factory = factory.model_copy(update={"cell": cell, "line": line,
                                                         "has_docstring": ast.get_docstring(node) is not None})
                fixed.append(factory)
            factories = fixed
            ignored_functions = [i for i in ignored_functions if i.name not in applied.values()]
    candidates = []
    if not any(f.role == "improved" for f in factories):
        candidates = candidate_factories(module_source, {f.name for f in factories} | set(applied.values()))
    has_config = any(TRAINING_CONFIG in _target_names(n.targets if isinstance(n, ast.Assign) else [n.target])
                     for n in parse_python(module_source).body if isinstance(n, (ast.Assign, ast.AnnAssign)))
    update = dict(
        code_cells=code_cells, markdown=markdown, module_source=module_source,
        line_map=extractor.line_map, dropped=extractor.dropped, factories=factories,
        ignored_functions=ignored_functions, has_training_config=has_config,
        candidates=candidates, factory_map=applied, factory_source="mapped" if applied else "functions",
    )
    if not factories:
        update.update(status="invalid", reason=(
            "No factory found: define create_baseline_model() and/or create_improved_model_1(), "
            "create_improved_model_2(), … each returning a Keras model"
            + (f" (found {', '.join(i.name for i in ignored_functions)}, which the harness does not call)"
               if ignored_functions else "")
            + (f". Functions that return a Keras model: {', '.join(c.name + '()' for c in candidates)} — "
               "grade them with --factory-map create_improved_model_1=NAME" if candidates else "") + "."))
    return result.model_copy(update=update)


def needs_discovery(ingest: IngestResult) -> bool:
    """A readable notebook without factories: its models may be built at top level (harness/discover.py)."""
    return (ingest.status == "invalid" and not ingest.factories and bool(ingest.code_cells)
            and ingest.main_file.endswith(".ipynb"))


def main_file_path(path: Path) -> Path:
    """The file that is graded: the submission itself, or the notebook (or module) chosen in its folder."""
    path = Path(path)
    return _choose_file(path, []) if path.is_dir() else path

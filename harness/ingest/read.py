"""Ingest: read a submission and extract its code statically, without running any of it.

Submissions are found by :mod:`harness.ingest.paths` (a notebook, a module, or a student's
folder, whose graded file it chooses). From the code the harness keeps imports, function and class
definitions and constant assignments; it drops shell escapes, magics, Colab-only lines and
every top-level statement that trains, evaluates, plots or prints, so the student's own
training never runs. Every dropped statement is recorded with its reason.

>>> result = ingest_path(Path("submissions/baseline_only.ipynb"))     # doctest: +SKIP
>>> [f.name for f in result.factories]                                 # doctest: +SKIP
['create_baseline_model']
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import nbformat

# assign_ids, discover and main_file_path are re-exported: callers that import them from here
# (the pipeline) keep working; they live in harness.ingest.paths.
from harness.ingest import data_names
from harness.ingest.fit_calls import Declared, read_training, trainer_sources
from harness.ingest.inner_training import declared_settings_source, strip_inner_training
from harness.ingest.legacy import modernise
from harness.ingest.loops import literal_tables, with_loops_unrolled
from harness.ingest.paths import SUBMISSION_SUFFIXES, choose_main_file, student_id, wrong_format_reason
from harness.ingest.roles import Texts, baseline_by_text, read_texts, text_number
from harness.ingest.searches import HYPERMODEL_CLASS, hypermodel_call, searched_point
from harness.ingest.trainers import TRAINING, bind_arguments, see_through, seed_parameters
from harness.ingest.written import inlined
from harness.results import (
    CodeCell,
    DroppedStatement,
    Factory,
    IgnoredItem,
    IngestResult,
    MarkdownCell,
    Rewrite,
)
from harness.util.i18n import Translator
from harness.util.pysource import (
    assigned_once,
    call_name,
    called_names,
    imported_names,
    imported_packages,
    is_literal,
    read_names,
    required_arguments,
    stored_names,
)
from harness.util.pysource import decode as decode_source
from harness.util.pysource import parse as parse_python

BASELINE_FACTORY = "create_baseline_model"
IMPROVED_FACTORY = re.compile(r"^create_improved_model(?:_\w+)?$")
LOOKS_LIKE_FACTORY = re.compile(r"^(create|build|make|get)_\w*model\w*$", re.IGNORECASE)
TRAINING_CONFIG = "TRAINING_CONFIG"
# reasons are stored in English and said in the report's language from the same catalog entry
ENGLISH = Translator("en")

# Method and function names whose call at top level means training, evaluating, plotting,
# loading data or printing: the student's own run, which the harness never repeats.
RUN_CALLS = {
    "fit",
    "fit_generator",
    "evaluate",
    "evaluate_generator",
    "predict",
    "predict_classes",
    "train_on_batch",
    "test_on_batch",
    "load_data",
    "load_model",
    "load_weights",
    "save",
    "save_weights",
    "summary",
    "show",
    "savefig",
    "plot",
    "imshow",
    "figure",
    "subplot",
    "subplots",
    "print",
    "display",
    "mount",
    "flow",
    "flow_from_directory",
}
# Methods that change the object they are called on: a dropped `results.append(model.evaluate(...))`
# leaves `results` without what later statements expect in it.
MUTATING_METHODS = {
    "append",
    "extend",
    "insert",
    "update",
    "setdefault",
    "pop",
    "popitem",
    "remove",
    "clear",
    "add",
    "discard",
    "sort",
    "reverse",
}
# Hyper-parameter searches (KerasTuner's tuners, scikit-learn's searches): building one at top level starts the
# student's own training run, which the harness never repeats.
SEARCH_CALLS = {"RandomSearch", "Hyperband", "BayesianOptimization", "GridSearch", "GridSearchCV", "RandomizedSearchCV"}
COLAB_MODULES = ("google.colab",)
# Cell magics whose body is ordinary Python; any other cell magic hides a foreign language.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun"}
SHELL_OR_MAGIC = re.compile(r"^(\s*)(?:!(?!=)|%|\w+\s*=\s*(?:!(?!=)|%))")


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
        with open(file, "rb") as handle:  # in chunks: a notebook may weigh hundreds of MB
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


# Bounds on what the grading process reads, so that one submission cannot stall or swell the batch
# (docs/security.md, "Malformed input never stops the batch"). A notebook's size is mostly its saved
# outputs (images as base64): it is read once, its non-text outputs dropped before nbformat copies it,
# so the grader's peak memory stays under about 2.5 times the file's size. Every cell's code is parsed
# about ten times (extraction, Keras 2 idioms, roles): 2,000 cells (a long course notebook has 150) take
# a few seconds, and the parser's lock is shared by the batch's threads.
HASH_CHUNK_BYTES = 2**20
MAX_NOTEBOOK_MB = 256
MAX_CELLS = 2000
MAX_CODE_CHARS = 2_000_000  # about 50,000 lines: a whole module or all of a notebook's code cells


def _load_notebook(path: Path) -> dict:
    """The notebook's JSON, within the bounds above, with its non-text outputs and attachments dropped."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_MB * 2**20:
        raise IngestError(
            f"{path.name} is too large to read ({size / 2**20:.0f} MiB; at most {MAX_NOTEBOOK_MB} MiB): clear its "
            "outputs (Kernel › Restart Kernel and Clear All Outputs) and hand it in again."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # text, not bytes: one copy fewer at the peak
    except RecursionError as error:
        raise IngestError(f"{path.name} is not a readable notebook: its JSON is nested too deeply.") from error
    except (ValueError, UnicodeDecodeError) as error:  # nbformat says "not JSON" the same way below
        raise IngestError(f"{path.name} is not a valid notebook: it is not JSON ({error}).") from error
    cells = data.get("cells") if isinstance(data, dict) else None
    if isinstance(cells, list):
        if len(cells) > MAX_CELLS:
            raise IngestError(f"{path.name} has {len(cells)} cells; the harness reads at most {MAX_CELLS}.")
        for cell in cells:
            _drop_rich_outputs(cell)
    return data


def _drop_rich_outputs(cell) -> None:
    """Keep of a cell's outputs only the text the harness reads (``_text_outputs``): images and HTML go."""
    if not isinstance(cell, dict):
        return
    if isinstance(cell.get("attachments"), dict):
        cell["attachments"] = {}
    for output in cell.get("outputs") or []:
        if isinstance(output, dict) and isinstance(output.get("data"), dict):
            output["data"] = {k: v for k, v in output["data"].items() if k == "text/plain"}


def _read_notebook(path: Path) -> tuple[list[CodeCell], list[MarkdownCell], str | None]:
    """Code and markdown cells, and the nbformat version the notebook was saved with."""
    data = _load_notebook(path)
    saved_as = _format_of(data)
    try:
        notebook = nbformat.reads(json.dumps(data), as_version=4)
    except RecursionError as error:  # within json's depth, beyond nbformat's conversion or validation
        raise IngestError(f"{path.name} is not a readable notebook: its JSON is nested too deeply.") from error
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as error:
        raise IngestError(f"{path.name} is not a valid notebook: it is not JSON ({error}).") from error
    except Exception as error:  # nbformat raises many types for malformed notebooks
        raise IngestError(f"{path.name} is not a readable notebook ({type(error).__name__}: {error}).") from error
    code, markdown = [], []
    for index, cell in enumerate(notebook.cells, start=1):  # cells numbered from 1, as people count
        if cell.cell_type == "code":
            count = cell.get("execution_count")
            code.append(
                CodeCell(
                    cell=index,
                    source=cell.source,
                    outputs=_text_outputs(cell),
                    execution_count=count if isinstance(count, int) else None,
                )
            )
        elif cell.cell_type == "markdown":
            markdown.append(MarkdownCell(cell=index, text=cell.source))
    if sum(len(c.source) for c in code) > MAX_CODE_CHARS:
        raise IngestError(_too_much_code(path, sum(len(c.source) for c in code)))
    return code, markdown, saved_as


def _too_much_code(path: Path, chars: int) -> str:
    return f"{path.name} holds {chars} characters of code; the harness reads at most {MAX_CODE_CHARS}."


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
        text = "\n".join(
            ([part for part in line.split("\r") if part.strip()] or [""])[-1] for line in text.split("\n")
        )  # progress bars rewritten with \r: their last state
        if len(text) > MAX_OUTPUT_CHARS:
            half = MAX_OUTPUT_CHARS // 2
            text = text[:half] + "\n[…]\n" + text[-half:]
        if text.strip():
            texts.append(text)
    return texts


class IngestError(Exception):
    """The submission cannot be read; the message is shown to the student."""


# --------------------------------------------------------------------------- extraction


def blank_shell_and_magic_lines(source: str, cell: int | None, dropped: list[DroppedStatement]) -> str:
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
            dropped.append(
                DroppedStatement(
                    cell=cell, line=1, kind="magic", code=lines[0].strip(), reason=f"cell magic %%{magic}: not Python"
                )
            )
            return ""
        dropped.append(
            DroppedStatement(
                cell=cell,
                line=1,
                kind="magic",
                code=lines[0].strip(),
                reason="cell magic line removed, the cell's Python is kept",
            )
        )
        lines[0] = ""
    for number, line in enumerate(lines, start=1):
        match = SHELL_OR_MAGIC.match(line)
        if match:
            kind = "shell" if line.lstrip().startswith("!") or "!" in line.split("=", 1)[-1][:3] else "magic"
            dropped.append(
                DroppedStatement(
                    cell=cell,
                    line=number,
                    kind=kind,
                    code=line.strip()[:120],
                    reason="shell escape" if kind == "shell" else "IPython magic",
                )
            )
            lines[number - 1] = match.group(1) + "pass"
    return "\n".join(lines)


def python_source(cells: list[CodeCell]) -> str:
    """All code cells as one Python text, shell and magic lines blanked: what a linter should read."""
    return "\n\n".join(blank_shell_and_magic_lines(c.source, c.cell, []) for c in cells) + "\n"


def _base_name(node: ast.expr) -> set[str]:
    """{'results'} for `results`, `results["a"]`, `results.scores[0]`; empty for anything else."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return {node.id} if isinstance(node, ast.Name) else set()


def _target_names(targets: list[ast.expr]) -> set[str]:
    return {sub.id for target in targets for sub in ast.walk(target) if isinstance(sub, ast.Name)}


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
    )


def _is_import_only(nodes: list[ast.stmt]) -> bool:
    return all(isinstance(n, (ast.Import, ast.ImportFrom, ast.Pass)) for n in nodes)


def _imported_module(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return [alias.name for alias in node.names]


# Calls that read data or files: at the top level, the student's own data preparation (the harness supplies
# the data; the files are not in the sandbox).
DATA_CALLS = {
    "load_data",
    "load",
    "open",
    "read_csv",
    "read_excel",
    "read_json",
    "read_pickle",
    "imread",
    "fetch_openml",
    "loadtxt",
    "genfromtxt",
    "load_img",
    "img_to_array",
    "train_test_split",
    "to_categorical",
    "loadmat",
    "image_dataset_from_directory",
    "urlopen",
    "get_file",
    "glob",
    "listdir",
    "load_dataset",
}
# A cell that defines functions or classes cannot be skipped when it does not parse: a model may be in it.
DEFINES = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+\w", re.MULTILINE)


class _Extractor:
    """Classifies top-level statements of successive cells into kept and dropped."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.line_map: list[tuple[int | None, int]] = []  # extracted line -> (cell, line in cell)
        self.dropped: list[DroppedStatement] = []
        self.tainted: set[str] = set()
        self.student_functions: set[str] = set()
        self.preparing_functions: set[str] = set()  # those that only prepare data (_preparing_functions)
        self.training_methods: set[str] = set()  # methods of the student's classes that train (`Experiment.run`)
        self.functions: dict[str, tuple[ast.FunctionDef, int | None]] = {}
        self.inner_settings: dict[str, dict[str, int]] = {}  # function -> epochs/batch size of its own fit
        # kept statements, in order: (node, source, its lines' (cell, line), cell, first line), until finish()
        self.entries: list[tuple[ast.stmt, str, list[tuple[int | None, int]], int | None, int]] = []
        # dropped data preparation a factory may read (harness/ingest/data_names.py): (entry, its record)
        self.preparation: list[tuple[tuple, DroppedStatement]] = []

    def add_cell(self, source: str, cell: int | None) -> None:
        source = blank_shell_and_magic_lines(source, cell, self.dropped)
        if not source.strip():
            return
        try:
            tree = parse_python(source)
        except SyntaxError as error:
            where = f"cell {cell}, line {error.lineno}" if cell is not None else f"line {error.lineno}"
            text = (error.text or "").strip()
            if cell is not None and not DEFINES.search(source):
                # prose pasted into a code cell, a half-written line: nothing the models need is lost
                self.dropped.append(
                    DroppedStatement(
                        cell=cell,
                        line=error.lineno or 1,
                        kind="syntax_error",
                        code=(text or source.strip().splitlines()[0])[:200],
                        reason=f"this cell does not parse ({error.msg}, line {error.lineno}): skipped; it defines "
                        "nothing the models need, but it would stop the notebook when run",
                    )
                )
                return
            raise IngestError(
                f"Syntax error in {where}: {error.msg}"
                + (f" — `{text}`" if text else "")
                + ". The harness cannot read code that does not parse; fix it and run the cell again."
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
            segment = "\n".join(
                lines[first - 1 : node.lineno - 1] + [ast.get_source_segment(source, node, padded=True)]
            )
            lines_of = [(cell, n) for n in range(first, node.end_lineno + 1)] + [(cell, node.end_lineno)]
            if verdict is None:
                if isinstance(node, ast.FunctionDef):
                    node, segment = self._without_inner_training(node, segment, first, cell)
                elif _may_fail_at_import(node):
                    segment = GUARD_TRY + "\n" + textwrap.indent(segment, "    ") + "\n" + GUARD_EXCEPT
                    end = (cell, node.end_lineno)
                    lines_of = [(cell, first), *lines_of[:-1], end, end, lines_of[-1]]
                self.entries.append((node, segment, lines_of, cell, first))
            else:
                kind, reason = verdict
                record = DroppedStatement(
                    cell=cell,
                    line=first,
                    kind=kind,
                    code=segment.splitlines()[0][:120] if segment else "",
                    reason=reason,
                )
                self.dropped.append(record)
                if data_names.preparation(node, self.student_functions - self.preparing_functions):
                    self.preparation.append(((node, segment, lines_of, cell, first, len(self.entries)), record))

    def _without_inner_training(
        self, node: ast.FunctionDef, segment: str, first: int, cell: int | None
    ) -> tuple[ast.FunctionDef, str]:
        """The function (its node and source) without the training it does itself
        (harness/ingest/inner_training.py): what it reads is what it still reads."""
        stripped = strip_inner_training(node, segment, first, cell, DATA_CALLS, self.tainted, _may_be_called(node))
        if stripped is None:
            self.inner_settings.pop(node.name, None)  # redefined later without training
            return node, segment
        self.dropped += stripped.dropped
        self.inner_settings[node.name] = stripped.settings
        return parse_python(stripped.segment).body[0], stripped.segment

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
            if isinstance(node, ast.ClassDef):
                self.training_methods |= _training_methods(node)
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
            return "main", '`if __name__ == "__main__"` block: the student\'s own run'
        self._taint(node)
        calls = called_names(node)
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
        if isinstance(value, ast.Lambda):  # a definition: its body runs when called, not here
            self.tainted -= names
            return None
        uses_dropped = read_names(value) & self.tainted
        if uses_dropped:
            self.tainted |= names
            return "depends_on_dropped", f"uses {', '.join(sorted(uses_dropped))}, defined by a dropped statement"
        calls = called_names(value)
        if names == {TRAINING_CONFIG}:
            self.tainted -= names
            return None
        if calls & {"fit", "fit_generator", "train_on_batch"} or _method_calls(value) & self.training_methods:
            kind, reason = "training", "top-level training: the harness retrains every model itself"
        elif calls & SEARCH_CALLS:
            kind, reason = "training", "a hyper-parameter search: the harness does not run the student's search"
        elif calls & {"evaluate", "predict", "evaluate_generator"}:
            kind, reason = "evaluation", "top-level evaluation: the harness evaluates with its own code"
        elif calls & DATA_CALLS:
            kind, reason = "data", "data or file loading: the harness supplies the data, and no file is there"
        elif calls & {"subplots", "figure", "subplot", "imshow", "plot"}:
            kind, reason = "plotting", "top-level plotting"
        elif calls & self.student_functions:
            used = ", ".join(sorted(calls & self.student_functions))
            kind, reason = "statement", f"calls {used} at top level: the harness calls factories itself"
            self._taint(node)
        elif calls & {"Sequential", "Model"} and not _preprocessing_only(value, self.student_functions):
            # an augmenter (``Sequential([RandomRotation(0.1)])``) a pipeline's map calls is kept
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
        `del table[k]`), itself or through a function of the student's it calls (`run(m, "baseline")`
        filling the global `runs`): the statements after it that use them are dropped too."""
        for name in called_names(node) & set(self.functions):
            self.tainted |= _mutated_globals(self.functions[name][0])
        self.tainted |= set(stored_names(node))
        self.tainted |= _changed_in_place(node)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self.tainted |= {(a.asname or a.name).split(".")[0] for a in node.names}

    def finish(self) -> None:
        """Keep the kept statements, less the imports nothing kept uses: a notebook imports seaborn,
        scikit-learn or OpenCV for its plots and evaluation, which are dropped; the models never need
        them, and the grading environment may not have them."""
        self._restore_needed_data()
        used: set[str] = set()
        for node, *_ in self.entries:
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                used |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        for node, segment, lines_of, cell, first in self.entries:
            if _unused_import(node, used):
                self.dropped.append(
                    DroppedStatement(
                        cell=cell,
                        line=first,
                        kind="unused_import",
                        code=segment.splitlines()[0][:120],
                        reason="imported for code the harness does not run (nothing it keeps uses it)",
                    )
                )
                continue
            self.kept.append(segment)
            self.line_map.extend(lines_of)
        self.entries = []

    def _restore_needed_data(self) -> None:
        """Put back, each in its own try/except, the dropped data preparation that the factories read
        (harness/ingest/data_names.py), in its place among the kept statements."""
        kept = [entry[0] for entry in self.entries]
        roots = {n.name for n in kept if isinstance(n, ast.FunctionDef) and _may_be_called(n)}
        chosen = data_names.needed_data(kept, roots, [entry[0] for entry, _ in self.preparation])
        placed = [(float(index), index, entry) for index, entry in enumerate(self.entries)]
        for i in chosen:
            (node, segment, lines_of, cell, first, position), record = self.preparation[i]
            self.dropped.remove(record)
            end = (cell, node.end_lineno)
            guarded_lines = [(cell, first), *lines_of[:-1], end, end, lines_of[-1]]
            # before the kept statement that followed it in the notebook
            placed.append((position - 0.5, i, (node, data_names.guarded(segment), guarded_lines, cell, first)))
        self.entries = [entry for *_, entry in sorted(placed, key=lambda item: (item[0], item[1]))]

    def source(self) -> str:
        declared = {name: settings for name, settings in self.inner_settings.items() if settings}
        return "\n\n".join(self.kept) + "\n" + declared_settings_source(declared)


def _training_methods(node: ast.ClassDef) -> set[str]:
    """The methods of a student's class that train: call ``fit`` themselves, or another method that does
    (``run`` calling ``self._train()``)."""
    methods = {m.name: m for m in node.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
    training = {name for name, m in methods.items() if called_names(m) & {"fit", "fit_generator", "train_on_batch"}}
    while True:
        more = {name for name, m in methods.items() if name not in training and _method_calls(m) & training}
        if not more:
            return training
        training |= more


def _method_calls(node: ast.AST) -> set[str]:
    """The names of the methods `node` calls on an object (``exp.run()``, ``self._train()``)."""
    return {n.func.attr for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}


# a kept top-level assignment that computes something: a value the student's dropped run was to fill in
# (``h = runs["baseline"]``) must not stop the import of the whole submission
GUARD_TRY = "try:  # harness: a top-level assignment kept; if what it reads was dropped, its names stay undefined"
GUARD_EXCEPT = (
    "except Exception:  # harness: a model that needs these names fails with a NameError, not every model\n    pass"
)


def _may_fail_at_import(node: ast.stmt) -> bool:
    """A kept assignment that computes its value (not a literal, a lambda, TRAINING_CONFIG or a factory:
    ``create_improved_model_1 = partial(build, 0.3)`` is a definition the harness reads)."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
        return False
    names = _target_names(node.targets if isinstance(node, ast.Assign) else [node.target])
    if TRAINING_CONFIG in names or any(is_factory_name(n) for n in names) or isinstance(node.value, ast.Lambda):
        return False
    return not is_literal(node.value)


def _mutated_globals(function: ast.FunctionDef) -> set[str]:
    """The module-level names a function changes when it runs: those it declares ``global``, and those it
    changes in place without binding them itself (``runs[name] = …``, ``history.append(…)``)."""
    declared = {n for sub in ast.walk(function) if isinstance(sub, ast.Global) for n in sub.names}
    arguments = function.args
    local = {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
    local |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
    local |= set(stored_names(function))
    return declared | (_changed_in_place(function) - (local - declared))


def _changed_in_place(node: ast.AST) -> set[str]:
    """The names whose value `node` changes without binding them: ``runs[name] = …``, ``del table[k]``,
    ``model.attr = …``, ``history.append(…)``."""
    changed = set()
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Subscript, ast.Attribute)) and isinstance(sub.ctx, (ast.Store, ast.Del)):
            changed |= _base_name(sub.value)
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr in MUTATING_METHODS:
            changed |= _base_name(sub.func.value)
    return changed


def _may_be_called(function: ast.FunctionDef) -> bool:
    """Whether the harness may call this function as a factory, itself or through an inferred mapping:
    it needs no argument, or its name says it makes a model (``build_model(dropout)``, called with the
    notebook's literal arguments). The handout's ``evaluate_model(model_creator, …)`` is neither."""
    return not required_arguments(function) or bool(LOOKS_LIKE_FACTORY.match(function.name))


def _unused_import(node: ast.stmt, used: set[str]) -> bool:
    """An import none of whose names the kept code reads (never ``__future__`` or ``*`` imports)."""
    if not isinstance(node, (ast.Import, ast.ImportFrom)):
        return False
    if isinstance(node, ast.ImportFrom) and (node.module == "__future__" or any(a.name == "*" for a in node.names)):
        return False
    return not any((alias.asname or alias.name).split(".")[0] in used for alias in node.names)


def _factories(extractor: _Extractor, module_source: str) -> tuple[list[Factory], list[IgnoredItem]]:
    """The factories the harness will call, and lookalike functions it will not, with why."""
    tree = parse_python(module_source)
    line_map = extractor.line_map
    defined: dict[str, ast.FunctionDef | ast.Assign] = {}
    functions: dict[str, ast.FunctionDef] = {}
    for node in tree.body:
        # a later definition replaces an earlier one, as when run
        if isinstance(node, ast.FunctionDef):
            defined[node.name] = functions[node.name] = node
        elif (name := _factory_assigned(node, functions)) is not None:
            defined[name] = node
    factories, ignored = [], []
    for name, node in defined.items():
        is_factory = name == BASELINE_FACTORY or IMPROVED_FACTORY.match(name)
        if not is_factory:
            if LOOKS_LIKE_FACTORY.match(name):
                ignored.append(
                    IgnoredItem(
                        name=name,
                        reason="not a factory name the harness calls: use create_baseline_model "
                        "or create_improved_model_<n>",
                    )
                )
            continue
        if isinstance(node, ast.FunctionDef) and required_arguments(node) > 0:
            ignored.append(IgnoredItem(name=name, reason="takes arguments; a factory must take none"))
            continue
        cell, line = line_map[node.lineno - 1] if node.lineno - 1 < len(line_map) else (None, node.lineno)
        documented = _assigned_function(node, functions) if isinstance(node, ast.Assign) else node
        factories.append(
            Factory(
                name=name,
                role="baseline" if name == BASELINE_FACTORY else "improved",
                cell=cell,
                line=line,
                has_docstring=documented is not None and ast.get_docstring(documented) is not None,
            )
        )
    factories.sort(key=lambda f: (f.role != "baseline", _natural_key(f.name)))
    return factories, ignored


def _factory_assigned(node: ast.stmt, functions: dict[str, ast.FunctionDef]) -> str | None:
    """The factory name an assignment defines without ``def``: ``create_baseline_model = build_model``
    (a function taking no argument it needs), ``create_improved_model_1 = lambda: build_model(0.3)``,
    ``create_improved_model_2 = functools.partial(build_model, filters=16)``; else None."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
        return None
    name, value = node.targets[0].id, node.value
    if not is_factory_name(name):
        return None
    if isinstance(value, ast.Lambda):
        return name if not required_arguments(value) else None
    if isinstance(value, ast.Name):
        return name if value.id in functions and not required_arguments(functions[value.id]) else None
    if call_name(value) == "partial" and value.args and isinstance(value.args[0], ast.Name):
        return name if value.args[0].id in functions else None
    return None


def _assigned_function(node: ast.Assign, functions: dict[str, ast.FunctionDef]) -> ast.FunctionDef | None:
    """The function an alias or a partial names (for its docstring)."""
    value = node.value.args[0] if isinstance(node.value, ast.Call) else node.value
    return functions.get(value.id) if isinstance(value, ast.Name) else None


def _functions_defined(cells: list[CodeCell]) -> set[str]:
    """Names of the top-level functions of every cell that parses."""
    names: set[str] = set()
    for code in cells:
        try:
            tree = parse_python(blank_shell_and_magic_lines(code.source, code.cell, []))
        except SyntaxError:
            continue
        names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return names


def _preparing_functions(cells: list[CodeCell]) -> set[str]:
    """The top-level functions that only prepare data (``make_dataset(x, y, augment=True)`` building a tf.data
    pipeline): they neither train, evaluate, plot, print nor build a model, and call no other function of the
    student's that does. A statement calling one may be data preparation the factories need (a schedule's
    ``decay_steps = EPOCHS * len(train_ds)``)."""
    functions: dict[str, ast.AST] = {}
    for code in cells:
        try:
            tree = parse_python(blank_shell_and_magic_lines(code.source, code.cell, []))
        except SyntaxError:
            continue
        functions.update({n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))})
    calls = {name: called_names(node) for name, node in functions.items()}
    preparing = {name for name, called in calls.items() if not called & (data_names.RUN | MODEL_CONSTRUCTORS)}
    changed = True
    while changed:  # one that calls a function of the student's that does more is not preparation either
        unsafe = {name for name in preparing if calls[name] & (set(functions) - preparing)}
        preparing -= unsafe
        changed = bool(unsafe)
    return preparing


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def extract(cells: list[CodeCell]) -> tuple[str, _Extractor]:
    """Kept source of successive code cells (a module is one cell with `cell=None`)."""
    extractor = _Extractor()
    # a call of a function the notebook defines in a LATER cell (cells run out of order while it was
    # written) is a call of the student's own function all the same
    extractor.student_functions |= _functions_defined(cells)
    extractor.preparing_functions = _preparing_functions(cells)
    for code in cells:
        extractor.add_cell(code.source, code.cell)
    extractor.finish()
    return extractor.source(), extractor


# --------------------------------------------------------------------------- other names

MODEL_CONSTRUCTORS = {"Sequential", "Model", "Functional"}
# Keras's preprocessing and augmentation layers: a Sequential of these alone transforms images (a student's
# ``augmenter()`` mapped over the training batches); it classifies nothing, so it is no model to grade
PREPROCESSING_LAYERS = re.compile(
    r"Random\w*|Rescaling|Resizing|CenterCrop|Normalization|GaussianNoise|RandAugment|AugMix|MixUp|CutMix"
    r"|Solarization|AutoContrast|Equalization"
)


def model_returning_functions(module_source: str) -> dict[str, str]:
    """Top-level functions that return a Keras model, read statically: {name: what it returns}.

    A function returns a model when it returns ``Sequential(...)``/``Model(...)`` (or a subclass
    defined in the module), a variable assigned from one, the result of another such function, or a
    model passed through a helper that returns its argument (``return compile_it(Sequential(...))``).
    """
    try:
        tree = parse_python(module_source)
    except SyntaxError:
        return {}
    constructors = set(MODEL_CONSTRUCTORS)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
            (isinstance(b, ast.Name) and b.id in MODEL_CONSTRUCTORS)
            or (isinstance(b, ast.Attribute) and b.attr in MODEL_CONSTRUCTORS)
            for b in node.bases
        ):
            constructors.add(node.name)
    constructors |= application_models(tree)
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef) and not _preprocessing_only(n, defined)}
    through = {name: p for name, fn in functions.items() if (p := _returned_parameter(fn)) is not None}
    found: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for name, fn in functions.items():
            if name not in found and (made := _returned_model(fn, constructors | set(found), through)):
                found[name] = f"{made}(…)"
                changed = True
    return found


def application_models(tree: ast.AST) -> set[str]:
    """Keras's ready-made architectures the code calls (``keras.applications.MobileNetV2(…)``, or a name
    imported from ``keras.applications``): each call returns a whole model. Architectures only (their names
    are capitalised), not the module's helpers (``preprocess_input``)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr[:1].isupper() and "applications" in _dotted(node.value):
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and "applications" in (node.module or "").split("."):
            found |= {alias.asname or alias.name for alias in node.names if alias.name[:1].isupper()}
    return found


def _dotted(node: ast.expr) -> list[str]:
    """``keras.applications.mobilenet_v2`` -> ['keras', 'applications', 'mobilenet_v2']."""
    return ast.unparse(node).split(".")


def _preprocessing_only(fn: ast.AST, functions: set[str]) -> bool:
    """Whether every layer `fn` (a function, or a statement's value) builds is a preprocessing or augmentation
    layer (at least one), and it calls none of the module's `functions` (which could bring the classifier:
    ``base.layers``)."""
    called = called_names(fn)
    layers = {name for name in called if name[:1].isupper()} - MODEL_CONSTRUCTORS - {"Input", "InputLayer"}
    return bool(layers) and all(PREPROCESSING_LAYERS.fullmatch(name) for name in layers) and not called & functions


def _returned_parameter(fn: ast.FunctionDef) -> tuple[int, str] | None:
    """(position, name) of the parameter a helper returns (``def compile_it(model): …; return model``)."""
    names = [a.arg for a in fn.args.args]
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Name) and node.value.id in names:
            return names.index(node.value.id), node.value.id
    return None


def _returned_model(fn: ast.FunctionDef, known: set[str], through: dict[str, tuple[int, str]]) -> str | None:
    """The constructor or builder whose model `fn` returns, directly, through a variable or through a
    pass-through helper (`through`: {helper: its returned parameter}), or among what it returns with the
    model (``return cnn(), 15, [stop]``) when it trains nothing (a trainer's ``return m, acc`` is seen
    through elsewhere: harness/ingest/trainers.py); None when it returns none."""
    bound: dict[str, str] = {}
    trains = any(call_name(n) in TRAINING for n in ast.walk(fn))

    def made(node: ast.AST | None) -> str | None:
        name = call_name(node)
        if name in known:
            return name
        if isinstance(node, ast.Tuple) and not trains:  # ``return model, 15, [stop]``: with how to train it
            return next((maker for element in node.elts if (maker := made(element))), None)
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if name in through and isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            position, parameter = through[name]
            passed = [k.value for k in node.keywords if k.arg == parameter]
            passed += node.args[position : position + 1]
            return made(passed[0]) if passed else None
        return None

    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and (maker := made(node.value)):
            for target in _target_names(node.targets):
                bound[target] = maker
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and (maker := made(node.value)):
            return maker
    return None


# A KerasTuner hypermodel ``build(hp)`` is built for grading at the point the student's search chose, else
# at its defaults (harness/ingest/searches.py), with KerasTuner or the harness's stand-in for it.
HYPERMODEL_IMPORT = (
    "try:  # harness: hypermodels are built at their search's point or their defaults\n"
    "    import keras_tuner\n"
    "except ImportError:\n"
    "    from harness.workers import hyperparameters as keras_tuner\n"
)


def _is_hypermodel(fn: ast.FunctionDef) -> bool:
    """A KerasTuner hypermodel: its one required argument is ``hp``."""
    return required_arguments(fn) == 1 and bool(fn.args.args) and fn.args.args[0].arg == "hp"


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
        if _is_hypermodel(functions[name]):
            reason = (
                f"returns a Keras model ({made}) from a KerasTuner search's hyper-parameters (hp): the harness "
                "does not run the search, and grades a hypermodel at its defaults only when the submission names "
                "no improved model; write the model the search chose as a zero-argument "
                "create_improved_model_<n>() to have it graded"
            )
        elif required_arguments(functions[name]):
            reason = (
                f"returns a Keras model ({made}) but takes arguments: wrap it in a zero-argument "
                "create_improved_model_<n>() to have it graded"
            )
        else:
            reason = (
                f"returns a Keras model ({made}): name it create_improved_model_<n>, or grade it as is "
                f"with --factory-map create_improved_model_1={name}"
            )
        candidates.append(IgnoredItem(name=name, reason=reason))
    return candidates


# --------------------------------------------------------------------------- names inferred

# A model-returning function whose name says it is the starting point (base_cnn, build_reference, …)
BASELINE_NAME = re.compile(r"(?i)(base|r[ée]f[ée]ren|initial|original|d[ée]part|starting)")
MAX_INFERRED_MODELS = 12


def _called_function(own: str) -> str | None:
    """``"build(0.3, lr=1e-3)"`` → ``"build"``; a plain name → None."""
    try:
        node = parse_python(own, mode="eval").body
    except SyntaxError:
        return None
    return node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None


def _literal_calls(cells: list[CodeCell], required: dict[str, int], plain_ok: bool = False) -> dict[str, list[str]]:
    """Calls of the functions in `required` ({name: its required arguments}) whose arguments are all
    literals and enough, as source text in the order they appear (``build_model(0.3, lr=1e-3)``): how the
    submission itself uses its builders, at top level or in the functions it runs from there (a
    ``main()``: :func:`_used_nodes`). A builder without required arguments passed as a value (to a trainer,
    in a list of experiments) is used at its defaults. With `plain_ok` (trainer helpers, seen through
    afterwards), an argument may also be a name or a call of literals (``str(i)``, ``EPOCHS``). Cells that
    do not parse are skipped."""
    calls: dict[str, list[str]] = {name: [] for name in required}
    imported = imported_names([(cell, tree) for cell, _, tree in _parsed_cells(cells)])
    used = list(_used_nodes(cells, set(required)))
    called = {id(node.func) for node in used if isinstance(node, ast.Call)}
    for node in used:
        if isinstance(node, ast.Name) and node.id in required and id(node) not in called and not required[node.id]:
            # passed as a value (``experiments = [(build_a, "A")]``, ``train(build_a)``): called at its defaults
            if node.id not in calls[node.id]:
                calls[node.id].append(node.id)
            continue
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in required):
            continue
        arguments = [*node.args, *(k.value for k in node.keywords)]
        allowed = _plain_argument if plain_ok else is_literal
        readable = [allowed(a) or _built_from_literals(a, imported) for a in arguments]
        if any(k.arg is None for k in node.keywords) or not all(readable):
            continue
        if len(arguments) < required[node.func.id]:  # a call that would fail: not the student's own use
            continue
        text = ast.unparse(node) if arguments else node.func.id
        if text not in calls[node.func.id]:
            calls[node.func.id].append(text)
    return calls


def _built_from_literals(node: ast.expr, imported: set[str]) -> bool:
    """A Keras object built from literals through an imported name: ``regularizers.l2(1e-4)``,
    ``keras.optimizers.SGD(0.01, momentum=0.9)``."""
    if not isinstance(node, ast.Call):
        return False
    root = node.func
    while isinstance(root, ast.Attribute):
        root = root.value
    arguments = [*node.args, *(k.value for k in node.keywords)]
    return isinstance(root, ast.Name) and root.id in imported and all(is_literal(a) for a in arguments)


def _plain_argument(node: ast.expr) -> bool:
    """A literal, a name, a call of a name with literal arguments (``str(1)`` once a loop is unrolled), or a
    label made of these: an f-string (``f"{1e-05:.0e}"``, ``f"lr={lr}"``), ``"L2 " + str(1e-05)``,
    ``"p=%s" % 0.2``. A label is the run's name, never what the builder is given (:func:`see_through`
    still wants literals there)."""
    if is_literal(node) or isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(_plain_argument(v.value) for v in node.values if isinstance(v, ast.FormattedValue))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _plain_argument(node.left) and _plain_argument(node.right)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and all(is_literal(a) for a in [*node.args, *(k.value for k in node.keywords)])
    )


def _used_nodes(cells: list[CodeCell], builders: set[str]):
    """Every node outside function and class bodies, then the bodies of the functions that code calls (a
    ``main()`` under the ``__main__`` guard, what it calls in turn), in the order they are first called;
    the `builders`' own bodies are not the submission's use of a builder but a builder's."""
    parsed = [(cell, tree) for cell, _, tree in _parsed_cells(cells)]
    tables = literal_tables(parsed)  # a loop over a table of experiments: each round as written out
    trees = [with_loops_unrolled(tree, tables) for _, tree in parsed]
    functions = {n.name: n for tree in trees for n in tree.body if isinstance(n, ast.FunctionDef)}
    queue: list[str] = []

    def called(node: ast.AST) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
            queue.append(node.func.id)

    for tree in trees:
        for node in _outside_definitions(tree):
            called(node)
            yield node
    seen: set[str] = set()
    while queue:
        name = queue.pop(0)
        if name in seen or name in builders:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            called(node)
            yield node


def _top_level_nodes(cells: list[CodeCell]):
    """Every node of the code cells outside function and class bodies, in source order; cells that do not
    parse are skipped."""
    for cell in cells:
        try:
            tree = parse_python(blank_shell_and_magic_lines(cell.source, cell.cell, []))
        except SyntaxError:
            continue
        yield from _outside_definitions(tree)


def _outside_definitions(tree: ast.Module):
    """Every node of `tree` except those inside a function or class body (the submission's own top-level
    use of its builders, not a builder calling another); a lambda's body is a use (``run(lambda: cnn(8))``)."""
    stack = list(reversed(tree.body))  # depth first, in the order of the source
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _is_compile(node: ast.AST) -> bool:
    """A ``….compile(…)`` call (a model's, not Python's ``compile``)."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "compile"


def _compiles(fn: ast.FunctionDef) -> bool:
    """Whether a function calls ``.compile(…)`` itself."""
    return any(_is_compile(n) for n in ast.walk(fn))


def _compiles_at_top_level(cells: list[CodeCell]) -> bool:
    """Whether the code cells call ``.compile(…)`` outside any function."""
    return any(_is_compile(n) for n in _top_level_nodes(cells))


def infer_factory_map(
    module_source: str, cells: list[CodeCell], factories: list[Factory], markdown: list[MarkdownCell] = ()
) -> dict[str, str]:
    """When the convention's names are missing (no ``create_improved_model_<n>``): the student's own
    functions that return a Keras model, mapped to the harness's names.

    A function is called as the submission itself calls it at top level with literal arguments, one
    model per distinct call (``make_cnn()``, ``make_cnn(filters=16)``); a function without required
    arguments that the submission never calls so is called once, as is; a KerasTuner hypermodel
    (``build(hp)``) is built at its search space's defaults. The baseline (when
    ``create_baseline_model`` is missing) is the function whose name says so (``base``, ``ref``,
    ``initial``…), else the one the text calls so (a heading "Modèle de base", a label "Baseline":
    harness/ingest/roles.py), else the first one a comparison names. The others are improved models,
    in the order the text numbers them ("Amélioration 2"), else the order they are defined.
    """
    if any(f.role == "improved" for f in factories):
        return {}
    tree = parse_python(module_source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    returning = model_returning_functions(module_source)
    existing = {f.name for f in factories}
    own = [fn for fn in functions if fn.name in returning and fn.name not in existing and not is_factory_name(fn.name)]
    if _compiles_at_top_level(cells):
        # the notebook compiles (and trains) models at top level: functions that do not compile their own
        # model are its building blocks, and its models are found by running it (discovery)
        own = [fn for fn in own if _compiles(fn)]
    calls = _literal_calls(cells, {fn.name: required_arguments(fn) for fn in own})
    configured = {fn.name: _config_models(fn, tree) for fn in own if not calls[fn.name]}
    # what a builder of configurations calls (``baseline_model()``, ``resnet_model(cfg)``) is its building block
    blocks = {name for fn in own if configured.get(fn.name) for name in _called_names(fn)}
    own = [fn for fn in own if fn.name not in blocks]
    trained, at_defaults = _trainer_calls(cells, functions, {fn.name for fn in own})
    # a builder the submission never uses itself but whose calls the thin factories return (``def
    # make_wide_net(): return build_net(filters=(64, 128))``) is their building block
    shared = {
        _called_function(call) for fn in own if not required_arguments(fn) and (call := _returned_call(own, fn.name))
    }
    # a builder bound to another name to be trained otherwise (``modele_c = modele_a``, then ``entrainer(modele_c,
    # epochs=10, augmentation=True)``) is one more model, under that name
    parsed = _parsed_cells(cells)
    aliases = _aliases(
        [(cell, tree) for cell, _, tree in parsed], [fn.name for fn in own if not required_arguments(fn)]
    )
    alias_uses = _literal_calls(cells, dict.fromkeys(aliases, 0))
    models: list[str] = []
    for fn in own:  # each run a trainer helper makes, else each distinct literal call, is a model
        # uncalled, a function without arguments is one (a hypermodel at its search's point)
        uncalled = [] if fn.name in shared else _uncalled_model(fn, cells)
        # a helper's runs are what the submission trains (``run("Aug", "baseline", augment=True)``); a bare
        # call beside them (``build_net(v).count_params()`` over the variants) only builds
        models += trained.get(fn.name) or calls[fn.name] or configured.get(fn.name) or uncalled
    models += [use for alias in aliases for use in alias_uses[alias]]  # bound after the functions they name
    baseline_call = _returned_call(functions, BASELINE_FACTORY) if BASELINE_FACTORY in existing else None
    models = [m for m in models if _called(m) != baseline_call][:MAX_INFERRED_MODELS]  # not the baseline again
    texts = read_texts(parsed, list(markdown))
    mapping: dict[str, str] = {}
    if BASELINE_FACTORY not in existing:
        # else the first run of a table of runs that builds at the builder's defaults: its starting point
        baseline = _inferred_baseline(models, texts) or next((m for m in models if m in at_defaults), None)
        if baseline is not None:
            mapping[BASELINE_FACTORY] = baseline
            models.remove(baseline)
    numbers = [text_number(texts.about.get(_called_function(m) or m, "")) for m in models]
    order = sorted(range(len(models)), key=lambda i: numbers[i] if numbers[i] is not None else i + 1)
    for number, index in enumerate(order, start=1):
        mapping[f"create_improved_model_{number}"] = models[index]
    return mapping


def extra_factory_map(module_source: str, cells: list[CodeCell], factories: list[Factory]) -> dict[str, str]:
    """Beside the convention's factories, the student's other functions that build and compile a model
    the submission itself trains (``create_final_model``, called at top level or handed to a trainer
    helper, ``lambda: create_final_model(augment=False)``), numbered after the convention's improved
    models: an instructor grades every model the student trained and reports, not only those named as
    the handout asks. A function a factory calls is a building block of that factory, not a model."""
    improved = [f for f in factories if f.role == "improved"]
    if not improved:
        return {}
    body = parse_python(module_source).body
    functions = [n for n in body if isinstance(n, ast.FunctionDef)]
    existing = {f.name for f in factories}
    definitions = [n for n in functions if n.name in existing] + [  # ``create_improved_model_1 = lambda: …`` too
        n.value for n in body if isinstance(n, ast.Assign) and _target_names(n.targets) & existing
    ]
    inside = {name for definition in definitions for name in _called_names(definition)}
    returning = model_returning_functions(module_source)
    compiling = {fn.name for fn in functions if _compiles(fn)}
    own = [
        fn
        for fn in functions
        if fn.name in returning
        and not is_factory_name(fn.name)
        and fn.name not in inside
        and (fn.name in compiling or _called_names(fn) & compiling)  # a whole model, not a backbone to finish
    ]
    calls = _literal_calls(cells, {fn.name: required_arguments(fn) for fn in own})
    models = [model for fn in own for model in calls[fn.name]][: max(0, MAX_INFERRED_MODELS - len(improved))]
    last = max(int(n) if (n := f.name.rsplit("_", 1)[-1]).isdigit() else 0 for f in improved)
    return {f"create_improved_model_{last + i}": model for i, model in enumerate(models, start=1)}


# a builder's parameter that holds one experiment's configuration, when it is not annotated with its class
CONFIG_PARAMETERS = {
    "cfg",
    "config",
    "conf",
    "configuration",
    "params",
    "hparams",
    "settings",
    "spec",
    "experiment",
    "exp",
}


def _aliases(trees: list[tuple[int | None, ast.Module]], functions: Iterable[str]) -> dict[str, str]:
    """Top-level names bound once to one of the `functions` (``modele_c_augmente = modele_a_dropout``): name ->
    function."""
    functions = set(functions)
    return {
        name: value.id
        for name, value in assigned_once(trees).items()
        if isinstance(value, ast.Name) and value.id in functions and name not in functions
    }


def _trainer_calls(
    cells: list[CodeCell], functions: list[ast.FunctionDef], builders: set[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """({builder: the calls of a trainer helper that build with it}, those that call the builder with no
    argument): a helper that builds a model with one of the `builders` and fits it, called with literal
    arguments (``run({"bn": True}, 64, 0)`` for ``def run(kwargs, batch, seed): m = make_model(**kwargs);
    m.fit(…, batch_size=batch)``, its loop over a table of runs read round by round), each call a model
    the way the submission trains it; the mapping then sees through the helper (:func:`_through_trainers`)."""
    helpers = {fn.name: fn for fn in functions if fn.name not in builders}
    calls = _literal_calls(cells, {name: required_arguments(fn) for name, fn in helpers.items()}, plain_ok=True)
    module = assigned_once([(cell, tree) for cell, _, tree in _parsed_cells(cells)])
    by_builder: dict[str, list[str]] = {}
    at_defaults: list[str] = []
    runs: set[tuple] = set()
    for texts in calls.values():
        for text in texts:
            call = parse_python(text, mode="eval").body if "(" in text else None
            seen = see_through(call, helpers, module=module) if call is not None else None
            builder = _called_function(seen.builder) if seen else None
            if builder in builders and (run := _run_key(call, helpers[call_name(call)])) not in runs:
                runs.add(run)
                by_builder.setdefault(builder, []).append(text)
                if seen.builder == f"{builder}()":
                    at_defaults.append(text)
    return by_builder, at_defaults


def _run_key(call: ast.Call, helper: ast.FunctionDef) -> tuple:
    """What tells one run of a trainer helper from another: its arguments, but for the seed (``run({}, 0)``
    and ``run({}, s)`` over the seeds are one model trained again)."""
    bound = bind_arguments(helper, call, literal_only=False)
    if bound is None:
        return (ast.unparse(call),)
    seeds = seed_parameters(helper)
    values, extra = bound
    return (
        helper.name,
        tuple((name, ast.unparse(value)) for name, value in sorted(values.items()) if name not in seeds),
        tuple(ast.unparse(k) for k in extra),
    )


def _config_models(fn: ast.FunctionDef, tree: ast.Module) -> list[str]:
    """A builder that takes one configuration object (``def build_model(cfg: Config)``) and the table of
    such configurations the module writes out (``EXPERIMENTS = [Config("baseline"), Config("resnet",
    arch="resnet")]``): one model per configuration, the builder called with it (``build_model(
    Config("resnet", arch="resnet"))``), whoever loops over the table (a trainer class, a ``main()``)."""
    if required_arguments(fn) != 1 or not fn.args.args:
        return []
    parameter = fn.args.args[0]
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    annotated = parameter.annotation.id if isinstance(parameter.annotation, ast.Name) else None
    if annotated not in classes and not (annotated is None and parameter.arg in CONFIG_PARAMETERS):
        return []
    # the extractor keeps a top-level assignment inside a ``try:`` (what it reads may have been dropped)
    statements = [s for n in tree.body for s in (n.body if isinstance(n, ast.Try) else [n])]
    tables = [rows for rows in map(_config_rows, statements) if rows]
    tables = [rows for rows in tables if rows[0].func.id in classes and (annotated in (None, rows[0].func.id))]
    if len(tables) != 1:  # none, or several the builder could take: not guessed
        return []
    return [f"{fn.name}({ast.unparse(row)})" for row in tables[0]][:MAX_INFERRED_MODELS]


def _config_rows(node: ast.stmt) -> list[ast.Call]:
    """The rows of a module-level table of one class's instances built from literals (a list, a tuple, or
    a dict's values): ``CONFIGS = [Config("a", lr=1e-3), Config("b")]``; [] for anything else."""
    value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
    rows = (
        value.values if isinstance(value, ast.Dict) else value.elts if isinstance(value, (ast.List, ast.Tuple)) else []
    )
    calls = [r for r in rows if isinstance(r, ast.Call) and isinstance(r.func, ast.Name)]
    if len(calls) < 2 or len(calls) != len(rows) or len({c.func.id for c in calls}) != 1:
        return []
    arguments = [a for c in calls for a in [*c.args, *(k.value for k in c.keywords)]]
    return calls if all(is_literal(a) for a in arguments) and all(k.arg for c in calls for k in c.keywords) else []


def _called_names(node: ast.AST) -> set[str]:
    """The names a function (or a lambda) calls directly (``baseline_model()``, ``resnet_model(cfg)``)."""
    return {n.func.id for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def _returned_call(functions: list[ast.FunctionDef], name: str) -> str | None:
    """What a one-line factory returns, as :func:`_called` writes it (``def create_baseline_model(): return
    make_cnn()`` → ``make_cnn()``); None for any other factory."""
    fn = next((f for f in functions if f.name == name), None)
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))] if fn else []
    returned = body[-1].value if body and isinstance(body[-1], ast.Return) else None
    if isinstance(returned, ast.Tuple):  # ``return make_cnn(), 15, [stop]``: the model's call
        returned = next((e for e in returned.elts if isinstance(e, ast.Call)), None)
    # a one-line factory, or one that sets up what it returns with its model (``stop = EarlyStopping(…)``)
    if isinstance(returned, ast.Call) and (len(body) == 1 or returned is not body[-1].value):
        return ast.unparse(returned)
    return None


def _called(model: str) -> str:
    """An inferred model as the call it makes: ``make_cnn`` → ``make_cnn()``."""
    return model if "(" in model else f"{model}()"


def _uncalled_model(fn: ast.FunctionDef, cells: list[CodeCell]) -> list[str]:
    """A builder the submission never calls with literal arguments: as is without arguments, a KerasTuner
    hypermodel at the point the student's search chose (their run, never the harness's), else at its
    defaults, else none."""
    if not required_arguments(fn):
        return [fn.name]
    return [hypermodel_call(fn.name, searched_point(fn, cells))] if _is_hypermodel(fn) else []


def _inferred_baseline(models: list[str], texts: Texts) -> str | None:
    """The model that is the starting point: by its function's name, else its text, else a comparison,
    else a builder called at its defaults beside calls that change them (``build()`` beside
    ``build(dropout=True)``); of a function's models, its call at its defaults first."""
    function = {m: _called_function(m) or m for m in models}
    by_name = next((m for m in models if BASELINE_NAME.search(function[m])), None)
    by_name = by_name or next((m for m in models if BASELINE_NAME.search(config_label(m) or "")), None)
    if by_name is not None:
        return by_name
    named = baseline_by_text(list(dict.fromkeys(function.values())), texts.about)
    if named is None:
        named = next((f for f in texts.compared_first if f in function.values()), None)
    if named is None:
        named = next((m for m in models if m in function.values() and list(function.values()).count(m) > 1), None)
    candidates = [m for m in models if function[m] == named]
    return named if named in candidates else next(iter(candidates), None)


def config_label(model: str) -> str | None:
    """The label a configuration gives a model built from it: the string the call opens with, itself or in
    the configuration it is given (``build_model(Config("resnet_sep", arch=…))`` → ``resnet_sep``,
    ``creer_modele('reference')`` → ``reference``); None for a plain call."""
    found = re.search(r"""\(\s*(?:\w+\(\s*)?(?:\w+\s*=\s*)?['"]([\w .+-]{2,40})['"]""", model)
    return found.group(1) if found else None


def _parsed_cells(cells: list[CodeCell]) -> list[tuple[int | None, str, ast.Module]]:
    """The code cells that parse (shell and magic lines blanked): (cell, source, tree)."""
    parsed = []
    for cell in cells:
        source = blank_shell_and_magic_lines(cell.source, cell.cell, [])
        try:
            parsed.append((cell.cell, source, parse_python(source)))
        except SyntaxError:
            continue
    return parsed


def is_factory_name(name: str) -> bool:
    """A name the harness calls as a factory: create_baseline_model or create_improved_model_<n>."""
    return name == BASELINE_FACTORY or bool(IMPROVED_FACTORY.match(name))


def _top_level_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """The module's functions by name, a top-level name bound once to one of them included (``modele_c =
    modele_a_dropout``: a model the student trains otherwise under that name)."""
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    return functions | {name: functions[function] for name, function in _aliases([(None, tree)], functions).items()}


def _apply_factory_map(
    module_source: str, factory_map: dict[str, str], existing: set[str]
) -> tuple[str, dict[str, str], list[IgnoredItem]]:
    """The module with one zero-argument alias per mapping (``create_improved_model_1`` calling the
    student's ``build_cnn``), TRAINING_CONFIG entries keyed by the student's names copied to the
    harness's names; returns (source, mappings applied, mappings refused with why)."""
    functions = _top_level_functions(parse_python(module_source))
    applied, refused, aliases = {}, [], []
    for target, own in factory_map.items():
        called = _called_function(own)
        if called is not None:  # "build(0.3, lr=1e-3)": a helper with the arguments the notebook gives it
            if called in functions and target not in existing and is_factory_name(target):
                applied[target] = own
                aliases.append(f"def {target}():  # {own}\n    return {own}\n")
            continue
        if not is_factory_name(target):
            refused.append(
                IgnoredItem(
                    name=f"{target}={own}",
                    reason=f"--factory-map: {target} is not a factory name "
                    "(create_baseline_model or create_improved_model_<n>)",
                )
            )
        elif own not in functions:
            refused.append(
                IgnoredItem(
                    name=f"{target}={own}",
                    reason=f"--factory-map: {own}() is not defined at the top level of the submission",
                )
            )
        elif target in existing:
            refused.append(IgnoredItem(name=f"{target}={own}", reason=f"--factory-map: {target}() is already defined"))
        elif required_arguments(functions[own]):
            refused.append(IgnoredItem(name=f"{target}={own}", reason=f"--factory-map: {own}() takes arguments"))
        else:
            applied[target] = own
            aliases.append(f"def {target}():  # --factory-map {target}={own}\n    return {own}()\n")
    if not applied:
        return module_source, applied, refused
    by_function = {target: _called_function(own) or own for target, own in applied.items()}
    remap = (
        '\nif isinstance(globals().get("TRAINING_CONFIG"), dict):  # --factory-map: settings under the '
        "student's names\n    for _harness_name, _own_name in " + repr(by_function) + ".items():\n"
        "        if _own_name in TRAINING_CONFIG and _harness_name not in TRAINING_CONFIG:\n"
        "            TRAINING_CONFIG[_harness_name] = TRAINING_CONFIG[_own_name]\n"
    )
    if any(HYPERMODEL_CLASS in own for own in applied.values()):
        aliases.insert(0, HYPERMODEL_IMPORT)
    return module_source + "\n\n" + "\n\n".join(aliases) + remap, applied, refused


def notebook_format(path: Path) -> str | None:
    """The nbformat version a notebook was saved with ('3.0', '4.5'), read from its JSON."""
    try:
        return _format_of(json.loads(Path(path).read_bytes().decode("utf-8-sig")))
    except (OSError, ValueError, RecursionError):
        return None


def _format_of(data) -> str | None:
    try:
        return f"{int(data['nbformat'])}.{int(data.get('nbformat_minor', 0))}"
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _with_factory_map(
    module_source: str,
    cells: list[CodeCell],
    extractor: _Extractor,
    factories: list[Factory],
    ignored_functions: list[IgnoredItem],
    factory_map: dict[str, str],
) -> tuple[str, list[Factory], list[IgnoredItem], dict[str, str]]:
    """--factory-map applied: the module with its aliases, the factories (placed at the student's own
    functions; a call with arguments, ``build(dropout=0.3)``, at the submission's first such call, where
    its text is), what stays ignored, and the mapping that was applied."""
    mapped_source, applied, refused = _apply_factory_map(module_source, factory_map, {f.name for f in factories})
    ignored_functions = ignored_functions + refused
    if not applied:
        return module_source, factories, ignored_functions, applied
    mapped, _ = _factories(extractor, mapped_source)
    where = _top_level_functions(parse_python(mapped_source))
    line_map = extractor.line_map
    fixed = []
    for factory in mapped:
        own = applied.get(factory.name)
        if own:
            node = where[_called_function(own) or own]
            cell, line = line_map[node.lineno - 1] if node.lineno - 1 < len(line_map) else (None, node.lineno)
            cell, line = _call_site(cells, own, node) or (cell, line)
            factory = factory.model_copy(
                update={"cell": cell, "line": line, "has_docstring": ast.get_docstring(node) is not None}
            )
        fixed.append(factory)
    used = {_called_function(own) or own for own in applied.values()}
    return mapped_source, fixed, [i for i in ignored_functions if i.name not in used], applied


def _call_site(cells: list[CodeCell], own: str, builder: ast.FunctionDef) -> tuple[int | None, int] | None:
    """(cell, line) of the submission's first call written as `own` with arguments, outside the builder
    it calls; None for a plain name or when the submission never writes that call."""
    try:
        wanted = parse_python(own, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(wanted, ast.Call) or not (wanted.args or wanted.keywords):
        return None
    text = ast.unparse(wanted)
    for cell, _, tree in _parsed_cells(cells):
        inside = {
            id(n)
            for d in ast.walk(tree)
            if isinstance(d, ast.FunctionDef) and d.name == builder.name
            for n in ast.walk(d)
        }
        lines = [
            n.lineno
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and id(n) not in inside and ast.unparse(n) == text
        ]
        if lines:
            return cell, min(lines)
    return None


def _through_trainers(
    module_source: str, cells: list[CodeCell], factory_map: dict[str, str]
) -> tuple[dict[str, str], dict[str, Declared]]:
    """A mapping to a trainer helper's call (``run("E1", dropout=0.25)``: harness/ingest/trainers.py) made
    a mapping to the builder call it makes, and the settings, callbacks and generator it trains with,
    placed at the call."""
    tree = parse_python(module_source)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    module = assigned_once([(None, tree)])
    constants = {  # ``EPOCHS = 8``: what a helper's call may pass for its epochs
        name: value.value
        for name, value in module.items()
        if isinstance(value, ast.Constant) and type(value.value) is int
    }
    mapped, trained = dict(factory_map), {}
    for name, how in factory_map.items():
        try:
            call = parse_python(how, mode="eval").body
        except SyntaxError:
            continue
        seen = see_through(call, functions, constants, module) if isinstance(call, ast.Call) else None
        if seen is None:
            continue
        mapped[name] = seen.builder
        cell, line = _where_called(cells, ast.unparse(call))
        sources = trainer_sources([(None, tree)], functions[call_name(call)], call)
        trained[name] = Declared(settings=seen.settings, sources=sources, line=line, cell=cell)
    return mapped, trained


CONFIG_SETTINGS = {"epochs": "epochs", "n_epochs": "epochs", "num_epochs": "epochs", "batch_size": "batch_size"}


def _configured_settings(module_source: str, cells: list[CodeCell], factory_map: dict[str, str]) -> dict:
    """The epochs and batch size a configuration declares for the model built from it
    (``build_model(Config("batch_64", batch_size=64))``): its class's defaults (a dataclass's fields),
    then the row's own values; placed at the row."""
    classes = {n.name: n for n in parse_python(module_source).body if isinstance(n, ast.ClassDef)}
    declared = {}
    for name, how in factory_map.items():
        try:
            call = parse_python(how, mode="eval").body
        except SyntaxError:
            continue
        row = call.args[0] if isinstance(call, ast.Call) and len(call.args) == 1 else None
        if not (isinstance(row, ast.Call) and isinstance(row.func, ast.Name) and row.func.id in classes):
            continue
        values = _dataclass_values(classes[row.func.id], row)
        settings = {CONFIG_SETTINGS[k]: v for k, v in values.items() if k in CONFIG_SETTINGS and type(v) is int}
        if settings:
            cell, line = _where_called(cells, ast.unparse(row), anywhere=True)
            declared[name] = Declared(settings=settings, line=line, cell=cell)
    return declared


def _dataclass_values(cls: ast.ClassDef, row: ast.Call) -> dict:
    """A dataclass row's literal field values: the class's defaults, then the row's positional and keyword
    arguments (fields in the order the class declares them)."""
    fields = [n for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]
    values = {f.target.id: ast.literal_eval(f.value) for f in fields if f.value is not None and is_literal(f.value)}
    values.update({f.target.id: ast.literal_eval(a) for f, a in zip(fields, row.args, strict=False) if is_literal(a)})
    values.update({k.arg: ast.literal_eval(k.value) for k in row.keywords if k.arg and is_literal(k.value)})
    return values


def _where_called(cells: list[CodeCell], text: str, anywhere: bool = False) -> tuple[int | None, int]:
    """(cell, line) of the first top-level call (with `anywhere`, the first call at all: a row of a table
    of configurations inside a ``try:``) written `text`; (None, 0) when there is none."""
    for cell, _, tree in _parsed_cells(cells):
        for node in ast.walk(tree) if anywhere else _outside_definitions(tree):
            if isinstance(node, ast.Call) and ast.unparse(node) == text:
                return cell, node.lineno
    return None, 0


def _with_declared_settings(
    module_source: str,
    cells: list[CodeCell],
    factories: list[Factory],
    applied: dict[str, str],
    extractor: _Extractor,
    trained: dict[str, Declared] | None = None,
) -> tuple[str, list[Factory], list[DroppedStatement], list[tuple[int | None, int]], dict[str, str]]:
    """The settings of the student's own training calls (``model.fit(…, epochs=15)`` on a graded model:
    harness/ingest/fit_calls.py) added to the module as TRAINING_CONFIG entries that an entry of the
    student's own wins over, and a builder trained another way in its own variable added as a factory of
    its own; returns (the module, the factories, the dropped statements with each call's line saying what
    it kept, the line map with the added lines pointing to the first call: an error there is about that
    call, and each model's run label: harness/ingest/fit_calls.py's ``read_training``)."""
    built_by = {f.name: applied.get(f.name, f.name) for f in factories}
    trees = [(cell, tree) for cell, _, tree in _parsed_cells(cells)]
    declared, variants, labels = read_training(trees, built_by, kept=parse_python(module_source))
    for name, d in (trained or {}).items():  # a trainer helper's call: what it trains with (harness/ingest/trainers.py)
        if (d.settings or d.sources) and name not in declared:
            declared[name] = d
        elif name in declared:  # the generator the call switches to (``augment=True``), unless read already
            declared[name].sources = {**d.sources, **declared[name].sources}
    if not declared and not variants:
        return module_source, factories, extractor.dropped, extractor.line_map, labels
    said = {
        (d.cell, d.line): ENGLISH("why_training_call_kept", model=name, kept=d.said()) for name, d in declared.items()
    }
    definitions, added = _variant_factories(variants, factories, module_source, declared, said)
    labels |= {f.name: v.declared.label for f, v in zip(added, variants, strict=False) if v.declared.label}
    entries = ", ".join(f"{name!r}: {d.as_entry()}" for name, d in declared.items())
    integers = {name: d.settings for name, d in declared.items() if d.settings}
    block = definitions + (
        "\ntry:  # harness: the settings of the student's own training calls (harness/ingest/fit_calls.py)\n"
        f"    _harness_declared = {{{entries}}}\n"
        "except Exception:  # a callback or a generator that cannot be built here: the numbers alone\n"
        f"    _harness_declared = {integers!r}\n"
        'if isinstance(globals().setdefault("TRAINING_CONFIG", {}), dict):\n'
        "    for _harness_name, _harness_entry in _harness_declared.items():\n"
        "        TRAINING_CONFIG.setdefault(_harness_name, _harness_entry)\n"
    )
    line_map, lines = extractor.line_map, module_source.count("\n")
    if len(line_map) >= lines:  # the map covers the module so far: the block's lines go to the first call
        first = next(iter(declared.values()))
        line_map = [*line_map[:lines], *[(first.cell, first.line)] * block.count("\n")]
    dropped = _said_on_their_lines(extractor.dropped, said, cells)
    return module_source + block, factories + added, dropped, line_map, labels


def _variant_factories(
    variants: list, factories: list[Factory], module_source: str, declared: dict, said: dict
) -> tuple[str, list[Factory]]:
    """(the Python source defining a factory for each variant, those factories), at most as many as
    keep the submission within MAX_INFERRED_MODELS models; each variant's settings go into `declared` and
    what its call says into `said`."""
    taken = {f.name for f in factories} | _bound_at_top(module_source)
    definitions, added = "", []
    for variant in variants[: max(0, MAX_INFERRED_MODELS - len(factories))]:
        name = _variant_name(variant.holder, taken)
        taken.add(name)
        d = variant.declared
        definitions += (
            f"\n\ndef {name}():  # harness: {variant.holder!r}, built like {variant.model} and trained its own way\n"
            f"    return {variant.model}()\n"
        )
        added.append(Factory(name=name, role="improved", cell=d.cell, line=d.line))
        declared[name] = d
        said[(d.cell, d.line)] = ENGLISH(
            "why_training_variant", holder=variant.holder, model=variant.model, kept=d.said(), name=name
        )
    return definitions, added


def _variant_name(holder: str, taken: set[str]) -> str:
    """A factory name for a variable's model: ``model_aug``, ``aug_model`` or ``aug_results`` ->
    ``create_improved_model_aug``, the whole variable's name when that is taken, then a number."""
    short = re.sub(r"^(?:model|modele|m)_?", "", holder, flags=re.IGNORECASE)
    short = re.sub(r"_?(?:model|modele|results?|res|history|hist)$", "", short, flags=re.IGNORECASE) or holder
    numbered = (f"{holder}_{n}" for n in range(2, 10_000))
    return next(
        f"create_improved_model_{s}" for s in (short, holder, *numbered) if f"create_improved_model_{s}" not in taken
    )


def _bound_at_top(module_source: str) -> set[str]:
    """The names the module binds at its top level (a variant's factory must not replace one)."""
    names: set[str] = set()
    for node in parse_python(module_source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            names |= set(_target_names(node.targets if isinstance(node, ast.Assign) else [node.target]))
    return names


def _said_on_their_lines(dropped: list[DroppedStatement], said: dict, cells: list[CodeCell]) -> list:
    """The dropped statements, each training call's saying what it kept (`said`: (cell, line) -> reason):
    the statement the call starts, or one added for a call in a function the harness never runs (a ``main()``)."""
    out, added = list(dropped), []
    for (cell, line), reason in said.items():
        covering = [i for i, s in enumerate(dropped) if (s.cell, s.line) == (cell, line)]
        if covering:
            out[covering[0]] = out[covering[0]].model_copy(update={"reason": reason})
        else:
            code = _line_of(cells, cell, line)
            added.append(DroppedStatement(cell=cell, line=line, kind="training", code=code, reason=reason))
    return out + added


def _line_of(cells: list[CodeCell], cell: int | None, line: int) -> str:
    """The text of one line of a code cell (of the module when `cell` is None), stripped."""
    source = next((c.source for c in cells if c.cell == cell), "")
    lines = source.splitlines()
    return lines[line - 1].strip()[:120] if 0 < line <= len(lines) else ""


MAX_LOCAL_MODULE_BYTES = 1_000_000


def _local_modules(folder: Path, main_file: Path, module_source: str) -> dict[str, str]:
    """The student's own modules handed in beside the main file (``outils.py``) that the kept code imports:
    the worker gets them beside the extracted code, so ``from outils import bloc`` works there too."""
    imported = imported_packages(ast.walk(parse_python(module_source)))
    found = {}
    for path in sorted(main_file.parent.glob("*.py")):
        if path != main_file and path.stem in imported and path.stat().st_size <= MAX_LOCAL_MODULE_BYTES:
            try:
                found[str(path.relative_to(folder))] = decode_source(path.read_bytes())
            except ValueError:
                continue
    return found


def _imported_of(files: dict[str, str], module_source: str) -> dict[str, str]:
    """The files among `files` ({file name: source}) that the kept code imports as modules."""
    imported = imported_packages(ast.walk(parse_python(module_source))) if files else set()
    return {name: source for name, source in files.items() if Path(name).stem in imported}


def _modernised(cells: list[CodeCell]) -> tuple[list[CodeCell], list[Rewrite]]:
    """The code cells with their Keras 2 idioms rewritten (harness/ingest/legacy.py), and the edits."""
    modern, rewrites = [], []
    for cell in cells:
        source, edits = modernise(cell.source, cell.cell)
        modern.append(cell.model_copy(update={"source": source}) if edits else cell)
        rewrites += edits
    return modern, rewrites


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
        main_file = choose_main_file(path, ignored_files)
    else:
        main_file = path
        kind = "notebook" if path.suffix == ".ipynb" else "module"
    result = IngestResult(
        student=student,
        source=str(path),
        kind=kind,
        main_file=main_file.name,
        sha256=submission_sha256(path),
        ignored_files=ignored_files,
    )
    try:
        saved_as = None
        if main_file.suffix not in SUBMISSION_SUFFIXES:
            raise IngestError(wrong_format_reason(main_file))
        if main_file.suffix == ".ipynb":
            code_cells, markdown, saved_as = _read_notebook(main_file)
        else:
            size = main_file.stat().st_size
            if size > MAX_CODE_CHARS * 4:  # more than MAX_CODE_CHARS characters take in UTF-8: not even read
                raise IngestError(
                    f"{main_file.name} is too large to read ({size / 2**20:.0f} MiB of code; "
                    f"at most {MAX_CODE_CHARS} characters)."
                )
            try:
                text = decode_source(main_file.read_bytes())
            except ValueError as error:
                raise IngestError(f"{main_file.name} cannot be read as Python source: {error}.") from error
            if len(text) > MAX_CODE_CHARS:
                raise IngestError(_too_much_code(main_file, len(text)))
            code_cells, markdown = [CodeCell(cell=None, source=text)], []
        own_cells, written, written_files = inlined(code_cells)
        modern, rewrites = _modernised(own_cells)
        module_source, extractor = extract(modern)
        factories, ignored_functions = _factories(extractor, module_source)
    except IngestError as error:
        return result.model_copy(update={"status": "invalid", "reason": str(error)})
    if main_file.suffix == ".ipynb":
        result = result.model_copy(update={"notebook_format": saved_as})
    applied: dict[str, str] = {}
    inferred = False
    if not factory_map:  # the instructor's --factory-map, when given, says it all
        factory_map = infer_factory_map(module_source, modern, factories, markdown) or extra_factory_map(
            module_source, modern, factories
        )
        inferred = bool(factory_map)
    trained: dict[str, Declared] = {}
    if factory_map:
        factory_map, trained = _through_trainers(module_source, modern, factory_map)
        trained = {**_configured_settings(module_source, modern, factory_map), **trained}
        module_source, factories, ignored_functions, applied = _with_factory_map(
            module_source, modern, extractor, factories, ignored_functions, factory_map
        )
    module_source, factories, dropped, line_map, labels = _with_declared_settings(
        module_source, modern, factories, applied, extractor, trained
    )
    candidates = []
    if not any(f.role == "improved" for f in factories):
        used = {_called_function(own) or own for own in applied.values()}
        candidates = candidate_factories(module_source, {f.name for f in factories} | used)
    local_modules = _local_modules(path, main_file, module_source) if kind == "folder" else {}
    local_modules |= _imported_of(written_files, module_source)
    ignored_files = [i for i in ignored_files if i.name not in local_modules]
    has_config = any(
        TRAINING_CONFIG in _target_names(n.targets if isinstance(n, ast.Assign) else [n.target])
        for n in parse_python(module_source).body
        if isinstance(n, (ast.Assign, ast.AnnAssign))
    )
    update = dict(
        code_cells=code_cells,
        markdown=markdown,
        module_source=module_source,
        line_map=line_map,
        dropped=dropped,
        factories=factories,
        ignored_functions=ignored_functions,
        has_training_config=has_config,
        candidates=candidates,
        rewrites=written + [r for r in rewrites if (r.cell, r.line) in set(extractor.line_map)],  # only what runs
        local_modules=local_modules,
        ignored_files=ignored_files,
        factory_map=applied,
        factory_source=("inferred" if inferred else "mapped") if applied else "functions",
        run_labels=labels,
    )
    framework = other_framework(code_cells)
    if not factories and framework:
        update.update(
            status="invalid", other_framework=framework, reason=ENGLISH("why_other_framework", framework=framework)
        )
    elif not factories:
        update.update(status="invalid", reason=_no_factory_reason(ignored_functions, candidates))
    return result.model_copy(update=update)


def _no_factory_reason(ignored: list, candidates: list) -> str:
    """Why nothing can be graded, stored in English (a report says it in its language, ``Translator.stored``):
    the functions found that the harness does not call, and those that return a Keras model."""
    key = "why_no_factory" + ("_ignored" if ignored else "") + ("_candidates" if candidates else "")
    return ENGLISH(
        key,
        ignored=", ".join(i.name for i in ignored),
        candidates=", ".join(c.name + "()" for c in candidates),
    )


# Deep-learning frameworks other than Keras, by their import name: a submission written with one of them and
# no Keras model is told so (running it to find Keras models would find none).
OTHER_FRAMEWORKS = {"torch": "PyTorch", "jax": "JAX", "flax": "JAX (Flax)", "mxnet": "MXNet", "paddle": "PaddlePaddle"}
KERAS_MODULES = {"keras", "tensorflow", "tf_keras"}


def other_framework(cells: list[CodeCell]) -> str | None:
    """The framework the code imports instead of Keras (``import torch`` and no Keras or TensorFlow), or None."""
    imported = imported_packages(_top_level_nodes(cells))
    if imported & KERAS_MODULES:
        return None
    return next((OTHER_FRAMEWORKS[name] for name in OTHER_FRAMEWORKS if name in imported), None)


def needs_discovery(ingest: IngestResult) -> bool:
    """Whether to find models by running the submission with training intercepted
    (harness/ingest/discovery.py): a readable notebook or script without factories (its models may be
    built at top level, or in its ``__main__`` block), or one with factories that also builds and fits
    other models at top level (a mixed submission: both are graded)."""
    if ingest.status == "invalid":
        return not ingest.factories and bool(ingest.code_cells) and not ingest.other_framework
    return bool(ingest.factories) and builds_other_models(ingest)


def factory_functions(ingest: IngestResult) -> list[str]:
    """The submission's own functions that its graded factories are: the convention's names and the
    functions an inferred or given mapping calls (``build_model`` for ``build_model(0.3)``)."""
    names = [f.name for f in ingest.factories]
    for own in ingest.factory_map.values():
        called = _called_function(own) or own
        if called not in names:
            names.append(called)
    return names


def builds_other_models(ingest: IngestResult) -> bool:
    """Whether the code cells, outside any function, build a Keras model other than through a graded
    factory (``Sequential(…)``, ``Model(…)``, a model-returning function that is not graded) and fit one."""
    covered = set(factory_functions(ingest))
    makers = (set(MODEL_CONSTRUCTORS) | set(model_returning_functions(ingest.module_source))) - covered
    builds = fits = False
    for node in _top_level_nodes(ingest.code_cells):
        name = call_name(node)
        builds = builds or name in makers
        fits = fits or name in ("fit", "fit_generator")
    return builds and fits

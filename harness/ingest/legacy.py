"""Keras 2 (and Keras 1) idioms rewritten for the Keras 3 the harness trains with.

Course material and answers found online are often older than Keras 3: ``keras.layers.convolutional``,
``keras.utils.np_utils``, ``layers.experimental.preprocessing``, ``Adam(lr=…)``,
``Convolution2D(32, 3, 3)``, ``border_mode=``. Keras 3 refuses most of them, and one (three
positional integers to ``Conv2D``) it accepts with another meaning (the third becomes the stride).
The code the worker runs is rewritten, edit by edit, on the same lines (cells and line numbers
stay those of the student's notebook); each edit is recorded with its reason. The student's own
code, as shown in the report and linted by the rubric, is not changed.

>>> source, edits = modernise("from keras.layers.convolutional import Conv2D\\nopt = Adam(lr=0.01)\\n", cell=3)
>>> print(source, end="")
from keras.layers import Conv2D
opt = Adam(learning_rate=0.01)
>>> [(e.line, e.before, e.after) for e in edits]
[(1, 'keras.layers.convolutional', 'keras.layers'), (2, 'lr', 'learning_rate')]
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from harness.results import Rewrite
from harness.util.pysource import call_name
from harness.util.pysource import parse as parse_python

# Modules Keras 3 folded into their parent (``from keras.layers.core import Dense``).
OLD_MODULES = re.compile(
    r"\b((?:tensorflow\.)?keras\.layers)\.(?:convolutional|core|pooling|normalization(?:\.batch_normalization)?"
    r"|advanced_activations|merge|recurrent|embeddings|noise|wrappers|local)\b"
    r"|\b((?:tensorflow\.)?keras\.utils)\.np_utils\b"
    r"|\b((?:tensorflow\.)?keras\.optimizers)\.legacy\b"
    r"|\b(layers)\.experimental\.preprocessing\b"
    r"|\b((?:tensorflow\.)?keras\.layers)\.experimental\.preprocessing\b"
)
# Keyword arguments renamed since Keras 1 and 2: old name -> new name.
KEYWORDS = {
    "lr": "learning_rate",
    "border_mode": "padding",
    "init": "kernel_initializer",
    "W_regularizer": "kernel_regularizer",
    "b_regularizer": "bias_regularizer",
    "output_dim": "units",
    "subsample": "strides",
    "nb_filter": "filters",
    "nb_epoch": "epochs",
}
CONVOLUTIONS = {"Conv2D", "Convolution2D"}


@dataclass(frozen=True)
class _Edit:
    line: int  # 1-based, in the cell
    start: int  # column
    end: int
    after: str
    before: str
    reason: str


def modernise(source: str, cell: int | None) -> tuple[str, list[Rewrite]]:
    """`source` with the Keras 2 idioms the harness knows rewritten, and what was changed where."""
    edits = _module_edits(source) + _keyword_edits(source) + _convolution_edits(source)
    if not edits:
        return source, []
    lines = source.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: (e.line, e.start), reverse=True):
        text = lines[edit.line - 1]
        lines[edit.line - 1] = text[: edit.start] + edit.after + text[edit.end :]
    rewrites = [
        Rewrite(cell=cell, line=e.line, before=e.before, after=e.after, reason=e.reason)
        for e in sorted(edits, key=lambda e: (e.line, e.start))
    ]
    return "".join(lines), rewrites


def _module_edits(source: str) -> list[_Edit]:
    edits = []
    for number, text in enumerate(source.splitlines(), start=1):
        for match in OLD_MODULES.finditer(text):
            parent = next(group for group in match.groups() if group)
            edits.append(
                _Edit(
                    number,
                    match.start(),
                    match.end(),
                    parent,
                    match.group(0),
                    f"Keras 3 has this module's names in {parent}",
                )
            )
    return edits


def _keyword_edits(source: str) -> list[_Edit]:
    """Renamed keyword arguments of Keras's own classes (``Adam(lr=…)``, ``Conv2D(border_mode=…)``) and of
    ``fit`` (``nb_epoch=``); never a parameter or a call of the student's own functions, whose names are
    theirs to choose (``def build_model(lr=1e-3)``)."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = call_name(node) or ""
        keras_class = name[:1].isupper()
        for keyword in node.keywords:
            old = keyword.arg
            if old not in KEYWORDS or not (keras_class or (old == "nb_epoch" and name in ("fit", "fit_generator"))):
                continue
            line = lines[keyword.lineno - 1]
            start = _column(line, keyword.col_offset)
            if line[start : start + len(old)] != old:
                continue
            new = KEYWORDS[old]
            edits.append(_Edit(keyword.lineno, start, start + len(old), new, old, f"Keras 3 names this argument {new}"))
    return edits


def _convolution_edits(source: str) -> list[_Edit]:
    """``Conv2D(32, 3, 3)`` (Keras 1: filters, rows, columns) → ``Conv2D(32, (3, 3))``: Keras 3 would take
    the third number for the stride."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        return []
    edits = []
    for node in ast.walk(tree):
        name = (
            node.func.attr
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            else (node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None)
        )
        if name not in CONVOLUTIONS or len(node.args) != 3:
            continue
        rows, columns = node.args[1], node.args[2]
        if not all(isinstance(a, ast.Constant) and isinstance(a.value, int) for a in (rows, columns)):
            continue
        if rows.lineno != columns.end_lineno:
            continue
        line = source.splitlines()[rows.lineno - 1]
        start, end = _column(line, rows.col_offset), _column(line, columns.end_col_offset)
        after = f"({rows.value}, {columns.value})"
        edits.append(
            _Edit(
                rows.lineno,
                start,
                end,
                after,
                line[start:end],
                f"{name}(filters, rows, columns) is Keras 1's kernel size; Keras 3 reads the third number as strides",
            )
        )
    return edits


def _column(line: str, byte_offset: int) -> int:
    """ast's column (UTF-8 bytes) as a character index into `line`."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))

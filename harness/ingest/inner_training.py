"""A function that builds a model *and trains it* before returning it: its own training taken out.

Students often write ``def create_improved_model_1(): …; model.compile(…); model.fit(x_train, …);
return model``. The harness trains every model itself, under its protocol, so the student's ``fit``
inside the function must not run: it would train the model twice, and its ``x_train`` is the
student's top-level data, which the harness drops (a ``NameError`` in the worker). In a function
that calls ``fit`` (or ``fit_generator``, ``train_on_batch``), each statement that trains,
evaluates, predicts, saves or loads weights, loads data, or uses what one of those produced, is
replaced by ``pass`` (or, when it sets names, by setting them to ``None``, so that ``return model,
history`` still returns the model), line for line, so that every kept line keeps its place in the report.
The literal ``epochs=`` and ``batch_size=`` of the function's first ``fit`` become its declared
settings, as a ``TRAINING_CONFIG`` entry would (which, when the student wrote one, wins).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from harness.results import DroppedStatement
from harness.util.pysource import call_name, called_names, read_names, stored_names

TRAINING = {"fit", "fit_generator", "train_on_batch"}
# what runs only because the function trains: its evaluation, its files, its data
AFTER_TRAINING = TRAINING | {
    "evaluate",
    "evaluate_generator",
    "predict",
    "predict_classes",
    "predict_generator",
    "save",
    "save_weights",
    "load_weights",
}
DECLARED = ("epochs", "batch_size")


@dataclass
class InnerTraining:
    """What was taken out of one function: its new source, the statements dropped, the settings kept."""

    segment: str
    dropped: list[DroppedStatement] = field(default_factory=list)
    settings: dict[str, int] = field(default_factory=dict)


def _declared(function: ast.FunctionDef) -> dict[str, int]:
    """The literal epochs and batch size of the function's first fit call outside a loop (``epochs=1``
    repeated by a loop is not one epoch)."""
    looped = {
        id(sub) for loop in ast.walk(function) if isinstance(loop, (ast.For, ast.While)) for sub in ast.walk(loop)
    }
    for sub in ast.walk(function):
        if call_name(sub) in TRAINING and id(sub) not in looped:
            return {
                k.arg: k.value.value
                for k in sub.keywords
                if k.arg in DECLARED and isinstance(k.value, ast.Constant) and type(k.value.value) is int
            }
    return {}


def _returns_what_it_built(function: ast.FunctionDef) -> bool:
    """It returns a name it set itself, alone or in a tuple (``return model, history``): a model it
    built, not the dict of results a training helper returns."""
    own = set(stored_names(function))
    for sub in ast.walk(function):
        if isinstance(sub, ast.Return) and sub.value is not None:
            returned = sub.value.elts if isinstance(sub.value, ast.Tuple) else [sub.value]
            if any(isinstance(item, ast.Name) and item.id in own for item in returned):
                return True
    return False


def _alone_on_its_lines(statement: ast.stmt, lines: list[str]) -> bool:
    """No other statement shares its first or last line (``a = 1; model.fit(…)``): those are left as they are."""
    before = lines[statement.lineno - 1][: statement.col_offset]
    after = lines[statement.end_lineno - 1][statement.end_col_offset :].strip()
    return not before.strip() and (not after or after.startswith("#"))


def strip_inner_training(
    function: ast.FunctionDef,
    segment: str,
    first: int,
    cell: int | None,
    data_calls: set[str],
    tainted: set[str],
    may_be_called: bool,
) -> InnerTraining | None:
    """`function`'s source (`segment`, whose first line is line `first` of its cell) without its own
    training, or None when it is not a factory that trains (`may_be_called`: the harness may call it).
    `tainted` are the module's names whose defining statements were dropped (the student's data)."""
    if not (may_be_called and called_names(function) & TRAINING and _returns_what_it_built(function)):
        return None
    lines = segment.splitlines()
    # the module's dropped data the function does not set itself: a plain derivation of it (`x_val =
    # x_train[:1000]`) goes with the run; a model built from it (`input_shape=x_train.shape[1:]`) stays,
    # and the data preparation comes back for it (harness/ingest/data_names.py)
    own = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)} | set(stored_names(function))
    data = set(tainted) - own
    gone: set[str] = set()  # what the statements taken out would have set
    found = InnerTraining(segment, settings=_declared(function))
    run = AFTER_TRAINING | data_calls
    for statement in _statements(function.body, run):
        if isinstance(statement, ast.Return):
            continue
        calls, reads = called_names(statement), read_names(statement)
        derived = isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and not calls and reads & data
        if not (calls & run or reads & gone or derived):
            continue
        shifted = _shift(statement, first)
        if not _alone_on_its_lines(shifted, lines):
            continue
        names = stored_names(statement)
        gone |= set(names)
        indent = lines[shifted.lineno - 1][: shifted.col_offset]
        # what it would have set is None, not undefined: `return model, history` still returns the model
        replacement = f"{indent}{' = '.join(names)} = None" if names else f"{indent}pass"
        code = lines[shifted.lineno - 1].strip()
        lines[shifted.lineno - 1 : shifted.end_lineno] = [replacement + "  # harness: the student's own run"] + [""] * (
            shifted.end_lineno - shifted.lineno
        )
        found.dropped.append(_record(function.name, statement, cell, code, calls & TRAINING, found.settings))
    found.segment = "\n".join(lines)
    return found


def _statements(body: list[ast.stmt], run: set[str]):
    """The function's statements; ``if``, ``with`` and ``try`` blocks are entered (a model may be built
    there) unless their header itself calls one of `run` (``with open(…)``); a loop goes as one
    statement (``for epoch in …: model.fit(…)``)."""
    for statement in body:
        if isinstance(statement, ast.If) and not called_names(statement.test) & run:
            yield from _statements(statement.body, run)
            yield from _statements(statement.orelse, run)
        elif isinstance(statement, (ast.With, ast.AsyncWith)) and not any(
            called_names(item) & run for item in statement.items
        ):
            yield from _statements(statement.body, run)
        elif isinstance(statement, ast.Try):
            yield from _statements(statement.body, run)
            for handler in statement.handlers:
                yield from _statements(handler.body, run)
            yield from _statements(statement.orelse + statement.finalbody, run)
        elif not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield statement


def _shift(statement: ast.stmt, first: int) -> ast.stmt:
    """The statement's line numbers as lines of the segment (1 = the segment's first line)."""
    shifted = ast.Pass()
    shifted.lineno = statement.lineno - first + 1
    shifted.end_lineno = statement.end_lineno - first + 1
    shifted.col_offset, shifted.end_col_offset = statement.col_offset, statement.end_col_offset
    return shifted


def _record(
    name: str, statement: ast.stmt, cell: int | None, code: str, trains: set[str], settings: dict[str, int]
) -> DroppedStatement:
    if trains:
        kept = ", ".join(f"{k}={v}" for k, v in settings.items())
        reason = f"training inside {name}(): the harness trains the model it returns under the protocol" + (
            f" ({kept} kept as its declared settings)" if kept else ""
        )
        kind = "training"
    else:
        reason = f"part of the student's own run inside {name}() (evaluation, files, data): the harness runs its own"
        kind = "evaluation"
    return DroppedStatement(cell=cell, line=statement.lineno, kind=kind, code=code[:120], reason=reason)


def declared_settings_source(settings: dict[str, dict[str, int]]) -> str:
    """Module code adding each function's kept settings to TRAINING_CONFIG unless the student gave that
    function an entry (without assigning the name: the module's own TRAINING_CONFIG, if any, stays its)."""
    if not settings:
        return ""
    return (
        '\nif isinstance(globals().setdefault("TRAINING_CONFIG", {}), dict):  # harness: the epochs and batch '
        "size of the training inside these functions\n"
        f"    for _harness_name, _harness_settings in {settings!r}.items():\n"
        "        TRAINING_CONFIG.setdefault(_harness_name, _harness_settings)\n"
    )

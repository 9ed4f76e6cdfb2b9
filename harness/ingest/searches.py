"""The point a student's own KerasTuner search chose, read from the notebook's saved outputs.

The harness never runs a search (it is the student's own training) and grades a hypermodel ``build(hp)``
at one point of its search space. The fair point is the one the student's search chose and the
student went on with (``tuner.hypermodel.build(best_hps)``): their run shows it, in KerasTuner's own
``results_summary()`` (the best trial first), in ``print(best_hps.values)``, or in prints of
``best_hps.get("units")``. Failing those, the search space's defaults (harness/workers/hyperparameters.py).

These values are a configuration the student declares, as their epochs are, not a result: the harness
trains the model they give itself, so a printed value cannot raise a mark on its own.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from harness.results import CodeCell
from harness.util.pysource import parse as parse_python

# How a hypermodel is built, in KerasTuner's own words (harness/workers/hyperparameters.py stands in where
# KerasTuner is not installed): at the search space's defaults, or at the values the search chose
# (``from_config`` with those values set: a hyper-parameter asked for keeps a value already set).
HYPERMODEL_CLASS = "keras_tuner.HyperParameters"
HYPERMODEL_DEFAULTS = f"{HYPERMODEL_CLASS}()"

_KINDS = {"Int": int, "Float": float, "Choice": None, "Boolean": bool, "Fixed": None}
# KerasTuner's results_summary(): "Trial 3 summary / Hyperparameters: / units: 64 / ... / Score: 0.98"
_SUMMARY = re.compile(r"Hyperparameters:\n((?:[^\n:]+: [^\n]*(?:\n|$))+)")
# a print read as a pattern: at most this many pieces, over lines at most this long (a hostile notebook's
# print of a hundred values must not cost a regular expression that backtracks for minutes)
MAX_PIECES, MAX_LINE = 12, 400
_BEST_CALL = "get_best_hyperparameters"


def hypermodel_call(name: str, point: dict[str, Any] | None) -> str:
    """The call that builds hypermodel `name` at `point` (None: the search space's defaults)."""
    if not point:
        return f"{name}({HYPERMODEL_DEFAULTS})"
    return f"{name}({HYPERMODEL_CLASS}.from_config({{'space': [], 'values': {point!r}}}))"


def asked(node: ast.AST) -> dict[str, type | None]:
    """The hyper-parameters the ``hp.Int("units", …)`` calls inside `node` (a hypermodel, an expression) ask
    for, in order, with the type KerasTuner gives each (None: as written)."""
    names: dict[str, type | None] = {}
    for call in ast.walk(node):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in _KINDS
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "hp"
        ):
            first = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "name"), None)
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.setdefault(first.value, _KINDS[call.func.attr])
    return names


def searched_point(fn: ast.FunctionDef, cells: list[CodeCell]) -> dict[str, Any] | None:
    """The values the student's search chose for `fn`'s hyper-parameters, as their saved outputs show
    them; None where they show none (a script, outputs cleared, a search never run)."""
    names = asked(fn)
    if not names or not any(_BEST_CALL in c.source or "results_summary" in c.source for c in cells):
        return None
    for read in (_printed_values, _printed_gets, _results_summary):
        point = _typed(read(cells, names), names)
        if point:
            return point
    return None


def _typed(found: dict[str, str], names: dict[str, type | None]) -> dict[str, Any] | None:
    """Printed values as the types the hypermodel asked for; None unless every asked name has one."""
    if set(found) != set(names):
        return None
    point = {}
    for name, text in found.items():
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        kind = names[name]
        try:
            point[name] = kind(value) if kind is not None and not isinstance(value, str) else value
        except (TypeError, ValueError):
            return None
        if kind is not None and not isinstance(point[name], kind):
            return None
    return point


def _results_summary(cells: list[CodeCell], names: dict[str, type | None]) -> dict[str, str]:
    """KerasTuner's ``tuner.results_summary()``: the first trial it shows is the best."""
    for cell in cells:
        if "results_summary" not in cell.source:
            continue
        for output in cell.outputs:
            if match := _SUMMARY.search(output):
                pairs = (line.split(": ", 1) for line in match.group(1).splitlines())
                return {name.strip(): value for name, value in pairs if name.strip() in names}
    return {}


def _printed_values(cells: list[CodeCell], names: dict[str, type | None]) -> dict[str, str]:
    """``print(best_hps.values)``: a printed dict whose keys are the hyper-parameters."""
    for cell in cells:
        if _BEST_CALL not in cell.source and ".values" not in cell.source:
            continue
        for line in (line for output in cell.outputs for line in output.splitlines()):
            line = line.strip()
            if not (line.startswith("{") and line.endswith("}")):
                continue
            try:
                printed = ast.literal_eval(line)
            except (ValueError, SyntaxError):
                continue
            if isinstance(printed, dict) and set(printed) == set(names):
                return {name: repr(value) for name, value in printed.items()}
    return {}


def _printed_gets(cells: list[CodeCell], names: dict[str, type | None]) -> dict[str, str]:
    """``print(" - units :", best.get("units"))``, ``print(f"lr={best.get('lr')}")``: each print that shows
    one or more values is matched, as a pattern, against the lines its cell printed."""
    found: dict[str, str] = {}
    for cell in cells:
        if not cell.outputs or "get" not in cell.source and "[" not in cell.source:
            continue
        try:
            tree = parse_python(cell.source)
        except SyntaxError:
            continue
        lines = [line for output in cell.outputs for line in output.splitlines()]
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_print(n)):
            pattern, shown = _print_pattern(call, names)
            if not shown or pattern.count(".*?") + len(shown) > MAX_PIECES:
                continue
            for line in (line for line in lines if len(line) <= MAX_LINE):
                if match := re.fullmatch(rf"\s*{pattern}\s*", line):
                    found.update({name: match.group(i + 1) for i, name in enumerate(shown)})
                    break
    return found


def _is_print(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id == "print"


def _print_pattern(call: ast.Call, names: dict[str, type | None]) -> tuple[str, list[str]]:
    """A print call as a regular expression over the line it prints, one group per hyper-parameter it
    shows (in order); text it cannot know (other values) matches anything."""
    parts: list[str] = []
    shown: list[str] = []
    for arg in call.args:
        pieces = arg.values if isinstance(arg, ast.JoinedStr) else [arg]
        text = ""
        for piece in pieces:
            if isinstance(piece, ast.Constant):
                text += re.escape(str(piece.value))
            elif (name := _hyperparameter(piece, names)) is not None:
                shown.append(name)
                text += r"(\S+?)"
            else:
                text += ".*?"
        parts.append(text)
    return r"\s*".join(parts), shown


def _hyperparameter(node: ast.AST, names: dict[str, type | None]) -> str | None:
    """The hyper-parameter an expression shows: ``best.get("lr")``, ``best["lr"]``, ``round(best.get("lr"), 2)``,
    each also inside an f-string's braces."""
    if isinstance(node, ast.FormattedValue):
        node = node.value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("round", "str", "float"):
        node = node.args[0] if node.args else node
    key = None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
        key = node.args[0]
    elif isinstance(node, ast.Subscript):
        key = node.slice
    if isinstance(key, ast.Constant) and key.value in names:
        return key.value
    return None

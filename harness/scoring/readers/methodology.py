"""Whether the student's code trains with the test set as its validation data.

``model.fit(x_train, y_train, validation_data=(x_test, y_test))`` is one of the most common habits in
the work a class hands in. The test images then stop being held out: they are watched epoch by epoch,
and with ``EarlyStopping(restore_best_weights=True)`` or ``ModelCheckpoint(save_best_only=True)`` they
choose the epoch kept, so the test accuracy the student reports, and the gains between models, are
the best of several looks at the same images. Instructors mark it down in the code (a methodological
bug built in) and, where the test set chose the model and the text says nothing of it, in the analysis.

The opposite habit is rarer but marked as hard: a test split loaded and never looked at, every number the
report gives a validation accuracy (often the best epoch's, chosen on the very images it is read on). The
livrable asks for test accuracies; a comparison of validation maxima is optimistic (:func:`never_tested`).

The harness's own numbers are untouched (it retrains every model on its protocol, its validation split
its own); this reads only what the student did. A name of the test split is one with "test" in it
(``x_test``, ``X_test_norm``, ``test_ds``), as students name them.

>>> use = validation_on_test([CodeCell(cell=3, source="stop = EarlyStopping(restore_best_weights=True)\\n"
...                                               "m.fit(x, y, validation_data=(x_test, y_test), callbacks=[stop])")])
>>> (use.calls, use.selects)
([(3, 2)], True)
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from harness.results import CodeCell
from harness.util.pysource import call_name
from harness.util.pysource import parse as parse_python

TEST_NAME = re.compile(r"(?i)test")
# callbacks that keep the epoch the validation data scores best: with the test set, the test set chooses
SELECTING = {"EarlyStopping": "restore_best_weights", "ModelCheckpoint": "save_best_only"}
# a sentence that says the test set was looked at too much: a bias, a leak, optimistic numbers
ACKNOWLEDGED = re.compile(
    r"test.{0,80}(biais|biaise|optimist|fuite|leak|bias|contamin|surestim|overestim|trich|cheat)"
    r"|(biais|biaise|optimist|fuite|leak|bias|contamin|surestim|overestim|trich|cheat).{0,80}test"
)


@dataclass(frozen=True)
class ValidationOnTest:
    """The training calls that validate on the test set, and whether a callback lets it choose the epoch."""

    calls: list[tuple[int | None, int]] = field(default_factory=list)  # (cell, line in the cell)
    selects: bool = False


def validation_on_test(cells: list[CodeCell]) -> ValidationOnTest:
    """The calls (``fit``, ``fit_generator``…) whose ``validation_data`` names the test split, in cell order;
    `selects` when the code also keeps a best epoch (``restore_best_weights`` / ``save_best_only``)."""
    calls: list[tuple[int | None, int]] = []
    selects = False
    for cell, tree in _trees(cells):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if any(k.arg == "validation_data" and _names_test(k.value) for k in node.keywords):
                calls.append((cell, node.lineno))
            selects = selects or _selects(node)
    return ValidationOnTest(calls, selects and bool(calls))


# what scores a model on data: Keras's methods, scikit-learn's metrics
EVALUATING = {
    "evaluate",
    "predict",
    "predict_classes",
    "predict_on_batch",
    "predict_proba",
    "evaluate_generator",
    "predict_generator",
    "score",
    "accuracy_score",
    "confusion_matrix",
    "classification_report",
}


def never_tested(cells: list[CodeCell]) -> tuple[int | None, int] | None:
    """Where the code names a test split it never scores a model on, (cell, line) of its first assignment;
    None when something scores on it: an evaluating call (:data:`EVALUATING`), ``validation_data=``, or a
    function of the student's that evaluates (``evaluer(m, x_test)``), given the split or a name computed
    from it (``x_bruit = x_test + bruit``); None too where no name says "test" (nothing to tell)."""
    trees = _trees(cells)
    tainted, first = _test_names(trees)
    if not tainted:
        return None
    scoring = _scoring_functions(trees)
    for _, tree in trees:
        for node in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            if any(k.arg == "validation_data" and _mentions(k.value, tainted) for k in node.keywords):
                return None
            given = [*node.args, *(k.value for k in node.keywords)]
            if (call_name(node) or "") in EVALUATING | scoring and any(_mentions(a, tainted) for a in given):
                return None
    return first


def _scoring_functions(trees: list[tuple[int | None, ast.Module]]) -> set[str]:
    """The student's functions that score a model, directly or through another of theirs (to a fixed point)."""
    functions = {n.name: n for _, tree in trees for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    calls = {name: {call_name(c) for c in ast.walk(fn) if isinstance(c, ast.Call)} for name, fn in functions.items()}
    scoring: set[str] = set()
    while new := {name for name, called in calls.items() if name not in scoring and called & (EVALUATING | scoring)}:
        scoring |= new
    return scoring


def _test_names(trees: list[tuple[int | None, ast.Module]]) -> tuple[set[str], tuple[int | None, int] | None]:
    """The names that hold the test split or something computed from it (to a fixed point), and where the
    first of them is assigned (cell, line)."""
    names: set[str] = set()
    first = None
    assigns = [(cell, n) for cell, tree in trees for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))]
    for cell, node in assigns:
        if test := {name for name in _assigned(node) if TEST_NAME.search(name)}:
            names |= test
            first = first or (cell, node.lineno)
    assigns = [node for _, node in assigns]
    changed = bool(names)
    while changed:
        changed = False
        for node in assigns:
            if node.value is not None and _mentions(node.value, names):
                new = _assigned(node) - names
                names |= new
                changed = changed or bool(new)
    return names, first


def _assigned(node: ast.Assign | ast.AnnAssign) -> set[str]:
    """The names an assignment binds (``(x_train, y_train), (x_test, y_test) = …``: all four)."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}


def _mentions(node: ast.AST, names: set[str]) -> bool:
    """Whether `node` reads one of `names`, or an attribute named as a test split (``self.x_test``)."""
    return any(
        (isinstance(n, ast.Name) and n.id in names) or (isinstance(n, ast.Attribute) and TEST_NAME.search(n.attr))
        for n in ast.walk(node)
    )


def _trees(cells: list[CodeCell]) -> list[tuple[int | None, ast.Module]]:
    """(cell, syntax tree) of each code cell that parses, in order (a cell with a magic line is left out)."""
    trees = []
    for cell in cells:
        try:
            trees.append((cell.cell, parse_python(cell.source)))
        except SyntaxError:
            continue
    return trees


def acknowledged(text: str) -> bool:
    """Whether a plain passage says the test set's use biases the numbers."""
    return bool(ACKNOWLEDGED.search(text))


def _names_test(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and TEST_NAME.search(n.id) for n in ast.walk(node))


def _selects(call: ast.Call) -> bool:
    """``EarlyStopping(…, restore_best_weights=True)``, ``ModelCheckpoint(…, save_best_only=True)``."""
    keyword = SELECTING.get(call_name(call) or "")
    return keyword is not None and any(
        k.arg == keyword and isinstance(k.value, ast.Constant) and k.value.value is True for k in call.keywords
    )

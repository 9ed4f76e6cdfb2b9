"""Whether the student's code trains with the test set as its validation data.

``model.fit(x_train, y_train, validation_data=(x_test, y_test))`` is one of the most common habits in
the work a class hands in. The test images then stop being held out: they are watched epoch by epoch,
and with ``EarlyStopping(restore_best_weights=True)`` or ``ModelCheckpoint(save_best_only=True)`` they
choose the epoch kept, so the test accuracy the student reports, and the gains between models, are
the best of several looks at the same images. Instructors mark it down in the code (a methodological
bug built in) and, where the test set chose the model and the text says nothing of it, in the analysis.

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
    for cell in cells:
        try:
            tree = parse_python(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            if any(k.arg == "validation_data" and _names_test(k.value) for k in node.keywords):
                calls.append((cell.cell, node.lineno))
            selects = selects or _selects(node)
    return ValidationOnTest(calls, selects and bool(calls))


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

"""The categories a KerasTuner hypermodel's search explores, read from where each hyper-parameter goes.

A hypermodel ``build(hp)`` is graded at one point (harness/ingest/searches.py), but the student's search
tried several values of each hyper-parameter, each trial measured on a validation split: a search over
the filters, the dropout rate and the learning rate explores architecture, regularisation and
optimisation, even where the point it chose keeps the baseline's learning rate. Each hyper-parameter's
category is that of the call it is passed to (``Conv2D(hp.Int("filters", …))``, ``Dropout(rate)`` with
``rate = hp.Float(…)``, ``Adam(learning_rate=hp.Choice(…))``), or of the layers a branch on it adds
(``if hp.Boolean("bn"): model.add(BatchNormalization())``).

>>> import ast
>>> fn = ast.parse("def build(hp):\\n    f = hp.Int('f', 32, 128)\\n    m = Sequential([Conv2D(f, 3), Dropout(hp.Float('d', 0, .5))])\\n"
...                "    m.compile(optimizer=Adam(hp.Choice('lr', [1e-2, 1e-3])))\\n    return m").body[0]
>>> sorted(searched_categories(fn).items())
[('d', 'regularization'), ('f', 'architecture'), ('lr', 'hyperparameters')]
"""

from __future__ import annotations

import ast

from harness.ingest.searches import asked
from harness.scoring.readers.models import AUGMENTATION_LAYER, CONV_LAYERS, DROPOUT_LAYERS, NORM_LAYERS, POOL_LAYERS
from harness.util.pysource import call_name

_ARCHITECTURE = CONV_LAYERS | POOL_LAYERS | {"Dense", "Activation"}
_REGULARIZATION = DROPOUT_LAYERS | NORM_LAYERS | {"l1", "l2", "l1_l2", "L1", "L2", "L1L2"}
_OPTIMIZERS = {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion"}
_KEYWORDS = {"learning_rate": "hyperparameters", "lr": "hyperparameters", "momentum": "hyperparameters"}


# a hypermodel is a few dozen lines; each call's arguments are walked again, so a hostile one is left unread
MAX_NODES = 5000


def searched_categories(fn: ast.FunctionDef) -> dict[str, str]:
    """{hyper-parameter: category} for those of `fn`'s hyper-parameters whose use says their category."""
    if sum(1 for _ in ast.walk(fn)) > MAX_NODES:
        return {}
    held = _held(fn)
    found: dict[str, str] = {}
    # the innermost call says it (``Conv2D(8, kernel_regularizer=l2(hp.Float("wd", …)))``: a regulariser):
    # the breadth-first walk read backwards
    for node in reversed(list(ast.walk(fn))):
        if isinstance(node, ast.Call):
            category = _category_of_call(node)
            for argument, keyword in _arguments(node):
                if kind := _KEYWORDS.get(keyword or "") or category:
                    for name in _hyperparameters(argument, held):
                        found.setdefault(name, kind)
        elif isinstance(node, (ast.If, ast.IfExp)):
            added = {_category_of_call(c) for c in ast.walk(node) if isinstance(c, ast.Call)} - {None}
            if len(added) == 1:  # ``if hp.Boolean("bn"): model.add(BatchNormalization())``
                kind = added.pop()
                for name in _hyperparameters(node.test, held):
                    found.setdefault(name, kind)
    return {name: found[name] for name in asked(fn) if name in found}  # in the order asked


def _held(fn: ast.FunctionDef) -> dict[str, str]:
    """Variables that hold a hyper-parameter (``rate = hp.Float("dropout", …)``): {variable: its name}."""
    held = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            names = list(asked(node.value))
            if len(names) == 1:
                held[node.targets[0].id] = names[0]
    return held


def _hyperparameters(node: ast.AST, held: dict[str, str]) -> list[str]:
    """The hyper-parameters an expression uses, asked there or through a variable that holds one."""
    return [*asked(node), *(held[n.id] for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in held)]


def _arguments(call: ast.Call) -> list[tuple[ast.AST, str | None]]:
    return [(a, None) for a in call.args] + [(k.value, k.arg) for k in call.keywords]


def _category_of_call(call: ast.Call) -> str | None:
    name = call_name(call) or ""
    if name in _ARCHITECTURE:
        return "architecture"
    if name in _REGULARIZATION:
        return "regularization"
    if name in _OPTIMIZERS:
        return "hyperparameters"
    if AUGMENTATION_LAYER.match(name):
        return "augmentation"
    return None

"""Keras 2 (and Keras 1) idioms rewritten for the Keras 3 the harness trains with.

Course material and answers found online are often older than Keras 3: ``keras.layers.convolutional``,
``keras.utils.np_utils``, ``layers.experimental.preprocessing``, ``Adam(lr=…)``,
``Convolution2D(32, 3, 3)``, ``border_mode=``. Keras 3 refuses most of them, and one (three
positional integers to ``Conv2D``) it accepts with another meaning (the third becomes the stride).
The code the worker runs is rewritten, edit by edit, on the same lines (cells and line numbers
stay those of the student's notebook); each edit is recorded with its reason, as a message (a ``rewrite_*``
translation key and its values, said in the report's language) and in English. The student's own
code, as shown in the report and linted by the rubric, is not changed.

Three families beyond renames. ``ImageDataGenerator`` left ``keras.preprocessing.image`` in Keras 3
but is still served, unchanged, by the ``tf.keras`` namespace Keras 3 provides for TensorFlow
(``tensorflow.keras.preprocessing.image``): its imports are pointed there. ``tf.compat.v1`` code in
a Keras submission sets up TensorFlow 1's runtime (``disable_eager_execution()``, a session given to
Keras) or names TensorFlow 1's optimizers (``tf.compat.v1.train.AdamOptimizer``): the set-up calls
become ``None`` (the harness owns the runtime: eager, its seed, its threads) and the optimizers
become Keras's own. Rewrites keep one runtime (Keras 3) for every model, so that one trainer, one
saved format and one evaluator apply the same protocol to all; the record says so per model.

TensorFlow Addons (``tensorflow_addons``) has no release for Keras 3: its imports name
``tensorflow_addons_keras3``, which the workers serve with Keras 3's equivalents of its most used
names (harness/workers/addons_keras3.py); any other name fails with a reason saying so.

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
from dataclasses import dataclass, field

from harness.results import Message, Rewrite
from harness.util.i18n import Translator
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
# Keras 2's image preprocessing (ImageDataGenerator and its iterators), kept in Keras 3 only under tf.keras.
# Not after a dot: ``tf.keras.preprocessing.image`` already is the right one.
IMAGE_MODULE = re.compile(
    r"(?<![\w.])(?:keras\.preprocessing|tf_keras\.preprocessing|keras_preprocessing)(?=\.image\b)"
)
IMAGE_PACKAGE = re.compile(r"^(\s*from\s+)(?:keras|tf_keras)\.preprocessing(\s+import\s+.*\bimage\b)")
# TensorFlow 1 set-up calls that Keras 3 refuses or that would change the harness's runtime.
RUNTIME_SETUP = re.compile(
    r"(?<![\w.])(?:\w+\.compat\.v1\.(?:disable_eager_execution|disable_v2_behavior|keras\.backend\.set_session)"
    r"|(?:\w+\.)*(?:K|backend)\.(?:set_session|set_image_dim_ordering))$"
)
# TensorFlow 1's optimizers and the Keras optimizer that trains the same way.
V1_OPTIMIZERS = {
    "AdamOptimizer": "Adam",
    "GradientDescentOptimizer": "SGD",
    "MomentumOptimizer": "SGD",
    "RMSPropOptimizer": "RMSprop",
    "AdagradOptimizer": "Adagrad",
    "AdadeltaOptimizer": "Adadelta",
}
V1_OPTIMIZER = re.compile(r"(?<![\w.])(\w+)\.(?:compat\.v1\.)?train\.(" + "|".join(V1_OPTIMIZERS) + r")\b")
V1_OPTIMIZER_KEYWORDS = {"beta1": "beta_1", "beta2": "beta_2", "decay": "rho", "use_nesterov": "nesterov"}
# TensorFlow 1 names TensorFlow 2 keeps under tf.compat.v1 (or tf.random): ``tf.set_random_seed(42)``.
TF1_NAMES = re.compile(
    r"(?<![\w.])(tf|tensorflow)\.(set_random_seed|logging|Session|InteractiveSession|ConfigProto|GPUOptions"
    r"|reset_default_graph)\b"
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
    key: str  # the reason's translation key (templates/i18n/, ``rewrite_*``)
    values: dict[str, str] = field(default_factory=dict)


def modernise(source: str, cell: int | None) -> tuple[str, list[Rewrite]]:
    """`source` with the Keras 2 idioms the harness knows rewritten, and what was changed where."""
    edits = (
        _module_edits(source)
        + _np_utils_edits(source)
        + _keyword_edits(source)
        + _monitor_edits(source)
        + _decay_edits(source)
        + _convolution_edits(source)
        + _image_edits(source)
        + _compat_v1_edits(source)
        + _addons_edits(source)
    )
    edits = _without_overlaps(edits)
    if not edits:
        return source, []
    lines = source.splitlines(keepends=True)
    for edit in sorted(edits, key=lambda e: (e.line, e.start), reverse=True):
        text = lines[edit.line - 1]
        lines[edit.line - 1] = text[: edit.start] + edit.after + text[edit.end :]
    english = Translator("en")
    return "".join(lines), [_rewrite(e, cell, english) for e in sorted(edits, key=lambda e: (e.line, e.start))]


# Keras 2 model methods Keras 3 removed. The harness reads the training settings from them all the same
# (its factories train under its own protocol), but code that calls them does not run as written on Keras 3.
REMOVED_METHODS = {
    "fit_generator": "fit",
    "evaluate_generator": "evaluate",
    "predict_generator": "predict",
    "predict_classes": "predict",
}


def legacy_idioms(source: str) -> list[Rewrite]:
    """What in `source` does not run as written on Keras 3: the idioms :func:`modernise` rewrites and
    the calls of the model methods Keras 3 removed (``fit_generator``…), in line order."""
    found = modernise(source, None)[1]
    try:
        calls = [n for n in ast.walk(parse_python(source)) if isinstance(n, ast.Call)]
    except SyntaxError:
        calls = []
    english = Translator("en")
    for call in calls:
        method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        if method in REMOVED_METHODS:
            values = {"name": method, "new": REMOVED_METHODS[method]}
            edit = _Edit(call.lineno, 0, 0, REMOVED_METHODS[method], method, "rewrite_removed_method", values)
            found.append(_rewrite(edit, None, english))
    return sorted(found, key=lambda r: r.line)


def _rewrite(edit: _Edit, cell: int | None, english: Translator) -> Rewrite:
    """`edit` as recorded: its reason as a message, said in the report's language, and in English, for the
    readers of result.json and for the reports of results written before the message existed."""
    message = Message(key=edit.key, values=edit.values)
    reason = str(english.render(message))
    return Rewrite(cell=cell, line=edit.line, before=edit.before, after=edit.after, reason=reason, message=message)


def _without_overlaps(edits: list[_Edit]) -> list[_Edit]:
    """The edits, minus any inside a wider one (``K.set_session(tf.Session())`` is replaced whole): applied
    from the end of a line, overlapping spans would cut each other."""
    kept: list[_Edit] = []
    for edit in sorted(edits, key=lambda e: (e.line, e.start, -e.end)):
        if kept and kept[-1].line == edit.line and edit.start < kept[-1].end:
            continue
        kept.append(edit)
    return kept


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
                    "rewrite_module",
                    {"parent": parent},
                )
            )
    return edits


# ``from keras.utils import np_utils`` (then ``np_utils.to_categorical``): Keras 3 has no such module, its
# functions are ``keras.utils``' own, so the name is bound to that package.
NP_UTILS_IMPORT = re.compile(
    r"^(\s*)from\s+((?:tensorflow\.)?keras)\.utils\s+import\s+([\w\s,]*\bnp_utils\b[\w\s,]*?)\s*$"
)


def _np_utils_edits(source: str) -> list[_Edit]:
    """``from keras.utils import np_utils[ as u][, other]`` → ``[from keras.utils import other; ]from keras
    import utils as np_utils``, on the same line."""
    edits = []
    for number, text in enumerate(source.splitlines(), start=1):
        match = NP_UTILS_IMPORT.match(text)
        if not match:
            continue
        indent, package, names = match.groups()
        parts = [" ".join(name.split()) for name in names.split(",") if name.strip()]
        module = [name for name in parts if name.split()[0] == "np_utils"]
        others = [name for name in parts if name.split()[0] != "np_utils"]
        alias = module[0].split()[-1]  # "np_utils" or its "as" name
        after = (f"from {package}.utils import {', '.join(others)}; " if others else "") + (
            f"from {package} import utils as {alias}"
        )
        start = len(indent)
        edits.append(
            _Edit(
                number,
                start,
                len(text.rstrip()),
                after,
                text[start:].rstrip(),
                "rewrite_np_utils",
            )
        )
    return edits


def _image_edits(source: str) -> list[_Edit]:
    """``keras.preprocessing.image`` (Keras 2, or the old ``keras_preprocessing`` package) →
    ``tensorflow.keras.preprocessing.image``, where Keras 3 still has ``ImageDataGenerator``. An
    attribute use (``keras.preprocessing.image.ImageDataGenerator(…)`` after ``import keras``) reaches
    it through ``__import__("tensorflow")``, which needs no import of the student's to be there."""
    edits = []
    for number, text in enumerate(source.splitlines(), start=1):
        package = IMAGE_PACKAGE.match(text)
        if package:  # from keras.preprocessing import image
            start, end = package.end(1), package.start(2)
            edits.append(_Edit(number, start, end, "tensorflow.keras.preprocessing", text[start:end], IMAGE_KEY))
            continue
        statement = text.lstrip().startswith(("from ", "import "))
        for match in IMAGE_MODULE.finditer(text):
            prefix = "tensorflow.keras.preprocessing" if statement else '__import__("tensorflow").keras.preprocessing'
            edits.append(_Edit(number, match.start(), match.end(), prefix, match.group(0), IMAGE_KEY))
    return edits


IMAGE_KEY = "rewrite_image_generator"  # the reason's translation key (templates/i18n/)


# TensorFlow Addons (``import tensorflow_addons as tfa``): no release for Keras 3; the worker serves its most
# used names with Keras 3's own under this name (harness/workers/addons_keras3.py).
ADDONS = re.compile(r"(?<![\w.])tensorflow_addons\b")
ADDONS_SERVED = "tensorflow_addons_keras3"


def _addons_edits(source: str) -> list[_Edit]:
    """``tensorflow_addons`` → ``tensorflow_addons_keras3``, in imports and attribute uses alike."""
    return [
        _Edit(number, match.start(), match.end(), ADDONS_SERVED, match.group(0), "rewrite_addons")
        for number, text in enumerate(source.splitlines(), start=1)
        for match in ADDONS.finditer(text)
    ]


def _compat_v1_edits(source: str) -> list[_Edit]:
    """TensorFlow 1's runtime set-up calls → ``None``; its optimizers → Keras's (``tf.compat.v1.train.
    AdamOptimizer(1e-3, beta1=0.9)`` → ``tf.keras.optimizers.Adam(1e-3, beta_1=0.9)``); its names that
    TensorFlow 2 moved (``tf.set_random_seed`` → ``tf.random.set_seed``, ``tf.Session`` → ``tf.compat.v1.Session``)."""
    calls = _calls(source)
    if calls is None:
        return []
    edits = _tf1_name_edits(source)
    lines = source.splitlines()
    for node in calls:
        if node.lineno != node.end_lineno:
            continue
        line = lines[node.lineno - 1]
        start, end, text = _span(lines, node)
        called = ast.unparse(node.func)
        if RUNTIME_SETUP.search(called):
            edits.append(
                _Edit(
                    node.lineno,
                    start,
                    end,
                    "None",
                    text,
                    "rewrite_runtime_setup",
                )
            )
            continue
        optimizer = V1_OPTIMIZER.fullmatch(called)
        if optimizer:
            edits += _v1_optimizer_edits(node, line, optimizer)
    return edits


def _tf1_name_edits(source: str) -> list[_Edit]:
    """``tf.set_random_seed`` → ``tf.random.set_seed``; ``tf.Session``, ``tf.logging``… → under ``tf.compat.v1``."""
    edits = []
    for number, text in enumerate(source.splitlines(), start=1):
        for match in TF1_NAMES.finditer(text):
            alias, name = match.groups()
            after = f"{alias}.random.set_seed" if name == "set_random_seed" else f"{alias}.compat.v1.{name}"
            edits.append(_Edit(number, match.start(), match.end(), after, match.group(0), "rewrite_tensorflow_2_name"))
    return edits


def _v1_optimizer_edits(node: ast.Call, line: str, optimizer: re.Match) -> list[_Edit]:
    """The optimizer's name and its TensorFlow 1 keyword names, on the call's one line."""
    alias, name = optimizer.group(1), optimizer.group(2)
    start, end = _column(line, node.func.col_offset), _column(line, node.func.end_col_offset)
    keras_name = f"{alias}.keras.optimizers.{V1_OPTIMIZERS[name]}"
    values = {"name": name, "keras": V1_OPTIMIZERS[name]}
    edits = [_Edit(node.lineno, start, end, keras_name, line[start:end], "rewrite_v1_optimizer", values)]
    for keyword in node.keywords:
        if keyword.arg in V1_OPTIMIZER_KEYWORDS and keyword.lineno == node.lineno:
            at = _column(line, keyword.col_offset)
            new = V1_OPTIMIZER_KEYWORDS[keyword.arg]
            edits.append(
                _Edit(node.lineno, at, at + len(keyword.arg), new, keyword.arg, "rewrite_v1_keyword", {"new": new})
            )
    return edits


def _keyword_edits(source: str) -> list[_Edit]:
    """Renamed keyword arguments of Keras's own classes (``Adam(lr=…)``, ``Conv2D(border_mode=…)``) and of
    ``fit`` (``nb_epoch=``); never a parameter or a call of the student's own functions and classes, whose
    names are theirs to choose (``def build_model(lr=1e-3)``, a ``@dataclass class Config: lr: float``)."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        return []  # reported elsewhere; nothing in it is rewritten
    lines = source.splitlines()
    edits = []
    own = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for node in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = call_name(node) or ""
        keras_class = name[:1].isupper() and name not in own  # ``Config(lr=…)``: the student's own class
        for keyword in node.keywords:
            old = keyword.arg
            if old not in KEYWORDS or not (keras_class or (old == "nb_epoch" and name in ("fit", "fit_generator"))):
                continue
            line = lines[keyword.lineno - 1]
            start = _column(line, keyword.col_offset)
            if line[start : start + len(old)] != old:
                continue
            new = KEYWORDS[old]
            edits.append(_Edit(keyword.lineno, start, start + len(old), new, old, "rewrite_keyword", {"new": new}))
    return edits


# Keras 2 named the accuracy metric "acc" (``metrics=["acc"]``); Keras 3, and the harness's compile, name it
# "accuracy": a callback monitoring "val_acc" would raise (EarlyStopping) or never act (ReduceLROnPlateau).
MONITORED = {"acc": "accuracy", "val_acc": "val_accuracy"}


def _monitor_edits(source: str) -> list[_Edit]:
    """``EarlyStopping(monitor="val_acc")`` → ``monitor="val_accuracy"`` (any call's ``monitor=`` keyword)."""
    lines = source.splitlines()
    edits = []
    for node in _calls(source) or []:
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg != "monitor" or not (isinstance(value, ast.Constant) and value.value in MONITORED):
                continue
            if value.lineno != value.end_lineno:
                continue
            start, end, text = _span(lines, value)
            after = f"{text[0]}{MONITORED[value.value]}{text[0]}"  # in the student's own quotes
            values = {"metric": MONITORED[value.value]}
            edits.append(_Edit(value.lineno, start, end, after, text, "rewrite_monitor", values))
    return edits


# Keras 2's optimizers took ``decay=``: the learning rate divided by (1 + decay × iterations). Keras 3 ignores
# the argument (with a warning), so the rate would stay constant; InverseTimeDecay(lr, 1, decay) is the same
# rate at every step. Learning rates when none is given: Keras 3's defaults.
OPTIMIZER_DEFAULT_RATES = {
    "SGD": "0.01",
    "Adam": "0.001",
    "RMSprop": "0.001",
    "Adagrad": "0.001",
    "Adadelta": "0.001",
    "Adamax": "0.001",
    "Nadam": "0.001",
}
DECAY_SCHEDULE = '__import__("keras").optimizers.schedules.InverseTimeDecay({rate}, 1, {decay})'


def _decay_edits(source: str) -> list[_Edit]:
    """``SGD(lr=0.01, decay=1e-6)`` → ``SGD(lr=InverseTimeDecay(0.01, 1, 1e-6), decay=None)``: the schedule
    Keras 2 applied, which Keras 3 no longer does (a literal zero decay is left alone)."""
    lines = source.splitlines()
    edits = []
    for node in _calls(source) or []:
        name = call_name(node)
        if name not in OPTIMIZER_DEFAULT_RATES:
            continue
        keywords = {k.arg: k for k in node.keywords if k.arg}
        decay = keywords.get("decay")
        rate = keywords.get("learning_rate") or keywords.get("lr")
        if decay is None or (isinstance(decay.value, ast.Constant) and not decay.value.value):
            continue
        if any(k.value.lineno != k.value.end_lineno for k in (decay, rate) if k is not None):
            continue
        start, end, decay_text = _span(lines, decay.value)
        if rate is not None:
            edits.append(_Edit(decay.value.lineno, start, end, "None", decay_text, "rewrite_decay_applied"))
            start, end, rate_text = _span(lines, rate.value)
            after = DECAY_SCHEDULE.format(rate=rate_text, decay=decay_text)
            edits.append(_Edit(rate.value.lineno, start, end, after, rate_text, "rewrite_decay"))
        else:  # no rate given: the whole decay= keyword becomes the rate with its schedule
            line = lines[decay.value.lineno - 1]
            start = _column(line, decay.col_offset)
            after = "learning_rate=" + DECAY_SCHEDULE.format(rate=OPTIMIZER_DEFAULT_RATES[name], decay=decay_text)
            edits.append(_Edit(decay.value.lineno, start, end, after, line[start:end], "rewrite_decay"))
    return edits


def _convolution_edits(source: str) -> list[_Edit]:
    """``Conv2D(32, 3, 3)`` (Keras 1: filters, rows, columns) → ``Conv2D(32, (3, 3))``: Keras 3 would take
    the third number for the stride."""
    lines = source.splitlines()
    edits = []
    for node in _calls(source) or []:
        name = (
            node.func.attr
            if isinstance(node.func, ast.Attribute)
            else (node.func.id if isinstance(node.func, ast.Name) else None)
        )
        if name not in CONVOLUTIONS or len(node.args) != 3:
            continue
        rows, columns = node.args[1], node.args[2]
        if not all(isinstance(a, ast.Constant) and isinstance(a.value, int) for a in (rows, columns)):
            continue
        if rows.lineno != columns.end_lineno:
            continue
        line = lines[rows.lineno - 1]
        start, end = _column(line, rows.col_offset), _column(line, columns.end_col_offset)
        after = f"({rows.value}, {columns.value})"
        edits.append(
            _Edit(
                rows.lineno,
                start,
                end,
                after,
                line[start:end],
                "rewrite_kernel_size",
                {"name": name},
            )
        )
    return edits


def _calls(source: str) -> list[ast.Call] | None:
    """Every call in `source`, in ``ast.walk``'s order; None when it does not parse (the cell is reported as
    such elsewhere, and nothing in it is rewritten)."""
    try:
        tree = parse_python(source)
    except SyntaxError:
        return None
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _span(lines: list[str], node: ast.AST) -> tuple[int, int, str]:
    """A one-line node's (start, end) columns on its line, as characters, and its text."""
    line = lines[node.lineno - 1]
    start, end = _column(line, node.col_offset), _column(line, node.end_col_offset)
    return start, end, line[start:end]


def _column(line: str, byte_offset: int) -> int:
    """ast's column (UTF-8 bytes) as a character index into `line`."""
    return len(line.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))

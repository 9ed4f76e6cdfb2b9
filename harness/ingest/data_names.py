"""The student's top-level data preparation, kept when a factory reads what it defines.

The extractor drops every top-level statement that loads or prepares data: the harness supplies the
data. But a factory may read a name only that preparation defines — the Keras MNIST example's
``input_shape`` (set in an ``if K.image_data_format() == …`` block after reshaping ``x_train``),
``x_train.shape[1:]``, ``y_train.shape[1]`` — and without it every model fails with a
``NameError``. :func:`needed_data` picks, among the dropped statements that neither train, evaluate,
plot, print nor call the student's functions, those that define a name the kept code reads, and
those they need in turn. The extractor puts them back in their place, each in its own
``try``/``except`` (a loader the harness cannot serve leaves the name undefined, as before, instead of
failing the whole import); the training worker serves every MNIST loader from its training split,
the stand-in "test set" being its validation images (harness/workers/train.py), so student code still
never sees a test image.
"""

from __future__ import annotations

import ast
import builtins
import textwrap

from harness.util.pysource import called_names, read_names, stored_names
from harness.workers.notebook import KEPT_PREPARATION

# calls that make a statement the student's own run rather than data preparation
RUN = {
    "fit",
    "fit_generator",
    "train_on_batch",
    "evaluate",
    "evaluate_generator",
    "predict",
    "predict_classes",
    "predict_generator",
    "show",
    "plot",
    "imshow",
    "figure",
    "subplot",
    "subplots",
    "savefig",
    "print",
    "display",
    "summary",
    "save",
    "save_weights",
    "load_model",
    "load_weights",
    "mount",
    "flow",
    "flow_from_directory",
    "compile",
}
BUILTINS = set(dir(builtins))


def preparation(node: ast.stmt, student_functions: set[str]) -> bool:
    """Whether a dropped top-level statement only prepares data (loads, reshapes, scales, encodes)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
        return False
    if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.If)):
        return False  # loops, with blocks, bare calls: the student's run
    calls = called_names(node)
    return not calls & (RUN | student_functions) and bool(stores(node))


def stores(node: ast.AST) -> set[str]:
    """Top-level names a statement sets."""
    return set(stored_names(node))


def global_reads(node: ast.stmt) -> set[str]:
    """Names a kept statement reads from the module: for a function, those it does not set itself."""
    reads = read_names(node)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        local = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)} | stores(node)
        reads -= local
    return reads - BUILTINS


def defines(node: ast.stmt) -> set[str]:
    """Names a kept statement binds at the top level."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return stores(node)


def reached(kept: list[ast.stmt], roots: set[str]) -> list[ast.stmt]:
    """The kept statements whose reads matter: every one but the functions, and the functions named in
    `roots` (those the harness may call) and the ones they call, in turn. A helper the harness never
    calls (the handout's ``evaluate_model(model_creator, …)``, which reads ``X_train``) brings back no data."""
    functions = {n.name: n for n in kept if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    wanted, queue = set(), [name for name in roots if name in functions]
    while queue:
        name = queue.pop()
        if name not in wanted:
            wanted.add(name)
            queue += [c for c in called_names(functions[name]) if c in functions and c not in wanted]
    return [n for n in kept if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) or n.name in wanted]


def needed_data(kept: list[ast.stmt], roots: set[str], candidates: list[ast.stmt]) -> list[int]:
    """Indexes of the `candidates` (dropped data preparation, in order) to put back: those that define a
    name the code the harness runs reads (:func:`reached`) and nothing kept defines, and, in turn,
    those their own reads need."""
    bound = set().union(*(defines(node) for node in kept))
    needed = set().union(*(global_reads(node) for node in reached(kept, roots))) - bound
    chosen: set[int] = set()
    changed = True
    while changed:
        changed = False
        for index in reversed(range(len(candidates))):
            node = candidates[index]
            if index not in chosen and stores(node) & needed:
                chosen.add(index)
                needed |= global_reads(node) - bound
                changed = True
    return sorted(chosen)


def guarded(segment: str) -> str:
    """A restored statement in its own try/except: two lines more (the ``try:`` before, the ``except`` after)."""
    return (
        KEPT_PREPARATION
        + "\n"
        + textwrap.indent(segment, "    ")
        + "\nexcept Exception:  # harness: a loader it cannot serve leaves the names undefined\n    pass"
    )

"""Roles of models under other names, read from the submission's own text and calls.

When a submission's model functions are not named by the convention, a fair grader reads what the
student wrote about them: the heading above a function ("## Modèle de base", "### Amélioration 2 :
dropout"), its docstring and the comments just above its ``def``, the labels the notebook gives it
(``evaluate_model(reseau_b, "Baseline")``, ``{"Référence": m0, …}``) and the order of a comparison
(``compare_models(baseline, m2)``: the first is what the others are compared with). Names come first
(harness/ingest/read.py, ``BASELINE_NAME``), then these; the result is still marked "names inferred
— check".

>>> texts = {"net_a": "Amélioration 1 : dropout", "net_b": "Modèle de base"}
>>> baseline_by_text(["net_a", "net_b"], texts)
'net_b'
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from harness.results import MarkdownCell

# What a student calls the starting point, in French and English.
BASELINE_TEXT = re.compile(
    r"(?i)\b(?:base[\s-]?line|base model|reference (?:model|network|cnn)|starting point|provided (?:model|network|cnn)"
    r"|original (?:model|network|cnn)|given (?:model|network|cnn)"
    r"|(?:mod[eè]le|r[ée]seau|cnn)\s+(?:de\s+)?(?:base|r[ée]f[ée]rence|d[ée]part|initial|fourni|original)"
    r"|point de d[ée]part)\b"
)
# What marks an improvement; a number after it orders the improved models ("Amélioration 2").
IMPROVED_TEXT = re.compile(
    r"(?i)\b(?:am[ée]lioration|am[ée]lior[ée]e?|improvement|improved|variante|variant|piste|experiment"
    r"|exp[ée]rience|modification|tentative|attempt)s?\b(?:\s*(?:n[°o]\.?|#)?\s*(\d+))?"
)
HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(.+)$", re.M)
FIRST_SENTENCE = 200


@dataclass
class Texts:
    """What the submission says about each of its functions: {function: text}, and the functions each
    comparison call names first."""

    about: dict[str, str] = field(default_factory=dict)
    compared_first: list[str] = field(default_factory=list)


def read_texts(parsed: list[tuple[int | None, str, ast.Module]], markdown: list[MarkdownCell]) -> Texts:
    """The text around each top-level function of the parsed code cells ([(cell, source, tree)]) and the
    labels and comparisons of the top-level calls."""
    texts = Texts()
    functions = {n.name for _, _, tree in parsed for n in tree.body if isinstance(n, ast.FunctionDef)}
    for cell, source, tree in parsed:
        heading = markdown_above(cell, markdown)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                own = " ".join(
                    part for part in (heading, _comments_above(source, node), ast.get_docstring(node)) if part
                )
                texts.about[node.name] = own
                heading = ""  # the heading introduces the cell's first function
    for name, clause in _docstring_clauses(parsed, functions):
        texts.about[name] = " ".join(part for part in (texts.about.get(name), clause) if part)
    bound = _bound_variables(parsed, functions)
    for _, _, tree in parsed:
        for node in _top_level_calls(tree):
            _read_call(node, functions, bound, texts)
    return texts


def baseline_by_text(functions: list[str], texts: dict[str, str]) -> str | None:
    """The first function the text calls the starting point, and not an improvement."""
    for name in functions:
        text = texts.get(name, "")
        if BASELINE_TEXT.search(text) and not IMPROVED_TEXT.search(text):
            return name
    return None


def text_number(text: str) -> int | None:
    """The improvement's number the text gives ("Amélioration 2" → 2), if any."""
    for match in IMPROVED_TEXT.finditer(text):
        if match.group(1):
            return int(match.group(1))
    return None


def markdown_above(cell: int | None, markdown: list[MarkdownCell]) -> str:
    """The markdown cells right above a code cell (none between), their headings or else their first sentence."""
    if cell is None:
        return ""
    block, number = [], cell - 1
    by_number = {m.cell: m.text for m in markdown}
    while number in by_number:
        block.insert(0, by_number[number])
        number -= 1
    text = "\n".join(block)
    headings = HEADING.findall(text)
    return " ".join(headings) if headings else text.strip()[:FIRST_SENTENCE]


def _docstring_clauses(parsed, functions: set[str]) -> list[tuple[str, str]]:
    """The clauses of a module's docstring that name one function (a script's report: "The baseline is
    small_net(), the improvements wide_net() and …", "modele_simple = le modèle de base ; …"), each with it."""
    found = []
    for _, _, tree in parsed:
        docstring = ast.get_docstring(tree) or ""
        for clause in re.split(r"[.;,:\n]\s", docstring + "\n"):
            named = [name for name in functions if re.search(rf"\b{re.escape(name)}\b", clause)]
            if len(named) == 1:
                found.append((named[0], clause.strip()))
    return found


def _comments_above(source: str, node: ast.FunctionDef) -> str:
    """The comment lines just above a ``def`` (its decorators skipped): ``# --- Modèle de base ---``."""
    lines = source.splitlines()
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    comments = []
    for line in reversed(lines[:first]):
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        comments.insert(0, stripped.strip("#-=* "))
    return " ".join(c for c in comments if c)


def _bound_variables(parsed, functions: set[str]) -> dict[str, str]:
    """Top-level variables holding a function's model or result: ``m0 = reseau_b()`` → {m0: reseau_b}."""
    bound = {}
    for _, _, tree in parsed:
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                made = _model_ref(node.value, functions, bound)
                if made:
                    bound[node.targets[0].id] = made
    return bound


def _model_ref(node: ast.AST, functions: set[str], bound: dict[str, str]) -> str | None:
    """The function a value stands for: its name, a call of it, a variable bound to one, a call taking one."""
    if isinstance(node, ast.Name):
        return node.id if node.id in functions else bound.get(node.id)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in functions:
            return node.func.id
        refs = [r for r in (_model_ref(a, functions, bound) for a in node.args) if r]
        return refs[0] if len(refs) == 1 else None  # evaluate_model(reseau_b, "…") stands for reseau_b
    return None


def _top_level_calls(tree: ast.Module):
    """Calls and dict literals outside function and class bodies."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Call, ast.Dict)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _read_call(node: ast.Call | ast.Dict, functions: set[str], bound: dict[str, str], texts: Texts) -> None:
    """A label given to a model (a string beside it in a call, a dict key) joins its text; a comparison's
    first model is noted."""
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            made = _model_ref(value, functions, bound) if value is not None else None
            if made and isinstance(key, ast.Constant) and isinstance(key.value, str):
                texts.about[made] = f"{texts.about.get(made, '')} {key.value}".strip()
        return
    arguments = [*node.args, *(k.value for k in node.keywords)]
    refs = [r for r in (_model_ref(a, functions, bound) for a in arguments) if r]
    labels = [a.value for a in arguments if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if len(refs) == 1 and labels:
        texts.about[refs[0]] = f"{texts.about.get(refs[0], '')} {' '.join(labels)}".strip()
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if len(refs) >= 2 and "compar" in name.lower():
        texts.compared_first.append(refs[0])

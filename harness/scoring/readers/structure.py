"""Reading how the student's code is organised ("bien structuré"), over all of it, not only the factories.

Four things an instructor marks down, each found by a small walk of the code cells' syntax trees:

- **near-copied blocks**: a function body or a run of top-level statements that repeats an
  earlier one (the layer list pasted into every factory, the build-fit-evaluate lines written
  once per model, a loop body written three times). Blocks are compared as token streams in which
  the student's own variable and function names are one symbol and literals another, so
  ``model2.fit(x, y, batch_size=64)`` is a copy of ``model.fit(x, y, batch_size=128)``;
- **code outside functions**: the share of the code's lines inside a function or class;
- **training on import**: a module (``.py``) that trains at its top level, outside functions and
  the ``if __name__ == "__main__":`` guard, so importing it runs the whole project;
- **over-long functions** and **cryptic names** (``m2``, ``hh``, ``tmp``…; the usual ``x``,
  ``i``, ``ax``, ``df`` are not cryptic);
- **hidden state**: values a rerun does not reproduce (a ``global`` set by a function, ``input()``,
  an ipywidgets slider).

Each cell is parsed on its own (a notebook is many small programs); a cell that does not parse is
left out here (dead code counts it).

>>> cells = [CodeCell(cell=n, source=f"m{n} = build()\\nm{n}.fit(x, y, epochs={n})\\ns{n} = m{n}.evaluate(x, y)\\nprint(s{n})")
...          for n in (1, 2)]
>>> [(c.first.start, c.second.start) for c in read_structure(cells, set()).copies]
[(1, 6)]
"""

from __future__ import annotations

import ast
import bisect
import difflib
import re
from dataclasses import dataclass, field

from harness.ingest.inner_training import TRAINING
from harness.ingest.read import MODEL_CONSTRUCTORS
from harness.ingest.tokens import canonical_tokens
from harness.results import CodeCell
from harness.scoring.readers.code import StudentCode, code_line_numbers, student_code
from harness.util.pysource import call_name, called_names
from harness.util.pysource import parse as parse_python

# Loop counters, axes, data frames, the data set's x/y: short by convention, not cryptic.
CONVENTIONAL = {"x", "y", "X", "Y", "i", "j", "k", "n", "e", "f", "_", "df", "lr", "cm", "fig", "id", "ok", "im", "nb"}
CRYPTIC = re.compile(r"[a-zA-Z]{1,2}\d*|([a-zA-Z])\1+\d*|(tmp|temp|toto|truc|foo|bar|bidule|machin|test|aaa)\d*")
AXES = re.compile(r"axe?s?\d*")


MAX_COPIES = 40  # copies looked for; a part that costs a quarter per finding is spent after four


@dataclass(frozen=True)
class Block:
    """A unit of code compared with the others: a function body or a run of top-level statements."""

    start: int  # first line in the flattened code
    end: int
    name: str  # the function's name for its whole body, or "" for a run of statements
    tokens: tuple[str, ...] = field(repr=False)
    lines: int  # lines holding code
    builder: bool = False  # inside a function that builds a Keras model


@dataclass(frozen=True)
class Copy:
    """A block that repeats an earlier one: both blocks and how alike their token streams are."""

    first: Block
    second: Block
    similarity: float

    @property
    def builders(self) -> bool:
        """Both blocks belong to functions that build a model (one builder per modification, each restating
        the layers)."""
        return self.first.builder and self.second.builder


@dataclass(frozen=True)
class Structure:
    """What the structure reader found in the student's code."""

    copies: list[Copy]
    function_share: float  # share of the code's lines inside a function or class
    code_lines: int
    training_on_import: int | None  # line of a module's top-level training call
    long_functions: list[tuple[str, int, int]]  # (name, line, code lines)
    cryptic: list[tuple[str, int]]  # (name, first line bound)
    names: int  # distinct names the code binds
    out_of_order: list[int] = field(default_factory=list)  # cells whose saved run came out of the notebook's order
    # state a rerun does not reproduce, first line of each kind: "global", "input" (typed in), "widget" (a slider)
    hidden_state: list[tuple[str, int]] = field(default_factory=list)


def read_structure(
    cells: list[CodeCell],
    handout: set[int],
    *,
    similarity: float = 0.9,
    min_lines: int = 4,
    long_function: int = 60,
    module: bool = False,
) -> Structure:
    """Read the structure of the code cells; `handout` holds the lines of the flattened code
    (:func:`~harness.scoring.readers.code.student_code`) that are the handout's: a copy made only
    of them is the handout's own repetition, not the student's. A copy between two functions that build
    Keras models is marked so (:attr:`Copy.builders`): the assignment asks for one such function per
    modification, and the rule decides what restating the layers in each costs."""
    code = student_code(cells)
    trees = _cell_trees(code)
    code_lines = code_line_numbers(code.source) - _string_lines(trees)
    tokens = _tokens_by_line(code, cells)
    blocks = [b for tree, _ in trees for b in _blocks(tree, code.source, tokens, code_lines) if b.lines >= min_lines]
    cryptic, names = _cryptic(trees)
    inside = {n for tree, _ in trees for node in tree.body if _is_definition(node) for n in _span(node)}
    return Structure(
        copies=_copies(blocks, handout, code_lines, similarity),
        function_share=len(code_lines & inside) / max(1, len(code_lines)),
        code_lines=len(code_lines),
        training_on_import=_training_on_import(trees) if module else None,
        long_functions=_long_functions(trees, code_lines, long_function),
        cryptic=cryptic,
        names=names,
        out_of_order=out_of_order(cells),
        hidden_state=_hidden_state(trees),
    )


def out_of_order(cells: list[CodeCell]) -> list[int]:
    """The cells whose saved execution counts break the notebook's order, fewest first: the cells left
    out of the longest run of counts that rises from top to bottom. A notebook run top to bottom has
    none; one run in a hidden order (a cell's outputs from before the one above it) needs them moved
    to run again as saved."""
    counted = [(c.cell, c.execution_count) for c in cells if c.execution_count is not None]
    # the longest strictly rising run, in n log n (a hostile notebook may have thousands of cells):
    # tails[k] is the index ending the best run of length k + 1 found so far, back[i] the one before i
    tails: list[int] = []
    tail_counts: list[int] = []  # the counts at `tails`, for the search
    back: list[int | None] = []
    for i, (_, count) in enumerate(counted):
        k = bisect.bisect_left(tail_counts, count)
        back.append(tails[k - 1] if k else None)
        tails[k : k + 1], tail_counts[k : k + 1] = [i], [count]
    kept, i = set(), tails[-1] if tails else None
    while i is not None:
        kept.add(i)
        i = back[i]
    return [cell for i, (cell, _) in enumerate(counted) if i not in kept and cell is not None]


# --------------------------------------------------------------------------- parsing


def _cell_trees(code: StudentCode) -> list[tuple[ast.Module, int]]:
    """Each cell's syntax tree with line numbers of the flattened code, and the cell's first line."""
    lines = code.source.splitlines()
    spans: list[tuple[int, int]] = []  # (first line, last line) of each cell, from 1
    for number, (cell, _) in enumerate(code.origin, 1):
        if spans and code.origin[spans[-1][0] - 1][0] == cell and number == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], number)
        else:
            spans.append((number, number))
    trees = []
    for first, last in spans:
        try:
            tree = parse_python("\n".join(lines[first - 1 : last]))
        except (SyntaxError, ValueError):
            continue  # dead code reports it
        ast.increment_lineno(tree, first - 1)
        trees.append((tree, first))
    return trees


def _string_lines(trees: list[tuple[ast.Module, int]]) -> set[int]:
    """Lines of bare strings (docstrings, a module's report): text, not code."""
    return {
        n
        for tree, _ in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for n in _span(node)
    }


def _span(node: ast.AST) -> range:
    return range(node.lineno, (node.end_lineno or node.lineno) + 1)


def _is_definition(node: ast.AST) -> bool:
    """A function, a class, or the ``if __name__ == "__main__":`` guard (a module's entry point)."""
    if isinstance(node, ast.If):
        return "__name__" in ast.unparse(node.test)
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


# --------------------------------------------------------------------------- near-copied blocks


def _tokens_by_line(code: StudentCode, cells: list[CodeCell]) -> dict[int, list[str]]:
    """The normalised tokens (:mod:`harness.ingest.tokens`) of each line of the flattened code."""
    where = {origin: number for number, origin in enumerate(code.origin, 1)}
    by_line: dict[int, list[str]] = {}
    for token in canonical_tokens(cells):
        line = where.get((token.cell, token.line))
        if line is not None:
            by_line.setdefault(line, []).append(token.text)
    return by_line


def _blocks(tree: ast.Module, source: str, tokens: dict[int, list[str]], code_lines: set[int]) -> list[Block]:
    """Every function body (docstring left out), every run of top-level statements that no blank
    line, definition or import interrupts, and the runs of a function body that has several (the
    same lines pasted once per model inside one long ``main()``)."""
    lines = source.splitlines()
    blocks = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            if body:
                builder = _builds_model(node)
                blocks.append(_block(body, tokens, code_lines, node.name, builder))
                runs = _statement_runs(body, lines)
                if len(runs) > 1:  # a single run is the body itself, already a block; its runs are named by where
                    blocks += [_block(run, tokens, code_lines, "", builder) for run in runs]
    blocks += [_block(run, tokens, code_lines, "") for run in _statement_runs(tree.body, lines)]
    return blocks


def _statement_runs(statements: list[ast.stmt], lines: list[str]) -> list[list[ast.stmt]]:
    """The runs of `statements` that no blank line, definition or import interrupts (definitions and
    imports belong to none)."""
    runs: list[list[ast.stmt]] = []
    run: list[ast.stmt] = []
    for node in [*statements, None]:
        apart = node is None or _is_definition(node) or isinstance(node, (ast.Import, ast.ImportFrom))
        if run and not apart and node is not None:
            gap = lines[(run[-1].end_lineno or run[-1].lineno) : node.lineno - 1]
            apart = any(not line.strip() for line in gap)
        if apart and run:
            runs.append(run)
            run = []
        if node is not None and not _is_definition(node) and not isinstance(node, (ast.Import, ast.ImportFrom)):
            run.append(node)
    return runs


def _block(
    statements: list[ast.stmt], tokens: dict[int, list[str]], code_lines: set[int], name: str, builder: bool = False
) -> Block:
    start, end = statements[0].lineno, statements[-1].end_lineno or statements[-1].lineno
    span = range(start, end + 1)
    found = tuple(t for n in span for t in tokens.get(n, []))
    return Block(start, end, name, found, len(code_lines & set(span)), builder)


def _builds_model(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The function builds a Keras model (``Sequential(…)``, ``keras.Model(…)``) and trains none: a builder, not
    a ``main()`` that builds, trains and reports each model in turn."""
    called = called_names(function)
    return bool(called & MODEL_CONSTRUCTORS) and not called & TRAINING


def _copies(blocks: list[Block], handout: set[int], code_lines: set[int], similarity: float) -> list[Copy]:
    """Each block paired with its most alike earlier block, when at least `similarity` alike; a
    pair of blocks that are both wholly the handout's is the handout's own repetition, and a copy
    inside a larger copy is counted with it."""

    def handouts(block: Block) -> bool:
        lines = code_lines & set(range(block.start, block.end + 1))
        return bool(lines) and lines <= handout

    copies: list[Copy] = []
    ordered = sorted(blocks, key=lambda b: b.start)
    for index, block in enumerate(ordered):
        if len(copies) >= MAX_COPIES:
            break  # the part is long spent: comparing on would only cost time (every pair is difflib's)
        best = None
        for earlier in ordered[:index]:
            if earlier.end >= block.start or (handouts(block) and handouts(earlier)):
                continue  # a block inside the other (a function's body and its run), or the handout's
            matcher = difflib.SequenceMatcher(None, earlier.tokens, block.tokens, autojunk=False)
            # the cheap upper bounds first: most pairs are far apart, and a module may hold hundreds of blocks
            if matcher.real_quick_ratio() < similarity or matcher.quick_ratio() < similarity:
                continue
            ratio = matcher.ratio()
            if ratio >= similarity and (best is None or ratio > best.similarity):
                best = Copy(earlier, block, ratio)
        if best:
            copies.append(best)
    # a function pasted whole is one copy, not one more for each of its runs
    return [c for c in copies if not any(_inside(c.second, other.second) for other in copies)]


def _inside(block: Block, other: Block) -> bool:
    """`block` lies within `other` and is not the same span."""
    return (
        other.start <= block.start and block.end <= other.end and (other.start, other.end) != (block.start, block.end)
    )


# --------------------------------------------------------------------------- the other findings


def _training_on_import(trees: list[tuple[ast.Module, int]]) -> int | None:
    """The line of the first statement at a module's top level (not in a function or the main
    guard) that trains a model: a ``fit`` call, or a call of the student's function that trains."""
    functions = {
        node.name: node
        for tree, _ in trees
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    trainers: set[str] = set()
    for _ in range(3):  # a helper calling a helper calling fit
        trainers |= {name for name, node in functions.items() if _trains(node, trainers)}
    for tree, _ in trees:
        for node in tree.body:
            if not _is_definition(node) and _trains(node, trainers):
                return node.lineno
    return None


def _trains(node: ast.AST, trainers: set[str]) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            called = sub.func.attr if isinstance(sub.func, ast.Attribute) else getattr(sub.func, "id", None)
            if called in TRAINING or called in trainers:
                return True
    return False


WIDGETS = {"interact", "interactive", "interact_manual"}  # ipywidgets: a value set by hand, never in the code


def _hidden_state(trees: list[tuple[ast.Module, int]]) -> list[tuple[str, int]]:
    """Where the code takes its values from somewhere a rerun does not see, first line of each kind: a
    ``global`` statement (a function setting the notebook's state), ``input()`` (typed in at run time), an
    ipywidgets slider (``interact(…)``)."""
    first: dict[str, int] = {}
    for tree, _ in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                first.setdefault("global", node.lineno)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "input":
                first.setdefault("input", node.lineno)
            elif isinstance(node, ast.Call) and call_name(node) in WIDGETS:
                first.setdefault("widget", node.lineno)
    return sorted(first.items(), key=lambda item: item[1])


def _long_functions(
    trees: list[tuple[ast.Module, int]], code_lines: set[int], limit: int
) -> list[tuple[str, int, int]]:
    found = []
    for tree, _ in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = len(code_lines & set(_span(node)))
                if lines > limit:
                    found.append((node.name, node.lineno, lines))
    return found


def _cryptic(trees: list[tuple[ast.Module, int]]) -> tuple[list[tuple[str, int]], int]:
    """Names the code binds (variables, functions, classes; not parameters, which a signature
    explains) that say nothing of what they hold, each with the line where it is first bound; and
    how many names it binds."""
    first: dict[str, int] = {}
    for tree, _ in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                first.setdefault(node.id, node.lineno)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first.setdefault(node.name, node.lineno)
    cryptic = sorted(((name, line) for name, line in first.items() if _is_cryptic(name)), key=lambda item: item[1])
    return cryptic, len(first)


def _is_cryptic(name: str) -> bool:
    if name in CONVENTIONAL or AXES.fullmatch(name) or name.startswith("__"):
        return False
    return bool(CRYPTIC.fullmatch(name))

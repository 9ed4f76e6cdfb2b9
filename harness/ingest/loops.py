"""A loop over a literal table of experiments, written out round by round.

Students who compare several models often put them in a table and loop over it::

    EXPERIMENTS = {"Reference": (create_baseline_model, 128), "Batch 32": (create_improved_model_3, 32)}
    for name, (factory, batch_size) in EXPERIMENTS.items():
        train_and_evaluate(factory, batch_size, data)

Read statically, as a person would, each round is the loop's body with the loop's names replaced by
that round's values (``train_and_evaluate(create_improved_model_3, 32, data)``), so what each model is
trained with can be read like any other call. Only tables written as literals are read: a list, a tuple
or a dict in the loop itself or in a top-level name assigned once, through ``.items()``, ``.values()``,
``.keys()``, ``enumerate`` and ``zip``. Anything else is not unrolled (None).

>>> loop = ast.parse("for f, bs in [(a, 32), (b, 64)]:\\n    run(f, bs)").body[0]
>>> [ast.unparse(body[0]) for body in unrolled(loop, {})]
['run(a, 32)', 'run(b, 64)']
"""

from __future__ import annotations

import ast
import copy

from harness.util.pysource import assigned_once, literal_truth, required_arguments

MAX_ROUNDS = 24  # a table of experiments, not a sweep over hundreds of values


def literal_tables(trees: list[tuple[int | None, ast.Module]]) -> dict[str, ast.expr]:
    """Top-level names assigned once to a list, a tuple or a dict literal."""
    return {
        name: value
        for name, value in assigned_once(trees).items()
        if isinstance(value, (ast.List, ast.Tuple, ast.Dict))
    }


def with_loops_unrolled(tree: ast.Module, tables: dict[str, ast.expr]) -> ast.Module:
    """A copy of `tree` where every loop over a literal table, at any depth, is replaced by its rounds;
    `tree` itself when it has none (no copy of a large module for nothing)."""
    if not any(
        (isinstance(node, ast.For) and _items(node.iter, tables))
        or (isinstance(node, ast.DictComp) and _items(node.generators[0].iter, tables))
        or _repeated(node, tables) is not None
        for node in ast.walk(tree)
    ):
        return tree
    return _Unroller(tables).visit(copy.deepcopy(tree))


def _repeated(node: ast.AST, tables: dict[str, ast.expr]) -> dict[str, ast.expr] | None:
    """A list, set or generator comprehension over a literal sequence (``[run(kw, s) for s in (0, 1,
    2)]``: one experiment repeated, seeds): its names bound to the first value; None for anything else."""
    if not isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp)) or len(node.generators) != 1:
        return None
    generator = node.generators[0]
    items = _items(generator.iter, tables) if not generator.ifs and not generator.is_async else None
    bound: dict[str, ast.expr] = {}
    return bound if items and _bind(generator.target, items[0], bound) else None


class _Unroller(ast.NodeTransformer):
    def __init__(self, tables: dict[str, ast.expr]) -> None:
        self.tables = tables

    def visit_For(self, node: ast.For):
        self.generic_visit(node)  # loops inside the body first
        rounds = unrolled(node, self.tables)
        return node if rounds is None else [statement for body in rounds for statement in body]

    def _first_round(self, node: ast.AST):
        self.generic_visit(node)
        bound = _repeated(node, self.tables)
        if bound is None:
            return node
        element = substituted(node.elt, bound)
        return ast.List(elts=[element], ctx=ast.Load())  # the experiment once, as a person reads it

    visit_ListComp = visit_SetComp = visit_GeneratorExp = _first_round

    def visit_DictComp(self, node: ast.DictComp):
        """``{name: run(fn, name) for name, fn in RUNS.items()}``: one entry per run, written out as a dict, each
        round's names replaced by its values (a dict's keys are the runs' labels, not seeds)."""
        self.generic_visit(node)
        generator = node.generators[0]
        items = _items(generator.iter, self.tables) if len(node.generators) == 1 and not generator.ifs else None
        if not items or len(items) > MAX_ROUNDS or generator.is_async:
            return node
        keys, values = [], []
        for item in items:
            bound: dict[str, ast.expr] = {}
            if not _bind(generator.target, item, bound):
                return node
            keys.append(substituted(node.key, bound, self.tables))
            values.append(substituted(node.value, bound, self.tables))
        return ast.copy_location(ast.Dict(keys=keys, values=values), node)


def unrolled(loop: ast.For, tables: dict[str, ast.expr]) -> list[list[ast.stmt]] | None:
    """The loop's body once per round, the loop's names replaced by the round's values; None when the
    loop does not run over a literal table, or a round cannot be bound to its names."""
    items = _items(loop.iter, tables)
    if items is None or not 0 < len(items) <= MAX_ROUNDS or loop.orelse:
        return None
    rounds = []
    for item in items:
        bound: dict[str, ast.expr] = {}
        if not _bind(loop.target, item, bound):
            return None
        rounds.append([substituted(statement, bound, tables) for statement in loop.body])
    return rounds


def substituted(node: ast.AST, bound: dict[str, ast.expr], tables: dict[str, ast.expr] | None = None):
    """A copy of `node` with the names in `bound` it reads replaced by their values (and a key read in one of
    the module's literal `tables` by its value: ``BATCH["batch_64"]``)."""
    return _Substitute(bound, tables or {}).visit(copy.deepcopy(node))


def round_label(loop: ast.For, tables: dict[str, ast.expr], index: int) -> str | None:
    """The label of a round of a loop over a table: the first string its row holds (``'M3 batch64'`` of
    ``'M3 batch64': (lambda: make_cnn(), 64)``, ``'bn'`` of ``{'name': 'bn', 'kwargs': {…}}``: a key is
    not a label), or None."""
    items = _items(loop.iter, tables) or []
    row = items[index] if index < len(items) else None
    if row is None:
        return None
    keys = {id(k) for n in ast.walk(row) if isinstance(n, ast.Dict) for k in n.keys}
    strings = (
        n.value for n in ast.walk(row) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in keys
    )
    return next(strings, None)


def _items(node: ast.expr, tables: dict[str, ast.expr]) -> list[ast.expr] | None:
    """The values a loop runs over, when written as literals."""
    if isinstance(node, ast.Name):
        node = tables.get(node.id, node)
    if isinstance(node, (ast.List, ast.Tuple)):
        return list(node.elts)
    if isinstance(node, ast.Dict):
        return [k for k in node.keys if k is not None] if None not in node.keys else None
    if not isinstance(node, ast.Call):
        return None
    if isinstance(node.func, ast.Attribute) and not node.args:
        table = node.func.value
        table = tables.get(table.id, table) if isinstance(table, ast.Name) else table
        if isinstance(table, ast.Dict) and None not in table.keys:
            views = {
                "items": [
                    ast.Tuple(elts=[k, v], ctx=ast.Load()) for k, v in zip(table.keys, table.values, strict=True)
                ],
                "values": list(table.values),
                "keys": list(table.keys),
            }
            return views.get(node.func.attr)
        return None
    if isinstance(node.func, ast.Name) and node.func.id in ("enumerate", "zip") and not node.keywords:
        columns = [_items(argument, tables) for argument in node.args]
        if not columns or any(c is None for c in columns):
            return None
        if node.func.id == "enumerate":
            if len(columns) != 1:
                return None
            columns = [[ast.Constant(i) for i in range(len(columns[0]))], columns[0]]
        return [ast.Tuple(elts=list(row), ctx=ast.Load()) for row in zip(*columns, strict=False)]
    return None


def _bind(target: ast.expr, value: ast.expr, bound: dict[str, ast.expr]) -> bool:
    """Bind the loop's target names to one round's value; False when its shape does not fit."""
    if isinstance(target, ast.Name):
        bound[target.id] = value
        return True
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
        return len(target.elts) == len(value.elts) and all(
            _bind(t, v, bound) for t, v in zip(target.elts, value.elts, strict=True)
        )
    return False


class _Substitute(ast.NodeTransformer):
    """The loop's names read in its body replaced by the round's values; ``f(**{"rate": 0.3})`` written as
    ``f(rate=0.3)``, as a student writing the round out would (a row with its label filtered out too:
    ``f(**{k: v for k, v in row.items() if k != "nom"})``)."""

    def __init__(self, bound: dict[str, ast.expr], tables: dict[str, ast.expr] | None = None) -> None:
        self.bound = bound
        self.tables = tables or {}

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if isinstance(node.ctx, ast.Load) and node.id in self.bound:
            return ast.copy_location(copy.deepcopy(self.bound[node.id]), node)
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        """``lambda p=params: build(**p)``, the idiom that freezes a loop's value: the defaults written into
        the body, as the call it makes (``build(**{"rate": 0.3})``, then keywords). Its own parameters shadow
        the bound names (``lambda x, y: (augment(x), y)`` in a helper whose parameter is ``x``)."""
        arguments = node.args
        own = {a.arg for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]}
        own |= {a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None}
        node.args = self.visit(arguments)  # the defaults are read where the lambda is made
        node.body = _Substitute({k: v for k, v in self.bound.items() if k not in own}, self.tables).visit(node.body)
        names = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
        defaults = dict(zip(names[len(names) - len(node.args.defaults) :], node.args.defaults, strict=True))
        if defaults:
            node.body = _Substitute(defaults, self.tables).visit(node.body)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        """``row["kwargs"]`` of a round bound to ``{"name": "bn", "kwargs": {"bn": True}}`` (``row[1]`` of a
        tuple): the literal it reads, as the student writing the round out would."""
        self.generic_visit(node)
        table, key = node.value, node.slice
        if isinstance(table, ast.Name):
            table = self.tables.get(table.id, table)
        if isinstance(node.ctx, ast.Load) and isinstance(key, ast.Constant):
            if isinstance(table, ast.Dict) and None not in table.keys:
                found = [v for k, v in zip(table.keys, table.values, strict=True) if _is_constant(k, key.value)]
                if len(found) == 1:
                    return ast.copy_location(found[0], node)
            if isinstance(table, (ast.Tuple, ast.List)) and type(key.value) is int:
                if -len(table.elts) <= key.value < len(table.elts):
                    return ast.copy_location(table.elts[key.value], node)
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if (
            isinstance(node.func, ast.Lambda)
            and not node.args
            and not node.keywords
            and not required_arguments(node.func)
        ):
            # ``build()`` with ``build`` bound to ``lambda: make_cnn()``: ``make_cnn()`` (defaults already written in)
            return node.func.body
        keywords = []
        for keyword in node.keywords:
            spread = keyword.value
            if keyword.arg is None and isinstance(spread, ast.DictComp):  # build(**{k: v for k, v in row.items() …})
                spread = _kept_items(spread) or spread
            if keyword.arg is None:  # build(**dict(rate=0.3)), a row written with dict()
                spread = _dict_call(spread) or spread
            if keyword.arg is None and isinstance(spread, ast.Dict) and _string_keys(spread):
                keywords += [ast.keyword(arg=k.value, value=v) for k, v in zip(spread.keys, spread.values, strict=True)]
            else:
                keywords.append(keyword)
        node.keywords = keywords
        return node


def _dict_call(node: ast.expr) -> ast.Dict | None:
    """``dict(rate=0.3, bn=True)`` as the literal it makes (``{"rate": 0.3, "bn": True}``); None for any other
    expression, or a ``dict(…)`` given positions or ``**``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict") or node.args:
        return None
    if any(k.arg is None for k in node.keywords):
        return None
    return ast.Dict(keys=[ast.Constant(k.arg) for k in node.keywords], values=[k.value for k in node.keywords])


def _kept_items(node: ast.DictComp) -> ast.Dict | None:
    """``{k: v for k, v in {"nom": "bn", "bn": True}.items() if k != "nom"}`` as the dict it makes
    (``{"bn": True}``): a row of a table of experiments with its label left out; None for any other."""
    if len(node.generators) != 1 or not (isinstance(node.key, ast.Name) and isinstance(node.value, ast.Name)):
        return None
    generator = node.generators[0]
    names = generator.target.elts if isinstance(generator.target, ast.Tuple) else []
    source = generator.iter
    if not (
        [getattr(n, "id", None) for n in names] == [node.key.id, node.value.id]
        and isinstance(source, ast.Call)
        and isinstance(source.func, ast.Attribute)
        and source.func.attr == "items"
        and isinstance(source.func.value, ast.Dict)
        and _string_keys(source.func.value)
    ):
        return None
    table, kept = source.func.value, ast.Dict(keys=[], values=[])
    for key, value in zip(table.keys, table.values, strict=True):
        verdicts = [literal_truth(test, {node.key.id: key}) for test in generator.ifs]
        if None in verdicts:
            return None
        if all(verdicts):
            kept.keys.append(key)
            kept.values.append(value)
    return kept


def _is_constant(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is type(value) and node.value == value


def _string_keys(table: ast.Dict) -> bool:
    return all(isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value.isidentifier() for k in table.keys)

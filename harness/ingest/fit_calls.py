"""The settings a submission trains its graded models with, read from its own training calls.

Students set epochs, batch sizes, callbacks and an ``ImageDataGenerator`` where they train, not in a
``TRAINING_CONFIG``: ``model = build_cnn(0.25)`` then ``model.fit(gen.flow(x, y, batch_size=64),
epochs=15, callbacks=[EarlyStopping(patience=3)])`` at top level or in a ``main()``, or the handout's
``evaluate_model(create_improved_model_2, "M2", epochs=10)``. The harness drops those calls (it trains
every model itself), so what they declare is read here, statically, and becomes that model's
``TRAINING_CONFIG`` entry, as if the student had written one (an entry they did write wins).

Only what can be read without running anything is kept: integer epochs and batch sizes (literals,
or module constants such as ``EPOCHS = 15``), and callbacks and generators built by a call of a name
imported at the top of the module with literal arguments (``keras.callbacks.EarlyStopping(patience=3)``,
``ImageDataGenerator(rotation_range=10)``). Only what every training call of a model says alike is
kept (a quick check with ``epochs=1`` before the real run declares no epochs). A loop over a literal
table of experiments (``for name, (build, batch) in EXPERIMENTS.items(): run(build, batch)``) is read
round by round (harness/ingest/loops.py); calls in any other loop are not one model's settings.

One builder trained two ways is two models: ``baseline = create_baseline_model()`` trained plainly,
then ``model_aug = create_baseline_model()`` trained on ``datagen.flow(…)`` or with callbacks. A
variable whose training calls add a generator or callbacks, change the batch size or train for more
epochs, against the first variable that trains that builder, is a *variant*: graded as a model of its
own, named after the variable (:class:`Variant`). A variable trained for one or two epochs first is a
quick check.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from dataclasses import dataclass, field

from harness.ingest.loops import literal_tables, round_label, substituted, unrolled, with_loops_unrolled
from harness.ingest.trainers import TRAINING, bind_arguments, flow_of, generator_passed, trained_with
from harness.util.pysource import (
    assigned_once,
    call_name,
    imported_names,
    is_literal,
    literal_truth,
    required_arguments,
    stored_names,
)
from harness.util.pysource import parse as parse_python

INTEGERS = ("epochs", "batch_size")
CALLBACKS = {"EarlyStopping", "ReduceLROnPlateau", "TerminateOnNaN", "LearningRateScheduler"}
GENERATORS = {"ImageDataGenerator"}


@dataclass
class Declared:
    """One graded model's settings read from a training call, and where that call is."""

    settings: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # "callbacks"/"augmentation" -> Python source
    line: int = 0  # of the call, in the parsed code (a cell, or the module)
    cell: int | None = None
    holder: str | None = None  # the variable the trained model is in, or the key or label of its run
    # (cell, line, round of a loop over a table) of the assignment that put a new model in `holder`
    built_at: tuple[int | None, int, int] = (None, 0, 0)
    label: str | None = None  # the label the run is given (``train(m, 'Augmentation')``, a table's row)

    def as_entry(self) -> str:
        """The TRAINING_CONFIG entry, as Python source."""
        parts = [f"{k!r}: {v!r}" for k, v in self.settings.items()] + [f"{k!r}: {v}" for k, v in self.sources.items()]
        return "{" + ", ".join(parts) + "}"

    def said(self) -> str:
        """``epochs=15, batch_size=64, callbacks, augmentation``: what was kept, for the report."""
        return ", ".join([f"{k}={v}" for k, v in self.settings.items()] + list(self.sources))


@dataclass
class Variant:
    """A graded model's builder trained another way, in its own variable: a model of its own."""

    holder: str  # the student's variable
    model: str  # the harness name of the model it is built like
    declared: Declared


def declared_by_calls(
    trees: list[tuple[int | None, ast.Module]], built_by: dict[str, str], kept: ast.Module | None = None
) -> tuple[dict[str, Declared], list[Variant]]:
    """Each graded model's settings from the submission's own training calls, and the variants (see the
    module's docstring). `trees`: the parsed code cells (cell, tree) in order; `built_by`: harness name ->
    how the submission builds that model, a function name (``build_model``) or a call
    (``build_cnn(dropout=0.25)``); `kept`: the module the worker imports, whose imports a callback or a
    generator must be built from (all the code's when None)."""
    declared, variants, _ = read_training(trees, built_by, kept)
    return declared, variants


def read_training(
    trees: list[tuple[int | None, ast.Module]], built_by: dict[str, str], kept: ast.Module | None = None
) -> tuple[dict[str, Declared], list[Variant], dict[str, str]]:
    """:func:`declared_by_calls`, and each model's run label (``train(create_augmented_model,
    'Augmentation')``, the row of a table of experiments: the name its printed lines and tables use; a
    variant's is on its :class:`Variant`'s ``declared``), from one reading of the code."""
    agreed, variants = {}, []
    for name, calls in _training_calls(trees, built_by, kept).items():
        own, others = _split_variants(calls)
        agreed[name] = _agreed(own)
        variants += [Variant(holder, name, _agreed(group)) for holder, group in others.items()]
    declared = {name: d for name, d in agreed.items() if d.settings or d.sources}
    labels = {name: d.label for name, d in agreed.items() if d.label}
    return declared, variants, labels


def _training_calls(
    trees: list[tuple[int | None, ast.Module]], built_by: dict[str, str], kept: ast.Module | None = None
) -> dict[str, list[Declared]]:
    """Each graded model's training calls, in the order the code makes them."""
    imported = imported_names(trees if kept is None else [(None, kept)])
    constants = _constants(trees)
    trainers = _trainers(trees)
    calls = {_normal(how): name for name, how in built_by.items()}
    functions = {_normal(how).split("(")[0]: name for name, how in built_by.items() if "(" not in how}
    found: dict[str, list[Declared]] = {}
    tables = literal_tables(trees)
    returned = _returning(trees)
    for scope in _scopes(trees):
        reader = _Scope(calls, functions, imported, constants, trainers, tables, returned)
        for cell, statement in scope:
            reader.cell = cell
            for name, declared in reader.read(statement):
                declared.cell = cell
                found.setdefault(name, []).append(declared)
    return found


def _split_variants(calls: list[Declared]) -> tuple[list[Declared], dict[str, list[Declared]]]:
    """(the model's own calls, {variable: its calls} of each variant): a variable is a variant when its
    calls agree on a generator, callbacks or a batch size that the first variable's calls do not."""
    groups: dict[tuple, list[Declared]] = {}
    for call in calls:  # a variable assigned a new model again holds another model
        groups.setdefault((call.holder, call.built_at), []).append(call)
    first, *rest = groups
    base = _agreed(groups[first])
    own, variants = list(groups[first]), {}
    for key in rest:
        holder, mine = key[0], _agreed(groups[key])
        if holder is not None and holder not in variants and _trained_otherwise(mine, base):
            variants[holder] = groups[key]
        else:
            own += groups[key]
    return own, variants


# a run this short is a check that the code runs, before the real one
QUICK_CHECK_EPOCHS = 2


def _trained_otherwise(variant: Declared, base: Declared) -> bool:
    """Whether a variable's training is another experiment than the model's: a generator or callbacks of its
    own, another batch size, or more epochs than a real run (the assignment's "modifier le nombre
    d'époques"; a run of `QUICK_CHECK_EPOCHS` or fewer before the real one is a quick check)."""
    adds = bool(variant.sources) and variant.sources != base.sources
    batch = variant.settings.get("batch_size")
    epochs, base_epochs = variant.settings.get("epochs"), base.settings.get("epochs")
    longer = epochs is not None and base_epochs is not None and epochs > base_epochs > QUICK_CHECK_EPOCHS
    return adds or longer or (batch is not None and batch != base.settings.get("batch_size"))


def _agreed(calls: list[Declared]) -> Declared:
    """What every training call of one model says alike (a quick check with ``epochs=1`` before the real
    run, or a model trained again, leaves its epochs to the protocol), placed at the first call."""
    first = calls[0]
    settings = {k: v for k, v in first.settings.items() if all(c.settings.get(k) == v for c in calls)}
    sources = {k: v for k, v in first.sources.items() if all(c.sources.get(k) == v for c in calls)}
    label = next((c.label for c in calls if c.label), None)
    return Declared(
        settings=settings, sources=sources, line=first.line, cell=first.cell, holder=first.holder, label=label
    )


def _normal(how: str) -> str:
    """A call's text as ``ast.unparse`` writes it, a plain name as ``name()``."""
    try:
        node = parse_python(how, mode="eval").body
    except SyntaxError:
        return how
    return ast.unparse(node) if isinstance(node, ast.Call) else f"{how}()"


def _scopes(trees: list[tuple[int | None, ast.Module]]) -> list[list[tuple[int | None, ast.stmt]]]:
    """Each scope a model can be built and trained in, as (cell, statement) in order: the top level
    (every cell, in order, as one scope), and each function's body."""
    top: list[tuple[int | None, ast.stmt]] = []
    functions = []
    for cell, tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append([(cell, statement) for statement in node.body])
            elif not isinstance(node, ast.ClassDef):
                top.append((cell, node))
    return [top, *functions]


class _Scope:
    """Reads one scope's statements in order: which variable holds which graded model, which list of
    callbacks and which generator, and the training calls that use them."""

    def __init__(
        self,
        calls: dict[str, str],
        functions: dict[str, str],
        imported: set[str],
        constants: dict,
        trainers: dict[str, ast.FunctionDef],
        tables: dict[str, ast.expr] | None = None,
        returned: dict[str, ast.FunctionDef] | None = None,
    ) -> None:
        self.calls, self.functions, self.imported, self.constants = calls, functions, imported, constants
        self.trainers = trainers  # the student's functions that train what they are given
        self.tables = tables or {}  # top-level literal tables a loop may run over
        self.returned = returned or {}  # the functions that end by returning a value, read call by call
        self.models: dict[str, str] = {}  # variable -> harness name
        self.built_at: dict[str, tuple[int | None, int, int]] = {}  # variable -> (cell, line, round) of its model
        self.cell: int | None = None  # the cell of the statement being read
        self.round: tuple[int, str | None] = (0, None)  # in a loop over a table: (round, its row's label)
        self.values: dict[str, ast.expr] = {}  # variable -> what it was last set to
        self.outer: dict[str, ast.expr] = {}  # in a trainer helper read for one call: the caller's values

    def read(self, statement: ast.stmt):
        """(harness name, Declared) for each training call of this statement; remembers its assignments."""
        if not isinstance(statement, ast.For) and any(isinstance(n, ast.DictComp) for n in ast.walk(statement)):
            # ``{name: run(fn, name) for name, fn in RUNS.items()}``: read as its runs written out
            module = ast.Module(body=[statement], type_ignores=[])
            written = with_loops_unrolled(module, self.tables)
            if written is not module:
                statement = written.body[0]
        if isinstance(statement, ast.For) and (rounds := unrolled(statement, self.tables)) is not None:
            outer = self.round
            # a loop over a literal table of experiments: each round as written out, with its row's label
            for index, body in enumerate(rounds):
                # a loop inside a round (``for seed in SEEDS:``) keeps the round's label when its rows have none
                self.round = (index + 1, round_label(statement, self.tables, index) or outer[1])
                for inner in body:
                    yield from self.read(inner)
            self.round = outer
            return
        if isinstance(statement, (ast.For, ast.While, ast.AsyncFor)):
            return  # a call repeated by a loop over what cannot be read is not one model's settings
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                # ``ds = ds.map(augment)``: what the name held is part of its new value
                before = {target.id: self.values[target.id]} if target.id in self.values else {}
                self.values[target.id] = substituted(statement.value, before) if before else statement.value
                model = self._built(statement.value)
                if model is not None:
                    self.models[target.id] = model
                    self.built_at[target.id] = (self.cell, statement.lineno, self.round[0])
                else:
                    self.models.pop(target.id, None)
            elif isinstance(target, ast.Tuple):
                self._unpacked(target, statement)
        for node in ast.walk(statement):
            if not isinstance(node, ast.Call):
                continue
            if call_name(node) in TRAINING and isinstance(node.func, ast.Attribute):
                model = self._model_of(node.func.value)
                if model is not None:
                    declared = self._declared(node)
                    if isinstance(node.func.value, ast.Name):
                        declared.built_at = self.built_at.get(node.func.value.id, (None, 0, 0))
                        # a variable reused round after round holds each row's model: the row names it
                        declared.holder = _slug(self.round[1]) or node.func.value.id
                    declared.label = self.round[1]
                    yield model, declared
            elif call_name(node) in self.trainers:  # handed to the student's own helper: train(m, epochs=10)
                yield from self._helped(node, statement)

    def _unpacked(self, target: ast.Tuple, statement: ast.Assign) -> None:
        """``model, epochs, callbacks = early_stopped()`` with ``return cnn(), 15, [stop]``: the model in the
        name its call lands in, each other name set to what the builder returns in its place."""
        model = self._built(statement.value)
        builder = self.returned.get(call_name(statement.value) or "") if model is not None else None
        returned = returned_for(builder, statement.value) if builder is not None else None
        if not (isinstance(returned, ast.Tuple) and len(returned.elts) == len(target.elts)):
            return
        elements = returned.elts
        held = False
        for name, element in zip(target.elts, elements, strict=True):
            if not isinstance(name, ast.Name):
                continue
            if not held and isinstance(element, ast.Call) and call_name(element) not in CALLBACKS | GENERATORS:
                held = True
                self.models[name.id] = model
                self.built_at[name.id] = (self.cell, statement.lineno, self.round[0])
            else:
                self.values[name.id] = element

    def _helped(self, call: ast.Call, statement: ast.stmt):
        """(harness name, Declared) for each graded model a call hands to a helper that trains it: a
        variable, a factory, or a builder's call (``run(cnn(), bs=64)``: a new model, held by the
        statement's first target)."""
        helper = self.trainers[call_name(call)]
        bound = trained_with(call, helper, self.tables, self.constants)
        built = self._built_inside(helper, call)
        inside = {**built.sources, **self._generator(call, helper)}
        piped = built.settings.get("batch_size")  # ``fit(train_ds)`` inside: the pipeline's ``.batch(64)``
        for argument in [*call.args, *(k.value for k in call.keywords)]:
            if isinstance(argument, ast.Lambda) and required_arguments(argument) == 0:  # run(lambda: cnn(8))
                argument = argument.body
            if isinstance(argument, ast.Name) and argument.id in self.models:
                model, holder, built_at = self.models[argument.id], argument.id, self.built_at[argument.id]
            else:  # a factory or a builder's call: the helper builds a new model, held by what names the run
                model = self.functions.get(argument.id) if isinstance(argument, ast.Name) else self._built(argument)
                holder = _slug(self.round[1]) or _holder(statement, call)
                built_at = (self.cell, statement.lineno, self.round[0])
            if model is None:
                continue
            declared = self._declared(call, helper=True)
            declared.settings.update(bound or {})
            if piped is not None:
                declared.settings.setdefault("batch_size", piped)
            declared.sources = {**inside, **declared.sources}  # what the call passes wins
            declared.holder, declared.built_at = holder, built_at
            declared.label = self.round[1] or _label(call)
            yield model, declared

    def _helper_sources(self, call: ast.Call, helper: ast.FunctionDef) -> dict[str, str]:
        """The callbacks and generator a call of a trainer helper trains with that the call does not pass
        itself: what the helper builds for this call's arguments, the module's generator it switches to."""
        return {**self._built_inside(helper, call).sources, **self._generator(call, helper)}

    def _generator(self, call: ast.Call, helper: ast.FunctionDef) -> dict[str, str]:
        """The generator a call hands to a helper that fits on its ``.flow(…)``, as an "augmentation" source."""
        generator = self._resolved(generator_passed(call, helper, self.values))
        buildable = isinstance(generator, ast.Call) and self._buildable(generator, GENERATORS)
        return {"augmentation": ast.unparse(generator)} if buildable else {}

    def _built_inside(self, helper: ast.FunctionDef, call: ast.Call) -> Declared:
        """The generator and callbacks a trainer helper builds for itself (``datagen = ImageDataGenerator(…)``
        then ``model.fit(datagen.flow(…), callbacks=[ReduceLROnPlateau(…)])`` in ``train_augmented``), read
        in the helper's own body with `call`'s arguments (``callbacks = [LearningRateScheduler(decay)] if
        use_schedule else []``: only for the calls that set ``use_schedule``); and the batch size of the
        pipeline it fits on."""
        fit = next((n for n in ast.walk(helper) if isinstance(n, ast.Call) and call_name(n) in TRAINING), None)
        values = values_after(helper, call, helper.body, self.returned) if fit is not None else None
        if values is None:
            return Declared(line=call.lineno)
        inner = _Scope(self.calls, self.functions, self.imported, self.constants, {}, returned=self.returned)
        inner.values = values  # the helper's own names, as this call sets them
        inner.outer = self.values  # where the pipeline a parameter names was made (``train(m, train_ds_aug)``)
        return inner._declared(fit)

    def _built(self, value: ast.expr) -> str | None:
        if isinstance(value, ast.Call):
            return self.calls.get(ast.unparse(value))
        return None

    def _model_of(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.models.get(node.id)
        return self._built(node)

    def _declared(self, call: ast.Call, helper: bool = False) -> Declared:
        declared = Declared(line=call.lineno)
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        flow = flow_of(call)
        if flow is not None:  # gen.flow(x, y, batch_size=64): the batch size and the generator
            keywords = {**{k.arg: k.value for k in flow.keywords if k.arg == "batch_size"}, **keywords}
        for key in INTEGERS:
            value = self._integer(keywords.get(key))
            if value is not None and value > 0:
                declared.settings[key] = value
        callbacks = self._callbacks(keywords.get("callbacks"))
        if callbacks:
            declared.sources["callbacks"] = "[" + ", ".join(callbacks) + "]"
        if not helper and flow is not None and isinstance(flow.func, ast.Attribute):
            generator = self._resolved(flow.func.value)
            if isinstance(generator, ast.Call) and self._buildable(generator, GENERATORS):
                declared.sources["augmentation"] = ast.unparse(generator)
        elif flow is None:
            self._pipeline(call.args[0] if call.args else keywords.get("x"), declared)
        return declared

    def _pipeline(self, data: ast.expr | None, declared: Declared) -> None:
        """A tf.data pipeline's batch size and maps (``ds.map(augment).batch(64)``), where `data` is one."""
        data = self._resolved(data)
        if isinstance(data, ast.Name) and data.id in self.outer:  # a helper's parameter: the caller's pipeline
            data = self._resolved(self.outer[data.id])
        stages = pipeline_stages(data)
        if stages is None:
            return
        batches = [arguments for method, arguments in stages if method in ("batch", "padded_batch") and arguments]
        size = self._integer(batches[-1][0]) if batches else None
        if size is not None and size > 0 and "batch_size" not in declared.settings:
            declared.settings["batch_size"] = size
        maps = dataset_maps(stages, self.returned)
        if maps:
            declared.sources["augmentation"] = maps

    def _resolved(self, node: ast.expr | None) -> ast.expr | None:
        """What a name was last set to, and what a call of the student's own maker returns
        (``make_plateau()`` with ``return ReduceLROnPlateau(patience=2)``, or a list of callbacks)."""
        for _ in range(4):  # ``data = train_ds`` then ``train_ds = make_dataset(…)``: a few names deep
            node = self.values.get(node.id, node) if isinstance(node, ast.Name) else node
        maker = self.returned.get(call_name(node) or "") if isinstance(node, ast.Call) else None
        # the call's arguments as this scope knows them (``fresh_callbacks(schedule)`` with ``schedule=True``)
        known = substituted(node, self.values) if maker is not None and isinstance(node.func, ast.Name) else None
        made = returned_for(maker, known) if known is not None else None
        return made if isinstance(made, (ast.Call, ast.List, ast.Tuple)) else node

    def _integer(self, node: ast.expr | None) -> int | None:
        node = self._resolved(node)
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        return None

    def _callbacks(self, node: ast.expr | None) -> list[str]:
        node = self._resolved(node)
        if not isinstance(node, (ast.List, ast.Tuple)):
            return []
        built = [self._resolved(c) for c in node.elts]  # [lr_cb] with lr_cb = ReduceLROnPlateau(…) above
        return [ast.unparse(c) for c in built if isinstance(c, ast.Call) and self._buildable(c, CALLBACKS)]

    def _buildable(self, call: ast.Call, classes: set[str]) -> bool:
        """A call of one of `classes`, through a name imported at the module's top, with literal arguments."""
        root = call.func
        while isinstance(root, ast.Attribute):
            root = root.value
        # a literal, or a function of the module's (``LearningRateScheduler(step_decay)``)
        literal = all(
            is_literal(a) or (isinstance(a, ast.Name) and a.id in self.returned)
            for a in [*call.args, *(k.value for k in call.keywords)]
        )
        return call_name(call) in classes and isinstance(root, ast.Name) and root.id in self.imported and literal


DATASET_METHODS = {"batch", "padded_batch", "shuffle", "prefetch", "cache", "repeat", "from_tensor_slices"}


def pipeline_stages(node: ast.expr | None) -> list[tuple[str, list[ast.expr]]] | None:
    """A tf.data pipeline's method calls, from the arrays to the batches fit reads (``[("from_tensor_slices",
    …), ("map", [augment]), ("batch", [64])]``); None when `node` is no such chain."""
    stages = []
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        stages.append((node.func.attr, node.args))
        node = node.func.value
    if not {method for method, _ in stages} & DATASET_METHODS:
        return None
    return stages[::-1]


def dataset_maps(stages: list[tuple[str, list[ast.expr]]], functions: dict[str, ast.FunctionDef]) -> str | None:
    """A pipeline's maps as the ``augmentation`` setting that the training worker reproduces
    (harness/workers/dataset_maps.py): each a module function or a lambda, with whether it maps batches.
    None when it has none, or one of them cannot be named."""
    entries, batched = [], False
    for method, arguments in stages:
        batched = batched or method in ("batch", "padded_batch")
        if method != "map":
            continue
        function = arguments[0] if arguments else None
        if isinstance(function, ast.Name) and function.id in functions:
            entries.append({"name": function.id, "source": f"globals().get({function.id!r})", "batched": batched})
        elif isinstance(function, ast.Lambda):
            entries.append({"name": "lambda", "source": ast.unparse(function), "batched": batched})
        else:
            return None
    return map_settings_source(entries) if entries else None


def map_settings_source(maps: list[dict]) -> str:
    """``[{'map': globals().get('augmenter'), 'batched': False, 'name': 'augmenter'}]``: a pipeline's maps
    (``{"name", "source", "batched"}``, read in the code or found by discovery) as the ``augmentation``
    setting, in the source of the module the worker imports."""
    entries = [f"{{'map': {m['source']}, 'batched': {bool(m['batched'])}, 'name': {m['name']!r}}}" for m in maps]
    return "[" + ", ".join(entries) + "]"


def trainer_sources(trees: list[tuple[int | None, ast.Module]], helper: ast.FunctionDef, call: ast.Call) -> dict:
    """The callbacks and generator (as Python source) one call of a trainer helper trains with: what the
    helper builds for this call's arguments, the module's generator it switches to, what the call passes."""
    reader = _Scope({}, {}, imported_names(trees), _constants(trees), {}, literal_tables(trees), _returning(trees))
    reader.values = assigned_once(trees)  # ``datagen = ImageDataGenerator(…)``: what ``if augment:`` fits on
    return {**reader._helper_sources(call, helper), **reader._declared(call, helper=True).sources}


def _trainers(trees: list[tuple[int | None, ast.Module]]) -> dict[str, ast.FunctionDef]:
    """The student's top-level functions that call ``fit`` (the handout's ``evaluate_model``), by name: a
    model or a factory handed to one of them is trained with what the call passes (``plot_model(m)``
    trains nothing)."""
    return {
        node.name: node
        for _, tree in trees
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any(call_name(sub) in TRAINING for sub in ast.walk(node))
    }


def _returning(trees: list[tuple[int | None, ast.Module]]) -> dict[str, ast.FunctionDef]:
    """The top-level functions that end by returning a value (``return cnn(), 15, [stop]``,
    ``return ReduceLROnPlateau(patience=2)``), by name."""
    return {
        node.name: node
        for _, tree in trees
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and isinstance(node.body[-1], ast.Return) and node.body[-1].value
    }


UNKNOWN = ast.Constant(value=None)  # what only a run could tell: read as nothing


def returned_for(function: ast.FunctionDef, call: ast.Call) -> ast.expr | None:
    """What `function` returns for `call`, its names replaced by the values the body gives them on the way,
    read as Python would run it (:func:`values_after`): ``epochs, cbs = 5, []`` then ``if name == "early":
    epochs = 12`` and ``return model, epochs, cbs`` with ``make("early")`` gives ``(…, 12, [])``; an early
    ``if not schedule: return []`` returns there. None when the call cannot be bound to the parameters, or
    a branch it cannot decide may return."""
    found = _run(function, call, function.body)
    return found[1] if found is not None else None


def values_after(
    function: ast.FunctionDef,
    call: ast.Call,
    statements: list[ast.stmt],
    returned: dict[str, ast.FunctionDef] | None = None,
) -> dict | None:
    """{name: its value} once `statements` of `function`'s body have run for `call`, read as Python would
    run them: a branch (``if``, ``x if flag else y``) whose test compares a parameter with literals is
    decided by the call's values; any other makes what it sets unknown. None when the call cannot be bound.
    `returned`: the module's functions whose result a tuple assignment unpacks (``model, callbacks =
    builder()`` with ``builder`` bound to ``build_lr_schedule``, which returns ``model, [schedule]``)."""
    found = _run(function, call, statements, returns=False, returned=returned)
    return found[0] if found is not None else None


_GOES_ON = ast.Constant(value=Ellipsis)  # the statements ran to their end without returning


def _run(
    function: ast.FunctionDef,
    call: ast.Call,
    statements: list[ast.stmt],
    returns: bool = True,
    returned: dict[str, ast.FunctionDef] | None = None,
):
    """(the values, what a ``return`` gives or `_GOES_ON`) of running `statements` for `call`; None when the
    call cannot be bound, or (with `returns`) when a branch it cannot decide may return."""
    bound = bind_arguments(function, call, literal_only=False)
    if bound is None:
        return None
    parameters, values = bound[0], dict(bound[0])

    def run(body: list[ast.stmt]) -> ast.expr | None:
        for statement in body:
            if isinstance(statement, ast.Return) and returns:
                return substituted(statement.value, values) if statement.value else UNKNOWN
            if isinstance(statement, ast.Assign):
                _assigned(statement, values, parameters, returned or {})
            elif isinstance(statement, ast.If) and (taken := literal_truth(statement.test, parameters)) is not None:
                if (given := run(statement.body if taken else statement.orelse)) is not _GOES_ON:
                    return given
            elif returns and any(isinstance(n, ast.Return) for n in ast.walk(statement)):
                return None  # it may return here, or not: only a run could tell
            else:
                for name in stored_names(statement):
                    values[name] = UNKNOWN
        return _GOES_ON

    given = run(statements)
    return None if given is None else (values, given)


def _assigned(
    statement: ast.Assign,
    values: dict[str, ast.expr],
    parameters: dict[str, ast.expr],
    returned: dict[str, ast.FunctionDef],
) -> None:
    """``a = …`` and ``a, b = x, y``: the names set to their values (read with what is known so far; of
    ``x if flag else y``, the branch the parameters take); ``a, b = f()`` unpacks what the module's `f`
    returns for that call, one level deep."""
    target, value = statement.targets[-1], statement.value
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Call):
        value = _unpacked_call(value, values, returned)
    pairs = [(target, value)]
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
        pairs = list(zip(target.elts, value.elts, strict=True))
    for name, what in pairs:
        if isinstance(what, ast.IfExp) and (taken := literal_truth(what.test, parameters)) is not None:
            what = what.body if taken else what.orelse
        for stored in stored_names(name):
            values[stored] = substituted(what, values) if isinstance(name, ast.Name) else UNKNOWN


def _unpacked_call(value: ast.Call, values: dict[str, ast.expr], returned: dict[str, ast.FunctionDef]) -> ast.expr:
    """What ``f(…)`` returns when ``f`` (or the parameter holding it) names a function of the module that
    ends by returning a tuple; the call itself otherwise."""
    call = substituted(value, values)
    function = returned.get(call_name(call) or "") if isinstance(call, ast.Call) else None
    given = returned_for(function, call) if function is not None else None
    return given if isinstance(given, ast.Tuple) else value


def _holder(statement: ast.stmt, call: ast.Call) -> str | None:
    """What names a run handed to a helper: the key it is stored under (``results['Augmentation'] = run(…)``
    or ``results = {'Augmentation': run(…), …}``: ``augmentation``), the first name the statement assigns
    (``m2`` of ``m2, acc = run(…)``), else the label the call gives it (``run(build(), 'Rotation 20')``:
    ``rotation_20``); None when nothing does."""
    target = statement.targets[0] if isinstance(statement, ast.Assign) else None
    table = statement.value if isinstance(statement, ast.Assign) else None
    if isinstance(table, ast.Dict):
        key = next((k for k, v in zip(table.keys, table.values, strict=True) if v is call), None)
        if isinstance(key, ast.Constant):
            return _slug(key.value)
    if isinstance(target, ast.Tuple) and target.elts:
        target = target.elts[0]
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        return _slug(target.slice.value)
    return _slug(_label(call))


def _label(call: ast.Call) -> str | None:
    """The first string a call passes (``run(build(), 'Rotation 20')``: ``'Rotation 20'``), or None."""
    return next((a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)), None)


def _slug(text: object) -> str | None:
    """A run's label as a Python name (``'Augmentation légère'`` -> ``augmentation_legere``), or None."""
    if not isinstance(text, str):
        return None
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"\W+", "_", plain).strip("_").lower()
    if not slug:
        return None
    return slug if slug.isidentifier() else f"run_{slug}"


def _constants(trees: list[tuple[int | None, ast.Module]]) -> dict[str, int]:
    """Top-level integer constants (``EPOCHS = 15``) assigned once."""
    return {
        name: value.value
        for name, value in assigned_once(trees).items()
        if isinstance(value, ast.Constant) and type(value.value) is int
    }

"""A student's trainer helper seen through.

Careful students write one helper that builds, trains, records and returns a model, and call it once
per experiment: ``m_e1 = run("E1-dropout", dropout=0.25)``, ``m_e2 = run("E2", epochs=20)``, with
``def run(name, epochs=5, batch_size=128, **arch): model = build_cnn(**arch); model.fit(x, y,
epochs=epochs, batch_size=batch_size); return model``. The harness trains every model itself, so
such a call is graded as the builder call it makes (``build_cnn(dropout=0.25)``), with the epochs
and batch size it trains with as that model's declared settings.

Read statically, as a person would: the helper's parameters are bound to the call's literal
arguments and its defaults, the builder call's arguments that name a parameter take its value, and
``**arch`` forwards the keywords the helper does not name. Anything computed gives up (the call is
then left as it is).

>>> tree = ast.parse("def run(name, epochs=5, **arch):\\n    m = build(**arch)\\n    m.fit(x, y, epochs=epochs)\\n    return m")
>>> see_through(ast.parse("run('E1', epochs=9, dropout=0.3)", mode="eval").body, {"run": tree.body[0]})
SeenThrough(builder='build(dropout=0.3)', settings={'epochs': 9})
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass

from harness.util.pysource import call_name, is_literal, stored_names

TRAINING = {"fit", "fit_generator"}
SETTINGS = ("epochs", "batch_size")


@dataclass(frozen=True)
class SeenThrough:
    """What a trainer call builds (the builder call, as Python source) and trains it with."""

    builder: str
    settings: dict[str, int]


def see_through(
    call: ast.Call,
    functions: dict[str, ast.FunctionDef],
    constants: dict[str, int] | None = None,
    module: dict[str, ast.expr] | None = None,
) -> SeenThrough | None:
    """The builder call and the settings of a call of a trainer helper among `functions`; None when
    `call` is not one, or when what it builds cannot be read without running it. What the builder is
    given must be literal; the helper's other arguments (a label ``str(i)``, a seed) may be anything, and
    its epochs and batch size may be module constants (`constants`: ``EPOCHS = 8``). A configuration
    spread into the builder (``build_cnn(**config)``) may be a module name assigned once (`module`:
    ``COMBINED = dict(batchnorm=True)``)."""
    helper = functions.get(call_name(call) or "")
    fit = _fit_call(helper)
    if helper is None or fit is None or not isinstance(call.func, ast.Name):
        return None
    built = _built_here(helper, fit.func.value.id)
    bound = bind_arguments(helper, call, literal_only=False)
    if built is None or bound is None or call_name(built) == helper.name:
        return None
    values, extra = bound
    local = set(stored_names(helper))
    kwargs = helper.args.kwarg.arg if helper.args.kwarg else None
    builder = _substituted(built, values, extra, kwargs, local, module or {})
    if builder is None:
        return None
    known = {k: ast.Constant(v) for k, v in (constants or {}).items()}
    settled = {name: known.get(v.id, v) if isinstance(v, ast.Name) else v for name, v in values.items()}
    return SeenThrough(ast.unparse(builder), _settings(fit, settled))


def trained_with(
    call: ast.Call,
    helper: ast.FunctionDef,
    tables: dict[str, ast.expr] | None = None,
    constants: dict[str, int] | None = None,
) -> dict[str, int] | None:
    """The epochs and batch size a call of a helper that trains (``run(m, bs=64)`` with ``def run(m,
    bs=128, ep=5): m.fit(x, y, batch_size=bs, epochs=ep)``) trains with, its parameters bound to the
    call's literal arguments and its defaults, a parameter's key read in the dict it is given (``config[
    "epochs"]`` with ``CONFIG_AMELIORE``, a literal table of the module: `tables`); None when the helper
    fits nothing or the call cannot be bound without running anything. A helper with a fit per branch
    (``if augment: m.fit(gen.flow(x, y, batch_size=bs), epochs=ep) else: m.fit(x, y, batch_size=bs,
    epochs=ep)``) trains with what its fits agree on, a flow's batch size counting as its fit's."""
    fit = _fit_call(helper)
    bound = bind_arguments(helper, call, literal_only=False) if fit is not None else None
    if bound is None:
        return None
    # what the helper's fit writes itself counts too (``epochs=EPOCHS``, ``batch_size=64``): every model it
    # trains is trained so; a parameter's bound value wins over the module constant of the same name
    known = {k: ast.Constant(v) for k, v in (constants or {}).items()}
    values = {**known, **{n: known.get(v.id, v) if isinstance(v, ast.Name) else v for n, v in bound[0].items()}}
    found = [_settings(f, values, tables=tables or {}) for f in _fits(helper)]
    agreed: dict[str, int] = {}
    for settings in found:
        for name, value in settings.items():
            if all(other.get(name, value) == value for other in found):  # a fit that says another value: unsaid
                agreed.setdefault(name, value)
    return agreed


def generator_passed(
    call: ast.Call, helper: ast.FunctionDef, module_values: dict[str, ast.expr] | None = None
) -> ast.expr | None:
    """The generator a call of a helper trains on: what it passes for a parameter the helper fits on the
    ``.flow(…)`` of (``def evaluate_model(…, datagen=None): … model.fit(datagen.flow(x, y))``), or the
    module's generator a fit under a flag uses (``if augment: model.fit(datagen.flow(…))``: the name
    ``datagen``, for the caller to resolve), the flag a parameter the call sets (``augment=True``) or a
    module variable set before the call (`module_values`: ``utiliser_augmentation = True``); None when
    it passes none."""
    parameters = {a.arg for a in [*helper.args.posonlyargs, *helper.args.args, *helper.args.kwonlyargs]}
    bound = bind_arguments(helper, call, literal_only=False)
    if bound is None:
        return None
    said = _said(helper, call, bound[0])
    passed = next((said[name] for name in _flows(helper) if name in parameters and name in said), None)
    if passed is not None:
        return passed  # a default (None) passes nothing
    local = set(stored_names(helper))
    for branch in (n for n in ast.walk(helper) if isinstance(n, ast.If) and isinstance(n.test, ast.Name)):
        name = branch.test.id
        if name in parameters:
            flag = said.get(name)
        else:  # a module variable, unless the helper sets it itself
            flag = None if name in local else (module_values or {}).get(name)
        if isinstance(flag, ast.Constant) and flag.value:
            module_generator = [g for g in _flows(ast.Module(body=branch.body, type_ignores=[])) if g not in parameters]
            if module_generator:
                return ast.Name(id=module_generator[0], ctx=ast.Load())
    return None


def _flows(tree: ast.AST) -> list[str]:
    """The names whose ``.flow(…)`` a training call in `tree` fits on (``model.fit(datagen.flow(x, y))``)."""
    return [
        data.func.value.id
        for fit in ast.walk(tree)
        if isinstance(fit, ast.Call)
        and call_name(fit) in TRAINING
        and fit.args
        and isinstance(data := fit.args[0], ast.Call)
        and call_name(data) == "flow"
        and isinstance(data.func, ast.Attribute)
        and isinstance(data.func.value, ast.Name)
    ]


def _said(helper: ast.FunctionDef, call: ast.Call, values: dict[str, ast.expr]) -> dict[str, ast.expr]:
    """The bound values that the call itself gives, by position or keyword: a default is as if unsaid."""
    positional = [a.arg for a in [*helper.args.posonlyargs, *helper.args.args]][: len(call.args)]
    named = set(positional) | {k.arg for k in call.keywords if k.arg}
    return {name: value for name, value in values.items() if name in named}


def _fit_call(helper: ast.FunctionDef | None) -> ast.Call | None:
    """The helper's first ``x.fit(…)`` call on a variable."""
    if helper is None:
        return None
    fit = next((n for n in ast.walk(helper) if isinstance(n, ast.Call) and call_name(n) in TRAINING), None)
    if fit is None or not isinstance(fit.func, ast.Attribute) or not isinstance(fit.func.value, ast.Name):
        return None
    return fit


def flow_of(fit: ast.Call) -> ast.Call | None:
    """The ``gen.flow(x, y, batch_size=64)`` a training call trains on (its data argument), or None."""
    data = fit.args[0] if fit.args else next((k.value for k in fit.keywords if k.arg == "x"), None)
    return data if isinstance(data, ast.Call) and call_name(data) == "flow" else None


def _fits(helper: ast.FunctionDef) -> list[ast.Call]:
    """Every ``x.fit(…)`` of the helper, a flow it trains on lending the fit its batch size."""
    fits = []
    for node in ast.walk(helper):
        if isinstance(node, ast.Call) and call_name(node) in TRAINING and isinstance(node.func, ast.Attribute):
            flow = flow_of(node)
            lent = [k for k in flow.keywords if k.arg == "batch_size"] if flow is not None else []
            fits.append(ast.Call(func=node.func, args=node.args, keywords=[*node.keywords, *lent]))
    return fits


def _settings(
    fit: ast.Call, values: dict[str, ast.expr], literals: bool = True, tables: dict[str, ast.expr] | None = None
) -> dict[str, int]:
    """The fit call's integer epochs and batch size, a parameter read as its bound value (a key of one, as
    that key's value in the dict literal it is bound to) and, with `literals`, a literal written in the fit
    call itself."""
    settings = {}
    for keyword in fit.keywords:
        if keyword.arg in SETTINGS:
            if isinstance(keyword.value, ast.Name):
                value = values.get(keyword.value.id)
            elif isinstance(keyword.value, ast.Subscript):
                value = _keyed(keyword.value, values, tables or {})
            else:
                value = keyword.value if literals else None
            if isinstance(value, ast.Constant) and type(value.value) is int and value.value > 0:
                settings[keyword.arg] = value.value
    return settings


def _keyed(node: ast.Subscript, values: dict[str, ast.expr], tables: dict[str, ast.expr]) -> ast.expr | None:
    """``config["epochs"]``, `config` a parameter bound to a dict literal or to a name of one in `tables`."""
    if not isinstance(node.value, ast.Name) or not isinstance(node.slice, ast.Constant):
        return None
    table = values.get(node.value.id)
    if isinstance(table, ast.Name):
        table = tables.get(table.id)
    if not isinstance(table, ast.Dict):
        return None
    return next(
        (
            v
            for k, v in zip(table.keys, table.values, strict=True)
            if isinstance(k, ast.Constant) and k.value == node.slice.value
        ),
        None,
    )


def _built_here(helper: ast.FunctionDef, trained: str) -> ast.Call | None:
    """The one call that builds the variable the helper trains (``model = build_model(**kwargs)``), whether
    the helper returns the model, its accuracy (``return test_acc``) or nothing: it built what it trained."""
    builds = [
        n.value
        for n in ast.walk(helper)
        if isinstance(n, ast.Assign)
        and isinstance(n.value, ast.Call)
        and isinstance(n.value.func, ast.Name)
        and any(isinstance(t, ast.Name) and t.id == trained for t in n.targets)
    ]
    return builds[0] if len(builds) == 1 else None


def bind_arguments(
    helper: ast.FunctionDef, call: ast.Call, literal_only: bool = True
) -> tuple[dict[str, ast.expr], list[ast.keyword]] | None:
    """({parameter: its value}, the keywords left for ``**kwargs``), as Python would bind them; with
    `literal_only`, None unless every value is a literal."""
    arguments = helper.args
    if arguments.vararg or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    positional = [a.arg for a in [*arguments.posonlyargs, *arguments.args]]
    values: dict[str, ast.expr] = dict(zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults))
    values.update({a.arg: d for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None})
    if len(call.args) > len(positional):
        return None
    values.update(zip(positional, call.args))
    named = set(positional) | {a.arg for a in arguments.kwonlyargs}
    extra = []
    for keyword in call.keywords:
        if keyword.arg is None:
            return None
        if keyword.arg in named:
            values[keyword.arg] = keyword.value
        elif arguments.kwarg:
            extra.append(keyword)
        else:
            return None
    if literal_only and not all(is_literal(v) for v in [*values.values(), *(k.value for k in extra)]):
        return None
    return values, extra


def _substituted(
    built: ast.Call,
    values: dict[str, ast.expr],
    extra: list[ast.keyword],
    kwargs: str | None,
    local: set[str],
    module: dict[str, ast.expr],
) -> ast.Call | None:
    """The builder call with the helper's parameters replaced by their values and ``**kwargs`` spelled
    out; None when it reads one of the helper's own variables (only a run could tell its value)."""

    def value(node: ast.expr) -> ast.expr | None:
        if isinstance(node, ast.Name) and node.id in values:
            return values[node.id] if is_literal(values[node.id]) else None
        if isinstance(node, ast.Name) and node.id in local:
            return None
        return node if is_literal(node) or isinstance(node, (ast.Name, ast.Attribute)) else None

    args = [value(a) for a in built.args]
    keywords = []
    for keyword in built.keywords:
        if keyword.arg is None:
            bound = values.get(keyword.value.id) if isinstance(keyword.value, ast.Name) else None
            spread = _spread_keywords(bound, module)
            if spread is not None:
                # ``make_model(**kwargs)`` with ``kwargs`` bound to ``{"bn": True}``: ``make_model(bn=True)``
                keywords += spread
                continue
            if not (isinstance(keyword.value, ast.Name) and keyword.value.id == kwargs):
                return None
            if not all(is_literal(k.value) for k in extra):
                return None
            keywords += extra
        else:
            keywords.append(ast.keyword(arg=keyword.arg, value=value(keyword.value)))
    if any(a is None for a in args) or any(k.value is None for k in keywords):
        return None
    return ast.Call(func=copy.deepcopy(built.func), args=args, keywords=keywords)


def _spread_keywords(node: ast.expr | None, module: dict[str, ast.expr]) -> list[ast.keyword] | None:
    """The keywords ``**node`` passes when they are known without running anything: a dict literal with
    string keys, ``dict(bn=True)``, or a module name assigned once to either, every value a literal."""
    if isinstance(node, ast.Name):
        node = module.get(node.id)
    if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
        pairs = [(k.value, v) for k, v in zip(node.keys, node.values, strict=True)]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        pairs = [(k.arg, k.value) for k in node.keywords]
    else:
        return None
    if not all(name and is_literal(value) for name, value in pairs):
        return None
    return [ast.keyword(arg=name, value=value) for name, value in pairs]


def seed_parameters(helper: ast.FunctionDef) -> set[str]:
    """The helper's parameters that only seed its run (``keras.utils.set_random_seed(seed)``): two calls
    that differ only there train the same model again."""
    parameters = {a.arg for a in [*helper.args.posonlyargs, *helper.args.args, *helper.args.kwonlyargs]}
    seeding = {
        id(argument)
        for node in ast.walk(helper)
        if isinstance(node, ast.Call) and "seed" in (call_name(node) or "").lower()
        for argument in [*node.args, *(k.value for k in node.keywords)]
    }
    used: dict[str, list[bool]] = {}
    for node in ast.walk(helper):
        if isinstance(node, ast.Name) and node.id in parameters and isinstance(node.ctx, ast.Load):
            used.setdefault(node.id, []).append(id(node) in seeding)
    return {name for name, uses in used.items() if all(uses)}

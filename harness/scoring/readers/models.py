"""Comparing built models for the rubric: which of the assignment's five categories a model changes.

Everything is read from what the harness measured on the *built* model (``ModelResult.spec``:
layers and their salient settings, optimizer, learning rate) and from its declared training
settings (``TRAINING_CONFIG``), never from names or comments. A little is read statically from
the kept code (a learning-rate schedule object passed to the optimizer, an ``ImageDataGenerator``'s
ranges), because the built model does not keep it.

>>> features(ModelResult(name="m", role="improved")).convs
()
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from harness.results import IngestResult, ModelResult
from harness.util.i18n import Translator
from harness.util.pysource import parse as parse_python

CATEGORIES = ("architecture", "regularization", "hyperparameters", "augmentation", "training")

CONV_LAYERS = {"Conv1D", "Conv2D", "Conv3D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose"}
POOL_LAYERS = {"MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Flatten"}
DROPOUT_LAYERS = {"Dropout", "SpatialDropout2D", "GaussianDropout", "AlphaDropout", "GaussianNoise"}
NORM_LAYERS = {"BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization"}
ACTIVATION_LAYERS = {"ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"}
AUGMENTATION_LAYER = re.compile(r"^Random\w+$")
# a loss that softens its targets: CategoricalCrossentropy(label_smoothing=0.1), a regularisation of the output
LABEL_SMOOTHING = re.compile(r"\blabel_smoothing\s*=\s*(\d*\.?\d+)")
SCHEDULE = re.compile(
    r"\b(ExponentialDecay|CosineDecay\w*|PiecewiseConstantDecay|PolynomialDecay|InverseTimeDecay"
    r"|LearningRateSchedule)\b"
)
GENERATOR_RANGES = (
    "rotation_range",
    "zoom_range",
    "width_shift_range",
    "height_shift_range",
    "shear_range",
    "horizontal_flip",
    "vertical_flip",
    "brightness_range",
)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        if len(value) == 2 and all(isinstance(v, (int, float)) for v in value) and value[0] == -value[1] != 0:
            return f"±{_fmt(float(value[1]))}"  # a Random* layer's symmetric factor
        return "×".join(_fmt(v) for v in value)
    return str(value)


def _kernel(config: dict) -> str:
    kernel = config.get("kernel_size")
    if isinstance(kernel, int):
        kernel = (kernel, kernel)
    return _fmt(kernel) if kernel else "?"


def _regularizer(config: dict) -> str | None:
    # a separable convolution's weights are its depthwise and pointwise kernels
    reg = config.get("kernel_regularizer") or config.get("depthwise_regularizer") or config.get("pointwise_regularizer")
    if not reg:
        return None
    if isinstance(reg, dict):
        values = {k: v for k, v in (reg.get("config") or {}).items() if isinstance(v, (int, float)) and v}
        return f"{reg.get('class_name', '?')}({', '.join(_fmt(v) for v in values.values())})"
    return str(reg)


@dataclass(frozen=True)
class Features:
    """What a model is, in the terms of the five categories."""

    convs: tuple[str, ...] = ()  # "32 3×3" per convolution layer
    conv_kinds: tuple[str, ...] = ()  # "Conv2D", "SeparableConv2D" per convolution layer
    kernels: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    dense: tuple[str, ...] = ()  # hidden dense widths (the output layer left out)
    pooling: tuple[str, ...] = ()
    padding: frozenset[str] = frozenset()
    activations: frozenset[str] = frozenset()
    dropout: tuple[str, ...] = ()  # "Dropout(0.25)" in order
    norms: tuple[str, ...] = ()  # normalisation layer names in order
    norm_after: frozenset[str] = frozenset()  # "Conv2D", "Dense": each such layer is followed by a normalisation
    regularizers: tuple[str, ...] = ()  # "L2(0.0001)" per regularised layer
    augmentation_layers: tuple[str, ...] = ()
    optimizer: str | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    epochs: int | None = None
    callbacks: tuple[str, ...] = ()
    schedule: str | None = None  # a LearningRateSchedule object passed to the optimizer
    label_smoothing: float = 0.0  # of the loss, read in the factory's source
    augmentation: str | None = None  # declared in TRAINING_CONFIG
    known: bool = True  # False: the model was never built (no spec)
    extra: dict = field(default_factory=dict, compare=False)


def features(model: ModelResult, epochs: int = 5, batch_size: int = 128, static: dict | None = None) -> Features:
    """The model's features; `epochs` and `batch_size` are the protocol's defaults for undeclared ones."""
    static = static or {}
    declared = model.settings.declared if model.settings else {}
    callbacks = tuple(sorted(model.settings.callbacks)) if model.settings else ()
    augmentation = model.settings.augmentation if model.settings else None
    if augmentation and static.get("generator"):
        augmentation = f"{augmentation}({static['generator']})"
    common = dict(
        batch_size=int(declared.get("batch_size") or batch_size),
        epochs=int(declared.get("epochs") or epochs),
        callbacks=callbacks,
        augmentation=augmentation,
        # in the factory's source, else in the trained model's optimizer (a model found by running the code)
        schedule=static.get("schedule") or (model.spec.schedule if model.spec else None),
        label_smoothing=float(static.get("label_smoothing") or 0.0),
    )
    if model.spec is None:
        return Features(known=False, **common)
    layers = model.spec.layers
    convs, kernels, filters, dense, pooling, dropout, norms, regs, augment = [], [], [], [], [], [], [], [], []
    padding, activations, norm_after, conv_kinds = set(), set(), set(), []
    followed = {"Conv": [0, 0], "Dense": [0, 0]}  # kind -> [layers, followed by a normalisation]
    dense_layers = [i for i, layer in enumerate(layers) if layer.class_name == "Dense"]
    for index, layer in enumerate(layers):
        name, config = layer.class_name, layer.config
        activation = config.get("activation")
        if name in CONV_LAYERS:
            kernel = _kernel(config)
            convs.append(f"{config.get('filters', '')} {kernel}".strip())
            conv_kinds.append(name)
            kernels.append(kernel)
            filters.append(str(config.get("filters", "?")))
            padding.add(str(config.get("padding", "valid")))
        elif name == "Dense" and index != (dense_layers[-1] if dense_layers else -1):
            dense.append(str(config.get("units", "?")))
        elif name in POOL_LAYERS:
            pooling.append(name)
        elif name in DROPOUT_LAYERS:
            rate = config.get("rate")
            dropout.append(f"{name}({_fmt(rate)})" if rate is not None else name)
        elif name in NORM_LAYERS:
            norms.append(name)
        elif AUGMENTATION_LAYER.match(name):
            factors = [config[k] for k in ("factor", "height_factor", "width_factor") if k in config]
            augment.append(f"{name}({', '.join(_fmt(f) for f in factors)})" if factors else name)
        elif name in ACTIVATION_LAYERS:
            activations.add(name.lower())
        if name == "Activation" and activation:
            activations.add(str(activation))
        elif name in CONV_LAYERS or (name == "Dense" and index != dense_layers[-1]):
            if activation and activation != "linear":
                activations.add(str(activation))
            kind = "Conv" if name in CONV_LAYERS else "Dense"
            followed[kind][0] += 1
            nxt = [later.class_name for later in layers[index + 1 : index + 3]]
            if any(n in NORM_LAYERS for n in nxt[:2]) and not (nxt and (nxt[0] in CONV_LAYERS or nxt[0] == "Dense")):
                followed[kind][1] += 1
        reg = _regularizer(config)
        if reg:
            regs.append(reg)
    for kind, (total, with_norm) in followed.items():
        if total and with_norm == total and norms:
            norm_after.add("Conv2D" if kind == "Conv" else "Dense")
    return Features(
        convs=tuple(convs),
        conv_kinds=tuple(conv_kinds),
        kernels=tuple(kernels),
        filters=tuple(filters),
        dense=tuple(dense),
        pooling=tuple(pooling),
        padding=frozenset(padding),
        activations=frozenset(activations),
        dropout=tuple(dropout),
        norms=tuple(norms),
        norm_after=frozenset(norm_after),
        regularizers=tuple(regs),
        augmentation_layers=tuple(augment),
        optimizer=model.spec.optimizer,
        learning_rate=model.spec.learning_rate,
        **common,
    )


# the words a report names a model by when one technique sets it apart ("le modèle avec BatchNormalization",
# "the dropout model"): a layer or setting the model has and the model it changes has not
NAMING_WORDS = {
    "dropout": ("dropout",),
    "BatchNormalization": ("batchnorm", "batchnormalization", "batch normalization", "batch normalisation", "bn"),
    "augmentation": ("augmentation", "augmented", "augmente"),
    "L1": ("l1",),
    "L2": ("l2",),
    "label_smoothing": ("label smoothing", "smoothing"),
}


def naming_words(new: Features, old: Features) -> set[str]:
    """The words (plain, lower case) a student may name `new` by: the techniques it adds to `old`, and its
    optimizer and callbacks where they differ."""
    added = {
        "dropout": bool(new.dropout) and not old.dropout,
        "BatchNormalization": "BatchNormalization" in new.norms and "BatchNormalization" not in old.norms,
        "augmentation": bool(new.augmentation_layers or new.augmentation)
        and not (old.augmentation_layers or old.augmentation),
        "L1": any("L1" in r for r in new.regularizers) and not any("L1" in r for r in old.regularizers),
        "L2": any("L2" in r for r in new.regularizers) and not any("L2" in r for r in old.regularizers),
        "label_smoothing": new.label_smoothing > 0 and not old.label_smoothing,
    }
    words = {w for technique, present in added.items() if present for w in NAMING_WORDS[technique]}
    if new.optimizer and (old.optimizer or "").lower() != new.optimizer.lower():
        words.add(new.optimizer.lower())
    words |= {c.lower() for c in new.callbacks if c not in old.callbacks}
    return words


def _seq(values) -> str:
    return ", ".join(values) if values else "—"


def _counted(values: tuple[str, ...]) -> str:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in counts.items()) or "—"


class Change(NamedTuple):
    """One difference between two models: its category, the technique it uses (``Dropout``,
    ``filters``, ``learning_rate``…: the assignment's list of modifications) and its words."""

    category: str
    technique: str
    text: str


def differences(new: Features, old: Features, t: Translator) -> dict[str, list[str]]:
    """Category -> the exact differences from `old` to `new`, in the report's language."""
    return grouped(changes(new, old, t))


def grouped(found: list[Change]) -> dict[str, list[str]]:
    """Category -> the words of its changes, the categories in their usual order."""
    by_category: dict[str, list[str]] = {}
    for change in found:
        by_category.setdefault(change.category, []).append(change.text)
    return {c: by_category[c] for c in CATEGORIES if c in by_category}


def changes(new: Features, old: Features, t: Translator) -> list[Change]:
    """Each difference from `old` to `new` (:class:`Change`), in the report's language: the built models'
    (when both are known), then their training settings'."""
    found: list[Change] = []
    if new.known and old.known:
        _architecture_changes(found, new, old, t)
        _regularization_changes(found, new, old, t)
        _optimizer_changes(found, new, old, t)
    if new.batch_size != old.batch_size:
        text = t("diff_batch_size", before=old.batch_size, after=new.batch_size)
        found.append(Change("hyperparameters", "batch_size", text))
    if new.augmentation != old.augmentation:
        text = t("rb_diff_augmentation", before=old.augmentation or "—", after=new.augmentation or "—")
        found.append(Change("augmentation", "augmentation", text))
    _training_changes(found, new, old, t)
    return found


def _regularization_changes(found: list[Change], new: Features, old: Features, t: Translator) -> None:
    """Dropout-type and normalisation layers, L1/L2 penalties; and augmentation layers, in the model too."""
    layers: list[tuple[str, str]] = []  # (layer, its change)
    dropout_new, dropout_old = [d.split("(")[0] for d in new.dropout], [d.split("(")[0] for d in old.dropout]
    _layer_changes(layers, dropout_new, dropout_old, t, new.dropout, old.dropout)
    _layer_changes(layers, list(new.norms), list(old.norms), t, (), (), after=new.norm_after - old.norm_after)
    found += [Change("regularization", layer, text) for layer, text in layers]
    if new.regularizers != old.regularizers:
        if new.regularizers:
            what = _counted(tuple(sorted(set(new.regularizers))))
            text = t("rb_diff_regularizer", what=what, count=len(new.regularizers), before=len(old.regularizers))
        else:
            text = t("rb_diff_regularizer_removed", count=len(old.regularizers))
        found.append(Change("regularization", "regularizer", text))
    if new.label_smoothing != old.label_smoothing:
        text = t("rb_diff_label_smoothing", before=old.label_smoothing, after=new.label_smoothing)
        found.append(Change("regularization", "label_smoothing", text))
    if new.augmentation_layers != old.augmentation_layers:
        before, after = _seq(old.augmentation_layers), _seq(new.augmentation_layers)
        found.append(
            Change("augmentation", "augmentation", t("rb_diff_augmentation_layers", before=before, after=after))
        )


def _optimizer_changes(found: list[Change], new: Features, old: Features, t: Translator) -> None:
    if (new.optimizer or "").lower() != (old.optimizer or "").lower() and new.optimizer and old.optimizer:
        text = t("diff_optimizer", before=old.optimizer, after=new.optimizer)
        found.append(Change("hyperparameters", "optimizer", text))
    lr_new, lr_old = new.learning_rate, old.learning_rate
    if lr_new and lr_old and abs(lr_new - lr_old) > 1e-6 * max(lr_new, lr_old) and not new.schedule:
        found.append(Change("hyperparameters", "learning_rate", t("diff_learning_rate", before=lr_old, after=lr_new)))


def _architecture_changes(found: list[Change], new: Features, old: Features, t: Translator) -> None:
    def add(technique: str, text: str) -> None:
        found.append(Change("architecture", technique, text))

    # a convolution added or removed brings its own filters and kernel: one technique, not three
    layered = len(new.convs) != len(old.convs)
    if layered:
        add("convs", t("rb_diff_convs", before=len(old.convs), after=len(new.convs)))
    if new.filters != old.filters:
        add("convs" if layered else "filters", t("rb_diff_filters", before=_seq(old.filters), after=_seq(new.filters)))
    if sorted(set(new.kernels)) != sorted(set(old.kernels)):
        before, after = _seq(sorted(set(old.kernels))), _seq(sorted(set(new.kernels)))
        add("convs" if layered else "kernels", t("rb_diff_kernels", before=before, after=after))
    if set(new.conv_kinds) != set(old.conv_kinds) and new.convs and old.convs:  # Conv2D → SeparableConv2D
        add("convs", t("rb_diff_conv_kinds", before=_counted(old.conv_kinds), after=_counted(new.conv_kinds)))
    if new.dense != old.dense:
        add("dense", t("rb_diff_dense", before=_seq(old.dense), after=_seq(new.dense)))
    if new.pooling != old.pooling:
        add("pooling", t("rb_diff_pooling", before=_counted(old.pooling), after=_counted(new.pooling)))
    if new.padding != old.padding and new.convs and old.convs:
        add("padding", t("rb_diff_padding", before=_seq(sorted(old.padding)), after=_seq(sorted(new.padding))))
    if new.activations != old.activations:
        before, after = _seq(sorted(old.activations)), _seq(sorted(new.activations))
        add("activations", t("rb_diff_activations", before=before, after=after))


# a callback that decides how long to train is the technique "epochs"; one that moves the learning rate, "schedule"
EPOCH_CALLBACKS = {"EarlyStopping"}


def _training_changes(found: list[Change], new: Features, old: Features, t: Translator) -> None:
    if new.epochs != old.epochs:
        found.append(Change("training", "epochs", t("diff_epochs", before=old.epochs, after=new.epochs)))
    if new.callbacks != old.callbacks:
        added = [c for c in new.callbacks if c not in old.callbacks]
        removed = [c for c in old.callbacks if c not in new.callbacks]
        for key, names in (("rb_diff_callbacks_added", added), ("rb_diff_callbacks_removed", removed)):
            if names:
                technique = "epochs" if set(names) <= EPOCH_CALLBACKS else "schedule"
                found.append(Change("training", technique, t(key, callbacks=", ".join(names))))
    if new.schedule != old.schedule:
        text = t("rb_diff_schedule", before=old.schedule or "—", after=new.schedule or "—")
        found.append(Change("training", "schedule", text))


def _layer_changes(
    out: list[tuple[str, str]],
    new_names: list[str],
    old_names: list[str],
    t: Translator,
    new_detail: tuple,
    old_detail: tuple,
    after: frozenset = frozenset(),
) -> None:
    for name in sorted(set(new_names) | set(old_names)):
        n_new, n_old = new_names.count(name), old_names.count(name)
        if n_new > n_old:
            detail = ""
            # in the layers' own notation, Dropout(0.25): code reads the same in every language
            calls = [d for d in new_detail if d.startswith(name + "(")]
            if calls:
                detail = f" ({', '.join(calls)})"
            if after:
                detail += t("rb_diff_after_each", layers=", ".join(sorted(after)))
            out.append((name, t("rb_diff_adds", layer=name, count=n_new - n_old, detail=detail)))
        elif n_new < n_old:
            out.append((name, t("rb_diff_removes", layer=name, count=n_old - n_new)))
        else:
            before = [d for d in old_detail if d.startswith(name + "(")]
            now = [d for d in new_detail if d.startswith(name + "(")]
            if before != now:
                out.append((name, t("rb_diff_rates", layer=name, before=_seq(before), after=_seq(now))))


# --------------------------------------------------------------------------- static details from the code


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def reachable_source(tree: ast.Module, source: str, roots: list[ast.AST], depth: int = 3) -> list[ast.AST]:
    """`roots` and the student's functions they call or name, `depth` levels deep."""
    functions = _functions(tree)
    seen: list[ast.AST] = []
    frontier = list(roots)
    for _ in range(depth + 1):
        next_frontier = []
        for node in frontier:
            if node in seen:
                continue
            seen.append(node)
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and sub.id in functions and functions[sub.id] not in seen:
                    next_frontier.append(functions[sub.id])
        frontier = next_frontier
    return seen


def training_config_entries(tree: ast.Module) -> dict[str, ast.AST]:
    """TRAINING_CONFIG's value node per factory name (the last assignment wins, as when run)."""
    entries: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named = any(isinstance(t, ast.Name) and t.id == "TRAINING_CONFIG" for t in targets)
            if named and isinstance(node.value, ast.Dict):
                entries = {}
                for key, value in zip(node.value.keys, node.value.values, strict=True):
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        entries[key.value] = value
    return entries


def static_details(ingest: IngestResult) -> dict[str, dict]:
    """Per factory: {"schedule": "ExponentialDecay", "generator": "rotation_range=10, …",
    "nodes": [AST nodes of its code], "config_nodes": [of its TRAINING_CONFIG entry]}."""
    try:
        tree = parse_python(ingest.module_source)
    except SyntaxError:
        return {}
    source = ingest.module_source
    functions = _functions(tree)
    entries = training_config_entries(tree)
    details: dict[str, dict] = {}
    for factory in ingest.factories:
        root = functions.get(factory.name)
        nodes = reachable_source(tree, source, [root]) if root else []
        config_nodes = reachable_source(tree, source, [entries[factory.name]]) if factory.name in entries else []
        text = "\n".join(ast.get_source_segment(source, n) or "" for n in nodes)
        schedule = SCHEDULE.search(text)
        smoothing = LABEL_SMOOTHING.search(text)
        generator = None
        for node in config_nodes:
            for call in ast.walk(node):
                name = getattr(call.func, "id", getattr(call.func, "attr", "")) if isinstance(call, ast.Call) else ""
                if name == "ImageDataGenerator":
                    ranges = [
                        f"{k.arg}={ast.get_source_segment(source, k.value)}"
                        for k in call.keywords
                        if k.arg in GENERATOR_RANGES
                    ]
                    generator = ", ".join(ranges) or None
        details[factory.name] = {
            "schedule": schedule.group(1) if schedule else None,
            "label_smoothing": float(smoothing.group(1)) if smoothing else None,
            "generator": generator,
            "nodes": nodes,
            "config_nodes": config_nodes,
        }
    return details

"""Top-level model discovery: notebooks that build their models in cells, without factory functions.

Most real coursework writes ``model = Sequential([...])``, ``model.compile(...)`` and
``model.fit(...)`` straight in cells. For such a notebook the harness runs the code cells, in
order, in a sandboxed worker (``python -m harness.ingest.discovery JOB.json``) with Keras's training
intercepted:

* ``Model.compile`` runs as usual and records the optimizer and loss;
* ``Model.fit`` (and ``fit_generator``) does **not** train: it records the model's architecture
  (``model.to_json()``), its compile settings and the fit settings (epochs, batch size,
  callbacks, an ``ImageDataGenerator`` passed as data), and returns an empty ``History``;
* ``evaluate``, ``predict`` and friends return zeros at once, ``save`` writes nothing.

Each fitted model becomes a factory of a synthesised module (its architecture rebuilt with
``keras.models.model_from_json``, compiled as the notebook compiled it, its fit settings as a
``TRAINING_CONFIG`` entry), and the normal train stage retrains it under the protocol like any
other factory. The record says which cell built, compiled and fitted each model, and what could
not be reproduced. MNIST comes from the mounted subset through the same injected loader as
``--execute`` (harness/execute.py); shell, magic and Colab-only lines are not run.

>>> record, source = discover_models(ingest, data_file, scratch)    # doctest: +SKIP
>>> [(m.factory, m.built_cell) for m in record.models]            # doctest: +SKIP
[('create_baseline_model', 4), ('create_improved_model_1', 7)]
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.util.pysource import parse as parse_python
from harness.results import CellRun, DiscoveredModel, DiscoveryRecord, Factory, IngestResult

DISCOVERY_TRAIN_IMAGES = 1000
DISCOVERY_TEST_IMAGES = 200
CELL_TIMEOUT_S = 60.0
DEADLINE_S = 300.0
MAX_MODELS = 12
BASELINE_NAME = re.compile(r"(?i)(base|ref|r[ée]f[ée]rence|initial|original)")
SERIALISABLE_CALLBACKS = {"EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN"}
FILE_CALLBACKS = {"ModelCheckpoint", "TensorBoard", "CSVLogger", "BackupAndRestore"}


@dataclass(frozen=True)
class DiscoverOptions:
    cell_timeout_s: float = CELL_TIMEOUT_S
    deadline_s: float = DEADLINE_S
    threads: int = 1
    use_bubblewrap: bool | None = None


# --------------------------------------------------------------------------- the grading process's side

def discover_models(ingest: IngestResult, notebook: Path, data: Path, scratch: Path,
                    options: DiscoverOptions = DiscoverOptions(), limits=None) -> tuple[DiscoveryRecord, str]:
    """Run the notebook's code cells with training intercepted; the record and the synthesised module."""
    import shutil

    from harness.resources import bundled
    from harness.ingest.execution import neutralise
    from harness.ingest.read import _blank_shell_and_magic_lines
    from harness.sandbox import run_command
    from harness.sandbox import Limits, wrap

    limits = limits or Limits()
    started = time.monotonic()
    cells = []
    for code in ingest.code_cells:
        source = _blank_shell_and_magic_lines(code.source, code.cell, [])
        source, _ = neutralise(source, code.cell or 0, shell=False)
        cells.append({"cell": code.cell, "source": source})
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    reference = scratch / "reference_baseline.py"
    reference.write_text(bundled("reference", "baseline.py").read_text(encoding="utf-8"), encoding="utf-8")
    events_path = scratch / "events.jsonl"
    job = {"cells": cells, "data": str(data), "events": str(events_path), "cell_timeout_s": options.cell_timeout_s,
           "reference": str(reference), "threads": options.threads}
    job_path = scratch / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    argv, env, isolation = wrap([sys.executable, "-m", "harness.ingest.discovery", str(job_path)], scratch=scratch,
                                readable=[data], threads=options.threads, use_bubblewrap=options.use_bubblewrap,
                                limits=limits)
    outcome = run_command(argv, env, scratch, limits=limits, threads=options.threads,
                          watch=lambda events, elapsed: (f"running the notebook took more than {options.deadline_s:.0f} s"
                                                         if elapsed > options.deadline_s else None),
                          events_path=events_path, isolation=isolation, bubblewrap=Path(argv[0]).name == "bwrap")
    record = record_from_events(outcome.events, ingest, isolation, time.monotonic() - started,
                                outcome.stopped_because, outcome)
    recorded = next((e["models"] for e in outcome.events if e["event"] == "models"), [])
    source = synthesise(recorded, record, ingest) if record.models else ""
    return record, source


def record_from_events(events: list[dict], ingest: IngestResult, isolation: str, seconds: float,
                       stopped: str | None, outcome=None) -> DiscoveryRecord:
    cells = [CellRun(cell=e["cell"], status=e["status"], seconds=e.get("seconds"), error_name=e.get("error_name"),
                     error_message=e.get("error_message"), output=e.get("output", ""))
             for e in events if e["event"] == "cell_done"]
    done = {c.cell for c in cells}
    for code in ingest.code_cells:
        if code.cell not in done and code.source.strip():
            cells.append(CellRun(cell=code.cell or 0, status="not_run",
                                 error_message="not reached: " + (stopped or "the worker stopped")))
    recorded = next((e["models"] for e in events if e["event"] == "models"), None)
    base = dict(cells=cells, seconds=round(seconds, 2), sandbox=isolation)
    if recorded is None:
        tail = (getattr(outcome, "log_tail", "") or "").strip().splitlines()[-3:]
        status = "timeout" if stopped else "error"
        return DiscoveryRecord(status=status, reason=stopped or ("the discovery worker ended early"
                                                                 + (": " + " | ".join(tail)[:400] if tail else "")),
                               **base)
    models, not_fitted = [], next((e.get("not_fitted", []) for e in events if e["event"] == "models"), [])
    for entry in recorded:
        models.append(DiscoveredModel(
            factory=entry["factory"], role=entry["role"], variable=entry.get("variable"),
            built_cell=entry.get("built_cell"), compiled_cell=entry.get("compiled_cell"),
            fitted_cell=entry.get("fitted_cell"), params=entry.get("params"), fit=entry.get("fit_summary", {}),
            notes=entry.get("notes", [])))
    usable = [m for m in models if not any(n.startswith("not graded") for n in m.notes)]
    if not usable:
        failed = [c for c in cells if c.status != "ok"]
        why = (f"; cell {failed[0].cell} failed: {failed[0].error_name}: {failed[0].error_message}" if failed else "")
        return DiscoveryRecord(status="no_models", models=models, not_fitted=not_fitted,
                               reason="running the notebook built no model that was compiled and fitted" + why, **base)
    return DiscoveryRecord(status="ok", models=models, not_fitted=not_fitted, **base)


def synthesise(recorded: list[dict], record: DiscoveryRecord, ingest: IngestResult) -> str:
    """A module of zero-argument factories and a TRAINING_CONFIG, from the recorded models.

    The notebook's own definitions (imports, functions, classes, constants: the statically kept
    code) come first, so that custom layers and schedule functions resolve.
    """
    usable = {m.factory for m in record.models if not any(n.startswith("not graded") for n in m.notes)}
    entries = [e for e in recorded if e["factory"] in usable]
    lines = [
        f"# Factories synthesised by the harness from the models {ingest.main_file} builds at top level",
        "# (harness/discover.py): architecture from model.to_json(), compiled as the notebook compiled it,",
        "# weights initialised afresh under the protocol's seed; fit settings in TRAINING_CONFIG.",
        ingest.module_source,
        "import json as _harness_json",
        "import keras as _harness_keras",
    ]
    if any('"Lambda"' in e["model_json"] for e in entries):
        lines.append("_harness_keras.config.enable_unsafe_deserialization()  # Lambda layers (sandboxed worker)")
    payload = {e["factory"]: {"model_json": e["model_json"], "compile": e.get("compile", {})} for e in entries}
    lines += [
        f"_HARNESS_MODELS = _harness_json.loads({json.dumps(payload)!r})",
        "",
        "",
        "def _harness_build(name):",
        "    spec = _HARNESS_MODELS[name]",
        "    custom = {k: v for k, v in globals().items() if isinstance(v, type)}",
        "    model = _harness_keras.models.model_from_json(spec['model_json'], custom_objects=custom)",
        "    compiled = spec['compile']",
        "    if compiled.get('optimizer'):",
        "        optimizer = _harness_keras.optimizers.deserialize(compiled['optimizer'])",
        "        loss = compiled.get('loss') or 'categorical_crossentropy'",
        "        if isinstance(loss, dict):",
        "            loss = _harness_keras.losses.deserialize(loss)",
        "        model.compile(optimizer=optimizer, loss=loss, metrics=['accuracy'])",
        "    return model",
        "",
    ]
    configs = {}
    for entry in entries:
        model = next(m for m in record.models if m.factory == entry["factory"])
        where = ", ".join(part for part in (
            f"built in cell {model.built_cell}" if model.built_cell else "",
            f"compiled in cell {model.compiled_cell}" if model.compiled_cell else "",
            f"fitted in cell {model.fitted_cell}" if model.fitted_cell else "") if part)
        variable = f" (variable `{model.variable}`)" if model.variable else ""
        lines += ["", f"def {entry['factory']}():",
                  f"    \"\"\"The notebook's model{variable}: {where}.\"\"\"",
                  f"    return _harness_build({entry['factory']!r})", ""]
        config = _config_source(entry)
        if config:
            name = f"_harness_config_{entry['factory']}"
            lines += ["", f"def {name}():", f"    return {config}", ""]
            configs[entry["factory"]] = name
        for extra in entry.get("schedule_sources", []):
            lines += ["", extra, ""]
    lines.append("TRAINING_CONFIG = {" + ", ".join(f"{k!r}: {v}" for k, v in configs.items()) + "}")
    return "\n".join(lines) + "\n"


def _config_source(entry: dict) -> str:
    fit = entry.get("fit", {})
    parts = []
    for key in ("epochs", "batch_size"):
        if isinstance(fit.get(key), int):
            parts.append(f"{key!r}: {fit[key]}")
    callbacks = []
    for callback in fit.get("callbacks", []):
        if callback.get("source"):
            callbacks.append(callback["source"])
    if callbacks:
        parts.append("'callbacks': [" + ", ".join(callbacks) + "]")
    generator = fit.get("generator")
    if generator and generator.get("source"):
        parts.append(f"'augmentation': {generator['source']}")
    return "{" + ", ".join(parts) + "}" if parts else ""


def apply_discovery(ingest: IngestResult, record: DiscoveryRecord, source: str) -> IngestResult:
    """The ingest result with the discovered models as its factories (or still invalid, with why)."""
    usable = [m for m in record.models if not any(n.startswith("not graded") for n in m.notes)]
    if record.status != "ok" or not usable:
        reason = (ingest.reason or "").rstrip(".") + ". Running the notebook to find models built at top level: " + \
            (record.reason or record.status) + "."
        return ingest.model_copy(update={"discovery": record, "reason": reason})
    factories = [Factory(name=m.factory, role=m.role, cell=m.built_cell, line=1, has_docstring=False) for m in usable]
    return ingest.model_copy(update={
        "status": "ok", "reason": None, "factories": factories, "module_source": source, "line_map": [],
        "factory_source": "discovered", "discovery": record,
        "has_training_config": any(m.fit for m in usable)})


# --------------------------------------------------------------------------- the worker's side

class _Recorder:
    """Keras's training, evaluation and saving replaced by recorders (in the sandboxed worker)."""

    def __init__(self, keras, np, events) -> None:
        self.keras, self.np, self.events = keras, np, events
        self.cell: int | None = None
        self.namespace: dict = {}
        self.seen: dict[int, dict] = {}      # id(model) -> what is known about it
        self.order: list[int] = []           # fitted models, in order of their first fit
        self.objects: dict[int, Any] = {}    # keep the models alive (ids stay unique)

    def info(self, model) -> dict:
        key = id(model)
        if key not in self.seen:
            self.seen[key] = {"built_cell": self.cell, "notes": []}
            self.objects[key] = model
        return self.seen[key]

    def scan(self) -> None:
        """Models now in the notebook's namespace (one level into lists and dicts) were built by this cell."""
        Model = self.keras.Model
        for value in list(self.namespace.values()):
            items = [value]
            if isinstance(value, (list, tuple)):
                items = list(value)[:50]
            elif isinstance(value, dict):
                items = list(value.values())[:50]
            for item in items:
                if isinstance(item, Model):
                    self.info(item)

    def variable(self, model) -> str | None:
        for name, value in self.namespace.items():
            if value is model and not name.startswith("_"):
                return name
        return None

    def install(self) -> None:
        keras, np, recorder = self.keras, self.np, self
        Model = keras.Model
        original_compile = Model.compile
        import inspect

        fit_signature = inspect.signature(Model.fit)

        def compile(self, *args, **kwargs):
            result = original_compile(self, *args, **kwargs)
            info = recorder.info(self)
            info["compiled_cell"] = recorder.cell
            info["compile"] = recorder.compile_settings(self)
            return result

        def fit(self, *args, **kwargs):
            info = recorder.info(self)
            try:
                bound = fit_signature.bind(self, *args, **kwargs)
                arguments = dict(bound.arguments)
            except TypeError:
                arguments = dict(kwargs)
            if "fitted_cell" in info:
                info["notes"].append(f"fitted again in cell {recorder.cell} (continued training): "
                                     "the harness trains it once, with the first fit's settings")
            else:
                info["fitted_cell"] = recorder.cell
                info["variable"] = recorder.variable(self)
                info["fit"] = recorder.fit_settings(arguments, info["notes"])
                recorder.order.append(id(self))
            epochs = arguments.get("epochs") or 1
            history = keras.callbacks.History()
            history.set_model(self)
            history.epoch = list(range(int(epochs) if isinstance(epochs, int) else 1))
            history.history = {k: [0.0] * len(history.epoch) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
            history.params = {"epochs": len(history.epoch), "verbose": 0, "steps": 1}
            return history

        def evaluate(self, *args, return_dict=False, **kwargs):
            if return_dict:
                return {"loss": 0.0, "accuracy": 0.0}
            return [0.0, 0.0] if getattr(self, "compiled", False) else 0.0

        def predict(self, x=None, *args, **kwargs):
            n = recorder.length(x)
            classes = 10
            try:
                classes = int(self.output_shape[-1]) or 10
            except Exception:
                pass
            return np.full((n, classes), 1.0 / classes, dtype="float32")

        def no_op(self, *args, **kwargs):
            return None

        Model.compile = compile
        Model.fit = fit
        Model.fit_generator = fit                      # Keras 2 notebooks
        Model.evaluate = evaluate
        Model.evaluate_generator = evaluate
        Model.predict = predict
        Model.predict_generator = predict
        Model.predict_on_batch = predict
        Model.train_on_batch = lambda self, *a, **k: [0.0, 0.0]
        Model.test_on_batch = lambda self, *a, **k: [0.0, 0.0]
        Model.save = no_op
        Model.save_weights = no_op

    def length(self, x) -> int:
        if isinstance(x, (list, tuple)) and x:
            x = x[0]
        if hasattr(x, "shape") and getattr(x, "shape", None) is not None and len(x.shape) > 0:
            try:
                return int(x.shape[0])
            except Exception:
                pass
        if hasattr(x, "n"):  # a Keras iterator (ImageDataGenerator.flow)
            return int(x.n)
        try:
            return len(x)
        except Exception:
            return 1

    def compile_settings(self, model) -> dict:
        keras = self.keras
        settings: dict[str, Any] = {}
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            try:
                settings["optimizer"] = json.loads(json.dumps(keras.optimizers.serialize(optimizer), default=float))
            except Exception as error:
                settings["optimizer_error"] = f"{type(error).__name__}: {error}"
        loss = getattr(model, "loss", None)
        if isinstance(loss, str):
            settings["loss"] = loss
        elif loss is not None:
            try:
                settings["loss"] = json.loads(json.dumps(keras.losses.serialize(loss), default=float))
            except Exception:
                settings["loss"] = getattr(loss, "name", None) or type(loss).__name__
        name = settings.get("loss") if isinstance(settings.get("loss"), str) else \
            (settings.get("loss") or {}).get("class_name", "") if isinstance(settings.get("loss"), dict) else ""
        if "sparse" in str(name).lower():
            settings["loss"] = "categorical_crossentropy"
            settings["loss_note"] = ("the notebook used sparse categorical cross-entropy (integer labels); the "
                                     "harness's labels are one-hot, so it uses categorical cross-entropy")
        return settings

    def fit_settings(self, arguments: dict, notes: list[str]) -> dict:
        fit: dict[str, Any] = {}
        for key in ("epochs", "batch_size"):
            value = arguments.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                fit[key] = value
        x = arguments.get("x")
        if x is not None and hasattr(x, "image_data_generator"):   # ImageDataGenerator.flow(...)
            fit["generator"] = self.generator_settings(x.image_data_generator, notes)
            if isinstance(getattr(x, "batch_size", None), int) and "batch_size" not in fit:
                fit["batch_size"] = int(x.batch_size)
        elif x is not None and type(x).__module__.startswith("tensorflow") and "Dataset" in type(x).__name__:
            notes.append("trained on a tf.data pipeline: any augmentation inside it is not reproduced "
                         "(the harness's own batches are used)")
        elif x is not None and hasattr(x, "__next__"):
            notes.append("trained on a Python generator: not reproduced (the harness's own batches are used)")
        for key in ("validation_split", "validation_data", "class_weight", "sample_weight", "steps_per_epoch",
                    "initial_epoch", "shuffle"):
            value = arguments.get(key)
            if value is not None and not (key == "validation_split" and value == 0.0) and \
                    not (key == "shuffle" and value is True) and not (key == "initial_epoch" and value == 0):
                fit.setdefault("ignored", []).append(key)
        callbacks = []
        for callback in arguments.get("callbacks") or []:
            callbacks.append(self.callback_settings(callback, notes))
        fit["callbacks"] = callbacks
        return fit

    def generator_settings(self, generator, notes: list[str]) -> dict:
        import inspect

        config = {}
        for name in inspect.signature(type(generator).__init__).parameters:
            if name in ("self", "dtype", "data_format", "preprocessing_function", "kwargs"):
                continue
            value = getattr(generator, name, None)
            if isinstance(value, (int, float, str, bool)) or (isinstance(value, (list, tuple))
                                                              and all(isinstance(v, (int, float)) for v in value)):
                config[name] = list(value) if isinstance(value, tuple) else value
        if getattr(generator, "preprocessing_function", None) is not None:
            notes.append("ImageDataGenerator's preprocessing_function is not reproduced")
        class_name, module = type(generator).__name__, type(generator).__module__
        source = f"__import__('importlib').import_module({module!r}).{class_name}(**{config!r})"
        return {"class_name": class_name, "config": config,
                "source": source if class_name == "ImageDataGenerator" else None}

    def callback_settings(self, callback, notes: list[str]) -> dict:
        import inspect

        name = type(callback).__name__
        entry: dict[str, Any] = {"class_name": name}
        if name in FILE_CALLBACKS:
            notes.append(f"{name} callback not reproduced (it writes files; the harness saves the model itself)")
            return entry
        if name not in SERIALISABLE_CALLBACKS:
            notes.append(f"{name} callback not reproduced (custom or unsupported)")
            return entry
        config = {}
        for param in inspect.signature(type(callback).__init__).parameters:
            if param in ("self", "verbose", "schedule", "kwargs"):
                continue
            value = getattr(callback, param, None)
            if param == "min_delta" and isinstance(value, (int, float)):
                value = abs(value)
            if isinstance(value, (int, float, str, bool)) or value is None:
                if value is not None:
                    config[param] = value
        entry["config"] = config
        if name == "LearningRateScheduler":
            source, function = self.schedule_source(getattr(callback, "schedule", None))
            if source is None:
                notes.append("LearningRateScheduler not reproduced: its schedule function's source could not be "
                             "recovered or needs names from the notebook")
                return entry
            entry["schedule_source"] = source
            entry["source"] = f"_harness_keras.callbacks.LearningRateScheduler({function})"
            return entry
        entry["source"] = f"_harness_keras.callbacks.{name}(**{config!r})"
        return entry

    def schedule_source(self, function) -> tuple[str | None, str | None]:
        """The schedule's source as a module-level definition that runs on its own (checked here)."""
        import ast
        import inspect
        import math
        import textwrap

        if function is None:
            return None, None
        try:
            text = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError):
            return None, None
        name = f"_harness_schedule_{len(self.seen)}_{abs(hash(text)) % 10**6}"
        if function.__name__ == "<lambda>":
            # the lambda's own text, read from its whole cell (its line alone may not parse)
            import linecache

            code = function.__code__
            full = "".join(linecache.getlines(code.co_filename))
            try:
                tree = parse_python(full)
            except SyntaxError:
                return None, None
            lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno]
            if len(lambdas) != 1:
                return None, None
            definition = f"{name} = {ast.get_source_segment(full, lambdas[0])}"
        else:
            definition = re.sub(r"^def\s+\w+", f"def {name}", text, count=1, flags=re.M)
        namespace = {"math": math, "np": self.np, "numpy": self.np, "keras": self.keras}
        try:
            import tensorflow as tf
            namespace["tf"] = tf
            exec(compile(definition, "<schedule>", "exec"), namespace)
            schedule = namespace[name]
            try:
                float(schedule(0, 0.001))
            except TypeError:
                float(schedule(0))
        except Exception:
            return None, None
        return ("import math\nimport numpy as np\nimport tensorflow as tf\n" + definition), name

    def signature(self, model) -> list[str]:
        out = []
        for layer in model.layers:
            config = layer.get_config() if hasattr(layer, "get_config") else {}
            detail = config.get("filters") or config.get("units") or ""
            out.append(f"{type(layer).__name__}({detail})")
        return out

    def finish(self, reference_signature: list[str]) -> tuple[list[dict], list[str]]:
        models, seen_specs = [], {}
        for key in self.order[:MAX_MODELS]:
            info, model = self.seen[key], self.objects[key]
            notes = list(info["notes"])
            entry = {"variable": info.get("variable"), "built_cell": info.get("built_cell"),
                     "compiled_cell": info.get("compiled_cell"), "fitted_cell": info.get("fitted_cell"),
                     "compile": info.get("compile", {}), "fit": info.get("fit", {}), "notes": notes}
            if entry["compile"].get("loss_note"):
                notes.append(entry["compile"]["loss_note"])
            if entry["compile"].get("optimizer_error"):
                notes.append(f"optimizer not serialisable ({entry['compile']['optimizer_error']}): the protocol's "
                             "Adam is used")
            try:
                entry["model_json"] = model.to_json()
                rebuilt = self.keras.models.model_from_json(entry["model_json"], custom_objects={
                    k: v for k, v in self.namespace.items() if isinstance(v, type)})
                del rebuilt
            except Exception as error:
                entry["model_json"] = ""
                notes.append(f"not graded: the model cannot be rebuilt from its configuration "
                             f"({type(error).__name__}: {str(error)[:200]}) — a subclassed model needs get_config, "
                             "or write a factory function")
            try:
                entry["params"] = int(model.count_params()) if model.built else None
            except Exception:
                entry["params"] = None
            entry["signature"] = self.signature(model)
            spec_key = json.dumps([entry["model_json"], entry["compile"], entry["fit"]], sort_keys=True, default=str)
            if entry["model_json"] and spec_key in seen_specs:
                seen_specs[spec_key]["notes"].append(f"the same model was built again in cell {entry['built_cell']} "
                                                     "and fitted the same way: graded once")
                continue
            seen_specs[spec_key] = entry
            entry["schedule_sources"] = [c["schedule_source"] for c in entry["fit"].get("callbacks", [])
                                         if c.get("schedule_source")]
            models.append(entry)
        extra = len(self.order) - MAX_MODELS
        if extra > 0 and models:
            models[-1]["notes"].append(f"{extra} more fitted model(s) not graded (at most {MAX_MODELS})")
        # roles: a model whose variable says "baseline"/"ref", else the first one if it is the reference CNN
        baseline = next((m for m in models if m["variable"] and BASELINE_NAME.search(m["variable"])
                         and m["model_json"]), None)
        if baseline is None and models and models[0]["signature"] == reference_signature:
            baseline = models[0]
        number = 0
        for entry in models:
            if entry is baseline:
                entry["factory"], entry["role"] = "create_baseline_model", "baseline"
            else:
                number += 1
                entry["factory"], entry["role"] = f"create_improved_model_{number}", "improved"
            fit = entry["fit"]
            entry["fit_summary"] = {k: v for k, v in {
                "epochs": fit.get("epochs"), "batch_size": fit.get("batch_size"),
                "callbacks": [c["class_name"] for c in fit.get("callbacks", [])],
                "generator": (fit.get("generator") or {}).get("class_name"),
                "ignored": fit.get("ignored")}.items() if v}
        not_fitted = [f"{info.get('variable') or self.variable(self.objects[key]) or 'a model'} "
                      f"(compiled in cell {info['compiled_cell']})"
                      for key, info in self.seen.items() if "compiled_cell" in info and "fitted_cell" not in info]
        return models, not_fitted


def run_cells(job: dict, events) -> None:
    """In the sandbox: run each code cell in one namespace, training intercepted."""
    import contextlib
    import io
    import linecache
    import signal

    from harness.ingest.execution import clean_output, loader_source

    os.environ.setdefault("MPLBACKEND", "Agg")
    import keras
    import numpy as np
    import tensorflow as tf

    threads = int(job.get("threads", 1))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    recorder = _Recorder(keras, np, events)
    recorder.install()
    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    recorder.namespace = namespace
    exec(compile(loader_source(Path(job["data"])), "<harness loader>", "exec"), namespace)
    reference_signature: list[str] = []
    try:
        reference_namespace: dict = {"__name__": "reference_baseline"}
        exec(compile(Path(job["reference"]).read_text(encoding="utf-8"), "<reference>", "exec"), reference_namespace)
        reference_signature = recorder.signature(reference_namespace["create_baseline_model"]())
        recorder.seen.clear(), recorder.objects.clear(), recorder.order.clear()
    except Exception:
        pass
    cell_timeout = float(job["cell_timeout_s"])

    class CellTimeout(BaseException):
        pass

    def on_alarm(signum, frame):
        raise CellTimeout()

    has_alarm = hasattr(signal, "setitimer")
    if has_alarm:
        signal.signal(signal.SIGALRM, on_alarm)
    for cell in job["cells"]:
        number, source = cell["cell"], cell["source"]
        if not source.strip():
            continue
        recorder.cell = number
        filename = f"<cell {number}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        buffer = io.StringIO()
        status, error, started = "ok", None, time.monotonic()
        try:
            code = compile(source, filename, "exec")
            if has_alarm:
                signal.setitimer(signal.ITIMER_REAL, cell_timeout)
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                exec(code, namespace)
        except CellTimeout:
            status, error = "timeout", ("CellTimeout", f"the cell ran past its limit of {cell_timeout:.0f} s")
        except BaseException as exc:  # SystemExit from a cell counts as that cell's failure
            status, error = "error", (type(exc).__name__, str(exc).strip()[:500])
        finally:
            if has_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        recorder.scan()
        events.emit("cell_done", cell=number, status=status, seconds=round(time.monotonic() - started, 3),
                    output=clean_output(buffer.getvalue(), 2000),
                    error_name=error[0] if error else None, error_message=error[1] if error else None)
    models, not_fitted = recorder.finish(reference_signature)
    events.emit("models", models=models, not_fitted=not_fitted)


def main(argv: list[str]) -> int:
    from harness.ingest.execution import serve

    return serve(argv, run_cells)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The discovery worker: a notebook's code cells run with Keras's training intercepted.
``python -m harness.workers.discover JOB.json``.

For notebooks that build their models at top level (``model = Sequential([...])``,
``model.compile(...)``, ``model.fit(...)`` straight in cells), without factory functions. The
cells run in order, in one namespace, after the injected MNIST loader cell:

* ``Model.compile`` runs as usual and records the optimizer and loss;
* ``Model.fit`` (and ``fit_generator``) does **not** train: it records the model's architecture
  (``model.to_json()``), its compile settings and the fit settings (epochs, batch size,
  callbacks, an ``ImageDataGenerator`` passed as data), and returns an empty ``History``;
* ``evaluate``, ``predict`` and friends return zeros at once, ``save`` writes nothing;
* an optimizer's ``apply_gradients`` (and ``apply``), called by the notebook's own training loop
  (``tf.GradientTape``), updates nothing: it records the model whose weights it was given, as a fit
  would, with that optimizer (and the notebook's one loss object, if it has one); from then on a
  ``tf.data`` iterator yields ``LOOP_BATCHES`` more batches only, and a shuffle's buffer holds at
  most ``SHUFFLE_BUFFER`` elements, so that the loop ends at once.

The worker reports each cell (``cell_done``) and, at the end, the fitted models (``models``); the
grader (``harness.ingest.discovery``) turns them into factories of a synthesised module.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import io
import json
import linecache
import math
import os
import re
import signal
import sys
import textwrap
import time
import types
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")  # before a cell imports matplotlib: no display here

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from harness.workers import subclassing  # noqa: E402
from harness.workers.labels import sparse_from_logits  # noqa: E402
from harness.workers.notebook import clean_output, loader_source  # noqa: E402
from harness.workers.protocol import Events, serve  # noqa: E402

MAX_MODELS = 12
# a loop's local that names its run: ``for name, cfg in configs.items(): model = Net(**cfg)``
LABEL_NAMES = ("name", "label", "run", "run_name", "key", "tag", "experiment", "exp", "config_name", "model_name")
LOOP_BATCHES = 2  # batches a dataset yields once a training loop of the notebook's own has begun
SHUFFLE_BUFFER = 256  # discovery trains nothing: a shuffle's buffer of 10,000 would be filled for naught
BASELINE_NAME = re.compile(r"(?i)(base|ref|r[ée]f[ée]rence|initial|original)")
SERIALISABLE_CALLBACKS = {"EarlyStopping", "ReduceLROnPlateau", "LearningRateScheduler", "TerminateOnNaN"}
FILE_CALLBACKS = {"ModelCheckpoint", "TensorBoard", "CSVLogger", "BackupAndRestore"}
SCHEDULE_IMPORTS = "import math\nimport numpy as np\nimport tensorflow as tf\n"


class _Recorder:
    """Keras's training, evaluation and saving replaced by recorders (in the sandboxed worker)."""

    def __init__(self, keras, np, events) -> None:
        self.keras, self.np, self.events = keras, np, events
        self.cell: int | None = None
        self.namespace: dict = {}
        self.seen: dict[int, dict] = {}  # id(model) -> what is known about it
        self.order: list[int] = []  # fitted models, in order of their first fit
        self.objects: dict[int, Any] = {}  # keep the models alive (ids stay unique)
        self.factory_functions: set[str] = set()  # a mixed submission's graded factories (found statically)
        self.looping = False  # a training loop of the notebook's own has taken an optimizer step

    def info(self, model) -> dict:
        """What is known about `model`; a model seen for the first time was built by this cell."""
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

    def tag_factories(self) -> None:
        """Wrap the graded factories the namespace now defines, so that a model one returns is known as
        theirs (``model = create_improved_model_1()`` fitted at top level is graded once, as the factory)."""
        for name in self.factory_functions:
            function = self.namespace.get(name)
            if callable(function) and not getattr(function, "_harness_factory", False):
                self.namespace[name] = self._tagging(function, name)

    def _tagging(self, function, name: str):
        recorder = self

        @functools.wraps(function)
        def factory(*args, **kwargs):
            model = function(*args, **kwargs)
            if isinstance(model, recorder.keras.Model):
                recorder.info(model)["made_by"] = name
            return model

        factory._harness_factory = True
        return factory

    def variable(self, model) -> str | None:
        """The notebook's name for `model`: a public variable that holds it, else a local variable of the
        notebook's own function that is running (``base = build_cnn(…)`` in a script's ``main()``); of
        several, one that says "baseline"/"ref" (the role is read from it), else the first."""
        names = [n for n, value in self.namespace.items() if value is model and not n.startswith("_")]
        names = names or self._local_names(model)
        return next((n for n in names if BASELINE_NAME.search(n)), names[0] if names else None)

    def run_label(self, model) -> str | None:
        """The label of the run that trains `model`, read from the innermost of the notebook's frames that
        holds it: a short string under one of ``LABEL_NAMES`` (a configuration table's key)."""
        for _, scope in self._running_scopes():
            if any(value is model for value in list(scope.values())):
                labels = [scope.get(key) for key in LABEL_NAMES]
                label = next((v for v in labels if isinstance(v, str) and 0 < len(v) <= 40), None)
                if label is not None:
                    return label
        return None

    def _local_names(self, model) -> list[str]:
        """Names that hold `model` in the frames of the notebook's own functions now running, innermost first."""
        return [
            n
            for function, scope in self._running_scopes()
            if function != "<module>"
            for n, v in scope.items()
            if v is model and not n.startswith("_") and n != "self"
        ]

    def _running_scopes(self):
        """(function name, its names) of each frame of the notebook's own code now running, innermost first."""
        frame = inspect.currentframe()
        while frame is not None:
            if frame.f_globals is self.namespace:
                yield frame.f_code.co_name, frame.f_locals
            frame = frame.f_back

    # ----------------------------------------------------------------------- Keras's methods replaced

    def install(self) -> None:
        """Replace ``keras.Model``'s training, evaluation, prediction and saving methods."""
        Model = self.keras.Model
        original_compile = Model.compile
        fit = self._recording_fit(inspect.signature(Model.fit))
        evaluate, predict = _evaluate_nothing, self._uniform_predict()

        Model.compile = self._recording_compile(original_compile)
        Model.fit = fit
        Model.fit_generator = fit  # Keras 2 notebooks
        Model.evaluate = evaluate
        Model.evaluate_generator = evaluate
        Model.predict = predict
        Model.predict_generator = predict
        Model.predict_on_batch = predict
        Model.train_on_batch = lambda self, *a, **k: [0.0, 0.0]
        Model.test_on_batch = lambda self, *a, **k: [0.0, 0.0]
        Model.save = _no_op
        Model.save_weights = _no_op
        self.keras.optimizers.Optimizer.apply_gradients, self.keras.optimizers.Optimizer.apply = self._recording_step()
        tf.data.Dataset.__iter__ = self._shortened_iteration(tf.data.Dataset.__iter__)
        original_shuffle = tf.data.Dataset.shuffle
        tf.data.Dataset.shuffle = lambda self, buffer_size, *args, **kwargs: original_shuffle(
            self,
            min(int(buffer_size), SHUFFLE_BUFFER) if isinstance(buffer_size, int) else buffer_size,
            *args,
            **kwargs,
        )

    def _recording_compile(self, original_compile):
        """``Model.compile`` as usual, then the cell and the compile settings recorded."""
        recorder = self

        def compile(self, *args, **kwargs):
            result = original_compile(self, *args, **kwargs)
            info = recorder.info(self)
            info["compiled_cell"] = recorder.cell
            info["compile"] = recorder.compile_settings(self)
            return result

        return compile

    def _recording_fit(self, fit_signature: inspect.Signature):
        """``Model.fit`` that records the first fit of each model and trains nothing."""
        recorder, keras = self, self.keras

        def fit(self, *args, **kwargs):
            info = recorder.info(self)
            try:
                bound = fit_signature.bind(self, *args, **kwargs)
                arguments = dict(bound.arguments)
            except TypeError:
                arguments = dict(kwargs)
            if "fitted_cell" in info:
                info["notes"].append(
                    f"fitted again in cell {recorder.cell} (continued training): "
                    "the harness trains it once, with the first fit's settings"
                )
            else:
                recorder.first_fit(self, info, recorder.fit_settings(arguments, info["notes"]))
            return _empty_history(keras, self, arguments.get("epochs") or 1)

        return fit

    def _recording_step(self):
        """``Optimizer.apply_gradients`` and ``apply`` for a training loop of the notebook's own: the model
        whose weights they are given is recorded as fitted, and nothing is updated."""
        recorder = self

        def apply_gradients(self, grads_and_vars, *args, **kwargs):
            recorder.stepped(self, [variable for _, variable in list(grads_and_vars)])
            return self.iterations

        def apply(self, grads, trainable_variables=None, *args, **kwargs):
            recorder.stepped(self, list(trainable_variables or []))
            return self.iterations

        return apply_gradients, apply

    def _shortened_iteration(self, original_iter):
        """``Dataset.__iter__``: the whole dataset until a loop of the notebook's own trains, then a few batches."""
        recorder = self

        def __iter__(self):
            return _Shortened(original_iter(self), recorder)

        return __iter__

    def stepped(self, optimizer, variables: list) -> None:
        """An optimizer step on `variables`: their model, the first time, is recorded as fitted by the cell."""
        self.looping = True
        model = self._owner(variables)
        if model is None:
            return
        info = self.info(model)
        if "fitted_cell" in info:
            return
        if not info.get("compile"):
            loss = self._loop_loss()
            with tf.init_scope():  # a step traced by tf.function: the optimizer's settings are read eagerly
                info["compile"] = self.compile_settings(types.SimpleNamespace(optimizer=optimizer, loss=loss))
            info["notes"].append(
                "trained by the notebook's own loop (an optimizer's apply_gradients): the harness trains it "
                "with fit under the protocol, with the loop's optimizer and "
                + ("its loss" if loss is not None else "the protocol's loss")
            )
        self.first_fit(model, info, {})

    def first_fit(self, model, info: dict, fit: dict) -> None:
        """`model`'s first fit (or first step of a loop of the notebook's own), in this cell, with `fit`'s
        settings: where it was, what holds it, the run's label; graded in that order."""
        info["fitted_cell"] = self.cell
        info["variable"] = self.variable(model)
        info["label"] = self.run_label(model)
        info["fit"] = fit
        self.order.append(id(model))

    def _owner(self, variables: list):
        """The model whose trainable weights include `variables` (the smallest such), or None."""
        wanted = {id(v) for v in variables}
        owners = []
        for model in self._models_in_reach():
            try:
                own = {id(v) for v in model.trainable_variables}
            except Exception:
                continue
            if wanted and wanted <= own:
                owners.append((len(own), model))
        return min(owners, key=lambda pair: pair[0])[1] if owners else None

    def _models_in_reach(self) -> list:
        """Models the notebook holds: those already seen, its public names, and its running functions' locals."""
        Model = self.keras.Model
        found = {id(m): m for m in self.objects.values()}
        found.update({id(v): v for v in self.namespace.values() if isinstance(v, Model)})
        for _, scope in self._running_scopes():
            found.update({id(v): v for v in list(scope.values()) if isinstance(v, Model)})
        return list(found.values())

    def _loop_loss(self):
        """The notebook's loss object when it has exactly one (``loss_fn = SparseCategoricalCrossentropy()``)."""
        losses = {id(v): v for v in self.namespace.values() if isinstance(v, self.keras.losses.Loss)}
        return next(iter(losses.values())) if len(losses) == 1 else None

    def _uniform_predict(self):
        """``Model.predict``: the same probability for every class, one row per input, at once."""
        recorder, np = self, self.np

        def predict(self, x=None, *args, **kwargs):
            n = recorder.length(x)
            classes = 10
            try:
                classes = int(self.output_shape[-1]) or 10
            except Exception:
                pass
            return np.full((n, classes), 1.0 / classes, dtype="float32")

        return predict

    def length(self, x) -> int:
        """How many samples `x` holds (arrays, lists of arrays, Keras iterators); 1 if unknown."""
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

    # ----------------------------------------------------------------------- what is recorded

    def compile_settings(self, model) -> dict:
        """The compiled model's optimizer and loss, serialised (sparse labels become one-hot's loss)."""
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
        from_logits = sparse_from_logits(loss)
        if from_logits is not None:
            # the same loss for one-hot labels, on logits where the notebook's was (the TensorFlow quickstart's
            # Dense(10) with from_logits=True): probabilities' cross-entropy on logits does not train
            one_hot = keras.losses.CategoricalCrossentropy(from_logits=from_logits)
            settings["loss"] = json.loads(json.dumps(keras.losses.serialize(one_hot), default=float))
            settings["loss_note"] = (
                "the notebook used sparse categorical cross-entropy (integer labels); the "
                "harness's labels are one-hot, so it uses categorical cross-entropy"
                + (" (on logits, as the notebook's)" if from_logits else "")
            )
        return settings

    def fit_settings(self, arguments: dict, notes: list[str]) -> dict:
        """Epochs, batch size, data generator and callbacks of a fit; what is not reproduced goes to `notes`."""
        fit: dict[str, Any] = {}
        for key in ("epochs", "batch_size"):
            value = arguments.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                fit[key] = value
        x = arguments.get("x")
        if x is not None and hasattr(x, "image_data_generator"):  # ImageDataGenerator.flow(...)
            fit["generator"] = self.generator_settings(x.image_data_generator, notes)
            if isinstance(getattr(x, "batch_size", None), int) and "batch_size" not in fit:
                fit["batch_size"] = int(x.batch_size)
        elif x is not None and type(x).__module__.startswith("tensorflow") and "Dataset" in type(x).__name__:
            maps = self.dataset_maps(x, notes)
            if maps:
                fit["dataset_maps"] = maps
        elif x is not None and hasattr(x, "__next__"):
            notes.append("trained on a Python generator: not reproduced (the harness's own batches are used)")
        for key in (
            "validation_split",
            "validation_data",
            "class_weight",
            "sample_weight",
            "steps_per_epoch",
            "initial_epoch",
            "shuffle",
        ):
            value = arguments.get(key)
            if (
                value is not None
                and not (key == "validation_split" and value == 0.0)
                and not (key == "shuffle" and value is True)
                and not (key == "initial_epoch" and value == 0)
            ):
                fit.setdefault("ignored", []).append(key)
        callbacks = []
        for callback in arguments.get("callbacks") or []:
            callbacks.append(self.callback_settings(callback, notes))
        fit["callbacks"] = callbacks
        return fit

    def dataset_maps(self, dataset, notes: list[str]) -> list[dict]:
        """The functions a tf.data pipeline maps, from its source to the batches fit reads (``ds.map(augmenter)``),
        each as the source that names it again in the synthesised module and whether it maps batches; the
        training worker keeps those that augment (harness/workers/dataset_maps.py)."""
        chain = []
        while dataset is not None:  # from the batches fit reads back to the arrays
            chain.append(dataset)
            dataset = getattr(dataset, "_input_dataset", None)
        maps, batched = [], False
        for stage in reversed(chain):
            batched = batched or "Batch" in type(stage).__name__
            function = getattr(getattr(stage, "_map_func", None), "_func", None)
            if function is None or "Map" not in type(stage).__name__:
                continue
            name = getattr(function, "__name__", "")
            if name == "<lambda>":
                text = _lambda_definition(function, "_")
                source = text.removeprefix("_ = ") if text else None
            elif name.isidentifier() and getattr(function, "__qualname__", "") == name:
                # a function of the notebook's, in the synthesised module when defined at its top level
                source = f"globals().get({name!r})"
            else:
                source = None
            if source is None:
                notes.append(
                    "trained on a tf.data pipeline: any augmentation inside it is not reproduced "
                    "(the harness's own batches are used)"
                )
                return []
            maps.append({"name": name if name != "<lambda>" else "lambda", "source": source, "batched": batched})
        return maps

    def generator_settings(self, generator, notes: list[str]) -> dict:
        """An ``ImageDataGenerator``'s constructor arguments, and the source that builds it again."""
        config = {}
        for name in inspect.signature(type(generator).__init__).parameters:
            if name in ("self", "dtype", "data_format", "preprocessing_function", "kwargs"):
                continue
            value = getattr(generator, name, None)
            if isinstance(value, (int, float, str, bool)) or (
                isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value)
            ):
                config[name] = list(value) if isinstance(value, tuple) else value
        if getattr(generator, "preprocessing_function", None) is not None:
            notes.append("ImageDataGenerator's preprocessing_function is not reproduced")
        class_name, module = type(generator).__name__, type(generator).__module__
        source = f"__import__('importlib').import_module({module!r}).{class_name}(**{config!r})"
        return {
            "class_name": class_name,
            "config": config,
            "source": source if class_name == "ImageDataGenerator" else None,
        }

    def callback_settings(self, callback, notes: list[str]) -> dict:
        """A callback's settings and the source that builds it again, when it can be reproduced."""
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
                notes.append(
                    "LearningRateScheduler not reproduced: its schedule function's source could not be "
                    "recovered or needs names from the notebook"
                )
                return entry
            entry["schedule_source"] = source
            entry["source"] = f"_harness_keras.callbacks.LearningRateScheduler({function})"
            return entry
        entry["source"] = f"_harness_keras.callbacks.{name}(**{config!r})"
        return entry

    def schedule_source(self, function) -> tuple[str | None, str | None]:
        """The schedule's source as a module-level definition that runs on its own (checked here),
        and the name it defines; (None, None) when it cannot be recovered or needs the notebook."""
        if function is None:
            return None, None
        try:
            text = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError):
            return None, None
        name = f"_harness_schedule_{len(self.seen)}_{abs(hash(text)) % 10**6}"
        if function.__name__ == "<lambda>":
            definition = _lambda_definition(function, name)
            if definition is None:
                return None, None
        else:
            definition = re.sub(r"^def\s+\w+", f"def {name}", text, count=1, flags=re.M)
        if not self._runs_alone(definition, name):
            return None, None
        return SCHEDULE_IMPORTS + definition, name

    def _runs_alone(self, definition: str, name: str) -> bool:
        """The schedule, defined with only math, numpy, keras and tensorflow at hand, gives a number."""
        namespace = {"math": math, "np": self.np, "numpy": self.np, "keras": self.keras}
        try:
            namespace["tf"] = tf
            exec(compile(definition, "<schedule>", "exec"), namespace)
            schedule = namespace[name]
            try:
                float(schedule(0, 0.001))
            except TypeError:
                float(schedule(0))
        except Exception:
            return False
        return True

    def signature(self, model) -> list[str]:
        """Layer classes and sizes, to recognise the reference baseline."""
        out = []
        for layer in model.layers:
            config = layer.get_config() if hasattr(layer, "get_config") else {}
            detail = config.get("filters") or config.get("units") or ""
            out.append(f"{type(layer).__name__}({detail})")
        return out

    # ----------------------------------------------------------------------- the report

    def finish(self, reference_signature: list[str], taken: list[str] = ()) -> tuple[list[dict], list[str]]:
        """The fitted models (at most MAX_MODELS, one of each identical set-up; not those a graded factory
        returned), named and given roles after the factory names already `taken`; and the models that
        were compiled but never fitted."""
        models, seen_specs, extra = [], {}, 0
        order = [key for key in self.order if self.seen[key].get("made_by") not in self.factory_functions]
        for key in order:  # the cap counts set-ups, not fits: seven configs run on two seeds are seven models
            entry = self._entry(key)
            built = json.loads(entry["model_json"]) if entry["model_json"] else ""
            spec_key = architecture(json.dumps([built, entry["compile"], entry["fit"]], sort_keys=True, default=str))
            if entry["model_json"] and spec_key in seen_specs:
                seen_specs[spec_key]["notes"].append(
                    f"the same model was built again in cell {entry['built_cell']} and fitted the same way: graded once"
                )
                continue
            seen_specs[spec_key] = entry
            if len(models) == MAX_MODELS:
                extra += 1
                continue
            entry["schedule_sources"] = [
                c["schedule_source"] for c in entry["fit"].get("callbacks", []) if c.get("schedule_source")
            ]
            models.append(entry)
        if extra and models:
            models[-1]["notes"].append(f"{extra} more fitted model(s) not graded (at most {MAX_MODELS})")
        self._name(models, reference_signature, taken)
        not_fitted = [
            f"{info.get('variable') or self.variable(self.objects[key]) or 'a model'} "
            f"(compiled in cell {info['compiled_cell']})"
            for key, info in self.seen.items()
            if "compiled_cell" in info and "fitted_cell" not in info
        ]
        return models, not_fitted

    def _entry(self, key: int) -> dict:
        """What is reported of one fitted model: cells, settings, architecture (checked to rebuild), notes."""
        info, model = self.seen[key], self.objects[key]
        notes = list(info["notes"])
        entry = {
            "variable": info.get("variable"),
            "built_cell": info.get("built_cell"),
            "compiled_cell": info.get("compiled_cell"),
            "fitted_cell": info.get("fitted_cell"),
            "compile": info.get("compile", {}),
            "fit": info.get("fit", {}),
            "notes": notes,
        }
        if entry["compile"].get("loss_note"):
            notes.append(entry["compile"]["loss_note"])
        if entry["compile"].get("optimizer_error"):
            notes.append(
                f"optimizer not serialisable ({entry['compile']['optimizer_error']}): the protocol's Adam is used"
            )
        try:
            entry["model_json"] = model.to_json()
            rebuilt = self.keras.models.model_from_json(
                entry["model_json"],
                custom_objects={k: v for k, v in self.namespace.items() if isinstance(v, (type, types.FunctionType))},
            )
            del rebuilt
        except Exception as error:
            entry["model_json"] = ""
            notes.append(
                f"not graded: the model cannot be rebuilt from its configuration "
                f"({type(error).__name__}: {str(error)[:200]}) — a subclassed model needs get_config, "
                "or write a factory function"
            )
        try:
            entry["params"] = int(model.count_params()) if model.built else None
        except Exception:
            entry["params"] = None
        entry["signature"] = self.signature(model)
        entry["name"] = _own_name(entry["model_json"]) if entry["model_json"] else ""
        if _named_by_keras(entry["name"], model) and info.get("label"):
            entry["name"] = info["label"]  # no name of the student's own: the run's label names it
        return entry

    @staticmethod
    def _name(models: list[dict], reference_signature: list[str], taken: list[str] = ()) -> None:
        """Factory names and roles: the baseline is a model whose variable says "baseline"/"ref", else one
        the student named so (``keras.Model(..., name=cfg["name"])`` with a config table's "baseline" run),
        else the first one if it has the reference CNN's layers (unless a factory already is the baseline); the others
        are improved models, in order, numbered after the improved factories already `taken`."""
        rebuilt = [m for m in models if m["model_json"]]
        baseline = next((m for m in rebuilt if m["variable"] and BASELINE_NAME.search(m["variable"])), None)
        if baseline is None:
            baseline = next((m for m in rebuilt if BASELINE_NAME.search(m["name"])), None)
        # a subclassed model lists its layers in the order its __init__ assigns them, not the order call() runs
        # them: the same layers in another order are the reference CNN (MnistNet() at its defaults)
        if baseline is None and models and sorted(models[0]["signature"]) == sorted(reference_signature):
            baseline = models[0]
        if "create_baseline_model" in taken:
            baseline = None
        number = sum(1 for name in taken if name.startswith("create_improved_model"))
        for entry in models:
            if entry is baseline:
                entry["factory"], entry["role"] = "create_baseline_model", "baseline"
            else:
                number += 1
                while f"create_improved_model_{number}" in taken:
                    number += 1
                entry["factory"], entry["role"] = f"create_improved_model_{number}", "improved"
            fit = entry["fit"]
            entry["fit_summary"] = {
                k: v
                for k, v in {
                    "epochs": fit.get("epochs"),
                    "batch_size": fit.get("batch_size"),
                    "callbacks": [c["class_name"] for c in fit.get("callbacks", [])],
                    "generator": (fit.get("generator") or {}).get("class_name"),
                    "dataset_maps": [{"name": m["name"], "batched": m["batched"]} for m in fit.get("dataset_maps", [])],
                    "ignored": fit.get("ignored"),
                }.items()
                if v
            }


class _Shortened:
    """A dataset's iterator that stops `LOOP_BATCHES` batches after a loop of the notebook's own began
    to train (the epoch running then included); anything else is the iterator's own."""

    def __init__(self, iterator, recorder: _Recorder) -> None:
        self._iterator, self._recorder, self._left = iterator, recorder, LOOP_BATCHES

    def __iter__(self):
        return self

    def __next__(self):
        if self._recorder.looping:
            if self._left <= 0:
                raise StopIteration
            self._left -= 1
        return next(self._iterator)

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)


def _evaluate_nothing(self, *args, return_dict=False, **kwargs):
    """``Model.evaluate``: zeros at once."""
    if return_dict:
        return {"loss": 0.0, "accuracy": 0.0}
    return [0.0, 0.0] if getattr(self, "compiled", False) else 0.0


def _no_op(self, *args, **kwargs):
    """``Model.save`` and ``save_weights``: nothing written."""
    return None


def _empty_history(keras, model, epochs) -> Any:
    """What ``fit`` returns without training: a History of zeros, as long as the fit asked."""
    history = keras.callbacks.History()
    history.set_model(model)
    history.epoch = list(range(int(epochs) if isinstance(epochs, int) else 1))
    history.history = {k: [0.0] * len(history.epoch) for k in ("loss", "accuracy", "val_loss", "val_accuracy")}
    history.params = {"epochs": len(history.epoch), "verbose": 0, "steps": 1}
    return history


def _lambda_definition(function, name: str) -> str | None:
    """``name = lambda …``: the lambda's own text, read from its whole cell (its line alone may not
    parse); None when it cannot be told apart from another lambda on the same line."""
    code = function.__code__
    full = "".join(linecache.getlines(code.co_filename))
    try:
        tree = ast.parse(full)  # one thread here: no need for the grader's parsing lock
    except SyntaxError:
        return None
    lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno]
    if len(lambdas) != 1:
        return None
    return f"{name} = {ast.get_source_segment(full, lambdas[0])}"


# --------------------------------------------------------------------------- running the cells


class CellTimeout(BaseException):
    """A cell ran past its limit (a BaseException: the cell's own ``except Exception`` cannot swallow it)."""


def _on_alarm(signum, frame):
    raise CellTimeout()


def _own_name(model_json: str) -> str:
    """The name a model was given (Keras's own, ``sequential_3``, when the student gave none)."""
    config = json.loads(model_json).get("config")
    return config.get("name") or "" if isinstance(config, dict) else ""


def _named_by_keras(name: str, model) -> bool:
    """Whether `name` is one Keras gives: ``sequential_3``, ``functional``, or a subclass's own
    ``digit_net_1`` for ``DigitNet``."""
    own_class = re.sub(r"(?<!^)(?=[A-Z])", "_", type(model).__name__).lower()
    return not name or bool(re.fullmatch(rf"(sequential|functional|model|{re.escape(own_class)})(_\d+)?", name))


def architecture(model_json: str) -> str:
    """A configuration (JSON: a model's, its optimizer's) without the names Keras numbers as it builds
    (``conv2d_7``, ``adam_3``): the same set-up built twice (another seed, a second run) reads the same.
    Names become their order of appearance; what is not JSON is left as it is."""
    try:
        config = json.loads(model_json)
    except ValueError:
        return model_json
    # the configured object's own name ("sequential_3", "adam_1", a config table's run "dropout") is left
    # out: a student's model named "dropout" and the Dropout layer Keras names "dropout" in one build and
    # "dropout_1" in the next would otherwise share a number in one build only
    for part in config if isinstance(config, list) else [config]:  # finish() passes [model, compile, fit]
        if isinstance(part, dict) and isinstance(part.get("config"), dict):
            part["config"].pop("name", None)
    names: list[str] = []

    def collect(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("name"), str):
                names.append(node["name"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(config)
    index = {name: f"#{number}" for number, name in enumerate(dict.fromkeys(names))}

    def canonical(node):
        if isinstance(node, dict):
            return {key: canonical(value) for key, value in node.items()}
        if isinstance(node, list):
            return [canonical(value) for value in node]
        return index.get(node, node) if isinstance(node, str) else node

    return json.dumps(canonical(config), sort_keys=True)


def _reference_signature(job: dict, recorder: _Recorder) -> list[str]:
    """The reference baseline's layers, to recognise a notebook's baseline; [] if it cannot be built."""
    try:
        reference_namespace: dict = {"__name__": "reference_baseline"}
        exec(compile(Path(job["reference"]).read_text(encoding="utf-8"), "<reference>", "exec"), reference_namespace)
        signature = recorder.signature(reference_namespace["create_baseline_model"]())
        recorder.seen.clear(), recorder.objects.clear(), recorder.order.clear()
    except Exception:
        return []
    return signature


def _run_cell(
    number: int, source: str, namespace: dict, cell_timeout: float, has_alarm: bool, after_statement=lambda: None
) -> tuple[str, tuple[str, str] | None, str]:
    """Run one cell in the notebook's namespace, its output captured: (status, error, output);
    `after_statement` is called after each of its top-level statements."""
    filename = f"<cell {number}>"
    # the cell's source where inspect.getsource finds it (a LearningRateScheduler's schedule)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    buffer = io.StringIO()
    status, error = "ok", None
    try:
        tree = ast.parse(source, filename)
        if has_alarm:
            signal.setitimer(signal.ITIMER_REAL, cell_timeout)
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            # statement by statement: a factory defined and called in the same cell is tagged in between
            for statement in tree.body:
                exec(compile(ast.Module([statement], []), filename, "exec"), namespace)
                after_statement()
    except CellTimeout:
        status, error = "timeout", ("CellTimeout", f"the cell ran past its limit of {cell_timeout:.0f} s")
    except BaseException as exc:  # SystemExit from a cell counts as that cell's failure
        status, error = "error", (type(exc).__name__, str(exc).strip()[:500])
    finally:
        if has_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return status, error, buffer.getvalue()


def run_cells(job: dict, events: Events) -> None:
    """The discovery job: run each code cell in one namespace, training intercepted; report each
    cell, then the fitted models."""
    threads = int(job.get("threads", 1))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    subclassing.install()  # a subclassed model's config holds the arguments the notebook gave it
    recorder = _Recorder(keras, np, events)
    recorder.install()
    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    recorder.namespace = namespace
    recorder.factory_functions = set(job.get("factory_functions", []))
    exec(compile(loader_source(Path(job["data"])), "<harness loader>", "exec"), namespace)
    reference_signature = _reference_signature(job, recorder)
    cell_timeout = float(job["cell_timeout_s"])
    has_alarm = hasattr(signal, "setitimer")
    if has_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
    for cell in job["cells"]:
        number, source = cell["cell"], cell["source"]
        if not source.strip():
            continue
        recorder.cell = number
        started = time.monotonic()
        status, error, output = _run_cell(number, source, namespace, cell_timeout, has_alarm, recorder.tag_factories)
        recorder.scan()
        events.emit(
            "cell_done",
            cell=number,
            status=status,
            seconds=round(time.monotonic() - started, 3),
            output=clean_output(output, 2000),
            error_name=error[0] if error else None,
            error_message=error[1] if error else None,
        )
    models, not_fitted = recorder.finish(reference_signature, job.get("taken", []))
    events.emit("models", models=models, not_fitted=not_fitted)


def main(argv: list[str]) -> int:
    """Run the discovery job ``argv[0]``; the process's exit status."""
    return serve(argv, run_cells)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

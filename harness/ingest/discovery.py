"""Top-level model discovery: notebooks that build their models in cells, without factory functions.

Most real coursework writes ``model = Sequential([...])``, ``model.compile(...)`` and
``model.fit(...)`` straight in cells. For such a notebook the harness runs the code cells, in
order, in a sandboxed worker (``python -m harness.workers.discover JOB.json``) with Keras's training
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
``--execute`` (harness/workers/notebook.py); shell, magic and Colab-only lines are not run.

>>> record, source = discover_models(ingest, data_file, scratch)    # doctest: +SKIP
>>> [(m.factory, m.built_cell) for m in record.models]            # doctest: +SKIP
[('create_baseline_model', 4), ('create_improved_model_1', 7)]
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harness.ingest.execution import neutralise
from harness.ingest.fit_calls import map_settings_source
from harness.ingest.legacy import modernise
from harness.ingest.read import blank_shell_and_magic_lines, factory_functions
from harness.ingest.roles import baseline_by_text, markdown_above
from harness.resources import bundled
from harness.results import CellRun, CodeCell, DiscoveredModel, DiscoveryRecord, Factory, IngestResult
from harness.sandbox import Limits, run_job

# MNIST's own sizes: students hard-code them (``x_train.reshape(60000, 28, 28, 1)``, Keras 2's examples). The
# "test set" served is training images (harness/ingest/execution.py): student code never sees a test image.
DISCOVERY_TRAIN_IMAGES = 60000
DISCOVERY_TEST_IMAGES = 10000
CELL_TIMEOUT_S = 60.0
DEADLINE_S = 300.0
WORKER = "harness.workers.discover"


@dataclass(frozen=True)
class DiscoverOptions:
    """Time limits and threads of the discovery worker; ``use_bubblewrap`` as in ``harness.sandbox.wrap``."""

    cell_timeout_s: float = CELL_TIMEOUT_S
    deadline_s: float = DEADLINE_S
    threads: int = 1
    use_bubblewrap: bool | None = None


def _number(code: CodeCell) -> int:
    """A code cell's number; a module (a script) runs as one cell, number 1."""
    return code.cell if code.cell is not None else 1


def discover_models(
    ingest: IngestResult,
    notebook: Path,
    data: Path,
    scratch: Path,
    options: DiscoverOptions = DiscoverOptions(),
    limits=None,
) -> tuple[DiscoveryRecord, str]:
    """Run the notebook's code cells with training intercepted; the record and the synthesised module."""
    limits = limits or Limits()
    started = time.monotonic()
    cells = []
    for code in ingest.code_cells:
        source = blank_shell_and_magic_lines(modernise(code.source, code.cell)[0], code.cell, [])
        source, _ = neutralise(source, _number(code), shell=False)
        cells.append({"cell": _number(code), "source": source})
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    reference = scratch / "reference_baseline.py"
    reference.write_text(bundled("reference", "baseline.py").read_text(encoding="utf-8"), encoding="utf-8")
    job = {
        "cells": cells,
        "data": str(data),
        "cell_timeout_s": options.cell_timeout_s,
        "reference": str(reference),
        # a mixed submission: models its graded factories return are not found twice, and the names it
        # already grades are not given again
        "factory_functions": factory_functions(ingest) if ingest.factories else [],
        "taken": [f.name for f in ingest.factories],
    }
    outcome = run_job(
        job,
        scratch,
        worker=WORKER,
        readable=[data],
        threads=options.threads,
        watch=lambda events, elapsed: (
            f"running the notebook took more than {options.deadline_s:.0f} s" if elapsed > options.deadline_s else None
        ),
        limits=limits,
        use_bubblewrap=options.use_bubblewrap,
    )
    isolation = outcome.isolation
    for event in outcome.events:
        if event["event"] == "models":
            baseline_from_headings(event["models"], ingest)
    record = record_from_events(
        outcome.events, ingest, isolation, time.monotonic() - started, outcome.stopped_because, outcome
    )
    recorded = next((e["models"] for e in outcome.events if e["event"] == "models"), [])
    source = synthesise(recorded, record, ingest) if record.models else ""
    return record, source


def baseline_from_headings(recorded: list[dict], ingest: IngestResult) -> None:
    """When no variable name made a discovered model the baseline, the one the markdown above the cell
    that built it calls so ("## Modèle de base") is (harness/ingest/roles.py); the others renumbered."""
    taken = {f.name for f in ingest.factories}
    if "create_baseline_model" in taken or any(e.get("role") == "baseline" for e in recorded):
        return
    texts = {
        str(i): " ".join(markdown_above(e.get(key), ingest.markdown) for key in ("built_cell", "fitted_cell"))
        for i, e in enumerate(recorded)
    }
    chosen = baseline_by_text(list(texts), texts)
    if chosen is None:
        return
    names = sorted((e["factory"] for e in recorded if e.get("role") == "improved"), key=_improved_number)
    for index, entry in enumerate(recorded):
        if str(index) == chosen:
            entry["factory"], entry["role"] = "create_baseline_model", "baseline"
        else:
            entry["factory"] = names.pop(0)


def _improved_number(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def record_from_events(
    events: list[dict], ingest: IngestResult, isolation: str, seconds: float, stopped: str | None, outcome=None
) -> DiscoveryRecord:
    """The discovery record from the worker's events: each cell's run (cells never reported are
    ``not_run``), the models it found, and whether any can be graded."""
    cells = [
        CellRun(
            cell=e["cell"],
            status=e["status"],
            seconds=e.get("seconds"),
            error_name=e.get("error_name"),
            error_message=e.get("error_message"),
            output=e.get("output", ""),
        )
        for e in events
        if e["event"] == "cell_done"
    ]
    done = {c.cell for c in cells}
    for code in ingest.code_cells:
        if _number(code) not in done and code.source.strip():
            cells.append(
                CellRun(
                    cell=_number(code),
                    status="not_run",
                    error_message="not reached: " + (stopped or "the worker stopped"),
                )
            )
    recorded = next((e["models"] for e in events if e["event"] == "models"), None)
    base = dict(cells=cells, seconds=round(seconds, 2), sandbox=isolation)
    if recorded is None:
        tail = (getattr(outcome, "log_tail", "") or "").strip().splitlines()[-3:]
        status = "timeout" if stopped else "error"
        return DiscoveryRecord(
            status=status,
            reason=stopped or ("the discovery worker ended early" + (": " + " | ".join(tail)[:400] if tail else "")),
            **base,
        )
    models, not_fitted = [], next((e.get("not_fitted", []) for e in events if e["event"] == "models"), [])
    for entry in recorded:
        models.append(
            DiscoveredModel(
                factory=entry["factory"],
                role=entry["role"],
                variable=entry.get("variable"),
                name=student_model_name(entry.get("name")),
                built_cell=entry.get("built_cell"),
                compiled_cell=entry.get("compiled_cell"),
                fitted_cell=entry.get("fitted_cell"),
                params=entry.get("params"),
                fit=entry.get("fit_summary", {}),
                notes=entry.get("notes", []),
            )
        )
    usable = [m for m in models if not any(n.startswith("not graded") for n in m.notes)]
    if not usable:
        failed = [c for c in cells if c.status != "ok"]
        why = f"; cell {failed[0].cell} failed: {failed[0].error_name}: {failed[0].error_message}" if failed else ""
        return DiscoveryRecord(
            status="no_models",
            models=models,
            not_fitted=not_fitted,
            reason="running the notebook built no model that was compiled and fitted" + why,
            **base,
        )
    return DiscoveryRecord(status="ok", models=models, not_fitted=not_fitted, **base)


def synthesise(recorded: list[dict], record: DiscoveryRecord, ingest: IngestResult) -> str:
    """A module of zero-argument factories and a TRAINING_CONFIG, from the recorded models.

    The notebook's own definitions (imports, functions, classes, constants: the statically kept
    code) come first, so that custom layers and schedule functions resolve.
    """
    usable = {m.factory for m in record.models if not any(n.startswith("not graded") for n in m.notes)}
    entries = [e for e in recorded if e["factory"] in usable]
    lines = [
        ingest.module_source,  # first, so that its line map (a mixed submission's factories) still holds
        f"# Factories synthesised by the harness from the models {ingest.main_file} builds at top level",
        "# (harness/discover.py): architecture from model.to_json(), compiled as the notebook compiled it,",
        "# weights initialised afresh under the protocol's seed; fit settings in TRAINING_CONFIG.",
        "import json as _harness_json",
        "import types as _harness_types",
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
        "    # the notebook's own classes and functions: custom layers, losses, activations, schedules",
        "    custom = {k: v for k, v in globals().items() if isinstance(v, (type, _harness_types.FunctionType))}",
        "    model = _harness_keras.models.model_from_json(spec['model_json'], custom_objects=custom)",
        "    compiled = spec['compile']",
        "    if compiled.get('optimizer'):",
        "        optimizer = _harness_keras.optimizers.deserialize(compiled['optimizer'], custom_objects=custom)",
        "        loss = compiled.get('loss') or 'categorical_crossentropy'",
        "        if isinstance(loss, dict):",
        "            loss = _harness_keras.losses.deserialize(loss, custom_objects=custom)",
        "        model.compile(optimizer=optimizer, loss=loss, metrics=['accuracy'])",
        "    return model",
        "",
    ]
    configs = {}
    for entry in entries:
        model = next(m for m in record.models if m.factory == entry["factory"])
        where = ", ".join(
            part
            for part in (
                f"built in cell {model.built_cell}" if model.built_cell else "",
                f"compiled in cell {model.compiled_cell}" if model.compiled_cell else "",
                f"fitted in cell {model.fitted_cell}" if model.fitted_cell else "",
            )
            if part
        )
        variable = f" (variable `{model.variable}`)" if model.variable else ""
        lines += [
            "",
            f"def {entry['factory']}():",
            f'    """The notebook\'s model{variable}: {where}."""',
            f"    return _harness_build({entry['factory']!r})",
            "",
        ]
        config = _config_source(entry)
        if config:
            name = f"_harness_config_{entry['factory']}"
            lines += ["", f"def {name}():", f"    return {config}", ""]
            configs[entry["factory"]] = name
        for extra in entry.get("schedule_sources", []):
            lines += ["", extra, ""]
    own = "_harness_own_config"  # a mixed submission's own TRAINING_CONFIG is kept, the discovered entries added
    lines += [
        f"{own} = globals().get('TRAINING_CONFIG')",
        "TRAINING_CONFIG = {"
        + f"**({own} if isinstance({own}, dict) else {{}}), "
        + ", ".join(f"{k!r}: {v}" for k, v in configs.items())
        + "}",
    ]
    return "\n".join(lines) + "\n"


def _config_source(entry: dict) -> str:
    """A model's ``TRAINING_CONFIG`` entry, as source: epochs, batch size, reproducible callbacks, generator."""
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
    elif fit.get("dataset_maps"):
        parts.append(f"'augmentation': {map_settings_source(fit['dataset_maps'])}")
    return "{" + ", ".join(parts) + "}" if parts else ""


KERAS_MODEL_NAME = re.compile(r"(sequential|functional|model)(_\d+)?")


def student_model_name(name: object) -> str | None:
    """The name a notebook gave a model (a config table's run, ``"wide_bn"``), as the worker reported it (student
    code ran there: a short word-like string or nothing); None for the names Keras gives (``sequential_3``)."""
    if not isinstance(name, str) or not re.fullmatch(r"[\w.+-]{1,40}", name) or KERAS_MODEL_NAME.fullmatch(name):
        return None
    return name


def apply_discovery(ingest: IngestResult, record: DiscoveryRecord, source: str) -> IngestResult:
    """The ingest result with the discovered models as its factories (or still invalid, with why). A
    mixed submission keeps its own factories and gains the discovered ones; when discovery finds none,
    it is graded on its factories alone, the record saying why."""
    usable = [m for m in record.models if not any(n.startswith("not graded") for n in m.notes)]
    if record.status != "ok" or not usable:
        if ingest.status == "ok":
            return ingest.model_copy(update={"discovery": record})
        reason = (
            (ingest.reason or "").rstrip(".")
            + ". Running the notebook to find models built at top level: "
            + (record.reason or record.status)
            + "."
        )
        return ingest.model_copy(update={"discovery": record, "reason": reason})
    found = [Factory(name=m.factory, role=m.role, cell=m.built_cell, line=1, has_docstring=False) for m in usable]
    update = {"factories": found, "line_map": [], "factory_source": "discovered"}
    if ingest.status == "ok":  # mixed: the static factories first, as the module defines them
        update = {"factories": [*ingest.factories, *found]}
    return ingest.model_copy(
        update={
            **update,
            "status": "ok",
            "reason": None,
            "module_source": source,
            "discovery": record,
            # a run's label is the name the notebook gave its model, as a trainer helper's label is
            "run_labels": {**ingest.run_labels, **{m.factory: m.name for m in usable if m.name}},
            "has_training_config": ingest.has_training_config or any(m.fit for m in usable),
        }
    )

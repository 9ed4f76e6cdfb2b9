"""``--execute``: run a whole notebook top to bottom with nbclient, in the sandbox, as handed in.

Grading never depends on it (the harness retrains every model itself); it tells the student and
the instructor whether the notebook runs from a fresh kernel (part of "Qualité du code"), which
cells fail and why, and what accuracies the student's own cells printed.

The notebook's kernel runs inside the same sandboxed worker as the small driver that starts it
(``python -m harness.ingest.execution JOB.json``): no network, a read-only system, a private scratch
folder. Two things are changed before it runs, and the record says so:

* a first cell is injected that makes ``keras.datasets.mnist.load_data()`` (under any of its
  import paths) read the MNIST subset the harness mounts, since nothing can be downloaded, and
  caps ``epochs`` in ``Model.fit`` so that the run fits its time limit;
* shell escapes (``!pip install``) and Colab-only lines (``from google.colab import drive``,
  ``drive.mount(...)``) are replaced by ``pass``.

Each code cell has a time limit (``cell_timeout_s``) and the student's cells together a deadline
(``deadline_s``, counted from the first of them); a cell past its limit is interrupted and the
next cells still run; the cells the deadline does not let start are recorded as not run.

>>> record = execute_notebook(Path("submissions/failing_cell.ipynb"), options)   # doctest: +SKIP
>>> record.failed_cells                                                            # doctest: +SKIP
[12]
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

from harness.results import CellRun, DroppedStatement, ExecutionRecord, PrintedAccuracy

CELL_TIMEOUT_S = 120.0
DEADLINE_S = 600.0
EXECUTE_TRAIN_IMAGES = 2000
EXECUTE_TEST_IMAGES = 1000
EXECUTE_MAX_EPOCHS = 2
KERNEL_STARTUP_S = 120.0
DATA_CELL_TIMEOUT_S = 120.0   # the injected first cell imports Keras: not the student's time
MAX_CELL_OUTPUT = 4000
COLAB_LINE = re.compile(r"^(\s*)(from\s+google\.colab\b|import\s+google\.colab\b|drive\.mount\(|"
                        r"files\.(upload|download)\(|auth\.authenticate_user\()")
SHELL_LINE = re.compile(r"^(\s*)(?:!|\w+\s*=\s*!)")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# --------------------------------------------------------------------------- shared with discover.py

class Events:
    """Append-only JSON-lines progress file (the worker side); one os.write per line."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": time.time(), **fields}, default=str) + "\n"
        os.write(self.fd, line.encode("utf-8"))


def loader_source(data: Path, max_epochs: int | None = None) -> str:
    """The injected first cell: MNIST from the mounted file under every import path of Keras's
    loader (``keras.datasets.mnist``, ``tensorflow.keras.datasets.mnist``); optionally
    ``Model.fit``'s epochs capped."""
    cap = "" if not max_epochs else f'''
import inspect as _harness_inspect
_harness_fit = _harness_keras.Model.fit
_harness_fit_signature = _harness_inspect.signature(_harness_fit)
def _harness_capped_fit(self, *args, **kwargs):
    bound = _harness_fit_signature.bind(self, *args, **kwargs)
    bound.apply_defaults()
    bound.arguments["epochs"] = min(int(bound.arguments.get("epochs") or 1), {int(max_epochs)})
    return _harness_fit(*bound.args, **bound.kwargs)
_harness_keras.Model.fit = _harness_capped_fit
'''
    return f'''# Injected by the grading harness: MNIST cannot be downloaded here, so Keras's loader reads
# the copy the harness mounted{" and Model.fit's epochs are capped at " + str(max_epochs) if max_epochs else ""}.
import sys as _harness_sys
import numpy as _harness_np
def _harness_load_data(path="mnist.npz"):
    with _harness_np.load({str(data)!r}) as d:
        return (d["x_train"], d["y_train"]), (d["x_test"], d["y_test"])
import keras as _harness_keras
import keras.datasets.mnist
try:
    import tensorflow.keras.datasets.mnist
except Exception:
    pass
for _harness_name, _harness_module in list(_harness_sys.modules.items()):
    if _harness_name.endswith("datasets.mnist") and hasattr(_harness_module, "load_data"):
        _harness_module.load_data = _harness_load_data
{cap}'''


def neutralise(source: str, cell: int, shell: bool = True) -> tuple[str, list[DroppedStatement]]:
    """Colab-only lines (and shell escapes when `shell`) replaced by ``pass``, same indent and lines."""
    lines, dropped = source.splitlines(), []
    for number, line in enumerate(lines, start=1):
        colab = COLAB_LINE.match(line)
        escape = SHELL_LINE.match(line) if shell else None
        match = colab or escape
        if match:
            dropped.append(DroppedStatement(
                cell=cell, line=number, kind="colab" if colab else "shell", code=line.strip()[:120],
                reason="Colab-only line: cannot run outside Colab" if colab
                else "shell command: no network or system access in the sandbox"))
            lines[number - 1] = match.group(1) + "pass"
    return "\n".join(lines), dropped


def notebook_data_file(raw, folder: Path, train_images: int, test_images: int) -> Path:
    """A MNIST subset (the first images, Keras's layout) for notebooks run by the harness."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"notebook-mnist-{train_images}-{test_images}-{raw.content_sha256[:12]}.npz"
    if not path.exists():
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, x_train=raw.x_train[:train_images], y_train=raw.y_train[:train_images],
                 x_test=raw.x_test[:test_images], y_test=raw.y_test[:test_images])
        os.replace(tmp, path)
    return path


def clean_output(text: str, limit: int = MAX_CELL_OUTPUT) -> str:
    text = ANSI.sub("", text)
    text = "\n".join(([p for p in line.split("\r") if p.strip()] or [""])[-1] for line in text.split("\n"))
    if len(text) > limit:
        text = text[: limit // 2] + "\n[…]\n" + text[-limit // 2:]
    return text


ACCURACY_WORD = re.compile(r"(?i)(accura|pr[ée]cision|exactitude|justesse|\bacc\b|score)")
KERAS_PROGRESS = re.compile(r"(━|\bstep\b|^\s*Epoch \d+/\d+|\d+/\d+ \[)")
PERCENT = re.compile(r"(\d{1,3}(?:[.,]\d+)?)\s*%")
FRACTION = re.compile(r"(?<![\d.,])(0[.,]\d{2,}|1[.,]0+)(?![\d%])")


def printed_accuracies(cell: int, text: str) -> list[PrintedAccuracy]:
    """Accuracies in what a cell printed ("Précision: 98.91%", "Test accuracy: 0.9912"); Keras's
    own progress lines are skipped."""
    found = []
    for line in text.splitlines():
        if not ACCURACY_WORD.search(line) or KERAS_PROGRESS.search(line):
            continue
        after = line[ACCURACY_WORD.search(line).end():]
        percent, fraction = PERCENT.search(after), FRACTION.search(after)
        value = None
        if percent and (not fraction or percent.start() <= fraction.start()):
            value = float(percent.group(1).replace(",", ".")) / 100
        elif fraction:
            value = float(fraction.group(1).replace(",", "."))
        if value is not None and 0 <= value <= 1:
            found.append(PrintedAccuracy(cell=cell, text=line.strip()[:200], value=round(value, 6)))
    return found


# --------------------------------------------------------------------------- the grading process's side

@dataclass(frozen=True)
class ExecuteOptions:
    cell_timeout_s: float = CELL_TIMEOUT_S
    deadline_s: float = DEADLINE_S
    train_images: int = EXECUTE_TRAIN_IMAGES
    test_images: int = EXECUTE_TEST_IMAGES
    max_epochs: int | None = EXECUTE_MAX_EPOCHS
    threads: int = 1
    use_bubblewrap: bool | None = None


def prepare_notebook(path: Path, data: Path, max_epochs: int | None):
    """The notebook as it will run: the loader cell first, Colab and shell lines neutralised."""
    import nbformat

    notebook = nbformat.reads(Path(path).read_bytes().decode("utf-8-sig"), as_version=4)
    neutralised: list[DroppedStatement] = []
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type == "code":
            cell.source, dropped = neutralise(cell.source, index)
            neutralised += dropped
            cell.outputs, cell.execution_count = [], None
    loader = nbformat.v4.new_code_cell(loader_source(data, max_epochs))
    loader.metadata["harness"] = {"injected": True}
    notebook.cells.insert(0, loader)
    for cell in notebook.cells:  # nbformat 4.5 wants ids; older notebooks have none
        cell.pop("id", None)
    notebook.nbformat, notebook.nbformat_minor = 4, 4
    return notebook, neutralised


def execute_notebook(notebook_path: Path, data: Path, scratch: Path, options: ExecuteOptions,
                     limits=None) -> ExecutionRecord:
    """Run `notebook_path` top to bottom in a sandboxed worker; never raises for the notebook's faults."""
    import nbformat
    import shutil

    from harness.sandbox import run_command
    from harness.sandbox import Limits, wrap

    limits = limits or Limits()
    started = time.monotonic()
    base = dict(cell_timeout_s=options.cell_timeout_s, deadline_s=options.deadline_s,
                data_note=_data_note(options))
    try:
        notebook, neutralised = prepare_notebook(notebook_path, data, options.max_epochs)
    except Exception as error:  # an unreadable notebook
        return ExecutionRecord(status="error", reason=f"the notebook could not be read ({type(error).__name__}: {error})",
                               seconds=time.monotonic() - started, **base)
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    prepared = scratch / "notebook.ipynb"
    nbformat.write(notebook, prepared)
    events_path = scratch / "events.jsonl"
    job = {"notebook": str(prepared), "events": str(events_path), "cell_timeout_s": options.cell_timeout_s,
           "deadline_s": options.deadline_s, "scratch": str(scratch)}
    job_path = scratch / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    argv, env, isolation = wrap([sys.executable, "-m", "harness.ingest.execution", str(job_path)], scratch=scratch,
                                readable=[data], threads=options.threads, use_bubblewrap=options.use_bubblewrap,
                                limits=limits)
    hard_limit = options.deadline_s + max(options.cell_timeout_s, DATA_CELL_TIMEOUT_S) + KERNEL_STARTUP_S + 30
    outcome = run_command(argv, env, scratch, limits=limits, threads=options.threads,
                          watch=lambda events, elapsed: (f"the notebook ran past its deadline of "
                                                         f"{options.deadline_s:.0f} s" if elapsed > hard_limit else None),
                          events_path=events_path, isolation=isolation, bubblewrap=Path(argv[0]).name == "bwrap")
    return record_from_events(notebook, outcome.events, neutralised, base, isolation,
                              time.monotonic() - started, outcome.stopped_because or _death(outcome))


def _death(outcome) -> str | None:
    if any(e["event"] == "done" for e in outcome.events):
        return None
    tail = (outcome.log_tail or "").strip().splitlines()[-3:]
    return (f"the execution worker ended early (exit {outcome.returncode})"
            + (": " + " | ".join(tail)[:400] if tail else ""))


def _data_note(options: ExecuteOptions) -> str:
    note = (f"A first cell injected by the harness makes keras.datasets.mnist.load_data() return the first "
            f"{options.train_images:,} training and {options.test_images:,} test images from a local copy "
            "(nothing can be downloaded in the sandbox)")
    if options.max_epochs:
        note += f"; Model.fit's epochs are capped at {options.max_epochs}"
    return note + ". Printed accuracies come from this short run, not from the grading."


def record_from_events(notebook, events: list[dict], neutralised: list[DroppedStatement], base: dict,
                       isolation: str, seconds: float, failure: str | None) -> ExecutionRecord:
    """The execution record from the worker's events; cells it never reported are `not_run`."""
    reported = {e["cell"]: e for e in events if e["event"] == "cell_done"}
    cells: list[CellRun] = []
    accuracies: list[PrintedAccuracy] = []
    for index, cell in enumerate(notebook.cells[1:], start=1):  # [0] is the injected loader
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        event = reported.get(index)
        if event is None:
            cells.append(CellRun(cell=index, status="not_run",
                                 error_message="not reached: " + (failure or "the notebook stopped before this cell")))
            continue
        run = CellRun(cell=index, status=event["status"], seconds=event.get("seconds"),
                      error_name=event.get("error_name"), error_message=event.get("error_message"),
                      output=event.get("output", ""))
        cells.append(run)
        accuracies += printed_accuracies(index, run.output)
    loader = reported.get(0)
    failed = [c.cell for c in cells if c.status in ("error", "timeout")]
    not_run = [c.cell for c in cells if c.status == "not_run"]
    start_error = next((e for e in events if e["event"] == "start_failed"), None)
    if start_error is not None:
        status, reason = "error", f"the kernel could not be started: {start_error.get('reason')}"
    elif loader is not None and loader["status"] != "ok":
        status, reason = "error", f"the harness's data cell failed: {loader.get('error_name')}: {loader.get('error_message')}"
    elif any(e["event"] == "deadline" for e in events) or (not_run and failure and "deadline" in failure):
        status, reason = "timeout", f"the notebook's deadline of {base['deadline_s']:.0f} s was reached"
    elif not_run and failure:
        status, reason = "error", failure
    elif failed:
        first = next(c for c in cells if c.cell == failed[0])
        status = "failed"
        reason = (f"{len(failed)} cell(s) failed; the first is cell {first.cell}: "
                  f"{first.error_name or first.status}: {(first.error_message or '')[:200]}")
    else:
        status, reason = "ok", None
    return ExecutionRecord(status=status, reason=reason, cells=cells, failed_cells=failed,
                           first_failure=failed[0] if failed else None, accuracies=accuracies,
                           neutralised=neutralised, seconds=round(seconds, 2), sandbox=isolation, **base)


# --------------------------------------------------------------------------- the worker's side

def _text_of(outputs) -> tuple[str, tuple[str, str] | None]:
    texts, error = [], None
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            texts.append(output.get("text", ""))
        elif kind in ("execute_result",):
            texts.append(output.get("data", {}).get("text/plain", ""))
        elif kind == "error":
            error = (output.get("ename", "Error"), ANSI.sub("", str(output.get("evalue", "")))[:500])
    return clean_output("".join(t if isinstance(t, str) else "".join(t) for t in texts)), error


def run_notebook(job: dict, events: Events) -> None:
    """In the sandbox: start a kernel (inside this same sandbox) and run the cells one by one."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    scratch = Path(job["scratch"])
    for variable, folder in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_DATA_DIR", "data"),
                             ("JUPYTER_CONFIG_DIR", "config"), ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl")):
        path = scratch / ".jupyter" / folder
        path.mkdir(parents=True, exist_ok=True)
        os.environ[variable] = str(path)
    notebook = nbformat.read(job["notebook"], as_version=4)
    cell_timeout, deadline = float(job["cell_timeout_s"]), float(job["deadline_s"])
    client = NotebookClient(notebook, timeout=int(cell_timeout), kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, startup_timeout=int(KERNEL_STARTUP_S),
                            resources={"metadata": {"path": str(scratch)}})
    started = None  # the deadline counts the student's cells, from the first one (after the data cell)
    try:
        with client.setup_kernel():
            events.emit("kernel_started")
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                if index > 0 and started is None:
                    started = time.monotonic()
                if started is None:  # the harness's data cell (it imports Keras): its own limit
                    client.timeout = int(max(cell_timeout, DATA_CELL_TIMEOUT_S))
                else:
                    remaining = deadline - (time.monotonic() - started)
                    if remaining <= 1:
                        events.emit("deadline", cell=index)
                        return
                    client.timeout = int(max(1, min(cell_timeout, remaining)))
                events.emit("cell", cell=index)
                one = time.monotonic()
                status, error = "ok", None
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError as exc:
                    status, error = "timeout", ("CellTimeoutError", str(exc)[:300])
                except DeadKernelError as exc:
                    events.emit("cell_done", cell=index, status="error", seconds=time.monotonic() - one,
                                error_name="DeadKernelError",
                                error_message=f"the kernel died (memory limit, crash or os._exit): {str(exc)[:200]}")
                    return
                took = time.monotonic() - one
                output, cell_error = _text_of(cell.get("outputs", []))
                if cell_error is not None and status == "ok":
                    status, error = "error", cell_error
                    if cell_error[0] == "KeyboardInterrupt" and took >= client.timeout - 1:
                        status = "timeout"
                        error = ("CellTimeoutError", f"the cell ran past its limit of {client.timeout} s and was interrupted")
                events.emit("cell_done", cell=index, status=status, seconds=round(took, 3), output=output,
                            error_name=error[0] if error else None, error_message=error[1] if error else None)
    except Exception as error:  # the kernel did not start
        events.emit("start_failed", reason=f"{type(error).__name__}: {str(error)[:500]}")


def serve(argv: list[str], run) -> int:
    """A sandboxed entry point: read the job file, run `run(job, events)`, report start, failure, end."""
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    events = Events(job["events"])
    events.emit("started", pid=os.getpid())
    try:
        run(job, events)
    except BaseException as error:
        events.emit("worker_failed", reason=f"{type(error).__name__}: {error}")
        return 1
    events.emit("done")
    return 0


def main(argv: list[str]) -> int:
    return serve(argv, run_notebook)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

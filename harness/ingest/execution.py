"""``--execute``: run a whole notebook top to bottom with nbclient, in the sandbox, as handed in.

Grading never depends on it (the harness retrains every model itself); it tells the student and
the instructor whether the notebook runs from a fresh kernel (part of "Qualité du code"), which
cells fail and why, and what accuracies the student's own cells printed.

The notebook's kernel runs inside the same sandboxed worker as the small driver that starts it
(``python -m harness.workers.execute JOB.json``): no network, a read-only system, a private scratch
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

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from harness.results import CellRun, DroppedStatement, ExecutionRecord, PrintedAccuracy
from harness.sandbox import Limits, run_job
from harness.util.atomic import savez_atomic
from harness.workers.notebook import DATA_CELL_TIMEOUT_S, KERNEL_STARTUP_S, loader_source

CELL_TIMEOUT_S = 120.0
DEADLINE_S = 600.0
EXECUTE_TRAIN_IMAGES = 2000
EXECUTE_TEST_IMAGES = 1000
EXECUTE_MAX_EPOCHS = 2
COLAB_LINE = re.compile(
    r"^(\s*)(from\s+google\.colab\b|import\s+google\.colab\b|drive\.mount\(|"
    r"files\.(upload|download)\(|auth\.authenticate_user\()"
)
SHELL_LINE = re.compile(r"^(\s*)(?:!|\w+\s*=\s*!)")
WORKER = "harness.workers.execute"


def neutralise(source: str, cell: int, shell: bool = True) -> tuple[str, list[DroppedStatement]]:
    """Colab-only lines (and shell escapes when `shell`) replaced by ``pass``, same indent and lines."""
    lines, dropped = source.splitlines(), []
    for number, line in enumerate(lines, start=1):
        colab = COLAB_LINE.match(line)
        escape = SHELL_LINE.match(line) if shell else None
        match = colab or escape
        if match:
            dropped.append(
                DroppedStatement(
                    cell=cell,
                    line=number,
                    kind="colab" if colab else "shell",
                    code=line.strip()[:120],
                    reason="Colab-only line: cannot run outside Colab"
                    if colab
                    else "shell command: no network or system access in the sandbox",
                )
            )
            lines[number - 1] = match.group(1) + "pass"
    return "\n".join(lines), dropped


def notebook_data_file(raw, folder: Path, train_images: int, test_images: int) -> Path:
    """A MNIST subset in Keras's layout for notebooks run by the harness (discovery, --execute).

    Its "test set" is the last `test_images` images of the *training* set: student code never sees a
    test image (the harness's test set stays for its own evaluation).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"notebook-mnist-{train_images}-{test_images}-{raw.content_sha256[:12]}-no-test.npz"
    if not path.exists():  # several grading threads may write it at once: each its own temporary file
        savez_atomic(
            path,
            x_train=raw.x_train[:train_images],
            y_train=raw.y_train[:train_images],
            x_test=raw.x_train[-test_images:],
            y_test=raw.y_train[-test_images:],
        )
    return path


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
        after = line[ACCURACY_WORD.search(line).end() :]
        percent, fraction = PERCENT.search(after), FRACTION.search(after)
        value = None
        if percent and (not fraction or percent.start() <= fraction.start()):
            value = float(percent.group(1).replace(",", ".")) / 100
        elif fraction:
            value = float(fraction.group(1).replace(",", "."))
        if value is not None and 0 <= value <= 1:
            found.append(PrintedAccuracy(cell=cell, text=line.strip()[:200], value=round(value, 6)))
    return found


# --------------------------------------------------------------------------- running the notebook


@dataclass(frozen=True)
class ExecuteOptions:
    """``--execute``'s settings: time limits, the MNIST subset the notebook gets, fit's epoch cap."""

    cell_timeout_s: float = CELL_TIMEOUT_S
    deadline_s: float = DEADLINE_S
    train_images: int = EXECUTE_TRAIN_IMAGES
    test_images: int = EXECUTE_TEST_IMAGES
    max_epochs: int | None = EXECUTE_MAX_EPOCHS
    threads: int = 1
    use_bubblewrap: bool | None = None


def prepare_notebook(path: Path, data: Path, max_epochs: int | None):
    """The notebook as it will run: the loader cell first, Colab and shell lines neutralised."""
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


def execute_notebook(
    notebook_path: Path, data: Path, scratch: Path, options: ExecuteOptions, limits=None
) -> ExecutionRecord:
    """Run `notebook_path` top to bottom in a sandboxed worker; never raises for the notebook's faults."""
    limits = limits or Limits()
    started = time.monotonic()
    base = dict(cell_timeout_s=options.cell_timeout_s, deadline_s=options.deadline_s, data_note=_data_note(options))
    try:
        notebook, neutralised = prepare_notebook(notebook_path, data, options.max_epochs)
    except Exception as error:  # an unreadable notebook
        return ExecutionRecord(
            status="error",
            reason=f"the notebook could not be read ({type(error).__name__}: {error})",
            seconds=time.monotonic() - started,
            **base,
        )
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    prepared = scratch / "notebook.ipynb"
    nbformat.write(notebook, prepared)
    job = {
        "notebook": str(prepared),
        "cell_timeout_s": options.cell_timeout_s,
        "deadline_s": options.deadline_s,
        "scratch": str(scratch),
    }
    hard_limit = options.deadline_s + max(options.cell_timeout_s, DATA_CELL_TIMEOUT_S) + KERNEL_STARTUP_S + 30
    outcome = run_job(
        job,
        scratch,
        worker=WORKER,
        readable=[data],
        threads=options.threads,
        watch=lambda events, elapsed: (
            f"the notebook ran past its deadline of {options.deadline_s:.0f} s" if elapsed > hard_limit else None
        ),
        limits=limits,
        use_bubblewrap=options.use_bubblewrap,
    )
    isolation = outcome.isolation
    return record_from_events(
        notebook,
        outcome.events,
        neutralised,
        base,
        isolation,
        time.monotonic() - started,
        outcome.stopped_because or _death(outcome),
    )


def _death(outcome) -> str | None:
    """Why the worker ended without ``done`` (its exit and last log lines), or None if it finished."""
    if any(e["event"] == "done" for e in outcome.events):
        return None
    tail = (outcome.log_tail or "").strip().splitlines()[-3:]
    return f"the execution worker ended early (exit {outcome.returncode})" + (
        ": " + " | ".join(tail)[:400] if tail else ""
    )


def _data_note(options: ExecuteOptions) -> str:
    """The record's note on what the harness changed for the run (data, epochs)."""
    note = (
        f"A first cell injected by the harness makes keras.datasets.mnist.load_data() return the first "
        f"{options.train_images:,} training images and, as test images, {options.test_images:,} more from the end "
        "of the training set, from a local copy (nothing can be downloaded in the sandbox; the harness's test "
        "set is never shown to student code)"
    )
    if options.max_epochs:
        note += f"; Model.fit's epochs are capped at {options.max_epochs}"
    return note + ". Printed accuracies come from this short run, not from the grading."


def record_from_events(
    notebook,
    events: list[dict],
    neutralised: list[DroppedStatement],
    base: dict,
    isolation: str,
    seconds: float,
    failure: str | None,
) -> ExecutionRecord:
    """The execution record from the worker's events; cells it never reported are `not_run`."""
    reported = {e["cell"]: e for e in events if e["event"] == "cell_done"}
    cells: list[CellRun] = []
    accuracies: list[PrintedAccuracy] = []
    for index, cell in enumerate(notebook.cells[1:], start=1):  # [0] is the injected loader
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        event = reported.get(index)
        if event is None:
            cells.append(
                CellRun(
                    cell=index,
                    status="not_run",
                    error_message="not reached: " + (failure or "the notebook stopped before this cell"),
                )
            )
            continue
        run = CellRun(
            cell=index,
            status=event["status"],
            seconds=event.get("seconds"),
            error_name=event.get("error_name"),
            error_message=event.get("error_message"),
            output=event.get("output", ""),
        )
        cells.append(run)
        accuracies += printed_accuracies(index, run.output)
    loader = reported.get(0)
    failed = [c.cell for c in cells if c.status in ("error", "timeout")]
    not_run = [c.cell for c in cells if c.status == "not_run"]
    start_error = next((e for e in events if e["event"] == "start_failed"), None)
    if start_error is not None:
        status, reason = "error", f"the kernel could not be started: {start_error.get('reason')}"
    elif loader is not None and loader["status"] != "ok":
        status, reason = (
            "error",
            f"the harness's data cell failed: {loader.get('error_name')}: {loader.get('error_message')}",
        )
    elif any(e["event"] == "deadline" for e in events) or (not_run and failure and "deadline" in failure):
        status, reason = "timeout", f"the notebook's deadline of {base['deadline_s']:.0f} s was reached"
    elif not_run and failure:
        status, reason = "error", failure
    elif failed:
        first = next(c for c in cells if c.cell == failed[0])
        status = "failed"
        reason = (
            f"{len(failed)} cell(s) failed; the first is cell {first.cell}: "
            f"{first.error_name or first.status}: {(first.error_message or '')[:200]}"
        )
    else:
        status, reason = "ok", None
    return ExecutionRecord(
        status=status,
        reason=reason,
        cells=cells,
        failed_cells=failed,
        first_failure=failed[0] if failed else None,
        accuracies=accuracies,
        neutralised=neutralised,
        seconds=round(seconds, 2),
        sandbox=isolation,
        **base,
    )

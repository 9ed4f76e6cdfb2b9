"""The execution worker (``--execute``): a notebook run top to bottom with nbclient, in the sandbox.
``python -m harness.workers.execute JOB.json``.

The notebook's kernel runs inside the same sandbox as this small driver that starts it. The
grader (``harness.ingest.execution``) prepared the notebook (the loader cell first, Colab and
shell lines neutralised) and turns the ``cell_done`` events into the execution record.

Each code cell has a time limit (``cell_timeout_s``) and the student's cells together a deadline
(``deadline_s``, counted from the first of them); a cell past its limit is interrupted and the
next cells still run; at the deadline the worker reports ``deadline`` and stops.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from harness.workers.notebook import ANSI, DATA_CELL_TIMEOUT_S, KERNEL_STARTUP_S, clean_output
from harness.workers.protocol import Events, serve

# Jupyter's and matplotlib's own folders, inside the scratch folder: the worker's only writable place
JUPYTER_FOLDERS = (
    ("JUPYTER_RUNTIME_DIR", "runtime"),
    ("JUPYTER_DATA_DIR", "data"),
    ("JUPYTER_CONFIG_DIR", "config"),
    ("IPYTHONDIR", "ipython"),
    ("MPLCONFIGDIR", "mpl"),
)


def _text_of(outputs) -> tuple[str, tuple[str, str] | None]:
    """A cell's printed text (cleaned) and its error (name, message), if it raised."""
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


def _run_cell(client: NotebookClient, cell, index: int, events: Events) -> bool:
    """Run one cell under ``client.timeout`` and report it; False when the kernel died (stop)."""
    events.emit("cell", cell=index)
    one = time.monotonic()
    status, error = "ok", None
    try:
        client.execute_cell(cell, index)
    except CellTimeoutError as exc:
        status, error = "timeout", ("CellTimeoutError", str(exc)[:300])
    except DeadKernelError as exc:
        events.emit(
            "cell_done",
            cell=index,
            status="error",
            seconds=time.monotonic() - one,
            error_name="DeadKernelError",
            error_message=f"the kernel died (memory limit, crash or os._exit): {str(exc)[:200]}",
        )
        return False
    took = time.monotonic() - one
    output, cell_error = _text_of(cell.get("outputs", []))
    if cell_error is not None and status == "ok":
        status, error = "error", cell_error
        if cell_error[0] == "KeyboardInterrupt" and took >= client.timeout - 1:
            status = "timeout"
            error = ("CellTimeoutError", f"the cell ran past its limit of {client.timeout} s and was interrupted")
    events.emit(
        "cell_done",
        cell=index,
        status=status,
        seconds=round(took, 3),
        output=output,
        error_name=error[0] if error else None,
        error_message=error[1] if error else None,
    )
    return True


def run_notebook(job: dict, events: Events) -> None:
    """The execution job: start a kernel (inside this same sandbox) and run the cells one by one."""
    scratch = Path(job["scratch"])
    for variable, folder in JUPYTER_FOLDERS:
        path = scratch / ".jupyter" / folder
        path.mkdir(parents=True, exist_ok=True)
        os.environ[variable] = str(path)
    notebook = nbformat.read(job["notebook"], as_version=4)
    cell_timeout, deadline = float(job["cell_timeout_s"]), float(job["deadline_s"])
    client = NotebookClient(
        notebook,
        timeout=int(cell_timeout),
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        startup_timeout=int(KERNEL_STARTUP_S),
        resources={"metadata": {"path": str(scratch)}},
    )
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
                if not _run_cell(client, cell, index, events):
                    return
    except Exception as error:  # the kernel did not start
        events.emit("start_failed", reason=f"{type(error).__name__}: {str(error)[:500]}")


def main(argv: list[str]) -> int:
    """Run the execution job ``argv[0]``; the process's exit status."""
    return serve(argv, run_notebook)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

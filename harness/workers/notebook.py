"""What the notebook-running workers (discover, execute) share with the grader that starts them.

The injected loader cell (Keras's MNIST loader reading the file the harness mounts, ``fit``'s
epochs optionally capped), how a cell's output is cleaned for a record, and the time the
execution worker allows for what is not the student's code. Standard library only: the grader
imports this module too.
"""

from __future__ import annotations

import re
from pathlib import Path

KERNEL_STARTUP_S = 120.0
DATA_CELL_TIMEOUT_S = 120.0  # the injected first cell imports Keras: not the student's time
MAX_CELL_OUTPUT = 4000
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def loader_source(data: Path, max_epochs: int | None = None) -> str:
    """The injected first cell: MNIST from the mounted file under every import path of Keras's
    loader (``keras.datasets.mnist``, ``tensorflow.keras.datasets.mnist``), for ``np.load`` of a
    ``mnist.npz`` the student had locally, and for scikit-learn's ``fetch_openml("mnist_784")``
    when scikit-learn is installed; optionally ``Model.fit``'s epochs capped."""
    cap = (
        ""
        if not max_epochs
        else f"""
import inspect as _harness_inspect
_harness_fit = _harness_keras.Model.fit
_harness_fit_signature = _harness_inspect.signature(_harness_fit)
def _harness_capped_fit(self, *args, **kwargs):
    bound = _harness_fit_signature.bind(self, *args, **kwargs)
    bound.apply_defaults()
    bound.arguments["epochs"] = min(int(bound.arguments.get("epochs") or 1), {int(max_epochs)})
    return _harness_fit(*bound.args, **bound.kwargs)
_harness_keras.Model.fit = _harness_capped_fit
"""
    )
    return f"""# Injected by the grading harness: MNIST cannot be downloaded here, so Keras's loader reads
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
import os as _harness_os
_harness_np_load = _harness_np.load
def _harness_np_load_mnist(file, *args, **kwargs):
    # np.load("…/mnist.npz") of a copy the student had on their own machine
    if isinstance(file, (str, _harness_os.PathLike)) and _harness_os.fspath(file).endswith("mnist.npz") \
            and not _harness_os.path.exists(file):
        file = {str(data)!r}
    return _harness_np_load(file, *args, **kwargs)
_harness_np.load = _harness_np_load_mnist
try:
    import sklearn.datasets as _harness_sklearn_datasets
    _harness_fetch_openml = _harness_sklearn_datasets.fetch_openml
    def _harness_fetch_mnist(name=None, *args, **kwargs):
        if str(name).lower() not in ("mnist_784", "mnist") and kwargs.get("data_id") != 554:
            return _harness_fetch_openml(name, *args, **kwargs)
        with _harness_np.load({str(data)!r}) as d:
            x = _harness_np.concatenate([d["x_train"], d["x_test"]]).reshape(-1, 784).astype("float64")
            y = _harness_np.concatenate([d["y_train"], d["y_test"]]).astype(str).astype(object)
        if kwargs.get("as_frame", "auto") is not False:
            import pandas as _harness_pd
            x = _harness_pd.DataFrame(x, columns=[f"pixel{{i + 1}}" for i in range(784)])
            y = _harness_pd.Series(y, name="class", dtype="category")
        if kwargs.get("return_X_y"):
            return x, y
        from sklearn.utils import Bunch as _harness_Bunch
        return _harness_Bunch(data=x, target=y, feature_names=[f"pixel{{i + 1}}" for i in range(784)],
                              target_names=["class"], DESCR="MNIST (served by the grading harness)")
    _harness_sklearn_datasets.fetch_openml = _harness_fetch_mnist
except Exception:
    pass
{cap}"""


def clean_output(text: str, limit: int = MAX_CELL_OUTPUT) -> str:
    """A cell's output as a record keeps it: colours removed, each progress bar (rewritten with
    ``\\r``) at its last state, at most `limit` characters (its first and last halves)."""
    text = ANSI.sub("", text)
    text = "\n".join(([p for p in line.split("\r") if p.strip()] or [""])[-1] for line in text.split("\n"))
    if len(text) > limit:
        text = text[: limit // 2] + "\n[…]\n" + text[-limit // 2 :]
    return text

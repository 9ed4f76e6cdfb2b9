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


# the first line of each top-level data preparation statement put back for the factories (harness/ingest/data_names.py)
KEPT_PREPARATION = "try:  # harness: the student's data preparation, which the factories read"
TFDS_SHIM = Path(__file__).with_name("tfds_mnist.py")
DISPLAY_STUBS = Path(__file__).with_name("display_stubs.py")
ADDONS = Path(__file__).with_name("addons_keras3.py")


def loader_source(data: Path, max_epochs: int | None = None) -> str:
    """The injected first cell: MNIST from the mounted file, never the network, whichever way the
    student asks for it (each part below); optionally ``Model.fit``'s epochs capped."""
    return "\n".join(
        [
            "# Injected by the grading harness: MNIST cannot be downloaded here, so every loader reads the copy",
            "# the harness mounted" + (f" and Model.fit's epochs are capped at {max_epochs}." if max_epochs else "."),
            _keras_loader(data),
            _npz_loader(data),
            _openml_loader(data),
            _csv_loader(data),
            _tfds_loader(data),
            _display_stubs(),
            _addons(),
            _fit_cap(max_epochs) if max_epochs else "",
        ]
    )


def install_loaders(data: Path) -> None:
    """Patch this process's MNIST loaders (every one :func:`loader_source` knows) to read `data`."""
    exec(compile(loader_source(data), "<harness loader>", "exec"), {"__name__": "_harness_loader"})


def _keras_loader(data: Path) -> str:
    """``mnist.load_data()`` under every import path (``keras``, ``tensorflow.keras``, ``tf_keras``…):
    modules already imported are patched now, the others as they are imported (an import hook), so
    that a path the harness did not import itself (``tf_keras.datasets.mnist``) is served too."""
    return f"""
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
class _HarnessImportHook:
    # a module the student imports later is patched (`patch(module)`) once it has run
    def __init__(self, wanted, patch):
        self.wanted, self.patch = wanted, patch
    def find_spec(self, name, path=None, target=None):
        if not self.wanted(name):
            return None
        for finder in _harness_sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _HarnessPatchingLoader(spec.loader, self.patch)
                    return spec
        return None
class _HarnessPatchingLoader:
    def __init__(self, loader, patch):
        self.loader, self.patch = loader, patch
    def create_module(self, spec):
        return self.loader.create_module(spec)
    def exec_module(self, module):
        self.loader.exec_module(module)
        self.patch(module)
def _harness_patch_mnist(module):
    if hasattr(module, "load_data"):
        module.load_data = _harness_load_data
_harness_sys.meta_path.insert(0, _HarnessImportHook(lambda name: name.endswith("datasets.mnist"), _harness_patch_mnist))
"""


def _npz_loader(data: Path) -> str:
    """``np.load("…/mnist.npz")`` of a copy the student had on their own machine (any path, any case,
    ``mnist_data.npz`` too) reads the mounted file; an existing file is read as it is."""
    return f"""
import os as _harness_os
_harness_np_load = _harness_np.load
def _harness_np_load_mnist(file, *args, **kwargs):
    if isinstance(file, (str, _harness_os.PathLike)) and not _harness_os.path.exists(file):
        _harness_base = _harness_os.path.basename(_harness_os.fspath(file)).lower()
        if "mnist" in _harness_base and _harness_base.endswith(".npz") and "fashion" not in _harness_base:
            file = {str(data)!r}
    return _harness_np_load(file, *args, **kwargs)
_harness_np.load = _harness_np_load_mnist
"""


def _openml_loader(data: Path) -> str:
    """scikit-learn's ``fetch_openml("mnist_784")`` (when scikit-learn is installed): train then test, as
    OpenML orders MNIST, labels as strings."""
    return f"""
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
"""


def _csv_loader(data: Path) -> str:
    """``pandas.read_csv`` of an MNIST CSV the student had and did not hand in (Kaggle's Digit Recognizer
    ``train.csv`` / ``test.csv``, the "MNIST in CSV" ``mnist_train.csv`` / ``mnist_test.csv``) serves the
    mounted file in that layout: a ``label`` column (none in Kaggle's ``test.csv``), then 784 pixel columns
    (``pixel0``… as Kaggle names them, ``1x1``… as "MNIST in CSV" does; ``header=None``, ``names=`` and
    ``nrows=`` honoured, as for Colab's ``sample_data/mnist_train_small.csv``). An existing file is read as it is.
    pandas is patched when the student imports it (an import hook), so a notebook without pandas pays nothing."""
    return f"""
import re as _harness_re
def _harness_mnist_csv(file):
    # (split, Kaggle's column names, has labels) for an MNIST CSV that is not there; None otherwise
    if not isinstance(file, (str, _harness_os.PathLike)) or _harness_os.path.exists(file):
        return None
    base = _harness_os.path.basename(_harness_os.fspath(file)).lower()
    if not base.endswith(".csv") or "fashion" in base:
        return None
    split = "test" if "test" in base else "train" if "train" in base else None
    if split is None or not ("mnist" in base or "digit" in _harness_os.fspath(file).lower()
                             or _harness_re.fullmatch(r"(train|test)\\.csv", base)):
        return None
    return split, "mnist" not in base, not (split == "test" and "mnist" not in base)
def _harness_csv_frame(pd, split, kaggle, labelled):
    with _harness_np.load({str(data)!r}) as d:
        x = d["x_" + split].reshape(-1, 784).astype("int64")
        y = d["y_" + split].astype("int64")
    names = [f"pixel{{i}}" for i in range(784)] if kaggle else [f"{{i // 28 + 1}}x{{i % 28 + 1}}" for i in range(784)]
    frame = pd.DataFrame(x, columns=names)
    if labelled:
        frame.insert(0, "label", y)
    return frame
def _harness_patch_pandas(pd):
    read_csv = pd.read_csv
    def _harness_read_csv(filepath_or_buffer, *args, **kwargs):
        layout = _harness_mnist_csv(filepath_or_buffer)
        if layout is None:
            return read_csv(filepath_or_buffer, *args, **kwargs)
        return _harness_as_read(_harness_csv_frame(pd, *layout), kwargs)
    pd.read_csv = _harness_read_csv
def _harness_as_read(frame, kwargs):
    # what read_csv's own arguments would have made of the file: no header (Colab's sample_data CSVs),
    # the student's column names, the first rows only
    if kwargs.get("header", "infer") is None:
        frame.columns = range(frame.shape[1])
    names = kwargs.get("names")
    if names is not None and len(list(names)) == frame.shape[1]:
        frame.columns = list(names)
    nrows = kwargs.get("nrows")
    return frame.head(int(nrows)) if isinstance(nrows, int) and nrows >= 0 else frame
if "pandas" in _harness_sys.modules:
    _harness_patch_pandas(_harness_sys.modules["pandas"])
else:
    _harness_sys.meta_path.insert(0, _HarnessImportHook(lambda name: name == "pandas", _harness_patch_pandas))
"""


def _tfds_loader(data: Path) -> str:
    """``tensorflow_datasets.load("mnist", …)``: when the package is installed, its ``load`` serves MNIST
    from the mounted file (other data sets go to the real one); when it is not, a small module in its
    place (harness/workers/tfds_mnist.py) does, so a notebook that uses it for MNIST alone runs."""
    return f"""
import types as _harness_types
_harness_tfds = _harness_types.ModuleType("tensorflow_datasets")
exec(compile({TFDS_SHIM.read_text(encoding="utf-8")!r}, "<harness tfds_mnist>", "exec"), _harness_tfds.__dict__)
_harness_tfds.DATA = {str(data)!r}
try:
    import tensorflow_datasets as _harness_real_tfds
    _harness_tfds._REAL_LOAD = _harness_real_tfds.load
    _harness_real_tfds.load = _harness_tfds.load
except ImportError:
    _harness_sys.modules["tensorflow_datasets"] = _harness_tfds
"""


def _display_stubs() -> str:
    """seaborn, plotly, tqdm and the tracking packages stood in for when they are not installed
    (harness/workers/display_stubs.py)."""
    return _installed(DISPLAY_STUBS, "_harness_display_stubs")


def _addons() -> str:
    """TensorFlow Addons' names served by Keras 3's, under the name the rewritten imports use
    (harness/workers/addons_keras3.py)."""
    return _installed(ADDONS, "_harness_addons_keras3")


def _installed(path: Path, name: str) -> str:
    """A worker module's source run in the kernel as module `name`, then its ``install()``: the kernel cannot
    import the harness (it runs the student's notebook), so the source travels in the loader cell."""
    return f"""
import types as _harness_types
{name} = _harness_types.ModuleType({name!r})
exec(compile({path.read_text(encoding="utf-8")!r}, "<harness {path.stem}>", "exec"), {name}.__dict__)
{name}.install()
"""


def _fit_cap(max_epochs: int) -> str:
    """``Model.fit``'s epochs capped at `max_epochs` (``--execute``: the notebook must fit its time limit)."""
    return f"""
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


def clean_output(text: str, limit: int = MAX_CELL_OUTPUT) -> str:
    """A cell's output as a record keeps it: colours removed, each progress bar (rewritten with
    ``\\r``) at its last state, at most `limit` characters (its first and last halves)."""
    text = ANSI.sub("", text)
    text = "\n".join(([p for p in line.split("\r") if p.strip()] or [""])[-1] for line in text.split("\n"))
    if len(text) > limit:
        text = text[: limit // 2] + "\n[…]\n" + text[-limit // 2 :]
    return text

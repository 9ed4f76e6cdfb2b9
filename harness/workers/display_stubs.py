"""Plotting, progress-bar and experiment-tracking packages stood in for when they are not installed where
the harness grades.

A student's ``import seaborn as sns`` (or plotly, tqdm; wandb, mlflow, comet_ml, neptune) only draws,
shows progress or logs runs: grading needs none of it, and a grading machine without the package must
not make the whole notebook fail at its import cell. A tracking package's Keras callback
(``WandbCallback()``, ``WandbMetricsLogger()``) is a Keras callback that does nothing. :func:`install` appends a finder *after* every real one, so an installed package is
always used; only a missing one is replaced by a module whose every call draws nothing (tqdm's
bars pass their iterable through). The first use says so on stderr, which the cell's output keeps.

Standard library only (Keras when a tracking callback is asked for): it runs in the student's namespace,
in the sandbox; the loader cell (harness/workers/notebook.py) runs this file's source in a Jupyter
kernel too.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

# display-only and tracking packages: what a notebook does with them changes no model
PACKAGES = ("seaborn", "plotly", "tqdm", "wandb", "mlflow", "comet_ml", "neptune")
TRACKING = ("wandb", "mlflow", "comet_ml", "neptune")
CALLBACK_NAMES = ("Callback", "Logger", "Checkpoint")  # WandbCallback, WandbMetricsLogger, WandbModelCheckpoint
_SAID: set[str] = set()


class Nothing:
    """Whatever a plotting call returns (a figure, axes, a grid): called, read, indexed, iterated
    (empty), used in a ``with``; every use is another Nothing."""

    def __call__(self, *args, **kwargs):
        """``sns.heatmap(…)``, ``px.line(…).show()``: nothing drawn, another Nothing."""
        return self

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key):
        return self

    def __setitem__(self, key, value) -> None:
        pass

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def __repr__(self) -> str:
        return "<not drawn: package not installed where the harness grades>"


def _say(top: str) -> None:
    if top not in _SAID:
        _SAID.add(top)
        print(f"harness: {top} is not installed where the harness grades; its calls draw nothing", file=sys.stderr)


def _progress(iterable=None, *args, **kwargs):
    """tqdm(iterable) and trange(n): the iterable itself (or range(n)); a bar without one is Nothing."""
    if iterable is None:
        return Nothing()
    return range(iterable) if isinstance(iterable, int) else iterable


class _Stub(types.ModuleType):
    """A missing package (or one of its submodules): every attribute is Nothing, tqdm's bars pass through."""

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        top = self.__name__.split(".")[0]
        _say(top)
        if top == "tqdm" and name in ("tqdm", "trange", "tqdm_notebook"):
            return _progress
        if top in TRACKING and name.endswith(CALLBACK_NAMES):
            return _idle_callback(name)
        return Nothing()


def _idle_callback(name: str) -> type:
    """A Keras callback class named `name` that logs nothing (Keras is imported only when one is asked for)."""
    import keras  # noqa: PLC0415  (only a tracking callback needs Keras; the plotting stand-ins do not)

    def __init__(self, *args, **kwargs):
        keras.callbacks.Callback.__init__(self)

    return type(name, (keras.callbacks.Callback,), {"__init__": __init__, "__module__": "harness_stub"})


class _StubLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _Stub(spec.name)
        module.__path__ = []  # a package: `import plotly.express` finds its submodules here too
        return module

    def exec_module(self, module) -> None:
        pass


class StubFinder(importlib.abc.MetaPathFinder):
    """Last on ``sys.meta_path``: asked only for what no real finder found."""

    def find_spec(self, name, path=None, target=None):
        """A stand-in's spec for a display package (or a submodule of one), else None."""
        if name.split(".")[0] not in PACKAGES:
            return None
        return importlib.machinery.ModuleSpec(name, _StubLoader(), is_package=True)


def install() -> None:
    """Append the finder once; an installed package keeps being imported as itself."""
    if not any(isinstance(finder, StubFinder) for finder in sys.meta_path):
        sys.meta_path.append(StubFinder())

"""KerasTuner's ``HyperParameters`` at its defaults, for grading a hypermodel where KerasTuner is not installed.

A student who searched with KerasTuner hands in a hypermodel, ``build(hp)``, and a search the harness
does not run (it is the student's own training). The harness grades the hypermodel built at its search
space's default point, ``build(keras_tuner.HyperParameters())`` in KerasTuner's own words, or at the
point the student's search chose, ``HyperParameters.from_config({"space": [], "values": {...}})`` (the
ingest writes that call: harness/ingest/searches.py); where KerasTuner is missing, the module's ``keras_tuner``
is this one. Each method returns KerasTuner's default: ``default=`` when given, else an Int's or a
Float's minimum, a Choice's first value, False for a Boolean, a Fixed's value. A name asked twice
keeps its first value, as in KerasTuner.

Standard library only: it runs in the student's module, in the sandbox.
"""

from __future__ import annotations

import contextlib
from typing import Any


class HyperParameters:
    """The search space's default point; ``values`` lists what the hypermodel asked for."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: dict) -> HyperParameters:
        """KerasTuner's from_config, for its ``values``: the point a student's search chose
        (harness/ingest/searches.py). A value set there is kept when the hypermodel asks for it."""
        hp = cls()
        hp.values = dict(config.get("values", {}))
        return hp

    def _value(self, name: str, default: Any) -> Any:
        return self.values.setdefault(name, default)

    def Int(self, name, min_value, max_value=None, step=None, sampling="linear", default=None, **_):  # noqa: N802
        """KerasTuner's Int: `default`, else `min_value`."""
        return self._value(name, int(default if default is not None else min_value))

    Range = Int  # KerasTuner's first releases

    def Float(self, name, min_value, max_value=None, step=None, sampling="linear", default=None, **_):  # noqa: N802
        """KerasTuner's Float: `default`, else `min_value`."""
        return self._value(name, float(default if default is not None else min_value))

    def Choice(self, name, values, ordered=None, default=None, **_):  # noqa: N802
        """KerasTuner's Choice: `default`, else the first of `values`."""
        return self._value(name, default if default is not None else list(values)[0])

    def Boolean(self, name, default=False, **_):  # noqa: N802
        """KerasTuner's Boolean: `default` (False)."""
        return self._value(name, bool(default))

    def Fixed(self, name, value, **_):  # noqa: N802
        """KerasTuner's Fixed: its value."""
        return self._value(name, value)

    def get(self, name: str) -> Any:
        """A value already asked for."""
        return self.values[name]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __contains__(self, name: str) -> bool:
        return name in self.values

    @contextlib.contextmanager
    def conditional_scope(self, parent_name, parent_values):
        """KerasTuner's conditional hyper-parameters: at the default point every branch the code takes is active."""
        yield

"""Options shared by ``grade`` and ``check``, turned from strings into the pipeline's values."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from harness.ingest.execution import ExecuteOptions


def parse_factory_map(values: list[str]) -> dict[str, dict[str, str]]:
    """--factory-map values: {student id or "*": {harness name: the student's function}}."""
    mapping: dict[str, dict[str, str]] = {}
    for value in values:
        if "=" in value and not value.endswith(".toml"):
            target, _, own = value.partition("=")
            mapping.setdefault("*", {})[target.strip()] = own.strip()
            continue
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"--factory-map {value!r}: expected NAME=FUNCTION or an existing .toml file")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for section, pairs in data.items():
            if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
                raise ValueError(f'{path}: [{section}] must hold NAME = "FUNCTION" pairs')
            mapping.setdefault("*" if section == "all" else section, {}).update(pairs)
    return mapping


def execute_options(args: argparse.Namespace) -> ExecuteOptions:
    """--execute's limits (--cell-timeout, --execute-timeout) over its defaults."""
    changes = {
        k: v for k, v in (("cell_timeout_s", args.cell_timeout), ("deadline_s", args.execute_timeout)) if v is not None
    }
    return ExecuteOptions(**changes)


def log(message: str) -> None:
    """Progress lines, flushed at once (a CI log shows them as they come)."""
    print(message, flush=True)

"""``harness schema``: the JSON Schema of ``result.json``."""

from __future__ import annotations

import argparse
import json

from harness.results import json_schema


def run(args: argparse.Namespace) -> int:
    """Print the schema; always 0."""
    print(json.dumps(json_schema(), indent=1, ensure_ascii=False))
    return 0

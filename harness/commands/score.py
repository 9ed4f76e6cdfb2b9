"""``harness score OUT``: re-score stored results (after a rubric or override change); trains nothing."""

from __future__ import annotations

import argparse
import time

from harness.commands.options import log
from harness.pipeline import rescore


def run(args: argparse.Namespace) -> int:
    """Re-score; exit 0 when every stored submission was fully graded, else 1."""
    started = time.monotonic()
    results = rescore(
        args.out,
        rubric_path=args.rubric,
        language=args.lang,
        overrides=args.overrides,
        log=log,
        roster=args.roster,
        wait=args.wait,
        reports=not args.no_reports,
    )
    print(
        f"re-scored {len(results)} submission(s) from {args.out} in {time.monotonic() - started:.1f} s "
        "(nothing retrained)"
    )
    return 0 if all(r.status == "ok" for r in results) else 1

"""``harness check PATH``: a student's check before handing in (checklist, predicted ranges, preview)."""

from __future__ import annotations

import argparse

from harness.commands.options import execute_options, log, parse_factory_map
from harness.pipeline import CheckOptions, check


def run(args: argparse.Namespace) -> int:
    """Check; exit 0 when the submission will be gradable, 1 otherwise."""
    mapping = parse_factory_map(args.factory_map)
    options = CheckOptions(
        path=args.path,
        out=args.out,
        cache=args.cache,
        data=args.data,
        protocol=args.protocol,
        rubric=args.rubric,
        language=args.lang,
        profile=args.profile,
        execute=args.execute,
        execute_options=execute_options(args),
        factory_map=mapping.get("*", {}),
        discover_models=args.discover,
        use_bubblewrap=False if args.no_sandbox else None,
        ascii=args.ascii,
        log=log,
    )
    reports = check(options)
    return max((r.exit_code for r in reports), default=1)

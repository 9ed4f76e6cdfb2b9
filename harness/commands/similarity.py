"""``harness similarity OUT``: compare a graded class's submissions from stored results; trains nothing."""

from __future__ import annotations

import argparse

from harness.commands.options import log
from harness.pipeline import similarity


def run(args: argparse.Namespace) -> int:
    """Recompute OUT/similarity.json and OUT/similarity.html; exit 0 (a flagged pair is not an error)."""
    found = similarity(
        args.out,
        wait=args.wait,
        log=log,
        against=args.against,
        data=args.data,
        language=args.lang,
        settings=args.settings,
    )
    flagged = [p for p in found.pairs if p.flagged]
    print(
        f"compared {found.compared_pairs} pair(s) of {len(found.submissions)} submission(s) in {found.seconds:.1f} s: "
        f"{len(flagged)} flagged, {len(found.clusters)} cluster(s). Page: {args.out / 'similarity.html'}"
    )
    for pair in flagged[:10]:
        print(f"  {pair.score:.2f}  {pair.a} · {pair.b}{f' ({pair.b_origin})' if pair.b_origin else ''}")
    return 0

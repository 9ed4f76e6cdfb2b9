"""``harness report OUT``: re-render every report and the dashboard (in another language, say)."""

from __future__ import annotations

import argparse
import sys

from harness.pipeline import rerender
from harness.pipeline.similarity import refresh as refresh_similarity
from harness.report.exports import keep_assignment
from harness.report.screenshots import check_pages


def run(args: argparse.Namespace) -> int:
    """Re-render; with --screenshots, exit 1 when a page shows console errors or broken images."""
    warn = lambda line: print(line, file=sys.stderr)
    if args.assignment or args.assignment_id:  # kept: a later `harness score` writes the same columns
        keep_assignment(args.out, args.assignment, args.assignment_id)
    refresh_similarity(args.out, args.lang, warn, wait=args.wait)  # first: the dashboard links its page
    results = rerender(args.out, language=args.lang, roster=args.roster, log=warn, wait=args.wait)
    print(f"re-rendered {len(results)} report(s) and {args.out / 'index.html'}")
    if not args.screenshots:
        return 0
    pages = (
        [args.out / "index.html"]
        + [p for p in [args.out / "similarity.html"] if p.exists()]
        + [args.out / r.student / "report.html" for r in results]
    )
    problems = 0
    for page in check_pages(pages, args.out / "screenshots"):
        issues = page.console_errors + page.broken_images + page.external_requests
        problems += len(issues)
        print(f"{page.screenshot}: {page.images} image(s)" + (f"; problems: {issues}" if issues else ""))
    return 1 if problems else 0

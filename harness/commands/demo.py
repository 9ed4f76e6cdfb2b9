"""``harness demo``: grade the bundled demo class into a fresh folder and say where its dashboard is."""

from __future__ import annotations

import argparse

from harness.commands.options import log
from harness.pipeline import DemoOptions, demo
from harness.util.i18n import Translator


def run(args: argparse.Namespace) -> int:
    """Grade the demo class; exit 0 when every student ends with its expected status, else 1."""
    summary = demo(
        DemoOptions(
            out=args.out, profile=args.profile, data=args.data, language=args.lang, workers=args.workers, log=log
        )
    )
    t = Translator(args.lang)
    if summary.unexpected:
        log(t("demo_unexpected", problems="; ".join(f"{s}: {', '.join(p)}" for s, p in summary.unexpected.items())))
    else:
        statuses = ", ".join(f"{r.student} {r.status}" for r in summary.batch.results if r.status != "ok")
        log(t("demo_expected", expected=statuses or "ok"))
    if summary.dashboard.name not in summary.unexpected:
        log(t("demo_done", url=summary.dashboard.as_uri()))
    return summary.exit_code

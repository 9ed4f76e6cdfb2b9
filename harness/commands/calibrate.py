"""``harness calibrate OUT --marks marks.csv``: the harness's marks against an instructor's; a fitted rubric proposed."""

from __future__ import annotations

import argparse

from harness.pipeline import calibrate, calibration_text
from harness.util.i18n import Translator


def run(args: argparse.Namespace) -> int:
    """Print the agreement table and the proposals; exit 0 (the report is in OUT/calibration/)."""
    report = calibrate(
        args.out,
        marks=args.marks,
        expectations=args.expectations,
        half=args.half,
        language=args.lang,
        fit=not args.no_fit,
        folds=args.folds,
    )
    t = Translator(args.lang)
    print(calibration_text(report, t))
    print(t("cal_written", folder=str(report.folder)))
    return 0

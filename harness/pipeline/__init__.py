"""The grading pipeline: a session built once, one function per submission, a batch over a class.

Commands call only this package's public API::

    grade(GradeOptions(...))      harness grade   (batch.py → backends.py → submission.py)
    check(CheckOptions(...))      harness check   (check.py → submission.py)
    rescore(OUT) / rerender(OUT)  harness score / harness report (rescore.py)
    calibrate(OUT, marks=…)       harness calibrate (calibrate.py)
"""

from harness.pipeline.batch import BatchSummary, grade
from harness.pipeline.calibrate import CalibrationReport, calibrate, calibration_text
from harness.pipeline.check import CheckOptions, check
from harness.pipeline.rescore import rerender, rescore
from harness.pipeline.session import REFERENCE_DIR, GradeOptions, default_threads, default_workers

__all__ = [
    "REFERENCE_DIR",
    "BatchSummary",
    "CalibrationReport",
    "CheckOptions",
    "GradeOptions",
    "calibrate",
    "calibration_text",
    "check",
    "default_threads",
    "default_workers",
    "grade",
    "rerender",
    "rescore",
]

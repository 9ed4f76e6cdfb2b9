"""The grading pipeline: a session built once, one function per submission, a batch over a class.

Commands call only this package's public API::

    grade(GradeOptions(...))      harness grade   (batch.py → backends.py → submission.py)
    check(CheckOptions(...))      harness check   (check.py → submission.py)
    demo(DemoOptions(...))        harness demo    (demo.py → batch.py, the bundled demo class)
    rescore(OUT) / rerender(OUT)  harness score / harness report (rescore.py)
    calibrate(OUT, marks=…)       harness calibrate (calibrate.py)
    similarity(OUT)               harness similarity, and the end of grade and report (similarity.py)
"""

from harness.pipeline.batch import BatchSummary, grade
from harness.pipeline.calibrate import CalibrationReport, calibrate, calibration_text
from harness.pipeline.check import CheckOptions, check
from harness.pipeline.demo import DemoOptions, DemoSummary, demo
from harness.pipeline.rescore import rerender, rescore
from harness.pipeline.session import REFERENCE_DIR, GradeOptions, default_workers
from harness.pipeline.similarity import similarity_locked as similarity

__all__ = [
    "REFERENCE_DIR",
    "BatchSummary",
    "CalibrationReport",
    "CheckOptions",
    "DemoOptions",
    "DemoSummary",
    "GradeOptions",
    "calibrate",
    "calibration_text",
    "check",
    "default_workers",
    "demo",
    "grade",
    "rerender",
    "rescore",
    "similarity",
]

"""What runs inside the sandbox, one module per worker: ``python -m harness.workers.<name> JOB.json``.

``train`` (the student's factories trained), ``evaluate`` (saved models' predictions),
``discover`` (a notebook's top-level models recorded) and ``execute`` (a notebook run top to
bottom), with what they share: ``protocol`` (the job file and the progress events),
``keras_setup`` and ``notebook``.

Only this package (and ``harness/__init__.py``) is mounted in the sandbox: a worker imports the
standard library, numpy, Keras, TensorFlow, nbclient/nbformat and ``harness.workers.*``, never
the grader. This file only ties the worker's life to its grader's (``lifeline``), first, before
a worker imports anything heavy.
"""

import os as _os

if "HARNESS_LIFELINE_FD" in _os.environ:
    from harness.workers.lifeline import hold

    hold()

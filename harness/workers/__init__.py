"""What runs inside the sandbox, one module per worker: ``python -m harness.workers.<name> JOB.json``.

``train`` (the student's factories trained), ``evaluate`` (saved models' predictions),
``discover`` (a notebook's top-level models recorded) and ``execute`` (a notebook run top to
bottom), with what they share: ``protocol`` (the job file and the progress events),
``keras_setup`` and ``notebook``.

Only this package (and ``harness/__init__.py``) is mounted in the sandbox: a worker imports the
standard library, numpy, Keras, TensorFlow, nbclient/nbformat and ``harness.workers.*``, never
the grader. This file imports nothing.
"""

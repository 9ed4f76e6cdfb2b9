"""Where grading a class spends its time, stage by stage: what the test suite's gradings cost, and why.

    python bench/stage_times.py FOLDER [harness grade options…]
    python bench/stage_times.py tests/fixtures/real_world --protocol P.toml --profile tiny --workers 1 --out /tmp/st --no-reports

Grades FOLDER in this process with ``harness grade``'s own code, each stage of
``harness/pipeline/submission.py`` (and the training and evaluation it starts) timed where it is called,
and prints the seconds each stage took in all and how many times it ran. With ``--workers N`` the stages of
N submissions overlap: their sum exceeds the wall time. The test profiles (``tiny``…) are those of
``tests/fixtures/protocol_test_profiles.toml`` appended to ``reference/protocol.toml`` (``--protocol``).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, defaultdict

import harness.pipeline.models as models
import harness.pipeline.submission as submission
from harness.cli import main

SECONDS: defaultdict[str, float] = defaultdict(float)
CALLS: Counter[str] = Counter()
_LOCK = threading.Lock()
STAGES = {
    submission: ["read_submission", "discover_top_level", "_trained", "_analyse", "score_submission", "draw_report"],
    models: ["train_submission", "evaluate_models"],
}


def _timed(module, name: str) -> None:
    function = getattr(module, name)

    def timed(*args, **kwargs):
        started = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            with _LOCK:
                SECONDS[name] += time.monotonic() - started
                CALLS[name] += 1

    setattr(module, name, timed)


if __name__ == "__main__":
    for module, names in STAGES.items():
        for name in names:
            _timed(module, name)
    started = time.monotonic()
    try:
        main(["grade", *sys.argv[1:]])
    except SystemExit:
        pass
    print(f"wall {time.monotonic() - started:.1f} s")
    for name, seconds in sorted(SECONDS.items(), key=lambda item: -item[1]):
        print(f"{name:22s} {seconds:8.1f} s  {CALLS[name]:4d} call(s)  {seconds / CALLS[name]:6.1f} s each")

"""A grader killed in the first milliseconds of a worker: does the sandboxed worker die with it?

    python bench/spawn_race.py [--kills 100] [--window-ms 20] [--no-lifeline] [--no-reaper] [--work DIR]

Each round starts a small "grader" process that launches one sandboxed worker the way
``harness.sandbox.runner`` does (bubblewrap, the parent-death request before exec, the lifeline
pipe: ``harness/workers/lifeline.py``), then kills itself with SIGKILL at a random moment within
``--window-ms`` of the launch: the window where bubblewrap forks the sandboxed process and only then
asks the kernel to kill it with its parent. The worker only imports ``harness.workers`` and sleeps.
A round counts an orphan when a process of the worker's scratch folder is still alive 10 s after the
kill (then killed). With ``--no-lifeline`` the worker is given none: the kernel's parent-death signal
alone; with ``--no-reaper`` the worker is not registered with the grader's reaper
(``harness/sandbox/reaper.py``). Prints one line per orphan and the count; needs bubblewrap. The kill -9 campaign
(``bench/kill_campaign.py``) kills at a random moment of each grading stage instead.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.sandbox.processes import processes_in

GRADER = """
import os, signal, subprocess, sys, time
from pathlib import Path
from harness.sandbox.bubblewrap import wrap
from harness.sandbox import reaper
from harness.sandbox.processes import die_with_parent
from harness.sandbox.runner import LIFELINE_ENV, lifeline
scratch, delay, holds, reaped = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
grader = os.getpid()
if reaped:
    token = reaper.watch(scratch, [])
with lifeline() as read_end:
    env_extra = {LIFELINE_ENV: str(read_end)} if holds else {}
    argv, env, _ = wrap([sys.executable, "-c", "import harness.workers, time; time.sleep(60)"], scratch=scratch,
                        readable=[], use_bubblewrap=True, extra_env=env_extra)
    worker = subprocess.Popen(argv, env=env, cwd=scratch, start_new_session=True,
                              pass_fds=(read_end,) if holds else (), preexec_fn=lambda: die_with_parent(grader))
    if reaped:
        reaper.group(token, worker.pid)
    time.sleep(delay)
    os.kill(grader, signal.SIGKILL)
"""


def one_round(scratch: Path, delay: float, holds: bool, reaped: bool) -> list[int]:
    """Launch, kill the grader after `delay` seconds; the worker's processes still alive 10 s later."""
    scratch.mkdir(parents=True)
    flags = ["1" if holds else "0", "1" if reaped else "0"]
    subprocess.run([sys.executable, "-c", GRADER, str(scratch), str(delay), *flags], check=False)
    deadline = time.monotonic() + 10
    while processes_in(scratch) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_in(scratch)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


def main() -> int:
    """Run the rounds; exit 1 when a worker outlived its grader."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--window-ms", type=float, default=20.0)
    parser.add_argument("--no-lifeline", action="store_true")
    parser.add_argument("--no-reaper", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="spawn-race-"))
    orphans = 0
    for index in range(args.kills):
        delay = rng.uniform(0, args.window_ms / 1000)
        left = one_round(work / f"w{index}", delay, holds=not args.no_lifeline, reaped=not args.no_reaper)
        if left:
            orphans += 1
            print(f"kill {index}: {1000 * delay:.1f} ms after the launch, {len(left)} process(es) left", flush=True)
    how = " and ".join(
        ["parent-death signal"] + ([] if args.no_lifeline else ["lifeline"]) + ([] if args.no_reaper else ["reaper"])
    )
    print(f"{orphans} of {args.kills} kills within {args.window_ms:g} ms left a sandboxed process ({how})")
    return 1 if orphans else 0


if __name__ == "__main__":
    sys.exit(main())

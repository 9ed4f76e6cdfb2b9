"""Kill -9 campaign: ``harness grade`` killed with SIGKILL at random moments, resumed, compared.

    nice -n 10 python bench/kill_campaign.py --data /path/to/mnist.npz [--kills 20] [--seed 15]
                                             [--backend local|ray] [--work DIR] [--out bench/results]

A tiny class (3 submissions of a few small models, one with Dropout and a callback) is graded once
without interruption on a tiny profile appended to the bundled protocol (300 training / 200 test
images, 1 epoch; the bundled robustness suite: 37 sets of 200 images, built in about 4 s, long
enough to be killed in). Then, ``--kills`` times, a fresh output
folder is graded and the grader is killed with SIGKILL (the grader's process only, as ``kill -9
PID`` does: its workers must die by themselves) at a random moment of one stage, taken in turn:

* ``suite`` — the robustness suite being built (fresh suite and reference caches);
* ``reference`` — the reference model training (fresh caches);
* ``train`` — a student's training worker running;
* ``evaluate`` — a student's evaluation worker predicting (its ``go.json`` written);
* ``report`` — every result written, the reports, dashboard and gradebook being drawn;

with ``--workers 1`` and ``--workers 2`` alternately. After each kill it checks that no worker
outlived the grader and that every ``result.json`` parses, then runs the same command to the
end and checks that the results written before the kill were kept byte for byte (a result graded
again counts as lost), that no temporary file is left, that every JSON file parses, and that
``grades.csv`` is byte-identical to the uninterrupted run's and every score and test accuracy
the same. It prints one line per kill and a summary, "0 results lost, 0 corrupt, grades
identical" when nothing was found; ``--out`` gets ``kill_campaign.json`` and ``kill_campaign.md``.
The exit code is 0 when nothing was found, 1 otherwise.

With ``--backend ray`` every graded run (the killed one and its resume) goes through ``harness grade
--backend ray``, which starts its own local Ray cluster: the kill then also tests that Ray's processes
(its GCS server, raylet, the task's worker process) die with the grader — any of them alive after the
grace period is an orphan — and the resumed grades are compared with the uninterrupted *local* run's
(the Ray backend must give the same grades as the local one). The outputs are then
``kill_campaign_ray.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the harness of this checkout, also when run from a copy of it

from harness.resources import bundled  # noqa: E402  (after the path is set)
from harness.results import SubmissionResult  # noqa: E402

STAGES = ["suite", "reference", "train", "evaluate", "report"]
PROFILE = "campaign"
PROTOCOL_EXTRA = f"""

[profiles.{PROFILE}]
description = "kill campaign: 300 training / 200 test images, 1 epoch"
train_images = 300
test_images = 200
epochs = 1
max_epochs = 1
model_budget_s = 120
submission_budget_s = 900
import_timeout_s = 120
build_timeout_s = 60
"""
# the moment after the stage starts when the kill lands: uniform over (0, this) seconds, about the stage's length
KILL_WITHIN_S = {"suite": 2.5, "reference": 1.5, "train": 1.5, "evaluate": 1.5, "report": 1.5}
GRADE_TIMEOUT_S = 1800
# a write interrupted midway: a temporary file (.<name>.<random>.tmp) or a stage-cache staging folder
LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}(\.tmp)?$|^\.result\.json\.")
ORPHAN_GRACE_S = 5.0  # the kernel's parent-death signals and bubblewrap's --die-with-parent
RAY_GRACE_S = 30.0  # Ray's own processes notice their driver's death by polling, within seconds
# Ray's processes, by their command lines: the head's services and the task workers
RAY_PROCESS = re.compile(r"gcs_server|raylet|ray::|default_worker\.py|ray/_private|ray/dashboard|log_monitor")

DENSE = '''
"""Campaign submission: dense models."""
import keras
from keras import layers


def create_baseline_model():
    """Flatten and one dense layer."""
    model = keras.Sequential([keras.Input(shape=(28, 28, 1)), layers.Flatten(), layers.Dense({units}, activation="relu"),
                              layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
'''
REGULARISED = '''
"""Campaign submission: Dropout, an augmentation layer and a callback."""
import keras
from keras import layers

TRAINING_CONFIG = {
    "create_improved_model_1": {"callbacks": [keras.callbacks.EarlyStopping(monitor="val_loss", patience=1)]},
}


def create_improved_model_1():
    """A small CNN with random rotation and Dropout."""
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.RandomRotation(0.05),
        layers.Conv2D(4, (3, 3), activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dropout(0.25),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model
'''


@dataclass
class Kill:
    """One kill and what the resumed run found."""

    number: int
    target: str
    stage: str = ""  # the stage observed when the kill landed
    workers: int = 1
    after_s: float = 0.0
    killed: bool = False  # False: the run ended before the target stage was reached
    results_before: int = 0
    lost: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    resume_exit: int | None = None
    resume_s: float = 0.0


def write_class(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "ada.py": DENSE.format(units=16),
        "basile.py": DENSE.format(units=24),
        "chloe.py": REGULARISED,
    }
    for name, text in files.items():
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    return sorted(folder / name for name in files)


def write_protocol(work: Path) -> Path:
    protocol = work / "protocol-campaign.toml"
    protocol.write_text(bundled("reference", "protocol.toml").read_text(encoding="utf-8") + PROTOCOL_EXTRA, "utf-8")
    return protocol


class Campaign:
    """The class, its inputs and the uninterrupted run, and one kill-and-resume cycle at a time."""

    def __init__(self, work: Path, data: Path, rng: random.Random, backend: str = "local") -> None:
        self.work, self.data, self.rng, self.backend = work, data, rng, backend
        self.paths = write_class(work / "class")
        self.protocol = write_protocol(work)
        self.warm = {"suite": work / "caches" / "warm-suite", "reference": work / "caches" / "warm-reference"}

    def command(self, out: Path, workers: int, backend: str | None = None) -> list[str]:
        return [
            sys.executable, "-m", "harness.cli", "grade", *map(str, self.paths), "--out", str(out),
            "--profile", PROFILE, "--protocol", str(self.protocol), "--data", str(self.data),
            "--workers", str(workers), "--backend", backend or self.backend,
        ]  # fmt: skip

    def environment(self, caches: dict[str, Path]) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONUNBUFFERED": "1",  # the grader's lines as they are printed: they tell the stage
            "HARNESS_SUITE_CACHE": str(caches["suite"]),
            "HARNESS_REFERENCE_CACHE": str(caches["reference"]),
        }

    def run_to_end(
        self, out: Path, workers: int, caches: dict[str, Path], backend: str | None = None
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(out, workers, backend),
            cwd=ROOT,
            env=self.environment(caches),
            capture_output=True,
            text=True,
            timeout=GRADE_TIMEOUT_S,
        )


# --------------------------------------------------------------------------- observing the grader


def processes_of(out: Path, grader: int | None = None) -> list[str]:
    """Processes (but the grader) running in `out` or naming it: every worker runs in its scratch folder there."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == grader:
            continue
        try:
            cwd = Path(os.readlink(f"/proc/{entry.name}/cwd"))
            command = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if cwd == out or out in cwd.parents or str(out) in command:
            found.append(f"{entry.name} {command[:160]}")
    return found


def ray_processes() -> set[str]:
    """Ray's processes alive on this machine ("PID command"), whoever started them."""
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            command = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if RAY_PROCESS.search(command):
            found.add(f"{entry.name} {command[:160]}")
    return found


def stage_now(out: Path, log: str, students: int, grader: int) -> str:
    """Which stage the grader is in, from what it printed and the workers it runs."""
    if "private check set" not in log:  # printed just before the suite is built
        return "startup"
    if "robustness suite:" not in log:
        return "suite"
    if "reference:" not in log:
        return "reference"
    workers = processes_of(out, grader)
    if any("harness.workers.train" in w for w in workers):
        return "train"
    if any(p.is_file() for p in out.glob(".work/*/evaluate/*/go.json")):
        return "evaluate"
    if len(results_in(out)) >= students:
        return "report"
    return "between"


def results_in(out: Path) -> dict[str, bytes]:
    return {
        p.parent.name: p.read_bytes() for p in sorted(out.glob("*/result.json")) if not p.parent.name.startswith("_")
    }


def kill_during(campaign: Campaign, out: Path, kill: Kill, caches: dict[str, Path]) -> None:
    """Start the grader, wait for the target stage, kill it with SIGKILL a random moment later."""
    log_path = out.parent / f"{out.name}.log"
    with open(log_path, "wb") as log:
        grader = subprocess.Popen(
            campaign.command(out, kill.workers),
            cwd=ROOT,
            env=campaign.environment(caches),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started = time.monotonic()
        try:
            while grader.poll() is None and time.monotonic() - started < GRADE_TIMEOUT_S:
                text = log_path.read_text("utf-8", "replace")
                if stage_now(out, text, len(campaign.paths), grader.pid) == kill.target:
                    time.sleep(campaign.rng.uniform(0.0, KILL_WITHIN_S[kill.target]))  # somewhere inside the stage
                    kill.stage = stage_now(out, log_path.read_text("utf-8", "replace"), len(campaign.paths), grader.pid)
                    if grader.poll() is None:
                        os.kill(grader.pid, signal.SIGKILL)  # the grader only, as `kill -9 PID`
                        kill.killed = True
                    break
                time.sleep(0.05)
        finally:
            kill.after_s = time.monotonic() - started
            if grader.poll() is None and not kill.killed:
                os.kill(grader.pid, signal.SIGKILL)
                kill.killed = True
            grader.wait()


def check_after_kill(out: Path, kill: Kill, ray_before: set[str] | None = None) -> dict[str, bytes]:
    """No worker outlived the grader (nor, with `ray_before`, a Ray process it started); every result.json
    written is whole."""

    def alive() -> list[str]:
        return processes_of(out) + sorted(ray_processes() - ray_before if ray_before is not None else ())

    deadline = time.monotonic() + (ORPHAN_GRACE_S if ray_before is None else RAY_GRACE_S)
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    kill.orphans = alive()
    for pid in kill.orphans:  # leave nothing running for the next cycle
        try:
            os.kill(int(pid.split()[0]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    before = results_in(out)
    for student in before:
        try:
            SubmissionResult.read(out / student / "result.json")
        except Exception as error:
            kill.corrupt.append(f"{student}/result.json after the kill: {type(error).__name__}: {error}"[:300])
    kill.results_before = len(before)
    return before


def check_after_resume(out: Path, kill: Kill, before: dict[str, bytes], baseline: Path) -> None:
    after = results_in(out)
    for student, content in before.items():
        if after.get(student) != content:
            kill.lost.append(student)
    kill.leftovers = [str(p.relative_to(out)) for p in out.rglob("*") if LEFTOVER.match(p.name)]
    kill.leftovers += [str(p.relative_to(out)) for p in (out / ".work").glob("*")]  # emptied by a complete run
    for path in out.rglob("*.json"):
        try:
            json.loads(path.read_bytes())
        except (ValueError, OSError) as error:
            kill.corrupt.append(f"{path.relative_to(out)}: {error}"[:300])
    kill.differences = compare(baseline, out)


def numbers(out: Path) -> dict[str, object]:
    """What must not depend on the kill: each student's status, total, criteria and models' numbers."""
    found = {}
    for student, _ in results_in(out).items():
        result = SubmissionResult.read(out / student / "result.json")
        found[student] = {
            "status": result.status,
            "total": result.score.total if result.score else None,
            "criteria": [(c.id, c.points) for c in result.score.criteria] if result.score else [],
            "models": [(m.name, m.status, m.test_accuracy, m.test_errors, m.params) for m in result.models],
        }
    return found


def compare(baseline: Path, out: Path) -> list[str]:
    differences = []
    grades = out / "grades.csv"
    if not grades.exists() or grades.read_bytes() != (baseline / "grades.csv").read_bytes():
        differences.append("grades.csv differs from the uninterrupted run's")
    expected, found = numbers(baseline), numbers(out)
    for student in sorted(set(expected) | set(found)):
        if expected.get(student) != found.get(student):
            differences.append(f"{student}: {found.get(student)} instead of {expected.get(student)}")
    return differences


# --------------------------------------------------------------------------- the campaign


def cycle(campaign: Campaign, number: int, target: str, workers: int, baseline: Path) -> Kill:
    kill = Kill(number=number, target=target, workers=workers)
    out = campaign.work / f"kill-{number:02d}"
    fresh = target in ("suite", "reference")  # their stage happens only when nothing is cached yet
    caches = (
        {kind: campaign.work / "caches" / f"{kind}-{number:02d}" for kind in ("suite", "reference")}
        if fresh
        else campaign.warm
    )
    ray_before = ray_processes() if campaign.backend == "ray" else None
    kill_during(campaign, out, kill, caches)
    before = check_after_kill(out, kill, ray_before)
    started = time.monotonic()
    resumed = campaign.run_to_end(out, workers, caches)
    kill.resume_s, kill.resume_exit = time.monotonic() - started, resumed.returncode
    if resumed.returncode != 0:
        kill.differences.append(f"the resumed run exited {resumed.returncode}: {resumed.stderr[-500:]}")
    check_after_resume(out, kill, before, baseline)
    if not (kill.lost or kill.corrupt or kill.orphans or kill.leftovers or kill.differences):
        shutil.rmtree(out, ignore_errors=True)  # keep only what shows a problem
        for folder in caches.values():
            if fresh:
                shutil.rmtree(folder, ignore_errors=True)
    return kill


def summary_line(kills: list[Kill]) -> str:
    lost = sum(len(k.lost) for k in kills)
    corrupt = sum(len(k.corrupt) + len(k.leftovers) for k in kills)
    orphans = sum(len(k.orphans) for k in kills)
    identical = not any(k.differences for k in kills)
    line = f"{lost} results lost, {corrupt} corrupt, grades {'identical' if identical else 'DIFFERENT'}"
    return line + (f", {orphans} orphan processes" if orphans else "")


def report_line(kill: Kill) -> str:
    problems = kill.lost + kill.corrupt + kill.orphans + kill.leftovers + kill.differences
    where = kill.stage if kill.killed else "not killed (ended first)"
    return (
        f"kill {kill.number:2d}: target {kill.target:9s} hit {where:9s} after {kill.after_s:5.1f} s, "
        f"{kill.workers} worker(s), {kill.results_before} result(s) kept; resumed in {kill.resume_s:.0f} s"
        + (f" — {'; '.join(problems)}" if problems else " — ok")
    )


def write_outputs(
    out: Path, kills: list[Kill], summary: str, seconds: float, command: str, name: str = "kill_campaign"
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    document = {"command": command, "seconds": seconds, "summary": summary, "kills": [asdict(k) for k in kills]}
    (out / f"{name}.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    stages = {s: sum(1 for k in kills if k.killed and k.stage == s) for s in ["startup", *STAGES, "between"]}
    lines = [
        "# Kill -9 campaign" + ("" if name == "kill_campaign" else f" ({name.rsplit('_', 1)[-1]} backend)"),
        "",
        f"`{command}` — {len(kills)} kills in {seconds / 60:.0f} min.",
        "",
        f"**{summary}**",
        "",
        "Kills by the stage they hit: " + ", ".join(f"{s} {n}" for s, n in stages.items() if n) + ".",
        "",
        *(f"- {report_line(k)}" for k in kills),
    ]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=os.environ.get("HARNESS_MNIST_NPZ"), help="MNIST .npz")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=15, help="the random moments of the kills")
    parser.add_argument("--backend", choices=["local", "ray"], default="local", help="the backend killed and resumed")
    parser.add_argument("--work", type=Path, help="a folder for the runs (default: a fresh temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.data is None:
        parser.error("MNIST is needed: --data /path/to/mnist.npz or HARNESS_MNIST_NPZ")
    work = (args.work or Path(tempfile.mkdtemp(prefix="kill-campaign-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    campaign = Campaign(work, args.data.resolve(), random.Random(args.seed), args.backend)
    started = time.monotonic()
    baseline = work / "uninterrupted"
    first = campaign.run_to_end(baseline, 2, campaign.warm, backend="local")
    if first.returncode != 0:
        print(first.stdout[-3000:], first.stderr[-3000:], sep="\n")
        raise SystemExit(f"the uninterrupted run exited {first.returncode}")
    print(f"uninterrupted run: {time.monotonic() - started:.0f} s, results in {baseline}", flush=True)
    kills = []
    for number in range(1, args.kills + 1):
        target = STAGES[(number - 1) % len(STAGES)]
        workers = 1 + ((number - 1) // len(STAGES)) % 2  # every stage with 1 and with 2 workers
        kills.append(cycle(campaign, number, target, workers, baseline))
        print(report_line(kills[-1]), flush=True)
    summary = summary_line(kills)
    print(summary)
    command = "nice -n 10 python bench/kill_campaign.py " + " ".join(sys.argv[1:])
    name = "kill_campaign" if args.backend == "local" else f"kill_campaign_{args.backend}"
    write_outputs(args.out, kills, summary, time.monotonic() - started, command, name)
    return 0 if summary.startswith("0 results lost, 0 corrupt, grades identical") and "orphan" not in summary else 1


if __name__ == "__main__":
    sys.exit(main())

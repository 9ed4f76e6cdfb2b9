"""Train stage: retrain a submission's models in sandboxed workers, under the protocol and its limits.

The grading process never imports student code: it writes the extracted module to a scratch
folder, starts a worker (``harness.worker``) there and reads its progress events. A worker
that passes a deadline is killed, the model it was on gets a specific status, and a fresh
worker goes on with the remaining models.

>>> models, worker = train_submission(ingest, job, models_out=Path("OUT/alice/models"))  # doctest: +SKIP
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from harness.config import Profile, Protocol
from harness.results import ModelResult, ModelSpec, TrainingSettings, WorkerInfo
from harness.runner import JobOutcome, run_job
from harness.sandbox import Limits

STARTUP_ALLOWANCE_S = 120.0   # interpreter + TensorFlow import, before student code runs
SAVE_ALLOWANCE_S = 120.0
CRASH_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGABRT", "SIGFPE", "SIGSYS"}


@dataclass(frozen=True)
class TrainingJob:
    """Everything a training run needs besides the submission itself."""

    protocol: Protocol
    profile: Profile
    seed: int
    train_data: Path
    work_dir: Path
    threads: int = 1
    limits: Limits = Limits()
    use_bubblewrap: bool | None = None
    epochs_override: int | None = None

    def grace_s(self) -> float:
        return max(30.0, 0.25 * self.profile.model_budget_s)


class _Deadlines:
    """watch() for the runner: which limit applies depends on the phase the worker reported."""

    def __init__(self, job: TrainingJob, spent_before: float) -> None:
        self.job, self.spent_before = job, spent_before

    def __call__(self, events: list[dict], elapsed: float) -> str | None:
        profile = self.job.profile
        if self.spent_before + elapsed > profile.submission_budget_s:
            return f"the submission's total budget of {profile.submission_budget_s:.0f} s was used up"
        if not events:
            if elapsed > STARTUP_ALLOWANCE_S:
                return f"the worker did not start within {STARTUP_ALLOWANCE_S:.0f} s"
            return None
        last = events[-1]
        now = time.time()  # the worker stamps events with the same wall clock
        age = now - last["time"]
        kind, phase = last["event"], last.get("phase")
        if kind == "started" and age > STARTUP_ALLOWANCE_S:
            return f"the worker did not get ready within {STARTUP_ALLOWANCE_S:.0f} s"
        if kind == "import" and age > profile.import_timeout_s:
            return f"importing the submission took more than {profile.import_timeout_s:.0f} s"
        if kind == "model" and phase == "build" and age > profile.build_timeout_s:
            return f"{last['name']}() did not return a model within {profile.build_timeout_s:.0f} s"
        if kind == "model" and phase == "save" and age > SAVE_ALLOWANCE_S:
            return f"saving {last['name']} took more than {SAVE_ALLOWANCE_S:.0f} s"
        if kind in ("model", "epoch") and phase not in ("build", "save"):
            started = _train_started(events, last.get("name"))
            if started is not None and now - started > profile.model_budget_s + self.job.grace_s():
                return (f"training {last['name']} went past its budget of {profile.model_budget_s:.0f} s "
                        "and did not stop")
        return None


def _train_started(events: list[dict], name: str | None) -> float | None:
    for event in reversed(events):
        if event["event"] == "model" and event.get("name") == name and event.get("phase") == "train":
            return event["time"]
    return None


def _describe_death(outcome: JobOutcome) -> tuple[str, str]:
    """(status, reason) for a worker that ended without finishing its model."""
    if outcome.stopped_because:
        if "total budget" in outcome.stopped_because:
            return "skipped", outcome.stopped_because
        return "timeout", outcome.stopped_because
    name = outcome.signal_name
    if name in CRASH_SIGNALS:
        return "crashed", f"the worker crashed ({name}) — the Python interpreter itself failed"
    if name == "SIGXCPU":
        return "timeout", "the worker used up its CPU-time limit"
    if name == "SIGKILL":
        return "out_of_memory", "the worker was killed by the system (SIGKILL), which happens when it runs out of memory"
    if name:
        return "killed", f"the worker was stopped by {name}"
    if "MemoryError" in outcome.log_tail or "std::bad_alloc" in outcome.log_tail:
        return "out_of_memory", "the worker ran out of memory (memory limit reached)"
    return "crashed", f"the worker exited unexpectedly with code {outcome.returncode} (sys.exit or os._exit in student code?)"


def _model_from_event(base: ModelResult, result: dict) -> ModelResult:
    data = dict(result)
    data.pop("name", None)
    if data.get("spec"):
        data["spec"] = ModelSpec(**data["spec"])
    if data.get("settings"):
        data["settings"] = TrainingSettings(**data["settings"])
    return base.model_copy(update=data)


def train_submission(module_source: str, factories: list[tuple[str, str]], job: TrainingJob,
                     scratch: Path, models_out: Path) -> tuple[list[ModelResult], WorkerInfo]:
    """Train `factories` [(name, role)] defined in `module_source`; saved models go to `models_out`."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    module_path = scratch / "submission.py"
    module_path.write_text(module_source, encoding="utf-8")
    (scratch / "models").mkdir()
    results = {name: ModelResult(name=name, role=role) for name, role in factories}
    pending = [name for name, _ in factories]
    restarts, spent, isolation = -1, 0.0, ""
    while pending:
        restarts += 1
        started = time.monotonic()
        outcome = run_job(
            {"mode": "train", "module_path": str(module_path), "factories": pending, "seed": job.seed,
             "profile": job.profile.model_dump(), "training": job.protocol.training.model_dump(),
             "data": str(job.train_data), "out_dir": str(scratch / "models"),
             "epochs_override": job.epochs_override},
            scratch, readable=[job.train_data], threads=job.threads, watch=_Deadlines(job, spent),
            limits=job.limits, use_bubblewrap=job.use_bubblewrap)
        spent += time.monotonic() - started
        isolation = outcome.isolation
        current = None
        for event in outcome.events:
            kind = event["event"]
            if kind == "import_failed":
                for name in pending:
                    results[name] = results[name].model_copy(update={
                        "status": event.get("status", "error"),
                        "reason": f"importing the submission failed: {event.get('reason')}",
                        "traceback": event.get("traceback")})
                pending = []
                break
            if kind == "model":
                current = event["name"]
            elif kind == "model_done":
                name = event["name"]
                results[name] = _model_from_event(results[name], event["result"])
                if name in pending:
                    pending.remove(name)
                current = None
        if not pending:
            break
        status, reason = _describe_death(outcome)
        if current is None and not any(e["event"] == "imported" for e in outcome.events):
            # the worker died before or while importing the student's module: nothing can be trained
            for name in pending:
                results[name] = results[name].model_copy(update={
                    "status": status, "reason": f"while importing the submission: {reason}",
                    "traceback": outcome.log_tail[-3000:] or None})
            break
        if current is not None:
            results[current] = results[current].model_copy(update={
                "status": status, "reason": reason, "traceback": outcome.log_tail[-3000:] or None})
            pending.remove(current)
        if status == "skipped" or spent >= job.profile.submission_budget_s:
            for name in pending:
                results[name] = results[name].model_copy(update={
                    "status": "skipped", "reason": "the submission's total budget was used up before this model"})
            break
    models_out.mkdir(parents=True, exist_ok=True)
    for name, model in results.items():
        if model.model_file:
            shutil.move(str(scratch / "models" / model.model_file), models_out / model.model_file)
    return list(results.values()), WorkerInfo(sandbox=isolation, threads=job.threads, restarts=max(0, restarts))

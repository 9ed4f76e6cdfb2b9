"""Train stage: retrain a submission's models in sandboxed workers, under the protocol and its limits.

The grading process never imports student code: it writes the extracted module to a scratch
folder, starts a worker (``harness.workers.train``) there and reads its progress events. A worker
that passes a deadline is killed, the model it was on gets a specific status, and a fresh
worker goes on with the remaining models.

>>> models, worker = train_submission(ingest, job, models_out=Path("OUT/alice/models"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.config.protocol import Profile, Protocol
from harness.results import ModelResult, WorkerInfo
from harness.sandbox import JobOutcome, Limits, run_job
from harness.training.warm import WORKER, WarmTrainer

STARTUP_ALLOWANCE_S = 120.0  # interpreter + TensorFlow import, before student code runs
SAVE_ALLOWANCE_S = 120.0
CRASH_SIGNALS = {"SIGSEGV", "SIGBUS", "SIGILL", "SIGABRT", "SIGFPE", "SIGSYS"}
# what a worker that ran out of memory leaves in its log (Python, C++, TensorFlow, the C library)
MEMORY_MARKERS = (
    "MemoryError",
    "std::bad_alloc",
    "ResourceExhaustedError",
    "OOM when allocating",
    "Cannot allocate memory",
    "failed to allocate memory",
)
PROCESS_MARKERS = ("Resource temporarily unavailable", "can't start new thread", "pthread_create failed")
# fields of a model's result a training worker may report; everything else is the harness's
WORKER_FIELDS = {
    "status",
    "reason",
    "traceback",
    "params",
    "spec",
    "settings",
    "epochs_run",
    "train_seconds",
    "stopped_by_budget",
    "history",
    "model_file",
    "batchnorm",
    "runtime",
}
WORKER_STATUSES = {"ok", "invalid", "error", "out_of_memory", "killed", "timeout", "crashed"}


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
        """How long past its budget a model's training may go before the worker is stopped."""
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
            return f"{last.get('name')}() did not return a model within {profile.build_timeout_s:.0f} s"
        if kind == "model" and phase == "save" and age > SAVE_ALLOWANCE_S:
            return f"saving {last.get('name')} took more than {SAVE_ALLOWANCE_S:.0f} s"
        if kind in ("model", "epoch") and phase not in ("build", "save"):
            started = _train_started(events, last.get("name"))
            if started is not None and now - started > profile.model_budget_s + self.job.grace_s():
                return (
                    f"training {last.get('name')} went past its budget of {profile.model_budget_s:.0f} s "
                    "and did not stop"
                )
        return None


def _train_started(events: list[dict], name: str | None) -> float | None:
    for event in reversed(events):
        if event["event"] == "model" and event.get("name") == name and event.get("phase") == "train":
            return event["time"]
    return None


def _describe_death(outcome: JobOutcome) -> tuple[str, str]:
    """(status, reason) for a worker that ended without finishing its model.

    In order: a limit the runner enforced (processes, output, resident memory), the memory
    cgroup's OOM killer, a deadline (``out_of_memory`` if the worker sat at its resident-memory
    cap meanwhile: reclaim can stall it for long before the OOM killer fires), the CPU-time limit, running out of memory (read from the log: a
    ``std::bad_alloc`` aborts, so this comes before signals), the process limit, the file-size limit,
    a crash signal, any other signal, an exit code.
    """
    limits = outcome.limits
    if outcome.breach:
        return outcome.breach
    if outcome.oom_killed:
        return "out_of_memory", (
            f"the worker used more than its resident-memory limit of {limits.resident_mb} MiB "
            "and was stopped by the kernel's out-of-memory killer"
        )
    if outcome.stopped_because and outcome.memory_limit_hit and "total budget" not in outcome.stopped_because:
        return "out_of_memory", (
            f"the worker reached its resident-memory limit of {limits.resident_mb} MiB and "
            f"stalled there until a deadline passed: {outcome.stopped_because}"
        )
    if outcome.stopped_because:
        if "total budget" in outcome.stopped_because:
            return "skipped", outcome.stopped_because
        return "timeout", outcome.stopped_because
    name = outcome.signal_name
    cpu_limit = limits.cpu_seconds(outcome.threads)
    if name == "SIGXCPU" or (
        name == "SIGKILL" and outcome.cpu_seconds is not None and outcome.cpu_seconds >= cpu_limit - 1
    ):
        return "timeout", f"the worker used up its CPU-time limit of {cpu_limit} s ({name})"
    if any(marker in outcome.log_tail for marker in MEMORY_MARKERS):
        return "out_of_memory", (
            f"the worker ran out of memory (limit: {limits.memory_mb} MiB of address space "
            "per process)" + (f", then died with {name}" if name else "")
        )
    if any(marker in outcome.log_tail for marker in PROCESS_MARKERS):
        return "killed", (
            f"the worker could not start a process or thread: its limit of {limits.processes} "
            "processes and threads was reached"
        )
    if name == "SIGXFSZ":
        return "killed", f"the worker wrote a file larger than its output limit of {limits.output_mb} MiB"
    if name in CRASH_SIGNALS:
        what = {
            "SIGSEGV": "segmentation fault",
            "SIGBUS": "bus error",
            "SIGILL": "illegal instruction",
            "SIGABRT": "abort",
            "SIGFPE": "arithmetic error",
            "SIGSYS": "bad system call",
        }[name]
        return "crashed", (
            f"the worker crashed ({name}, {what}): the Python interpreter itself failed, "
            "e.g. through ctypes or a native extension"
        )
    if name == "SIGKILL":
        return "killed", (
            "the worker was killed by SIGKILL from outside the harness (perhaps the system's out-of-memory killer)"
        )
    if name:
        return "killed", f"the worker was stopped by {name}"
    return (
        "crashed",
        f"the worker exited unexpectedly with code {outcome.returncode} (sys.exit or os._exit in student code?)",
    )


def _model_from_event(base: ModelResult, result, models_dir: Path) -> ModelResult:
    """The worker's report for one model, validated: the worker ran student code, which can write
    anything into the events file. Only the fields a worker owns are taken; a saved model must be
    ``<name>.keras``, a regular file in the worker's models folder; test metrics are never taken."""
    try:
        if not isinstance(result, dict):
            raise ValueError("not an object")
        data = {key: value for key, value in result.items() if key in WORKER_FIELDS}
        if data.get("status") not in WORKER_STATUSES:
            raise ValueError(f"unknown status {data.get('status')!r}")
        if data["status"] == "ok":
            if data.get("model_file") != f"{base.name}.keras":
                raise ValueError(f"unexpected model file {data.get('model_file')!r}")
            if not stat.S_ISDIR(os.lstat(models_dir).st_mode):
                raise ValueError("the models folder was replaced")
            if not stat.S_ISREG(os.lstat(models_dir / data["model_file"]).st_mode):
                raise ValueError("the saved model is not a regular file")
        else:
            data["model_file"] = None
        return ModelResult.model_validate({**base.model_dump(), **data})
    except (ValueError, TypeError, OSError) as error:  # pydantic's ValidationError is a ValueError
        return base.model_copy(
            update={
                "status": "invalid",
                "model_file": None,
                "traceback": None,
                "reason": f"the worker's report on this model is malformed and was rejected ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200] if str(error) else ''})",
            }
        )


def _storm_already_blamed(outcome: JobOutcome, results: dict[str, ModelResult]) -> bool:
    """The runner stopped the worker for its process limit, which a model of this run already hit
    (its factory's fork failed and the worker reported it, status ``killed``)."""
    if not outcome.breach or "processes and threads" not in outcome.breach[1]:
        return False
    done = {e.get("name") for e in outcome.events if e["event"] == "model_done"}
    return any(
        results[n].status == "killed" and "processes and threads" in (results[n].reason or "")
        for n in done
        if n in results
    )


def _read_events(
    outcome: JobOutcome, results: dict[str, ModelResult], pending: list[str], models_dir: Path
) -> tuple[list[str], str | None]:
    """Record in `results` what one worker run reported; the models still pending, and the one it was
    training when it stopped (None when it stopped between models)."""
    pending = list(pending)
    current = None
    for event in outcome.events:
        kind = event["event"]
        if kind == "import_failed":
            for name in pending:
                results[name] = results[name].model_copy(
                    update={
                        "status": event.get("status") if event.get("status") in WORKER_STATUSES - {"ok"} else "error",
                        "reason": f"importing the submission failed: {event.get('reason')}",
                        "traceback": event.get("traceback") if isinstance(event.get("traceback"), str) else None,
                    }
                )
            return [], None
        name = event.get("name")
        if kind in ("model", "model_done") and (not isinstance(name, str) or name not in pending):
            continue  # a model already done, or not one of this run's: not from the harness's worker code
        if kind == "model":
            current = name
        elif kind == "model_done":
            results[name] = _model_from_event(results[name], event.get("result"), models_dir)
            pending.remove(name)
            current = None
    return pending, current


def train_submission(
    module_source: str,
    factories: list[tuple[str, str]],
    job: TrainingJob,
    scratch: Path,
    models_out: Path,
    on_event: Callable[[dict], None] | None = None,
    local_modules: dict[str, str] | None = None,
    warm: WarmTrainer | None = None,
) -> tuple[list[ModelResult], WorkerInfo]:
    """Train `factories` [(name, role)] defined in `module_source`; saved models go to `models_out`.

    `local_modules` ({file name: source}) are the student's own modules the code imports, written beside it.
    `warm`: a worker already started (harness/training/warm.py) that trains them, in its own scratch
    folder; a worker started again after a crash is a cold one, in the same folder.
    """
    if warm is not None:
        scratch = warm.scratch
    elif scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    for name, source in (local_modules or {}).items():
        (scratch / Path(name).name).write_text(source, encoding="utf-8")  # beside submission.py
    module_path = scratch / "submission.py"
    module_path.write_text(module_source, encoding="utf-8")
    (scratch / "models").mkdir()
    results = {name: ModelResult(name=name, role=role) for name, role in factories}
    pending = [name for name, _ in factories]
    restarts, spent, isolation, device = -1, 0.0, "", "cpu"
    while pending:
        restarts += 1
        started = time.monotonic()
        fields = {
            "mode": "train",
            "module_path": str(module_path),
            "factories": pending,
            "seed": job.seed,
            "profile": job.profile.model_dump(),
            "training": job.protocol.training.model_dump(),
            "environment": job.protocol.environment.modules,
            "data": str(job.train_data),
            "out_dir": str(scratch / "models"),
            "epochs_override": job.epochs_override,
        }
        outcome = warm.run(fields, _Deadlines(job, spent), on_event) if warm is not None and restarts == 0 else None
        if outcome is None or not any(e["event"] == "go" for e in outcome.events):
            # cold: no warm worker, or one that ended before it took the submission (nothing of it ran)
            outcome = run_job(
                fields,
                scratch,
                worker=WORKER,
                readable=[job.train_data],
                threads=job.threads,
                watch=_Deadlines(job, spent),
                limits=job.limits,
                use_bubblewrap=job.use_bubblewrap,
                on_event=on_event,
            )
        spent += time.monotonic() - started
        isolation = outcome.isolation
        device = next((str(e.get("device"))[:200] for e in outcome.events if e["event"] == "device"), device)
        pending, current = _read_events(outcome, results, pending, scratch / "models")
        if not pending:
            break
        status, reason = _describe_death(outcome)
        if current is None and not any(e["event"] == "imported" for e in outcome.events):
            # the worker died before or while importing the student's module: nothing can be trained
            for name in pending:
                results[name] = results[name].model_copy(
                    update={
                        "status": status,
                        "reason": f"while importing the submission: {reason}",
                        "traceback": outcome.log_tail[-3000:] or None,
                    }
                )
            break
        if current is not None and _storm_already_blamed(outcome, results):
            current = None  # the process limit was hit by a model already reported; retry this one afresh
        if current is not None:
            results[current] = results[current].model_copy(
                update={"status": status, "reason": reason, "traceback": outcome.log_tail[-3000:] or None}
            )
            pending.remove(current)
        if status == "skipped" or spent >= job.profile.submission_budget_s:
            for name in pending:
                results[name] = results[name].model_copy(
                    update={
                        "status": "skipped",
                        "reason": "the submission's total budget was used up before this model",
                    }
                )
            break
    models_out.mkdir(parents=True, exist_ok=True)
    for model in results.values():  # each checked by _model_from_event: <name>.keras, a regular file
        if model.model_file:
            shutil.move(str(scratch / "models" / model.model_file), models_out / model.model_file)
    return list(results.values()), WorkerInfo(
        sandbox=isolation, threads=job.threads, device=device, restarts=max(0, restarts)
    )

"""``harness grade``: the whole pipeline over a class, each submission's result written as it finishes.

>>> summary = grade(GradeOptions(paths=[Path("submissions")], out=Path("out"), profile="smoke"))  # doctest: +SKIP
>>> summary.exit_code                                                                            # doctest: +SKIP
1
"""
from __future__ import annotations

import hashlib
import os
import platform
import shlex
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from harness import __version__
from harness.config import Profile, Protocol, bundled, load_protocol
from harness.data import RawMnist, load_mnist, test_set, training_split
from harness.evaluate import evaluate_models
from harness.i18n import Translator
from harness.ingest import assign_ids, discover, ingest_path, submission_sha256
from harness.results import (
    IngestResult,
    ModelResult,
    ReferenceSummary,
    RunInfo,
    SubmissionResult,
    TrainingRecord,
    WorkerInfo,
)
from harness.sandbox import Limits, bubblewrap_available
from harness.score import Evidence, Rubric, failed_score, load_rubric, score
from harness.train import TrainingJob, train_submission

REFERENCE_DIR = "_reference"
WORK_DIR = ".work"


@dataclass
class GradeOptions:
    paths: list[Path]
    out: Path
    profile: str = "quick"
    data: Path | None = None
    seed: int | None = None
    language: str = "fr"
    rubric: Path | None = None
    protocol: Path | None = None
    workers: int = 1
    use_bubblewrap: bool | None = None
    limits: Limits = field(default_factory=Limits)
    epochs_override: int | None = None
    log: callable = print


@dataclass
class BatchSummary:
    results: list[SubmissionResult]
    reference: ModelResult | None
    seconds: float

    @property
    def exit_code(self) -> int:
        return 0 if all(r.status == "ok" for r in self.results) else 1


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "harness": __version__}
    for package in ("tensorflow", "keras", "numpy", "scipy", "nbformat", "jinja2", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@dataclass
class Session:
    """One grading run's fixed inputs, shared by every submission."""

    options: GradeOptions
    protocol: Protocol
    profile: Profile
    seed: int
    raw: RawMnist
    rubric: Rubric
    translator: Translator
    train_data: Path
    test_data: Path
    labels: np.ndarray
    run: RunInfo

    def training_job(self, scratch_name: str) -> TrainingJob:
        return TrainingJob(protocol=self.protocol, profile=self.profile, seed=self.seed,
                           train_data=self.train_data, work_dir=self.options.out / WORK_DIR / scratch_name,
                           threads=default_threads(self.options.workers), limits=self.options.limits,
                           use_bubblewrap=self.options.use_bubblewrap,
                           epochs_override=self.options.epochs_override)

    @property
    def run_key(self) -> str:
        """What a stored result must match to be reused: same protocol, profile, seed, data, harness."""
        parts = [self.protocol.source_sha256, self.profile.name, str(self.seed), self.raw.content_sha256,
                 __version__, str(self.options.epochs_override)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _write_data(session_dir: Path, raw: RawMnist, protocol: Protocol, profile: Profile) -> tuple[Path, Path, np.ndarray]:
    """Training split and test set as separate files: a training worker is only given the first."""
    session_dir.mkdir(parents=True, exist_ok=True)
    split = training_split(raw, profile.train_images, protocol.training.validation_split)
    x_test, y_test = test_set(raw, profile.test_images)
    train_path = session_dir / f"train-{profile.name}-{raw.content_sha256[:12]}.npz"
    test_path = session_dir / f"test-{profile.name}-{raw.content_sha256[:12]}.npz"
    if not train_path.exists():
        tmp = train_path.with_suffix(".tmp.npz")
        np.savez(tmp, x_train=split.x_train, y_train=split.y_train, x_val=split.x_val, y_val=split.y_val)
        os.replace(tmp, train_path)
    if not test_path.exists():
        tmp = test_path.with_suffix(".tmp.npz")
        np.savez(tmp, x_test=x_test)
        os.replace(tmp, test_path)
    return train_path, test_path, y_test


def open_session(options: GradeOptions) -> Session:
    protocol = load_protocol(options.protocol)
    profile = protocol.profile(options.profile)
    seed = options.seed if options.seed is not None else protocol.training.seed
    raw = load_mnist(options.data)
    rubric = load_rubric(options.rubric)
    translator = Translator(options.language)
    options.out.mkdir(parents=True, exist_ok=True)
    train_path, test_path, labels = _write_data(options.out / WORK_DIR / "data", raw, protocol, profile)
    sandbox = bubblewrap_available() if options.use_bubblewrap is None else options.use_bubblewrap
    run = RunInfo(
        harness_version=__version__, profile=profile.name, seed=seed, protocol_sha256=protocol.source_sha256,
        data_source=raw.source, data_sha256=raw.file_sha256, data_content_sha256=raw.content_sha256,
        versions=library_versions(), language=options.language,
        budgets={"model_budget_s": profile.model_budget_s, "submission_budget_s": profile.submission_budget_s,
                 "import_timeout_s": profile.import_timeout_s, "build_timeout_s": profile.build_timeout_s,
                 "max_epochs": profile.max_epochs, "memory_mb": options.limits.memory_mb},
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=shlex.join(["harness", *sys.argv[1:]]) if sys.argv and "harness" in sys.argv[0] else "harness grade",
    )
    if not sandbox:
        options.log("warning: bubblewrap is not available: student code runs in plain worker processes "
                    "with resource limits only (no filesystem or network isolation)")
    return Session(options, protocol, profile, seed, raw, rubric, translator, train_path, test_path, labels, run)


def _train_and_evaluate(session: Session, module_source: str, factories: list[tuple[str, str]],
                        scratch_name: str, models_dir: Path) -> tuple[list[ModelResult], WorkerInfo, float]:
    job = session.training_job(scratch_name)
    started = time.monotonic()
    models, worker = train_submission(module_source, factories, job, job.work_dir / "train", models_dir)
    module_path = job.work_dir / "train" / "submission.py"
    models = evaluate_models(models, job, job.work_dir / "evaluate", models_dir, session.test_data,
                             session.labels, module_path=module_path)
    return models, worker, time.monotonic() - started


def reference_model(session: Session) -> ModelResult:
    """The company's baseline, trained once per protocol, profile, seed and data; reused by everyone."""
    source = bundled("reference", "baseline.py").read_text(encoding="utf-8")
    key = hashlib.sha256(f"{session.run_key}|{source}".encode()).hexdigest()[:20]
    folder = session.options.out / REFERENCE_DIR
    stored = folder / "reference.json"
    if stored.exists():
        summary = ReferenceSummary.read(stored)
        if summary.trained_for == key:
            return summary.model
    session.options.log("training the reference model…")
    models, _, seconds = _train_and_evaluate(session, source, [("create_baseline_model", "reference")],
                                             "_reference", folder / "models")
    model = models[0]
    if model.status != "ok":
        raise RuntimeError(f"the reference model failed to train: {model.reason}\n{model.traceback or ''}")
    ReferenceSummary(model=model, trained_for=key).write(stored)
    session.options.log(f"reference: {100 * model.test_accuracy:.2f} % in {seconds:.0f} s")
    return model


def _status(ingest: IngestResult, models: list[ModelResult]) -> tuple[str, str | None]:
    failed = [m for m in models if m.status != "ok"]
    if not failed:
        return "ok", None
    summary = "; ".join(f"{m.name}: {m.status} — {m.reason}" for m in failed)
    return ("failed" if len(failed) == len(models) else "partial"), summary


def score_submission(session_rubric: Rubric, translator: Translator, result: SubmissionResult,
                     ingest: IngestResult, protocol: Protocol) -> SubmissionResult:
    """(Re-)score a stored result; used by grading and by `harness score`."""
    if ingest.status != "ok":
        return result.model_copy(update={"score": failed_score(session_rubric, result.reason or "", translator)})
    evidence = Evidence(ingest=ingest, models=result.models, reference=result.reference.model if result.reference else None,
                        rubric=session_rubric, protocol_epochs=protocol.training.epochs,
                        protocol_batch_size=protocol.training.batch_size)
    return result.model_copy(update={"score": score(evidence, translator)})


def grade_one(session: Session, student: str, path: Path, reference: ModelResult, reference_key: str) -> SubmissionResult:
    folder = session.options.out / student
    folder.mkdir(parents=True, exist_ok=True)
    ingest = ingest_path(path, student)
    ingest.write(folder / "ingest.json")
    base = dict(student=student, submission_sha256=ingest.sha256, source=str(path),
                factories_found=[f.name for f in ingest.factories], factories_ignored=ingest.ignored_functions,
                dropped=ingest.dropped, ignored_files=ingest.ignored_files, run=session.run,
                reference=ReferenceSummary(model=reference, trained_for=reference_key))
    if ingest.status != "ok":
        result = SubmissionResult(status="invalid", reason=ingest.reason, **base)
    else:
        scratch = hashlib.sha256(student.encode()).hexdigest()[:12]
        models, worker, seconds = _train_and_evaluate(
            session, ingest.module_source, [(f.name, f.role) for f in ingest.factories], scratch, folder / "models")
        TrainingRecord(student=student, submission_sha256=ingest.sha256, seed=session.seed,
                       profile=session.profile.name, data_sha256=session.raw.content_sha256, models=models,
                       worker=worker, wall_seconds=seconds).write(folder / "training.json")
        status, reason = _status(ingest, models)
        result = SubmissionResult(status=status, reason=reason, models=models, worker=worker, **base)
    result = score_submission(session.rubric, session.translator, result, ingest, session.protocol)
    result.write(folder / "result.json")
    return result


def _reusable(folder: Path, sha256: str, session: Session) -> SubmissionResult | None:
    stored = folder / "result.json"
    if not stored.exists():
        return None
    try:
        result = SubmissionResult.read(stored)
    except Exception:
        return None
    same_run = (result.run.profile == session.profile.name and result.run.seed == session.seed
                and result.run.data_content_sha256 == session.raw.content_sha256
                and result.run.protocol_sha256 == session.protocol.source_sha256
                and result.run.harness_version == __version__)
    return result if same_run and result.submission_sha256 == sha256 else None


def grade(options: GradeOptions) -> BatchSummary:
    from harness.report import render_all

    started = time.monotonic()
    session = open_session(options)
    reference = reference_model(session)
    reference_key = ReferenceSummary.read(options.out / REFERENCE_DIR / "reference.json").trained_for
    paths, ignored = discover(options.paths)
    for item in ignored:
        options.log(f"ignored {item.name}: {item.reason}")
    submissions = assign_ids(paths)
    options.log(f"{len(submissions)} submission(s), profile {session.profile.name}, seed {session.seed}, "
                f"{options.workers} worker(s)")
    results: dict[str, SubmissionResult] = {}
    todo = []
    for student, path in submissions.items():
        previous = _reusable(options.out / student, submission_sha256(path), session)
        if previous is not None:
            results[student] = previous
            options.log(f"{student}: unchanged since the last run, kept ({previous.status})")
        else:
            todo.append((student, path))
    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
        futures = {pool.submit(grade_one, session, student, path, reference, reference_key): student
                   for student, path in todo}
        for future in as_completed(futures):
            student = futures[future]
            result = future.result()
            results[student] = result
            total = f"{result.score.total:g}/{result.score.max_total:g}" if result.score else "—"
            options.log(f"[{len(results)}/{len(submissions)}] {student}: {result.status}, {total}"
                        + (f" — {result.reason}" if result.reason and result.status != "ok" else ""))
    ordered = [results[s] for s in submissions]
    render_all(options.out, ordered, reference, session.translator)
    shutil.rmtree(options.out / WORK_DIR / "tmp", ignore_errors=True)
    return BatchSummary(ordered, reference, time.monotonic() - started)

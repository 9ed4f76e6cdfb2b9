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
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from harness import __version__
from harness.analysis import analyse as analysis
from harness.pipeline import provenance as graded_under
from harness.config.protocol import Profile, Protocol, load_protocol
from harness.resources import bundled
from harness.pipeline.data import RawMnist, load_mnist, held_out_test_set, training_split
from harness.training.evaluate import EvaluationWorker, evaluate_models
from harness.util.i18n import Translator
from harness.ingest.read import assign_ids, discover, ingest_path, main_file_path, needs_discovery, submission_sha256
from harness.results import (
    EvidenceItem,
    IgnoredItem,
    IngestResult,
    ModelResult,
    ReferenceSummary,
    RunInfo,
    SubmissionResult,
    TrainingRecord,
    WorkerInfo,
)
from harness.analysis.analyse import AnalysisConfig
from harness.analysis.perturbations import BuiltSuite
from harness.results import AnalysisSummary, SeedRun
from harness.pipeline.backends import make_backend
from harness.pipeline.cache import StageCache
from harness.util.progress import Progress
from harness.sandbox import Limits, SandboxUnavailable, bubblewrap_available, profile_limits
from harness.scoring import Rubric, load_rubric, score_result
from harness.training.train import TrainingJob, train_submission

REFERENCE_DIR = "_reference"
WORK_DIR = ".work"
CACHE_DIR = ".cache"


@dataclass
class GradeOptions:
    paths: list[Path]
    out: Path
    profile: str = "quick"
    data: Path | None = None
    seed: int | None = None
    language: str = "fr"
    rubric: Path | None = None
    overrides: Path | None = None  # the instructor's overrides file (harness/overrides.py)
    protocol: Path | None = None
    workers: int = 1
    use_bubblewrap: bool | None = None
    limits: Limits | None = None   # None: the profile's [limits.<profile>] in the protocol file
    epochs_override: int | None = None
    cache: Path | None = None
    use_cache: bool = True
    progress: Progress | None = None
    backend: str = "local"
    roster: Path | None = None
    address: str | None = None
    gpus_per_task: float | None = None
    seeds: int = 1                 # --seeds K: each model and the reference trained on K seeds
    suite: Path | None = None      # robustness suite file (default reference/robustness_suite.toml)
    log: callable = print
    execute: bool = False          # --execute: run each notebook top to bottom (harness/execute.py)
    execute_options: object = None  # harness.ingest.execution.ExecuteOptions (None: its defaults)
    discover_models: str = "auto"  # auto: notebooks without factories are run to find top-level models; never
    factory_map: dict[str, dict[str, str]] = field(default_factory=dict)  # student id or "*" -> {harness: own}
    robustness: bool = True        # False (harness check): no robustness suite is built or predicted


@dataclass
class BatchSummary:
    results: list[SubmissionResult]
    reference: ModelResult | None
    seconds: float
    ignored: list[IgnoredItem] = field(default_factory=list)  # files and folders not graded, with why
    kept: list[str] = field(default_factory=list)  # unchanged submissions whose stored result was kept as is

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


def default_workers() -> int:
    """One worker per core, as far as memory allows (a worker training the full profile needs ~3 GiB)."""
    try:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gib = 8.0
    return max(1, min(os.cpu_count() or 1, int(memory_gib // 3)))


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
    cache: StageCache
    progress: Progress
    suite: BuiltSuite | None = None          # built once per run, before any worker starts
    seeds: tuple[int, ...] = ()
    analysis_config: AnalysisConfig = field(default_factory=AnalysisConfig)
    n_val: int = 0

    def training_job(self, scratch_name: str) -> TrainingJob:
        return TrainingJob(protocol=self.protocol, profile=self.profile, seed=self.seed,
                           train_data=self.train_data, work_dir=self.options.out / WORK_DIR / scratch_name,
                           threads=self.threads, limits=self.options.limits,
                           use_bubblewrap=self.options.use_bubblewrap,
                           epochs_override=self.options.epochs_override)

    @property
    def threads(self) -> int:
        return default_threads(self.options.workers)

    @property
    def evaluation_key(self) -> str:
        """What an evaluation depends on besides the trained model: the test images, the suite, the harness
        and the thread count (TensorFlow's CPU kernels sum in a thread-dependent order: the last bits move)."""
        suite = self.suite.checksum if self.suite is not None else "no-suite"
        return hashlib.sha256(f"{self.test_data.name}|{suite}|{__version__}|{self.threads}".encode()).hexdigest()[:20]

    @property
    def run_key(self) -> str:
        """What a stored result must match to be reused: same protocol, profile, seed, data, harness and
        threads per worker (98.96 % on one thread, 98.97 % on two for the full-profile reference)."""
        parts = [self.protocol.source_sha256, self.profile.name, str(self.seed), self.raw.content_sha256,
                 __version__, str(self.options.epochs_override), f"threads={self.threads}"]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _write_data(session_dir: Path, raw: RawMnist, protocol: Protocol, profile: Profile) -> tuple[Path, Path, np.ndarray]:
    """Training split and test set as separate files: a training worker is only given the first."""
    session_dir.mkdir(parents=True, exist_ok=True)
    split = training_split(raw, profile.train_images, protocol.training.validation_split)
    x_test, y_test = held_out_test_set(raw, profile.test_images)
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
    # absolute: the sandbox mounts the data files and scratch folders by path (a relative --out broke it)
    options.out = Path(options.out).resolve()
    options.cache = Path(options.cache).resolve() if options.cache else None
    protocol = load_protocol(options.protocol)
    profile = protocol.profile(options.profile)
    seed = options.seed if options.seed is not None else protocol.training.seed
    raw = load_mnist(options.data)
    rubric = load_rubric(options.rubric, options.overrides)
    translator = Translator(options.language)
    options.out.mkdir(parents=True, exist_ok=True)
    graded_under.keep_protocol(options.out, options.protocol)
    graded_under.keep_scoring(options.out, options.rubric, options.overrides)
    train_path, test_path, labels = _write_data(options.out / WORK_DIR / "data", raw, protocol, profile)
    suite = _prepare_suite(options, raw, profile) if options.robustness else None
    seeds = analysis.derive_seeds(seed, options.seeds)
    if options.limits is None:
        options.limits = profile_limits(profile.name, options.protocol)
    if options.use_bubblewrap and not bubblewrap_available():
        raise SandboxUnavailable("bubblewrap was required but `bwrap` is missing or cannot create namespaces here")
    sandbox = bubblewrap_available() if options.use_bubblewrap is None else options.use_bubblewrap
    run = RunInfo(
        harness_version=__version__, profile=profile.name, seed=seed, protocol_sha256=protocol.source_sha256,
        data_source=raw.source, data_sha256=raw.file_sha256, data_content_sha256=raw.content_sha256,
        versions=library_versions(), language=options.language,
        budgets={"model_budget_s": profile.model_budget_s, "submission_budget_s": profile.submission_budget_s,
                 "import_timeout_s": profile.import_timeout_s, "build_timeout_s": profile.build_timeout_s,
                 "max_epochs": profile.max_epochs, "memory_mb": options.limits.memory_mb,
                 **options.limits.as_budgets()},
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=shlex.join(["harness", *sys.argv[1:]]) if sys.argv and "harness" in sys.argv[0] else "harness grade",
        suite_sha256=suite.suite.sha256 if suite else None, suite_checksum=suite.checksum if suite else None,
        seeds=seeds,
    )
    if not sandbox:
        options.log("WARNING: " + ("bubblewrap is not available" if options.use_bubblewrap is None else
                                   "--no-sandbox") + ": student code runs in plain worker processes with "
                    "resource limits only: NO filesystem or network isolation (README, Security); "
                    "every result says so in worker.sandbox")
    cache = StageCache(options.cache or options.out / CACHE_DIR, enabled=options.use_cache)
    n_val = int(round(min(profile.train_images, len(raw.x_train)) * protocol.training.validation_split))
    return Session(options, protocol, profile, seed, raw, rubric, translator, train_path, test_path, labels, run,
                   cache, options.progress or Progress.for_stream(sys.stdout, options.log), suite=suite,
                   seeds=tuple(seeds), analysis_config=analysis.load_config(), n_val=n_val)


def _prepare_suite(options: GradeOptions, raw: RawMnist, profile: Profile) -> BuiltSuite:
    """The robustness suite's perturbed sets, built here (harness code, grading process) or read from
    the cache; OUT/_suite holds their manifest and the report's example images."""
    x_test, _ = held_out_test_set(raw, profile.test_images)
    started = time.monotonic()
    suite = analysis.prepare_suite(x_test, analysis.suite_cache_dir(options.out), options.suite)
    analysis.write_suite_artifacts(suite, x_test, options.out / analysis.SUITE_DIR)
    origin = "from the cache" if suite.from_cache else f"built in {time.monotonic() - started:.1f} s"
    options.log(f"robustness suite: {len(suite)} perturbed sets, {suite.n_images:,} images ({origin}), "
                f"checksum {suite.checksum[:12]}")
    return suite


def _train_and_evaluate(session: Session, module_source: str, factories: list[tuple[str, str]],
                        scratch_name: str, models_dir: Path, student: str = "") -> tuple[list[ModelResult], WorkerInfo]:
    """Models of one submission, each from the cache where its key matches, else trained and evaluated."""
    job = session.training_job(scratch_name)
    keys = {name: session.cache.key(module_source, name, session.run_key) for name, _ in factories}
    models = {name: session.cache.load(keys[name], session.evaluation_key, models_dir) for name, _ in factories}
    to_train = [(name, role) for name, role in factories if models[name] is None]
    worker = WorkerInfo(sandbox="none needed: every model came from the cache", threads=0)
    early = None
    if to_train:
        # the evaluation worker starts TensorFlow and reads the suite while the models train
        early = EvaluationWorker(job, job.work_dir / "evaluate" / "safe", models_dir, session.test_data,
                                 session.suite)
        try:
            trained, worker = train_submission(module_source, to_train, job, job.work_dir / "train", models_dir,
                                               on_event=session.progress.worker_event(student))
        except BaseException:
            early.cancel()
            raise
        models.update({m.name: m for m in trained})
    to_evaluate = [m for m in models.values() if m.status == "ok" and "evaluate" not in m.from_cache]
    if to_evaluate:
        module_path = job.work_dir / "train" / "submission.py"
        module_path.parent.mkdir(parents=True, exist_ok=True)
        module_path.write_text(module_source, encoding="utf-8")
        evaluated = evaluate_models(to_evaluate, job, job.work_dir / "evaluate", models_dir, session.test_data,
                                    session.labels, module_path=module_path, suite=session.suite, early=early)
        models.update({m.name: m.model_copy(update={"evaluation_key": session.evaluation_key}) for m in evaluated})
    elif early is not None:
        early.cancel()
    for name, model in models.items():
        if "evaluate" not in model.from_cache:
            session.cache.store(keys[name], model, models_dir)
    shutil.rmtree(job.work_dir, ignore_errors=True)
    return [models[name] for name, _ in factories], worker


def reference_model(session: Session) -> ModelResult:
    """The company's baseline, trained once per protocol, profile, seed and data; reused by everyone."""
    source = bundled("reference", "baseline.py").read_text(encoding="utf-8")
    folder = session.options.out / REFERENCE_DIR
    key = session.cache.key(source, "create_baseline_model", session.run_key)
    stored = folder / "reference.json"
    if stored.exists():
        summary = ReferenceSummary.read(stored)
        if summary.trained_for == key and summary.model.evaluation_key == session.evaluation_key:
            return summary.model
    session.options.log("reference model…")
    started = time.monotonic()
    models, _ = _train_and_evaluate(session, source, [("create_baseline_model", "reference")], "_reference",
                                    folder / "models", student="reference")
    model = models[0]
    if model.status != "ok":
        raise RuntimeError(f"the reference model failed to train: {model.reason}\n{model.traceback or ''}")
    ReferenceSummary(model=model, trained_for=key).write(stored)
    origin = "from the cache" if model.from_cache else f"trained in {time.monotonic() - started:.0f} s"
    session.options.log(f"reference: {100 * model.test_accuracy:.2f} % ({origin})")
    return model


def _seed_runs(session: Session, module_source: str, factories: list[tuple[str, str]], scratch_name: str,
               folder: Path, student: str) -> dict[str, list[SeedRun]]:
    """--seeds K: every model trained again on the K-1 other seeds (clean test set only; the stage
    cache keeps each run), in `folder`/seeds/<seed>/models."""
    runs: dict[str, list[SeedRun]] = {name: [] for name, _ in factories}
    for seed in session.seeds[1:]:
        seeded = replace(session, seed=seed, suite=None)
        models, _ = _train_and_evaluate(seeded, module_source, factories, f"{scratch_name}-seed-{seed}",
                                        folder / "seeds" / str(seed) / "models", student=student)
        for model in models:
            runs[model.name].append(analysis.seed_run(model, seed))
    return runs


def complete_reference(session: Session, model: ModelResult) -> ModelResult:
    """The reference with its runs on the other seeds and its own analysis (its corruption errors
    are every model's denominators), written back to reference.json."""
    folder = session.options.out / REFERENCE_DIR
    runs: list[SeedRun] = []
    if len(session.seeds) > 1:
        source = bundled("reference", "baseline.py").read_text(encoding="utf-8")
        extra = _seed_runs(session, source, [("create_baseline_model", "reference")], "_reference", folder, "reference")
        runs = [analysis.seed_run(model, session.seed), *extra["create_baseline_model"]]
    model = analysis.analyze_reference(model.model_copy(update={"seed_runs": runs}), folder / "models",
                                       session.labels, session.suite, session.analysis_config)
    analysis.write_gallery(folder / analysis.GALLERY_FILE, [model], session.raw.x_test[: len(session.labels)])
    stored = folder / "reference.json"
    ReferenceSummary(model=model, trained_for=ReferenceSummary.read(stored).trained_for).write(stored)
    if model.robustness is not None:
        rob = model.robustness
        session.options.log(
            f"reference robustness: clean {100 * rob.clean_accuracy:.2f} %, noise σ=0.1 {100 * (rob.noise_accuracy or 0):.2f} %, "
            f"rotation ±15° {100 * (rob.rotation_accuracy or 0):.2f} %, MNIST-C mean {100 * (rob.mnist_c_accuracy or 0):.2f} %"
            + (f" (suite predicted in {rob.predict_seconds:.1f} s)" if rob.predict_seconds else ""))
    return model


def _analyse(session: Session, module_source: str, factories: list[tuple[str, str]], scratch_name: str,
             folder: Path, models: list[ModelResult], reference: ModelResult,
             student: str) -> tuple[list[ModelResult], AnalysisSummary]:
    """Seed runs, error analysis, robustness, significance against the reference, integrity flags."""
    if len(session.seeds) > 1:
        extra = _seed_runs(session, module_source, factories, scratch_name, folder, student)
        models = [m.model_copy(update={"seed_runs": [analysis.seed_run(m, session.seed), *extra[m.name]]})
                  for m in models]
    models, summary = analysis.analyze_models(
        models, folder / "models", session.labels, session.suite, session.analysis_config, reference,
        session.options.out / REFERENCE_DIR / "models", session.n_val, session.translator)
    gallery = analysis.write_gallery(folder / analysis.GALLERY_FILE, models, session.raw.x_test[: len(session.labels)])
    return models, summary.model_copy(update={"gallery_file": gallery.name if gallery else None})


def _status(ingest: IngestResult, models: list[ModelResult]) -> tuple[str, str | None]:
    failed = [m for m in models if m.status != "ok"]
    if not failed:
        return "ok", None
    summary = "; ".join(f"{m.name}: {m.status} — {m.reason}" for m in failed)
    return ("failed" if len(failed) == len(models) else "partial"), summary


def score_submission(session_rubric: Rubric, translator: Translator, result: SubmissionResult,
                     ingest: IngestResult, protocol: Protocol) -> SubmissionResult:
    """(Re-)score a stored result (the rubric carries the instructor's overrides); used by grading
    and by `harness score`."""
    scored = score_result(session_rubric, translator, result, ingest, protocol.training.epochs,
                          protocol.training.batch_size)
    return with_execution_evidence(scored, translator)


def with_execution_evidence(result: SubmissionResult, translator: Translator) -> SubmissionResult:
    """--execute's outcome as evidence under "Qualité du code" (shown, not scored: the rubric's
    rule counts the factories that build and train under the protocol)."""
    execution = result.execution
    if execution is None or result.score is None:
        return result
    criteria = []
    for criterion in result.score.criteria:
        if criterion.id == "code_quality":
            ran = sum(1 for c in execution.cells if c.status == "ok")
            text = translator("ex_evidence", ran=ran, total=len(execution.cells), status=execution.status) + \
                (f" — {execution.reason}" if execution.reason else "") + translator("ex_evidence_not_scored")
            kind = "found" if execution.status == "ok" else "flag"
            first = execution.first_failure
            criterion = criterion.model_copy(update={"evidence": [*criterion.evidence, EvidenceItem(
                text=text, kind=kind, cell=first, where=translator("cell", n=first) if first else None)]})
        criteria.append(criterion)
    return result.model_copy(update={"score": result.score.model_copy(update={"criteria": criteria})})


def _factory_map_for(options: GradeOptions, student: str) -> dict[str, str]:
    return {**options.factory_map.get("*", {}), **options.factory_map.get(student, {})}


def _notebook_data(session: Session, train_images: int, test_images: int) -> Path:
    from harness.ingest.execution import notebook_data_file

    return notebook_data_file(session.raw, session.options.out / WORK_DIR / "data", train_images, test_images)


def discover_top_level(session: Session, ingest: IngestResult, path: Path, scratch: Path) -> IngestResult:
    """A notebook without factories: run it with training intercepted to find its top-level models."""
    from harness.ingest.discovery import DISCOVERY_TEST_IMAGES, DISCOVERY_TRAIN_IMAGES, DiscoverOptions, apply_discovery, \
        discover_models

    data = _notebook_data(session, DISCOVERY_TRAIN_IMAGES, DISCOVERY_TEST_IMAGES)
    job = session.training_job(scratch.name)
    record, source = discover_models(ingest, main_file_path(path), data, scratch,
                                     DiscoverOptions(threads=job.threads, use_bubblewrap=job.use_bubblewrap),
                                     limits=job.limits)
    return apply_discovery(ingest, record, source)


def execute_submission(session: Session, path: Path, scratch: Path):
    """--execute: the notebook run top to bottom in the sandbox (None for a .py module)."""
    from harness.ingest.execution import ExecuteOptions, execute_notebook

    notebook = main_file_path(path)
    if notebook.suffix != ".ipynb":
        return None
    options = session.options.execute_options or ExecuteOptions()
    if isinstance(options, dict):  # options sent as JSON (the Ray backend)
        options = ExecuteOptions(**options)
    job = session.training_job(scratch.name)
    options = replace(options, threads=job.threads, use_bubblewrap=job.use_bubblewrap)
    data = _notebook_data(session, options.train_images, options.test_images)
    return execute_notebook(notebook, data, scratch, options, limits=job.limits)


def grade_one(session: Session, student: str, path: Path, reference: ModelResult, reference_key: str) -> SubmissionResult:
    folder = session.options.out / student
    folder.mkdir(parents=True, exist_ok=True)
    ingest = ingest_path(path, student, factory_map=_factory_map_for(session.options, student))
    work = session.options.out / WORK_DIR / hashlib.sha256(student.encode()).hexdigest()[:12]
    if needs_discovery(ingest) and session.options.discover_models != "never":
        session.progress.message(f"  {student}: no factory functions: running the notebook to find its models")
        ingest = discover_top_level(session, ingest, path, work / "discover")
    ingest.write(folder / "ingest.json")
    execution = execute_submission(session, path, work / "execute") if session.options.execute else None
    base = dict(student=student, submission_sha256=ingest.sha256, source=str(path),
                factories_found=[f.name for f in ingest.factories], factories_ignored=ingest.ignored_functions,
                dropped=ingest.dropped, ignored_files=ingest.ignored_files, run=session.run,
                reference=ReferenceSummary(model=reference, trained_for=reference_key),
                execution=execution, candidates=ingest.candidates,
                discovered_models=ingest.discovery.models if ingest.discovery else [])
    if ingest.status != "ok":
        result = SubmissionResult(status="invalid", reason=ingest.reason, **base)
    else:
        scratch = hashlib.sha256(student.encode()).hexdigest()[:12]
        started = time.monotonic()
        models, worker = _train_and_evaluate(
            session, ingest.module_source, [(f.name, f.role) for f in ingest.factories], scratch, folder / "models",
            student=student)
        TrainingRecord(student=student, submission_sha256=ingest.sha256, seed=session.seed,
                       profile=session.profile.name, data_sha256=session.raw.content_sha256, models=models,
                       worker=worker, wall_seconds=time.monotonic() - started).write(folder / "training.json")
        status, reason = _status(ingest, models)
        models, summary = _analyse(session, ingest.module_source, [(f.name, f.role) for f in ingest.factories],
                                   scratch, folder, models, reference, student)
        result = SubmissionResult(status=status, reason=reason, models=models, worker=worker, analysis=summary, **base)
    result = score_submission(session.rubric, session.translator, result, ingest, session.protocol)
    result.write(folder / "result.json")
    _draw_report(session, result)
    return result


def _draw_report(session: Session, result: SubmissionResult) -> None:
    """The student's report, drawn as soon as the result is stored: in this submission's thread or Ray
    task, while the others train, instead of one after another at the end of the batch (which then
    only re-reads the kept figures)."""
    from harness.report.render import render_student

    try:
        render_student(session.options.out, result, session.translator)
    except Exception as error:  # the end of the batch draws it again, and fails loudly there
        session.progress.message(f"  {result.student}: report not drawn yet ({type(error).__name__}: {error})")


def _summary_line(student: str, result: SubmissionResult) -> str:
    total = f"{result.score.total:g}/{result.score.max_total:g}" if result.score else "—"
    cached = [m for m in result.models if "evaluate" in m.from_cache]
    origin = " (every model from the cache)" if result.models and len(cached) == len(result.models) else ""
    failure = f" — {result.reason}" if result.reason and result.status != "ok" else ""
    return f"{student}: {result.status}, {total}{origin}{failure}"


def _reusable(folder: Path, path: Path, session: Session, reference_key: str) -> SubmissionResult | None:
    """The stored result of an unchanged submission graded under the same run settings, else None.

    Results are written atomically, so a result.json is complete or absent; temporary files of a
    write that a killed grader left behind are removed."""
    for leftover in folder.glob(".result.json.*"):
        leftover.unlink(missing_ok=True)
    stored = folder / "result.json"
    if not session.options.use_cache or not stored.exists():
        return None
    try:
        result = SubmissionResult.read(stored)
    except Exception:
        return None
    run = session.run
    same_run = (result.reference is not None and result.reference.trained_for == reference_key
                and result.run.harness_version == run.harness_version and result.run.profile == run.profile
                and result.run.seed == run.seed and result.run.data_content_sha256 == run.data_content_sha256
                and result.run.protocol_sha256 == run.protocol_sha256 and result.run.language == run.language
                and result.run.suite_checksum == run.suite_checksum and result.run.seeds == run.seeds
                and result.score is not None and result.score.rubric == session.rubric.source
                and session.options.execute == (result.execution is not None)
                and not _factory_map_for(session.options, result.student))
    return result if same_run and result.submission_sha256 == submission_sha256(path) else None


def _import_later_stages() -> None:
    import scipy.stats  # noqa: F401  (metrics.py imports it when a significance test first runs)

    import harness.report.render  # noqa: F401


def grade(options: GradeOptions) -> BatchSummary:
    """Grade every submission under `options.paths`; results are written as each one finishes."""
    from harness.report.render import render_all

    started = time.monotonic()
    options.out.mkdir(parents=True, exist_ok=True)
    paths, ignored = discover(options.paths, extract_to=options.out / WORK_DIR / "archives")
    for item in ignored:
        options.log(f"ignored {item.name}: {item.reason}")
    submissions = assign_ids(paths)
    session = open_session(options)
    reference = complete_reference(session, reference_model(session))
    reference_key = ReferenceSummary.read(options.out / REFERENCE_DIR / "reference.json").trained_for
    options.log(f"{len(submissions)} submission(s), profile {session.profile.name}, seed {session.seed}, "
                f"{options.workers} worker(s) × {default_threads(options.workers)} thread(s)")
    progress = session.progress
    progress.start(len(submissions))
    results: dict[str, SubmissionResult] = {}
    todo = []
    for student, path in submissions.items():  # resume: a finished, unchanged submission is kept as is
        previous = _reusable(options.out / student, path, session, reference_key)
        if previous is None:
            todo.append((student, path))
        else:
            results[student] = previous
            progress.submission_done(student, f"{student}: unchanged since the last run, every stage from the "
                                              f"cache ({previous.status})")
    backend = make_backend(options.backend, options.workers, options.address, options.gpus_per_task)
    # scipy.stats, matplotlib and Jinja take ~2 s to import: while the first workers start TensorFlow
    threading.Thread(target=_import_later_stages, daemon=True).start()
    for student, result in backend.run(session, todo, reference, reference_key):
        results[student] = result
        progress.submission_done(student, _summary_line(student, result))
    progress.finish()
    ordered = [results[s] for s in submissions]
    render_all(options.out, ordered, reference, session.translator, roster=options.roster)
    kept = [s for s in submissions if s not in dict(todo)]
    return BatchSummary(ordered, reference, time.monotonic() - started, ignored=ignored, kept=kept)

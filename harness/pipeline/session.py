"""A grading run's fixed inputs, built once and shared by every submission: the session.

``open_session`` reads the protocol, the rubric and MNIST, writes the training split and the
test set as separate files (a training worker is only ever given the first), builds the
robustness suite and records what every result's reproducibility block says.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from harness import __version__
from harness.analysis import analyse as analysis
from harness.analysis import private_set
from harness.analysis.perturbations import BuiltSuite
from harness.config.analysis import AnalysisConfig, load_analysis_config
from harness.config.protocol import Profile, Protocol, load_protocol
from harness.pipeline import provenance
from harness.pipeline.cache import StageCache
from harness.pipeline.data import RawMnist, held_out_test_set, load_mnist, training_split
from harness.results import RunInfo
from harness.sandbox import Limits, SandboxUnavailable, bubblewrap_available
from harness.scoring import Rubric, load_rubric
from harness.training.train import TrainingJob
from harness.training.warm import WarmPool
from harness.util.atomic import savez_atomic
from harness.util.i18n import Translator
from harness.util.progress import Progress

REFERENCE_DIR = "_reference"
WORK_DIR = ".work"
CACHE_DIR = ".cache"


@dataclass(frozen=True)
class GradeOptions:
    """What the instructor asked for (``harness grade``'s options); ``open_session`` resolves the defaults."""

    paths: list[Path]
    out: Path
    profile: str = "quick"
    data: Path | None = None
    seed: int | None = None
    language: str = "fr"
    rubric: Path | None = None
    overrides: Path | None = None  # the instructor's overrides file (harness/scoring/overrides.py)
    protocol: Path | None = None
    workers: int = 1
    # True: bubblewrap or refuse (harness grade's default); False: plain processes, said in every result;
    # None: bubblewrap when it works here (harness check, on the student's own code)
    use_bubblewrap: bool | None = None
    unsandboxed_because: str = ""  # why plain processes were accepted (run.sandbox), e.g. "--no-sandbox"
    limits: Limits | None = None  # None: the profile's [limits.<profile>] in the protocol file
    epochs_override: int | None = None
    cache: Path | None = None
    use_cache: bool = True
    progress: Progress | None = None
    backend: str = "local"
    roster: Path | None = None
    address: str | None = None
    gpus_per_task: float | None = None
    seeds: int = 1  # --seeds K: each model and the reference trained on K seeds
    suite: Path | None = None  # robustness suite file (default reference/robustness_suite.toml)
    log: Callable[[str], None] = print
    execute: bool = False  # --execute: run each notebook top to bottom (harness/ingest/execution.py)
    execute_options: object = None  # harness.ingest.execution.ExecuteOptions (None: its defaults)
    discover_models: str = "auto"  # auto: notebooks without factories are run to find top-level models; never
    factory_map: dict[str, dict[str, str]] = field(default_factory=dict)  # student id or "*" -> {harness: own}
    robustness: bool = True  # False (harness check): no robustness suite is built or predicted
    only_these: bool = False  # --only-these: the gradebook and dashboard list this run's submissions only
    wait: bool = False  # --wait: queue behind another grader holding OUT's lock instead of stopping
    # --keep-models: the trained .keras files stay in OUT and in the stage cache. By default they are
    # deleted once evaluated (re-scoring and reports read predictions only): a model file is 0.5-6 MB,
    # the rest of a student's folder about 1 MB.
    keep_models: bool = False
    # --no-reports: the gradebook, the exports and the dashboard, but no student's report (their figures are
    # most of a submission's time in the grader's own process); `harness report OUT` draws them later
    reports: bool = True


def library_versions() -> dict[str, str]:
    """Versions of Python, the harness and the libraries grading depends on ("not installed" for a missing one)."""
    versions = {"python": platform.python_version(), "harness": __version__}
    for package in ("tensorflow", "keras", "numpy", "scipy", "nbformat", "jinja2", "pydantic"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def default_workers(protocol: Path | None = None) -> int:
    """Trainings at once: as many as the cores hold at the protocol's threads each, as far as memory
    allows (a worker training the full profile needs ~3 GiB); at least one."""
    try:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gib = 8.0
    threads = load_protocol(protocol).training.threads
    return max(1, min((os.cpu_count() or 1) // threads, int(memory_gib // 3)))


@dataclass(frozen=True)
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
    suite: BuiltSuite | None = None  # built once per run, before any worker starts
    seeds: tuple[int, ...] = ()
    analysis_config: AnalysisConfig = field(default_factory=AnalysisConfig)
    n_val: int = 0
    warm: WarmPool | None = None  # training workers started ahead of the submissions (a local batch)

    def training_job(self, scratch_name: str) -> TrainingJob:
        """The training worker's job for this run, with its scratch folder ``OUT/.work/<scratch_name>``."""
        return TrainingJob(
            protocol=self.protocol,
            profile=self.profile,
            seed=self.seed,
            train_data=self.train_data,
            work_dir=self.options.out / WORK_DIR / scratch_name,
            threads=self.threads,
            limits=self.options.limits,
            use_bubblewrap=self.options.use_bubblewrap,
            epochs_override=self.options.epochs_override,
        )

    @property
    def threads(self) -> int:
        """Threads each worker uses: the protocol's, whatever ``--workers`` and the machine."""
        return self.protocol.training.threads

    @property
    def evaluation_key(self) -> str:
        """What an evaluation depends on besides the trained model: the test images, the suite, the harness
        and the thread count (TensorFlow's CPU kernels sum in a thread-dependent order: the last bits move)."""
        suite = self.suite.checksum if self.suite is not None else "no-suite"
        # "probes-2": predictions files hold the probe's subset and the private set (the test file's name
        # holds their digest: another private seed or subset re-evaluates)
        key = f"{self.test_data.name}|{suite}|{__version__}|{self.threads}|probes-2"
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    @property
    def run_key(self) -> str:
        """What a stored result must match to be reused: same protocol, profile, seed, data, harness and
        threads per worker (98.96 % on one thread, 98.97 % on two for the full-profile reference)."""
        parts = [
            self.protocol.source_sha256,
            self.profile.name,
            str(self.seed),
            self.raw.content_sha256,
            __version__,
            str(self.options.epochs_override),
            f"threads={self.threads}",
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _write_data(
    session_dir: Path, raw: RawMnist, protocol: Protocol, profile: Profile, integrity: dict[str, np.ndarray]
) -> tuple[Path, Path, np.ndarray]:
    """Training split and test set as separate files: a training worker is only given the first. The
    test file also holds the integrity images (:func:`_integrity_images`), named by their digest."""
    session_dir.mkdir(parents=True, exist_ok=True)
    split = training_split(raw, profile.train_images, protocol.training.validation_split)
    x_test, y_test = held_out_test_set(raw, profile.test_images)
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in integrity.values())).hexdigest()
    train_path = session_dir / f"train-{profile.name}-{raw.content_sha256[:12]}.npz"
    test_path = session_dir / f"test-{profile.name}-{raw.content_sha256[:12]}-{digest[:12]}.npz"
    if not train_path.exists():
        savez_atomic(train_path, x_train=split.x_train, y_train=split.y_train, x_val=split.x_val, y_val=split.y_val)
    if not test_path.exists():
        savez_atomic(test_path, x_test=x_test, **integrity)
    return train_path, test_path, y_test


def _integrity_images(
    options: GradeOptions, raw: RawMnist, protocol: Protocol, profile: Profile, seed: int, config: AnalysisConfig
) -> dict[str, np.ndarray]:
    """The invariance probe's test positions, the course's private check set and its control (validation
    images rewritten alike), for the evaluation worker (docs/integrity.md); the seed and the set are
    kept beside the stage cache, whose evaluations hold their predictions."""
    x_test, _ = held_out_test_set(raw, profile.test_images)
    x_val = training_split(raw, profile.train_images, protocol.training.validation_split).x_val
    settings = config.integrity
    cache_root = options.cache or options.out / CACHE_DIR
    secret, source = private_set.private_seed(cache_root)
    private = private_set.build_private_set(x_test, secret, settings, source)
    control = private_set.build_private_set(x_val, secret, settings, source, private_set.CONTROL_STREAM)
    private_set.keep_private_set(cache_root, private)
    options.log(f"private check set: {len(private.indices):,} images, seed from {source}")
    return {
        "probe_indices": private_set.probe_indices(len(x_test), seed, settings.invariance_images),
        "x_private": private.images,
        "private_indices": private.indices,
        "x_control": np.asarray(x_val[control.indices], dtype=np.float32),
        "x_control_private": control.images,
    }


def profile_limits(protocol: Protocol, profile: str) -> Limits:
    """The worker limits of `profile` in the protocol (``[limits.<profile>]`` over ``[limits.default]``)."""
    return Limits.from_table(protocol.limits_table(profile))


def missing_packages(protocol: Protocol) -> list[str]:
    """The packages of the protocol's ``[environment]`` that student code could not import here."""
    return [
        package
        for package, module in zip(protocol.environment.packages, protocol.environment.modules)
        if importlib.util.find_spec(module) is None
    ]


def require_sandbox(options: GradeOptions) -> None:
    """Refuse a run that requires bubblewrap where it does not work, with how to get it: called before
    anything of the students' is read, so that nothing of theirs runs unsandboxed by default."""
    if options.use_bubblewrap and not bubblewrap_available():
        raise SandboxUnavailable(Translator(options.language)("sandbox_missing"))


def isolation(options: GradeOptions, sandbox: bool) -> str:
    """The run's isolation as every result records it (``run.sandbox``): "bubblewrap" or "none: <why>"."""
    if sandbox:
        return "bubblewrap"
    default = "--no-sandbox" if options.use_bubblewrap is False else "bubblewrap not available"
    return f"none: {options.unsandboxed_because or default}"


def open_session(options: GradeOptions) -> Session:
    """Read and check every input of the run once; the session is then never changed."""
    protocol = load_protocol(options.protocol)
    profile = protocol.profile(options.profile)
    # absolute: the sandbox mounts the data files and scratch folders by path (a relative --out broke it)
    options = replace(
        options,
        out=Path(options.out).resolve(),
        cache=Path(options.cache).resolve() if options.cache else None,
        limits=options.limits or profile_limits(protocol, profile.name),
    )
    seed = options.seed if options.seed is not None else protocol.training.seed
    raw = load_mnist(options.data)
    rubric = load_rubric(options.rubric, options.overrides)
    translator = Translator(options.language)
    options.out.mkdir(parents=True, exist_ok=True)
    provenance.keep_protocol(options.out, options.protocol)
    provenance.keep_scoring(options.out, options.rubric, options.overrides)
    analysis_config = load_analysis_config()
    integrity = _integrity_images(options, raw, protocol, profile, seed, analysis_config)
    train_path, test_path, labels = _write_data(options.out / WORK_DIR / "data", raw, protocol, profile, integrity)
    suite = _prepare_suite(options, raw, profile) if options.robustness else None
    seeds = analysis.derive_seeds(seed, options.seeds)
    require_sandbox(options)
    sandbox = bubblewrap_available() if options.use_bubblewrap is None else options.use_bubblewrap
    run = RunInfo(
        harness_version=__version__,
        profile=profile.name,
        seed=seed,
        protocol_sha256=protocol.source_sha256,
        data_source=raw.source,
        data_sha256=raw.file_sha256,
        data_content_sha256=raw.content_sha256,
        versions=library_versions(),
        language=options.language,
        budgets={
            "model_budget_s": profile.model_budget_s,
            "submission_budget_s": profile.submission_budget_s,
            "import_timeout_s": profile.import_timeout_s,
            "build_timeout_s": profile.build_timeout_s,
            "max_epochs": profile.max_epochs,
            "memory_mb": options.limits.memory_mb,
            **options.limits.as_budgets(),
        },
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        command=shlex.join(["harness", *sys.argv[1:]]) if sys.argv and "harness" in sys.argv[0] else "harness grade",
        suite_sha256=suite.suite.sha256 if suite else None,
        suite_checksum=suite.checksum if suite else None,
        seeds=seeds,
        sandbox=isolation(options, sandbox),
        fidelity={
            "train_images": profile.train_images,
            "test_images": profile.test_images,
            "bn_recalibration_images": profile.bn_recalibration_images,
            "collapse": profile.collapse,
            "still_learning": profile.still_learning,
            **({"suite_images": profile.suite_images} if profile.suite_images else {}),
        },
    )
    if not sandbox:
        options.log(
            f"WARNING: {run.sandbox.removeprefix('none: ')}: student code runs in plain worker processes with "
            "resource limits only: NO filesystem or network isolation (README, Security); "
            "every result says so in worker.sandbox"
        )
    missing = missing_packages(protocol)
    if missing:
        options.log(
            f"WARNING: the course declares packages that are not installed here: {', '.join(missing)} "
            '(reference/protocol.toml [environment]; pip install "harness[course]"): a model that needs one fails '
            "with a reason naming it"
        )
    cache = StageCache(options.cache or options.out / CACHE_DIR, enabled=options.use_cache)
    n_val = int(round(min(profile.train_images, len(raw.x_train)) * protocol.training.validation_split))
    return Session(
        options,
        protocol,
        profile,
        seed,
        raw,
        rubric,
        translator,
        train_path,
        test_path,
        labels,
        run,
        cache,
        options.progress or Progress.for_stream(sys.stdout, options.log),
        suite=suite,
        seeds=tuple(seeds),
        analysis_config=analysis_config,
        n_val=n_val,
    )


def _prepare_suite(options: GradeOptions, raw: RawMnist, profile: Profile) -> BuiltSuite:
    """The robustness suite's perturbed sets, built here (harness code, grading process) or read from
    the cache; OUT/_suite holds their manifest and the report's example images."""
    x_test, _ = held_out_test_set(raw, profile.test_images)
    started = time.monotonic()
    suite = analysis.prepare_suite(
        x_test, analysis.suite_cache_dir(options.out), options.suite, cap=profile.suite_images
    )
    analysis.write_suite_artifacts(suite, x_test, options.out / analysis.SUITE_DIR)
    origin = "from the cache" if suite.from_cache else f"built in {time.monotonic() - started:.1f} s"
    options.log(
        f"robustness suite: {len(suite)} perturbed sets, {suite.n_images:,} images ({origin}), "
        f"checksum {suite.checksum[:12]}"
    )
    return suite

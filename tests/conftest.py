"""Shared fixtures: the MNIST file, a tiny protocol, and grading runs shared by many tests.

Training is the slow part, so each class below is graded once per test session with real
TensorFlow workers on the ``tiny`` profile (600 training / 300 test images, 1 epoch) and
its outputs are read by many tests:

* ``graded``: copies of real samples from ``submissions/`` (notebook, module, broken notebook)
  and a small crafted student folder with an accented name;
* ``failing``: crafted submissions whose factories raise, return the wrong thing, hang,
  exit or segfault.

Both runs share one stage cache and a small robustness suite, so the reference model is trained
once per session and evaluation stays short.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase, MultiplexedDatabase, ReadOnlyDatabase

from harness.pipeline import BatchSummary, GradeOptions, grade
from harness.resources import bundled
from harness.results import RunInfo, SubmissionResult

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "submissions"
DATA_ENV = "HARNESS_MNIST_NPZ"

TINY = "tiny"
BUDGET = "budget"
TINY_TRAIN_IMAGES = 600
TINY_TEST_IMAGES = 300
BUILD_TIMEOUT_S = 10  # a real build takes well under a second; the hanging factory is stopped after this
BUDGET_MODEL_S = 0.5

FIXTURES = Path(__file__).resolve().parent / "fixtures"


# --------------------------------------------------------------------------- property tests

# Hypothesis runs a fixed number of examples per test (no time-based budget, so CI is as fast on a
# slow runner), replaying first the examples committed in tests/fixtures/hypothesis. That folder is
# only ever read: Hypothesis deletes a stored example once it passes, so a writable committed
# database empties itself on the first green run. New failures found on a developer's machine go
# to .hypothesis/ (ignored by git); copy the folder's new entries into tests/fixtures/hypothesis to
# have every later run replay them (CONTRIBUTING.md). CI (CI=true) writes nothing, and a failure
# there prints the blob that reproduces it (@reproduce_failure) to add to the test.
HYPOTHESIS_DB = FIXTURES / "hypothesis"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_COMMITTED_EXAMPLES = ReadOnlyDatabase(DirectoryBasedExampleDatabase(HYPOTHESIS_DB))
settings.register_profile(
    "harness",
    max_examples=60,
    deadline=None,  # a rule or an ingest can take longer on a loaded machine: count examples, not time
    print_blob=True,
    database=_COMMITTED_EXAMPLES
    if IN_CI
    else MultiplexedDatabase(_COMMITTED_EXAMPLES, DirectoryBasedExampleDatabase(REPO / ".hypothesis" / "examples")),
    suppress_health_check=[HealthCheck.too_slow],
)
# a longer hunt, on demand: HYPOTHESIS_PROFILE=deep python -m pytest tests/ingest/test_properties.py
settings.register_profile("deep", parent=settings.get_profile("harness"), max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "harness"))


# --------------------------------------------------------------------------- CI guards

# Every test has pytest-timeout's limit (`timeout` in pyproject.toml: a hung worker fails its test
# instead of the whole CI job); a test that trains models gets longer, since it may be the first to
# need a class graded by a session fixture (the `graded` class takes minutes on 2 busy cores).
SLOW_TEST_TIMEOUT_S = 2400


# Session fixtures that grade a class (TensorFlow workers, training): a test that needs one is slow
# whatever its own body does, so the fast tier never waits for a class to be graded.
GRADING_FIXTURES = frozenset({"graded", "failing", "cold_class", "real_world_graded"})


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection reads the marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if GRADING_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TEST_TIMEOUT_S))


@pytest.fixture(scope="session")
def bubblewrap():
    """Tests that need a working bubblewrap: skipped without one, except in CI (CI=true), where a
    missing or unusable bwrap fails them: CI must test the sandbox, never silently skip it."""
    from harness.sandbox import bubblewrap_available

    if bubblewrap_available():
        return
    message = "bubblewrap is missing or cannot create namespaces here"
    if IN_CI:
        pytest.fail(
            f"{message}, and CI=true: install bubblewrap and allow unprivileged user namespaces "
            "(docs/ci.md), or unset CI to skip the sandbox tests locally"
        )
    pytest.skip(message)


needs_bwrap = pytest.mark.usefixtures("bubblewrap")


# --------------------------------------------------------------------------- data and protocol


def _keras_cache() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"


@pytest.fixture(scope="session")
def mnist_npz(tmp_path_factory) -> Path:
    """MNIST as a local .npz: $HARNESS_MNIST_NPZ, else ../shared/data/mnist.npz (CI), else Keras's cache."""
    explicit = os.environ.get(DATA_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            pytest.fail(f"{DATA_ENV}={explicit} does not name a file")
        return path
    shared = REPO.parent / "shared" / "data" / "mnist.npz"
    if shared.is_file():
        return shared
    if _keras_cache().is_file():
        import keras  # reads the cached file, no network

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
        path = tmp_path_factory.mktemp("mnist") / "mnist-small.npz"
        np.savez(path, x_train=x_train[:8000], y_train=y_train[:8000], x_test=x_test[:1000], y_test=y_test[:1000])
        return path
    pytest.fail(
        f"MNIST is needed by the tests: set {DATA_ENV}=/path/to/mnist.npz, or put the file at "
        f"{shared} (where CI has it), or run keras.datasets.mnist.load_data() once with network access."
    )


@pytest.fixture(scope="session")
def mnist_arrays(mnist_npz) -> dict[str, np.ndarray]:
    with np.load(mnist_npz) as npz:
        return {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}


@pytest.fixture(scope="session")
def protocol_path(tmp_path_factory) -> Path:
    """The bundled protocol with two small test profiles added (``tiny`` and ``budget``)."""
    text = (
        bundled("reference", "protocol.toml").read_text(encoding="utf-8")
        + "\n\n"
        + (FIXTURES / "protocol_test_profiles.toml").read_text(encoding="utf-8")
    )
    path = tmp_path_factory.mktemp("protocol") / "protocol-tests.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def stage_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stage-cache")


@pytest.fixture(scope="session", autouse=True)
def shared_suite_cache(tmp_path_factory):
    """Robustness sets and reference models built once per test session (as in real use, where they are
    shared per user), in folders of the session's: the tests never write to the user's ~/.cache. In os.environ, so that
    the `harness` commands the tests start share it too."""
    from harness.config.environment import PRIVATE_SEED_ENV, REFERENCE_CACHE_ENV, SUITE_CACHE_ENV

    folder = tmp_path_factory.mktemp("suite-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SUITE_CACHE_ENV, str(folder))
        # the reference model too, as for a user: trained once per profile for the whole session
        patch.setenv(REFERENCE_CACHE_ENV, str(tmp_path_factory.mktemp("reference-cache")))
        # the private check set's secret seed, fixed: the same sets, hence the same results, in every session
        patch.setenv(PRIVATE_SEED_ENV, "20261204")
        yield folder


# A robustness suite small enough for tests, picked by name from the bundled suite (same
# perturbations, parameters and seeds), on few images: the bundled suite has 37 sets.
def small_suite(names: list[str], subset: int | str) -> str:
    """TOML of the bundled suite's entries named `names`, on the first `subset` test images."""

    def value(v) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    entries = {
        e["name"]: e
        for e in tomllib.loads(bundled("reference", "robustness_suite.toml").read_text(encoding="utf-8"))["entries"]
    }
    lines = [f"subset = {value(subset)}"]
    for name in names:
        lines += ["", "[[entries]]", *(f"{key} = {value(v)}" for key, v in entries[name].items())]
    return "\n".join(lines) + "\n"


ASSIGNMENT_TESTS = ["assignment/noise", "assignment/rotation"]
# the assignment's two tests, one MNIST-C corruption and a two-level sweep
SMALL_SUITE = small_suite(
    [*ASSIGNMENT_TESTS, "mnist_c/shot_noise", "sweep/gaussian_noise/0.1", "sweep/gaussian_noise/0.3"], subset=100
)


@pytest.fixture(scope="session")
def suite_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "small_suite.toml"
    path.write_text(SMALL_SUITE, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- grading runs


@dataclass
class Graded:
    """One grading run: its summary, output folder, inputs and log."""

    summary: BatchSummary
    out: Path
    paths: list[Path]
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def result(self, student: str) -> SubmissionResult:
        return SubmissionResult.read(self.out / student / "result.json")

    def by_student(self) -> dict[str, SubmissionResult]:
        return {r.student: r for r in self.summary.results}


def run_grade(
    paths: list[Path],
    out: Path,
    *,
    protocol: Path,
    data: Path,
    cache: Path | None,
    profile: str = TINY,
    workers: int = 2,
    use_cache: bool = True,
    suite: Path | None = None,
    **extra,
) -> Graded:
    """grade() with the log captured; `suite` None means the bundled robustness suite."""
    log: list[str] = []
    started = time.monotonic()
    options = GradeOptions(
        paths=list(paths),
        out=out,
        profile=profile,
        data=data,
        protocol=protocol,
        workers=workers,
        cache=cache,
        use_cache=use_cache,
        suite=suite,
        log=log.append,
        **extra,
    )
    summary = grade(options)
    return Graded(summary=summary, out=out, paths=list(paths), log=log, seconds=time.monotonic() - started)


def copy_samples(dest: Path, names: list[str]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = SAMPLES / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            shutil.copy2(source, dest / name)
    return dest


CLASS_SAMPLES = ["baseline_only.ipynb", "module_student.py", "broken.ipynb", "README.md"]

# A student folder with an accented name, a notes file and a Colab export's lines, with small
# models (the sample "Zoé Martin" is the same shape but three times slower to train and render).
FOLDER_STUDENT = "Élodie Brûlé"


@pytest.fixture(scope="session")
def class_dir(tmp_path_factory) -> Path:
    """Real samples (notebook, module, broken notebook, README) and the crafted student folder."""
    promo = copy_samples(tmp_path_factory.mktemp("class") / "promo", CLASS_SAMPLES)
    shutil.copytree(FIXTURES / "folder_student" / FOLDER_STUDENT, promo / FOLDER_STUDENT)
    return promo


@pytest.fixture(scope="session")
def graded(tmp_path_factory, class_dir, mnist_npz, protocol_path, stage_cache, suite_path) -> Graded:
    """The sample class graded once on the tiny profile; read-only for the tests that use it."""
    out = tmp_path_factory.mktemp("graded") / "out"
    return run_grade([class_dir], out, protocol=protocol_path, data=mnist_npz, cache=stage_cache, suite=suite_path)


def copy_of(graded_run: Graded, dest: Path) -> Path:
    """A copy of a graded output folder (mtimes kept), for tests that modify it."""
    shutil.copytree(graded_run.out, dest, copy_function=shutil.copy2)
    return dest


@pytest.fixture(scope="session")
def failing(tmp_path_factory, mnist_npz, protocol_path, stage_cache, suite_path, graded) -> Graded:
    """Two crafted submissions with failing factories, graded together (after ``graded``, whose
    reference model they take from the shared cache)."""
    folder = shutil.copytree(FIXTURES / "failing", tmp_path_factory.mktemp("failing") / "class")
    out = tmp_path_factory.mktemp("failing") / "out"
    return run_grade([folder], out, protocol=protocol_path, data=mnist_npz, cache=stage_cache, suite=suite_path)


# --------------------------------------------------------------------------- shared helpers


def run_info(**fields) -> RunInfo:
    """A run's record for tests that build results by hand; `fields` replace the defaults."""
    defaults = dict(
        harness_version="test",
        profile="smoke",
        seed=1,
        protocol_sha256="p",
        data_source="d",
        data_sha256="s",
        data_content_sha256="c",
        versions={},
        language="fr",
        budgets={},
        started_at="2026-01-01T00:00:00+00:00",
        command="harness grade",
    )
    return RunInfo(**{**defaults, **fields})

"""``harness grade``'s pipeline over a class: find the submissions, open the session, train the
reference, grade what changed through a backend, render the dashboard and the gradebook.

>>> summary = grade(GradeOptions(paths=[Path("submissions")], out=Path("out"), profile="smoke"))  # doctest: +SKIP
>>> summary.exit_code                                                                            # doctest: +SKIP
1
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.analysis.analyse import suite_cache_dir
from harness.config.environment import warm_workers_wanted
from harness.ingest import assign_ids, discover, submission_sha256
from harness.pipeline.backends import make_backend
from harness.pipeline.lock import output_lock
from harness.pipeline.reference import complete_reference, reference_cache, reference_model
from harness.pipeline.rescore import result_paths
from harness.pipeline.session import (
    REFERENCE_DIR,
    WORK_DIR,
    GradeOptions,
    Session,
    open_session,
    require_sandbox,
)
from harness.pipeline.similarity import refresh as refresh_similarity
from harness.pipeline.submission import factory_map_for
from harness.report.render import render_all
from harness.results import IgnoredItem, ModelResult, ReferenceSummary, SubmissionResult
from harness.training.warm import WarmPool
from harness.util.atomic import remove_leftovers


@dataclass
class BatchSummary:
    """What ``harness grade`` did over a class: each result, the reference, the time, what was not graded."""

    results: list[SubmissionResult]
    reference: ModelResult | None
    seconds: float
    ignored: list[IgnoredItem] = field(default_factory=list)  # files and folders not graded, with why
    kept: list[str] = field(default_factory=list)  # unchanged submissions whose stored result was kept as is

    @property
    def exit_code(self) -> int:
        """0 when every submission's status is ok, else 1."""
        return 0 if all(r.status == "ok" for r in self.results) else 1


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
    same_run = (
        result.reference is not None
        and result.reference.trained_for == reference_key
        and result.run.harness_version == run.harness_version
        and result.run.profile == run.profile
        and result.run.seed == run.seed
        and result.run.data_content_sha256 == run.data_content_sha256
        and result.run.protocol_sha256 == run.protocol_sha256
        and result.run.language == run.language
        and result.run.suite_checksum == run.suite_checksum
        and result.run.seeds == run.seeds
        and result.score is not None
        and result.score.rubric == session.rubric.source
        and session.options.execute == (result.execution is not None)
        and not factory_map_for(session.options, result.student)
    )
    return result if same_run and result.submission_sha256 == submission_sha256(path) else None


def _import_scipy_stats() -> None:
    import scipy.stats  # noqa: F401  (metrics.py imports it when a significance test first runs: ~1 s)


def _resume(
    session: Session, submissions: dict[str, Path], reference_key: str
) -> tuple[dict[str, SubmissionResult], list[tuple[str, Path]]]:
    """The stored results of unchanged submissions, and the submissions left to grade."""
    kept: dict[str, SubmissionResult] = {}
    todo = []
    for student, path in submissions.items():
        previous = _reusable(session.options.out / student, path, session, reference_key)
        if previous is None:
            todo.append((student, path))
        else:
            kept[student] = previous
            session.progress.submission_done(
                student, f"{student}: unchanged since the last run, every stage from the cache ({previous.status})"
            )
    return kept, todo


def _gradebook(out: Path, graded: list[SubmissionResult], options: GradeOptions) -> list[SubmissionResult]:
    """What grades.csv, the exports and the dashboard list: this run's results and, unless
    ``--only-these``, every other student's result stored in OUT, so that grading one late
    submission into the class folder keeps the class (as ``harness score`` and ``report`` do)."""
    if options.only_these:
        return graded
    these = {result.student for result in graded}
    others = []
    for path in result_paths(out):
        if path.parent.name in these:
            continue
        try:
            others.append(SubmissionResult.read(path))
        except Exception as error:  # a result.json from another harness version, say: the class is still listed
            options.log(f"WARNING: {path} could not be read, left out of the gradebook ({error})")
    if others:
        options.log(
            f"{len(others)} other student(s) graded earlier in {out} kept in the gradebook (--only-these leaves them out)"
        )
    return graded + others


# A cache entry is staged for seconds; in the per-user caches, one an hour old is what a killed grader left.
SHARED_LEFTOVER_AGE_S = 3600.0


def grade(options: GradeOptions) -> BatchSummary:
    """Grade every submission under `options.paths`; results are written as each one finishes.
    The output folder is locked for the run (harness/pipeline/lock.py)."""
    require_sandbox(options)  # before the output folder, the archives or any student code is touched
    out = Path(options.out).resolve()
    with output_lock(out, options.wait, options.log):
        return _grade(options, out)


def _grade(options: GradeOptions, out: Path) -> BatchSummary:
    started = time.monotonic()
    remove_leftovers(out, skip=(WORK_DIR,))  # of a grader killed while writing (kill -9); OUT is ours now
    paths, ignored = discover(options.paths, extract_to=out / WORK_DIR / "archives")
    for item in ignored:
        options.log(f"ignored {item.name}: {item.reason}")
    submissions = assign_ids(paths)
    session = open_session(options)
    for shared in (reference_cache(session).root, suite_cache_dir(out)):  # other graders' too: old leftovers only
        remove_leftovers(shared, older_than_s=SHARED_LEFTOVER_AGE_S)
    reference = complete_reference(session, reference_model(session))
    reference_key = ReferenceSummary.read(out / REFERENCE_DIR / "reference.json").trained_for
    options.log(
        f"{len(submissions)} submission(s), profile {session.profile.name}, seed {session.seed}, "
        f"{options.workers} worker(s) × {session.threads} thread(s)"
    )
    session.progress.start(len(submissions))
    results, todo = _resume(session, submissions, reference_key)
    backend = make_backend(options.backend, options.workers, options.address, options.gpus_per_task)
    threading.Thread(target=_import_scipy_stats, daemon=True).start()  # while the first workers start TensorFlow
    if backend.name == "local" and todo and warm_workers_wanted():  # each training worker started during the one before
        session = replace(session, warm=WarmPool(session.training_job("warm"), out / WORK_DIR / "warm"))
    try:
        for student, result in backend.run(session, todo, reference, reference_key):
            results[student] = result
            session.progress.submission_done(student, _summary_line(student, result))
    finally:
        if session.warm is not None:
            session.warm.close()
    session.progress.finish()
    ordered = [results[s] for s in submissions]
    gradebook = _gradebook(out, ordered, options)
    refresh_similarity(out, session.translator.language, options.log, locked=True)  # before the dashboard links it
    drawn = render_all(out, gradebook, reference, session.translator, roster=options.roster, students=options.reports)
    for problem in drawn:
        options.log(f"WARNING: {problem}")
    kept = [s for s in submissions if s not in dict(todo)]
    # the run's copies of MNIST (10-20 MB): rewritten from the data file by the next run, under OUT's lock
    shutil.rmtree(out / WORK_DIR / "data", ignore_errors=True)
    return BatchSummary(ordered, reference, time.monotonic() - started, ignored=ignored, kept=kept)

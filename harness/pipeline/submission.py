"""One submission through every stage: ingest, (discovery), (execution), train, evaluate, analyse, score.

``grade_submission`` is the one function that grades a submission; ``harness grade`` (through a
backend, with the report drawn as soon as the result is stored) and ``harness check`` both call it.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from harness.analysis import analyse as analysis
from harness.config.protocol import Protocol
from harness.ingest import ingest_path, main_file_path, needs_discovery, submission_sha256
from harness.ingest.discovery import (
    DISCOVERY_TEST_IMAGES,
    DISCOVERY_TRAIN_IMAGES,
    DiscoverOptions,
    apply_discovery,
    discover_models,
)
from harness.ingest.execution import ExecuteOptions, execute_notebook, notebook_data_file
from harness.pipeline.models import seed_runs, train_and_evaluate
from harness.pipeline.session import REFERENCE_DIR, WORK_DIR, GradeOptions, Session
from harness.report.render import render_student
from harness.results import (
    AnalysisSummary,
    EvidenceItem,
    ExecutionRecord,
    IngestResult,
    InternalError,
    ModelResult,
    ReferenceSummary,
    SubmissionResult,
    TrainingRecord,
    WorkerInfo,
)
from harness.sandbox import Limits
from harness.scoring import Rubric, failed_score, score_result
from harness.util.i18n import Translator
from harness.util.pysource import formatted_traceback


def _analyse(
    session: Session,
    module_source: str,
    factories: list[tuple[str, str]],
    scratch_name: str,
    folder: Path,
    models: list[ModelResult],
    reference: ModelResult,
    student: str,
) -> tuple[list[ModelResult], AnalysisSummary]:
    """Seed runs, error analysis, robustness, significance against the reference, integrity flags."""
    if len(session.seeds) > 1:
        extra = seed_runs(session, module_source, factories, scratch_name, folder, student)
        models = [
            m.model_copy(update={"seed_runs": [analysis.seed_run(m, session.seed), *extra[m.name]]}) for m in models
        ]
    models, summary = analysis.analyze_models(
        models,
        folder / "models",
        session.labels,
        session.suite,
        session.analysis_config,
        reference,
        session.options.out / REFERENCE_DIR / "models",
        session.n_val,
        session.translator,
        session.profile,
    )
    gallery = analysis.write_gallery(folder / analysis.GALLERY_FILE, models, session.raw.x_test[: len(session.labels)])
    return models, summary.model_copy(update={"gallery_file": gallery.name if gallery else None})


def _status(ingest: IngestResult, models: list[ModelResult]) -> tuple[str, str | None]:
    failed = [m for m in models if m.status != "ok"]
    if not failed:
        return "ok", None
    summary = "; ".join(f"{m.name}: {m.status} — {m.reason}" for m in failed)
    return ("failed" if len(failed) == len(models) else "partial"), summary


def score_submission(
    session_rubric: Rubric, translator: Translator, result: SubmissionResult, ingest: IngestResult, protocol: Protocol
) -> SubmissionResult:
    """(Re-)score a stored result (the rubric carries the instructor's overrides); used by grading
    and by `harness score`."""
    scored = score_result(
        session_rubric, translator, result, ingest, protocol.training.epochs, protocol.training.batch_size
    )
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
            text = (
                translator("ex_evidence", ran=ran, total=len(execution.cells), status=execution.status)
                + (f" — {execution.reason}" if execution.reason else "")
                + translator("ex_evidence_not_scored")
            )
            kind = "found" if execution.status == "ok" else "flag"
            first = execution.first_failure
            criterion = criterion.model_copy(
                update={
                    "evidence": [
                        *criterion.evidence,
                        EvidenceItem(
                            text=text, kind=kind, cell=first, where=translator("cell", n=first) if first else None
                        ),
                    ]
                }
            )
        criteria.append(criterion)
    return result.model_copy(update={"score": result.score.model_copy(update={"criteria": criteria})})


def factory_map_for(options: GradeOptions, student: str) -> dict[str, str]:
    """The instructor's --factory-map for `student` (its own entries over the class-wide ``*`` ones)."""
    return {**options.factory_map.get("*", {}), **options.factory_map.get(student, {})}


def _notebook_data(session: Session, train_images: int, test_images: int) -> Path:
    return notebook_data_file(session.raw, session.options.out / WORK_DIR / "data", train_images, test_images)


def discovery_limits(session: Session, limits: Limits) -> Limits:
    """The notebook run prepares MNIST at its full size whatever the profile (DISCOVERY_TRAIN_IMAGES): its
    memory is at least the full profile's (a Kaggle notebook's pandas frames of 60,000 rows need about 1.5 GiB
    besides TensorFlow's), the run's other limits unchanged."""
    full = Limits.from_table(session.protocol.limits_table("full"))
    return limits.replace(
        memory_mb=max(limits.memory_mb, full.memory_mb), resident_mb=max(limits.resident_mb, full.resident_mb)
    )


def discover_top_level(session: Session, ingest: IngestResult, path: Path, scratch: Path) -> IngestResult:
    """A notebook without factories: run it with training intercepted to find its top-level models."""
    data = _notebook_data(session, DISCOVERY_TRAIN_IMAGES, DISCOVERY_TEST_IMAGES)
    job = session.training_job(scratch.name)
    record, source = discover_models(
        ingest,
        main_file_path(path),
        data,
        scratch,
        DiscoverOptions(threads=job.threads, use_bubblewrap=job.use_bubblewrap),
        limits=discovery_limits(session, job.limits),
    )
    return apply_discovery(ingest, record, source)


def execute_submission(session: Session, path: Path, scratch: Path) -> ExecutionRecord | None:
    """--execute: the notebook run top to bottom in the sandbox (None for a .py module)."""
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


def read_submission(session: Session, student: str, path: Path, work: Path) -> IngestResult:
    """Ingest (and, for a notebook without factories, discovery), written to ``OUT/<student>/ingest.json``."""
    ingest = ingest_path(path, student, factory_map=factory_map_for(session.options, student))
    if needs_discovery(ingest) and session.options.discover_models != "never":
        session.progress.message(f"  {student}: running the notebook to find the models it builds at top level")
        ingest = discover_top_level(session, ingest, path, work / "discover")
    ingest.write(session.options.out / student / "ingest.json")
    return ingest


def _trained(
    session: Session, student: str, ingest: IngestResult, scratch: str, folder: Path
) -> tuple[list[ModelResult], WorkerInfo]:
    """Every factory trained and evaluated; ``training.json`` written."""
    started = time.monotonic()
    models, worker = train_and_evaluate(
        session,
        ingest.module_source,
        [(f.name, f.role) for f in ingest.factories],
        scratch,
        folder / "models",
        student=student,
        local_modules=ingest.local_modules,
    )
    TrainingRecord(
        student=student,
        submission_sha256=ingest.sha256,
        seed=session.seed,
        profile=session.profile.name,
        data_sha256=session.raw.content_sha256,
        models=models,
        worker=worker,
        wall_seconds=time.monotonic() - started,
    ).write(folder / "training.json")
    return models, worker


def grade_submission(
    session: Session, student: str, path: Path, reference: Callable[[], ReferenceSummary], *, overlap: bool = False
) -> SubmissionResult:
    """Grade one submission; its ``result.json`` is written before it returns.

    `reference` gives the reference model and the key it was trained for; it is called only once the
    submission's own models are trained, so that ``harness check`` can train the reference alongside.
    ``overlap=True`` also runs ``--execute`` beside the training (a student's check, one submission);
    a class run keeps one sandboxed process per submission at a time.
    """
    folder = session.options.out / student
    folder.mkdir(parents=True, exist_ok=True)
    scratch = hashlib.sha256(student.encode()).hexdigest()[:12]
    work = session.options.out / WORK_DIR / scratch
    ingest = read_submission(session, student, path, work)
    with ThreadPoolExecutor(max_workers=1) as pool:
        execution = (
            pool.submit(execute_submission, session, path, work / "execute") if session.options.execute else None
        )
        if execution is not None and not overlap:
            execution.result()  # a class run: one sandboxed process per submission at a time
        trained = _trained(session, student, ingest, scratch, folder) if ingest.status == "ok" else None
        summary = reference()
        base = dict(
            student=student,
            submission_sha256=ingest.sha256,
            source=str(path),
            factories_found=[f.name for f in ingest.factories],
            factories_ignored=ingest.ignored_functions,
            dropped=ingest.dropped,
            ignored_files=ingest.ignored_files,
            run=session.run,
            reference=summary,
            execution=execution.result() if execution else None,
            candidates=ingest.candidates,
            discovered_models=ingest.discovery.models if ingest.discovery else [],
            factory_names=ingest.factory_map,
            names_inferred=ingest.factory_source == "inferred",
            rewrites=ingest.rewrites,
        )
    if trained is None:
        result = SubmissionResult(status="invalid", reason=ingest.reason, **base)
    else:
        models, worker = trained
        status, reason = _status(ingest, models)
        models, analysed = _analyse(
            session,
            ingest.module_source,
            [(f.name, f.role) for f in ingest.factories],
            scratch,
            folder,
            models,
            summary.model,
            student,
        )
        result = SubmissionResult(status=status, reason=reason, models=models, worker=worker, analysis=analysed, **base)
    result = score_submission(session.rubric, session.translator, result, ingest, session.protocol)
    result.write(folder / "result.json")
    return result


def grade_safely(
    session: Session, student: str, path: Path, reference: ModelResult, reference_key: str
) -> SubmissionResult:
    """One submission graded; it never raises: whatever goes wrong in the harness while grading it
    becomes this submission's ``failed`` result (the traceback in ``result.json``), and the batch goes on."""
    summary = ReferenceSummary(model=reference, trained_for=reference_key)
    try:
        return grade_submission(session, student, path, lambda: summary)
    except Exception as error:
        return internal_failure(session, student, path, summary, error)


def grade_and_draw(
    session: Session, student: str, path: Path, reference: ModelResult, reference_key: str
) -> SubmissionResult:
    """``harness grade``'s task for one submission (on any backend): graded (:func:`grade_safely`),
    then its report drawn. It never raises."""
    result = grade_safely(session, student, path, reference, reference_key)
    draw_report(session, result)
    return result


# The stage a failure happened in: the innermost of these functions of this module in its traceback.
_STAGES = {
    "read_submission": "ingest",
    "discover_top_level": "discovery",
    "execute_submission": "execute",
    "_trained": "train",
    "_analyse": "analyse",
    "score_submission": "score",
    "draw_report": "report",
}


def _stage_of(error: BaseException) -> str:
    stage = "grade"
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == __file__ and frame.name in _STAGES:
            stage = _STAGES[frame.name]
    return stage


def internal_failure(
    session: Session, student: str, path: Path, reference: ReferenceSummary | None, error: BaseException
) -> SubmissionResult:
    """An exception of the harness's own while grading one submission, as that submission's result:
    ``failed``, the stage and the error as its reason, the traceback kept, every criterion at 0 (an
    instructor's override may still grade it by hand). Written to ``OUT/<student>/result.json``."""
    t = session.translator
    stage = _stage_of(error)
    reason = t("internal_failure", stage=t(f"stage_{stage}"), error=f"{type(error).__name__}: {error}"[:500])
    try:
        sha256 = submission_sha256(path)
    except Exception:  # the submission itself may be what cannot be read
        sha256 = ""
    result = SubmissionResult(
        student=student,
        status="failed",
        reason=reason,
        submission_sha256=sha256,
        source=str(path),
        run=session.run,
        reference=reference,
        internal_error=InternalError(
            stage=stage,
            error=f"{type(error).__name__}: {error}"[:2000],
            traceback=formatted_traceback(error)[-8000:],
        ),
        score=failed_score(session.rubric, reason, t, student),
    )
    folder = session.options.out / student
    folder.mkdir(parents=True, exist_ok=True)
    result.write(folder / "result.json")
    return result


def draw_report(session: Session, result: SubmissionResult) -> None:
    """The student's report, drawn as soon as the result is stored, while the others train, instead of
    one after another at the end of the batch (which then only re-reads the kept figures). It never raises.
    Nothing is drawn under ``--no-reports``."""
    if not session.options.reports:
        return
    try:
        render_student(session.options.out, result, session.translator)
    except Exception as error:  # the end of the batch draws it again, and fails loudly there
        session.progress.message(f"  {result.student}: report not drawn yet ({type(error).__name__}: {error})")

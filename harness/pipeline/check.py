"""``harness check NOTEBOOK_OR_MODULE``: what a student runs before submitting.

It runs the grading pipeline's own pieces on a tiny scale (the protocol's ``check`` profile:
1,000 training images, one epoch, short budgets), so that what it says is what grading will do:

1. reads the submission like grading does (factories, ``TRAINING_CONFIG``, or — for a notebook
   that builds its models at top level — the models found by running it, harness/ingest/discovery.py);
2. builds, compiles and trains every model briefly in the sandboxed worker, beside the
   reference CNN trained on the same images, and evaluates both with the harness's code;
3. scores the result with the rubric, then again under a few assumptions about the accuracies
   the real grading will measure, which gives a **predicted range per criterion** (an
   estimate: the check run is far too short to predict accuracy);
4. prints a checklist (models, shapes, training settings, modification categories,
   documentation sections, what is missing) and writes a local HTML preview of the feedback
   report.

Exit code 0 when the submission will be gradable (read, and every model builds and trains),
1 otherwise (the reasons are printed), 2 when the check itself could not run (no MNIST).

Without bubblewrap (macOS) the workers are plain processes with resource limits; the checklist
says so. It is the student's own code on the student's own machine.

>>> report = check(CheckOptions(path=Path("submissions/baseline_only.ipynb")))   # doctest: +SKIP
>>> report.exit_code                                                               # doctest: +SKIP
0
"""

from __future__ import annotations

import getpass
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.ingest import assign_ids, discover
from harness.pipeline.reference import complete_reference, reference_model
from harness.pipeline.session import REFERENCE_DIR, GradeOptions, Session, open_session
from harness.pipeline.submission import grade_submission, score_submission
from harness.report.checklist import CheckReport, CriterionEstimate, can_print, checklist
from harness.report.preview import write_preview
from harness.results import IngestResult, McNemarTest, ModelResult, ReferenceSummary, Significance, SubmissionResult
from harness.util.progress import Progress

CHECK_PROFILE = "check"
TARGET_PROFILE = "full"
# Assumed gains of every improved model over the reference in the real grading (percentage points),
# with whether the difference would be significant: the range of each criterion is the range of
# its points over these.
SCENARIOS = (
    ("worse", -0.5, "worse"),
    ("equal", 0.0, None),
    ("small", 0.3, "not_significant"),
    ("clear", 0.8, "beats"),
    ("large", 2.0, "beats"),
)


@dataclass
class CheckOptions:
    """Options of ``harness check``: the submission, where to write, the data, protocol and rubric, the language."""

    path: Path
    out: Path | None = None
    cache: Path | None = None  # stage cache (default OUT/.cache): an unchanged model is not retrained
    data: Path | None = None
    protocol: Path | None = None
    rubric: Path | None = None
    language: str = "fr"
    profile: str = CHECK_PROFILE
    execute: bool = False
    execute_options: object = None
    factory_map: dict[str, str] = field(default_factory=dict)
    discover_models: str = "auto"
    use_bubblewrap: bool | None = None
    log: object = print
    ascii: bool = False


def default_out() -> Path:
    """<tmp>/harness-check-<user>: kept between checks (its stage cache spares the reference's training)."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name (some containers)
        user = "user"
    return Path(tempfile.gettempdir()) / f"harness-check-{user}"


def check(options: CheckOptions) -> list[CheckReport]:
    """Check every submission under `options.path` (normally one); print the checklist of each."""
    started = time.monotonic()
    out = Path(options.out) if options.out else default_out()
    log = options.log
    paths, ignored = discover([options.path], extract_to=out / ".work" / "archives")
    for item in ignored:
        log(f"ignored {item.name}: {item.reason}")
    if not paths:
        raise FileNotFoundError(f"no notebook (.ipynb) or module (.py) to check in {options.path}")
    grade_options = GradeOptions(
        paths=[options.path],
        out=out,
        cache=options.cache,
        profile=options.profile,
        data=options.data,
        protocol=options.protocol,
        rubric=options.rubric,
        language=options.language,
        use_bubblewrap=options.use_bubblewrap,  # None: plain processes where bubblewrap is absent (one's own code)
        unsandboxed_because="harness check, on the student's own code",
        workers=1,  # every core to each worker; the reference (when not cached) trains alongside
        robustness=False,
        log=lambda message: None,
        progress=Progress(lambda message: None),
        factory_map={"*": dict(options.factory_map)} if options.factory_map else {},
        execute=options.execute,
        execute_options=options.execute_options,
        discover_models=options.discover_models,
    )
    session = open_session(grade_options)
    reports = []
    for student, path in assign_ids(paths).items():
        report = check_one(session, student, path, options, started)
        reports.append(report)
        for line in report.lines:
            log(line)
        started = time.monotonic()
    return reports


def _reference(session: Session) -> ReferenceSummary:
    model = complete_reference(session, reference_model(session))
    stored = ReferenceSummary.read(session.options.out / REFERENCE_DIR / "reference.json")
    return ReferenceSummary(model=model, trained_for=stored.trained_for)


def check_one(session: Session, student: str, path: Path, options: CheckOptions, started: float) -> CheckReport:
    """The grading pipeline (``grade_submission``) at the check profile, the reference trained alongside."""
    out = session.options.out
    with ThreadPoolExecutor(max_workers=1) as pool:
        reference = pool.submit(_reference, session)
        result = grade_submission(session, student, path, reference.result, overlap=True)
    ingest = IngestResult.read(out / student / "ingest.json")
    estimates, low, high = estimate(session, result, ingest)
    preview = write_preview(
        out, result, session.translator, session.profile.train_images, estimates, low, high, log=session.options.log
    )
    reasons = gradable_problems(result, ingest)
    report = CheckReport(
        student=student,
        exit_code=1 if reasons else 0,
        reasons=reasons,
        result=result,
        estimates=estimates,
        total_low=low,
        total_high=high,
        preview=preview,
        seconds=time.monotonic() - started,
        assumed_gains=(SCENARIOS[0][1], SCENARIOS[-1][1]),
    )
    report.lines = checklist(
        report,
        ingest,
        session.translator,
        session.profile,
        session.protocol,
        ascii_only=options.ascii or not can_print("✓✗"),
    )
    return report


def gradable_problems(result: SubmissionResult, ingest: IngestResult) -> list[str]:
    """Why grading would not grade this submission fully (empty: it will be gradable)."""
    problems = []
    if result.status == "invalid":
        problems.append(result.reason or ingest.reason or "the submission could not be read")
        return problems
    for model in result.models:
        if model.status != "ok":
            problems.append(f"{model.name}: {model.status} — {model.reason}")
    return problems


def _scenario_models(
    models: list[ModelResult], reference: ModelResult, gain_pp: float, verdict: str | None
) -> list[ModelResult]:
    """The models as if grading measured `gain_pp` for every improved one (their check-run order kept)."""
    improved = [m for m in models if m.role == "improved" and m.status == "ok"]
    order = sorted(improved, key=lambda m: m.test_accuracy or 0.0)
    base = reference.test_accuracy or 0.0
    changed = []
    for model in models:
        if model.status != "ok":
            changed.append(model)
            continue
        if model.role == "improved":
            accuracy = min(1.0, max(0.0, base + gain_pp / 100 + 1e-5 * order.index(model)))
        else:
            accuracy = base
        significance = None
        if verdict is not None and model.role == "improved":
            n = 10000
            b, c = (40, 40) if verdict == "not_significant" else ((20, 80) if verdict == "beats" else (80, 20))
            significance = Significance(
                mcnemar=McNemarTest(
                    against="reference",
                    n=n,
                    b=b,
                    c=c,
                    p_value=0.5 if verdict == "not_significant" else 1e-6,
                    gain=accuracy - base,
                    alpha=0.05,
                    significant=verdict != "not_significant",
                )
            )
        changed.append(model.model_copy(update={"test_accuracy": accuracy, "significance": significance}))
    return changed


def estimate(
    session: Session, result: SubmissionResult, ingest: IngestResult
) -> tuple[list[CriterionEstimate], float, float]:
    """Per criterion: the check run's points and the range over the accuracy scenarios (target profile)."""
    if result.score is None:
        return [], 0.0, 0.0
    check_points = {c.id: c for c in result.score.criteria}
    if result.status == "invalid" or result.reference is None:
        estimates = [
            CriterionEstimate(c.id, c.title, c.max_points, c.points, c.points, c.points) for c in result.score.criteria
        ]
        total = result.score.total
        return estimates, total, total
    reference = result.reference.model
    run = result.run.model_copy(update={"profile": TARGET_PROFILE})
    totals: list[float] = []
    per: dict[str, list[float]] = {c.id: [] for c in result.score.criteria}
    for _, gain, verdict in SCENARIOS:
        variant = result.model_copy(
            update={"models": _scenario_models(result.models, reference, gain, verdict), "run": run}
        )
        scored = score_submission(session.rubric, session.translator, variant, ingest, session.protocol).score
        totals.append(scored.total)
        for criterion in scored.criteria:
            per[criterion.id].append(criterion.points)
    estimates = [
        CriterionEstimate(
            cid,
            check_points[cid].title,
            check_points[cid].max_points,
            check_points[cid].points,
            min(values),
            max(values),
        )
        for cid, values in per.items()
    ]
    return estimates, min(totals), max(totals)

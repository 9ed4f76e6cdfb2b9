"""``harness check NOTEBOOK_OR_MODULE``: what a student runs before submitting.

It runs the grading pipeline's own pieces on a tiny scale (the protocol's ``check`` profile:
1,000 training images, one epoch, short budgets), so that what it says is what grading will do:

1. reads the submission like grading does (factories, ``TRAINING_CONFIG``, or — for a notebook
   that builds its models at top level — the models found by running it, harness/discover.py);
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

import hashlib
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from harness.results import (
    CriterionScore,
    McNemarTest,
    ModelResult,
    ReferenceSummary,
    Significance,
    SubmissionResult,
    TrainingRecord,
)

CHECK_PROFILE = "check"
TARGET_PROFILE = "full"
# Assumed gains of every improved model over the reference in the real grading (percentage points),
# with whether the difference would be significant: the range of each criterion is the range of
# its points over these.
SCENARIOS = (("worse", -0.5, "worse"), ("equal", 0.0, None), ("small", 0.3, "not_significant"),
             ("clear", 0.8, "beats"), ("large", 2.0, "beats"))


@dataclass
class CheckOptions:
    path: Path
    out: Path | None = None
    cache: Path | None = None        # stage cache (default OUT/.cache): an unchanged model is not retrained
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


@dataclass
class CriterionEstimate:
    id: str
    title: str
    max_points: float
    check_points: float
    low: float
    high: float

    @property
    def fixed(self) -> bool:
        return self.low == self.high


@dataclass
class CheckReport:
    student: str
    exit_code: int
    reasons: list[str]
    result: SubmissionResult | None
    estimates: list[CriterionEstimate]
    total_low: float = 0.0
    total_high: float = 0.0
    preview: Path | None = None
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)


def default_out() -> Path:
    """<tmp>/harness-check-<user>: kept between checks (its stage cache spares the reference's training)."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no user name (some containers)
        user = "user"
    return Path(tempfile.gettempdir()) / f"harness-check-{user}"


def check(options: CheckOptions) -> list[CheckReport]:
    """Check every submission under `options.path` (normally one); print the checklist of each."""
    from harness.pipeline.grade import GradeOptions, open_session
    from harness.ingest.read import assign_ids, discover
    from harness.util.progress import Progress

    started = time.monotonic()
    out = Path(options.out) if options.out else default_out()
    log = options.log
    paths, ignored = discover([options.path], extract_to=out / ".work" / "archives")
    for item in ignored:
        log(f"ignored {item.name}: {item.reason}")
    if not paths:
        raise FileNotFoundError(f"no notebook (.ipynb) or module (.py) to check in {options.path}")
    grade_options = GradeOptions(
        paths=[options.path], out=out, cache=options.cache, profile=options.profile, data=options.data,
        protocol=options.protocol,
        rubric=options.rubric, language=options.language, use_bubblewrap=options.use_bubblewrap,
        workers=1,  # every core to each worker; the reference (when not cached) trains alongside
        robustness=False, log=lambda message: None, progress=Progress(lambda message: None),
        factory_map={"*": dict(options.factory_map)} if options.factory_map else {},
        execute=options.execute, execute_options=options.execute_options, discover_models=options.discover_models)
    session = open_session(grade_options)
    reports = []
    for student, path in assign_ids(paths).items():
        report = check_one(session, student, path, options, started)
        reports.append(report)
        for line in report.lines:
            log(line)
        started = time.monotonic()
    return reports


def _reference(session) -> ModelResult:
    from harness.pipeline.grade import complete_reference, reference_model

    return complete_reference(session, reference_model(session))


def check_one(session, student: str, path: Path, options: CheckOptions, started: float) -> CheckReport:
    """The pipeline of grade_one at the check profile, the reference trained alongside."""
    from harness.pipeline.grade import (
        REFERENCE_DIR,
        _analyse,
        _factory_map_for,
        _status,
        _train_and_evaluate,
        discover_top_level,
        execute_submission,
        score_submission,
    )
    from harness.ingest.read import ingest_path, needs_discovery

    out = session.options.out
    folder = out / student
    folder.mkdir(parents=True, exist_ok=True)
    work = out / ".work" / hashlib.sha256(student.encode()).hexdigest()[:12]
    with ThreadPoolExecutor(max_workers=3) as pool:
        reference_future = pool.submit(_reference, session)
        ingest = ingest_path(path, student, factory_map=_factory_map_for(session.options, student))
        if needs_discovery(ingest) and session.options.discover_models != "never":
            ingest = discover_top_level(session, ingest, path, work / "discover")
        ingest.write(folder / "ingest.json")
        execution_future = pool.submit(execute_submission, session, path, work / "execute") \
            if options.execute else None
        factories = [(f.name, f.role) for f in ingest.factories]
        training_future = pool.submit(_train_and_evaluate, session, ingest.module_source, factories,
                                      f"{work.name}-check", folder / "models", student) \
            if ingest.status == "ok" else None
        reference = reference_future.result()
        trained = training_future.result() if training_future else None
        execution = execution_future.result() if execution_future else None
    reference_key = ReferenceSummary.read(out / REFERENCE_DIR / "reference.json").trained_for
    base = dict(student=student, submission_sha256=ingest.sha256, source=str(path),
                factories_found=[f.name for f in ingest.factories], factories_ignored=ingest.ignored_functions,
                dropped=ingest.dropped, ignored_files=ingest.ignored_files, run=session.run,
                reference=ReferenceSummary(model=reference, trained_for=reference_key), execution=execution,
                candidates=ingest.candidates, discovered_models=ingest.discovery.models if ingest.discovery else [])
    if trained is None:
        result = SubmissionResult(status="invalid", reason=ingest.reason, **base)
    else:
        models, worker = trained
        TrainingRecord(student=student, submission_sha256=ingest.sha256, seed=session.seed,
                       profile=session.profile.name, data_sha256=session.raw.content_sha256, models=models,
                       worker=worker, wall_seconds=time.monotonic() - started).write(folder / "training.json")
        status, reason = _status(ingest, models)
        models, summary = _analyse(session, ingest.module_source, factories, f"{work.name}-check", folder, models,
                                   reference, student)
        result = SubmissionResult(status=status, reason=reason, models=models, worker=worker, analysis=summary,
                                  **base)
    result = score_submission(session.rubric, session.translator, result, ingest, session.protocol)
    result.write(folder / "result.json")
    estimates, low, high = estimate(session, result, ingest)
    preview = _preview(out, result, session, estimates, low, high)
    reasons = gradable_problems(result, ingest)
    report = CheckReport(student=student, exit_code=1 if reasons else 0, reasons=reasons, result=result,
                         estimates=estimates, total_low=low, total_high=high, preview=preview,
                         seconds=time.monotonic() - started)
    report.lines = checklist(report, ingest, session, ascii_only=options.ascii or not _can_print("✓✗"))
    return report


# --------------------------------------------------------------------------- gradable?

def gradable_problems(result: SubmissionResult, ingest) -> list[str]:
    """Why grading would not grade this submission fully (empty: it will be gradable)."""
    problems = []
    if result.status == "invalid":
        problems.append(result.reason or ingest.reason or "the submission could not be read")
        return problems
    for model in result.models:
        if model.status != "ok":
            problems.append(f"{model.name}: {model.status} — {model.reason}")
    return problems


# --------------------------------------------------------------------------- estimates

def _scenario_models(models: list[ModelResult], reference: ModelResult, gain_pp: float, verdict: str | None
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
            significance = Significance(mcnemar=McNemarTest(
                against="reference", n=n, b=b, c=c, p_value=0.5 if verdict == "not_significant" else 1e-6,
                gain=accuracy - base, alpha=0.05, significant=verdict != "not_significant"))
        changed.append(model.model_copy(update={"test_accuracy": accuracy, "significance": significance}))
    return changed


def estimate(session, result: SubmissionResult, ingest) -> tuple[list[CriterionEstimate], float, float]:
    """Per criterion: the check run's points and the range over the accuracy scenarios (target profile)."""
    from harness.pipeline.grade import score_submission

    if result.score is None:
        return [], 0.0, 0.0
    check_points = {c.id: c for c in result.score.criteria}
    if result.status == "invalid" or result.reference is None:
        estimates = [CriterionEstimate(c.id, c.title, c.max_points, c.points, c.points, c.points)
                     for c in result.score.criteria]
        total = result.score.total
        return estimates, total, total
    reference = result.reference.model
    run = result.run.model_copy(update={"profile": TARGET_PROFILE})
    totals: list[float] = []
    per: dict[str, list[float]] = {c.id: [] for c in result.score.criteria}
    for _, gain, verdict in SCENARIOS:
        variant = result.model_copy(update={"models": _scenario_models(result.models, reference, gain, verdict),
                                            "run": run})
        scored = score_submission(session.rubric, session.translator, variant, ingest, session.protocol).score
        totals.append(scored.total)
        for criterion in scored.criteria:
            per[criterion.id].append(criterion.points)
    estimates = [CriterionEstimate(cid, check_points[cid].title, check_points[cid].max_points,
                                   check_points[cid].points, min(values), max(values))
                 for cid, values in per.items()]
    return estimates, min(totals), max(totals)


# --------------------------------------------------------------------------- preview

def _preview(out: Path, result: SubmissionResult, session, estimates, low: float, high: float) -> Path | None:
    from html import escape

    from harness.report.render import render_student

    # the error-analysis figures of one-epoch models say nothing and take most of the rendering time
    shown = result.model_copy(update={"models": [m.model_copy(update={"error_analysis": None, "robustness": None})
                                                 for m in result.models]})
    try:
        path = render_student(out, shown, session.translator)
    except Exception as error:  # the preview is a convenience; the checklist is the answer
        session.options.log(f"(the HTML preview could not be rendered: {type(error).__name__}: {error})")
        return None
    french = session.translator.language == "fr"
    rows = "".join(f"<tr><td>{escape(e.title)}</td><td class=\"num\">{_fmt_range(e.low, e.high)} / {e.max_points:g}</td></tr>"
                   for e in estimates)
    banner = (
        "<div class=\"card flag\" id=\"harness-check\"><p><strong>"
        + ("Aperçu de <code>harness check</code> — ce n'est pas la note." if french else
           "<code>harness check</code> preview — this is not the grade.")
        + "</strong> "
        + (f"Modèles entraînés une époque sur {session.profile.train_images:,} images : les précisions ci-dessous "
           "ne disent rien de celles de la correction. Fourchettes estimées de chaque critère :" if french else
           f"Models trained one epoch on {session.profile.train_images:,} images: the accuracies below say nothing "
           "of the real grading's. Estimated range of each criterion:")
        + f"</p><table>{rows}<tr><th>Total</th><th class=\"num\">{_fmt_range(low, high)} / "
        + f"{result.score.max_total:g}</th></tr></table></div>")
    html = path.read_text(encoding="utf-8")
    marker = "<main"
    at = html.find(marker)
    at = html.find(">", at) + 1 if at >= 0 else html.find("<body>") + len("<body>")
    path.write_text(html[:at] + banner + html[at:], encoding="utf-8")
    return path


def _fmt_range(low: float, high: float) -> str:
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


# --------------------------------------------------------------------------- the checklist

def _can_print(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _evidence(criterion: CriterionScore | None, kinds: set[str]) -> list[str]:
    if criterion is None:
        return []
    return [(f"{e.where}: " if e.where else "") + e.text for e in criterion.evidence if e.kind in kinds]


def checklist(report: CheckReport, ingest, session, ascii_only: bool = False) -> list[str]:
    """The checklist's lines, in the run's language (``chk_*`` in templates/i18n)."""
    t = session.translator
    ok, bad, warn = ("[ok]", "[!!]", "[ ?]") if ascii_only else ("✓", "✗", "!")
    result = report.result
    lines = [t("chk_title", student=report.student, source=result.source), ""]
    add = lines.append

    # 1. reading
    dropped = len(ingest.dropped)
    if ingest.main_file.endswith(".ipynb"):
        what = t("chk_notebook", name=ingest.main_file, version=ingest.notebook_format or "?",
                 code=len(ingest.code_cells), markdown=len(ingest.markdown))
    else:
        what = t("chk_module", name=ingest.main_file)
    if ingest.status == "invalid" and not ingest.code_cells:
        add(f"{bad} " + t("chk_unreadable", what=what, reason=ingest.reason))
    else:
        add(f"{ok} " + t("chk_read", what=what, dropped=dropped))
    for item in ingest.ignored_files:
        add(f"  {warn} " + t("chk_file_ignored", name=item.name, reason=item.reason))

    # 2. factories
    if ingest.factory_source == "discovered" and ingest.discovery:
        add(f"{ok} " + t("chk_discovered", n=len(ingest.factories)))
        for model in ingest.discovery.models:
            fitted = t("chk_fitted_in", n=model.fitted_cell) if model.fitted_cell else ""
            fit = ", ".join(f"{k}={v if not isinstance(v, list) else '+'.join(map(str, v))}" for k, v in model.fit.items())
            add("    " + t("chk_discovered_model", factory=model.factory, variable=model.variable or "?",
                            built=model.built_cell, fitted=fitted, fit=": " + fit if fit else ""))
            for note in model.notes:
                add(f"      {warn} {note}")
        for cell in ingest.discovery.cells:
            if cell.status != "ok":
                add(f"  {warn} " + t("chk_discovery_cell_failed", cell=cell.cell,
                                     error=f"{cell.error_name}: {cell.error_message}"))
    elif ingest.factories:
        names = ", ".join(f"{f.name} ({t('cell', n=f.cell)})" if f.cell else f.name for f in ingest.factories)
        mapped = t("chk_mapped", mapping=ingest.factory_map) if ingest.factory_map else ""
        add(f"{ok} " + t("chk_factories", n=len(ingest.factories), names=names, mapped=mapped))
        if not any(f.role == "baseline" for f in ingest.factories):
            add(f"  {warn} " + t("chk_no_baseline"))
        if not any(f.role == "improved" for f in ingest.factories):
            add(f"  {warn} " + t("chk_no_improved"))
    else:
        add(f"{bad} " + t("chk_no_model", reason=ingest.reason))
        if ingest.discovery is not None:
            add(f"  {warn} " + t("chk_discovery_failed", reason=ingest.discovery.reason or ingest.discovery.status))
    for item in ingest.ignored_functions:
        add(f"  {warn} {item.name}: {item.reason}")
    for item in ingest.candidates:
        add(f"  {warn} {item.name}(): {item.reason}")

    # 3. each model: build, shapes, settings, short training
    train_images = int(round(session.profile.train_images * (1 - session.protocol.training.validation_split)))
    for model in result.models:
        if model.status != "ok":
            add(f"{bad} " + t("chk_model_failed", name=model.name, status=model.status, reason=model.reason))
            continue
        spec = model.spec
        compiled = ""
        if spec is not None:
            who = t("chk_by_you") if spec.compiled_by == "student" else t("chk_by_harness")
            compiled = t("chk_compiled", who=who, optimizer=spec.optimizer or "?",
                         lr=f", lr {spec.learning_rate:g}" if spec.learning_rate else "", loss=spec.loss or "?")
        accuracy = t("chk_test_accuracy", acc=f"{100 * model.test_accuracy:.1f}", n=session.profile.test_images) \
            if model.test_accuracy is not None else ""
        add(f"{ok} " + t("chk_model_ok", name=model.name, params=f"{(model.params or 0):,}", compiled=compiled))
        add("    " + t("chk_trained", epochs=model.epochs_run, images=f"{train_images:,}",
                       seconds=f"{(model.train_seconds or 0):.1f}", accuracy=accuracy))
        settings = model.settings
        if settings is not None:
            shown = {k: v for k, v in (settings.declared or {}).items() if v not in ([], None, "")
                     and not (k == "augmentation" and settings.augmentation)}
            text = ", ".join(f"{k}={v}" for k, v in shown.items()) if shown else \
                t("chk_settings_default", epochs=session.protocol.training.epochs,
                  batch=session.protocol.training.batch_size)
            if settings.augmentation:
                text += t("chk_augmentation", what=settings.augmentation)
            add("    " + t("chk_settings", settings=text))
            for key in settings.ignored_keys:
                add(f"    {warn} " + t("chk_key_ignored", setting=key))
        if model.stopped_by_budget:
            add(f"    {warn} " + t("chk_budget"))
    reference = result.reference.model if result.reference else None
    if reference is not None and reference.test_accuracy is not None:
        add("  " + t("chk_reference", acc=f"{100 * reference.test_accuracy:.1f}", images=f"{train_images:,}"))

    # 4. modifications, documentation, what is missing
    criteria = {c.id: c for c in result.score.criteria} if result.score else {}
    modifications = criteria.get("modifications")
    if modifications is not None and result.models:
        add("")
        add(t("chk_modifications", reason=modifications.reason))
        for text in _evidence(modifications, {"found"})[:12]:
            add(f"  {ok} {text}")
    documentation = criteria.get("documentation")
    if documentation is not None:
        add("")
        add(t("chk_documentation", reason=documentation.reason))
        for text in _evidence(documentation, {"found"})[:10]:
            add(f"  {ok} {text}")
    missing = []
    varies = {e.id for e in report.estimates if not e.fixed}  # their evidence is about the check's own accuracies
    for criterion in result.score.criteria if result.score else []:
        if criterion.id not in varies:
            missing += [f"{criterion.title}: {text}" for text in _evidence(criterion, {"missing", "flag"})]
    if missing:
        add("")
        add(t("chk_missing"))
        for text in missing[:25]:
            add(f"  {warn} {text}")
        if len(missing) > 25:
            add("  " + t("chk_more", n=len(missing) - 25))

    # 5. --execute
    execution = result.execution
    if execution is not None:
        add("")
        ran = sum(1 for c in execution.cells if c.status == "ok")
        add(f"{ok if execution.status == 'ok' else bad} " + t(
            "chk_execute", ran=ran, total=len(execution.cells), status=execution.status,
            reason=f" — {execution.reason}" if execution.reason else "", seconds=f"{execution.seconds:.0f}"))
        for cell in execution.cells:
            if cell.status != "ok":
                add(f"    {warn} " + t("chk_execute_cell", cell=cell.cell, status=cell.status,
                                      error=f"{cell.error_name or ''}: {(cell.error_message or '')[:160]}"))
        for accuracy in execution.accuracies[:8]:
            add("    " + t("chk_printed", cell=accuracy.cell, text=accuracy.text))
        add(f"    {execution.data_note}")

    # 6. estimates
    add("")
    add(t("chk_estimate_title", loss=f"{abs(SCENARIOS[0][1]):g}", gain=f"{SCENARIOS[-1][1]:g}"))
    width = max((len(e.title) for e in report.estimates), default=10)
    for e in report.estimates:
        why = t("chk_fixed") if e.fixed else t("chk_varies")
        add(f"  {e.title:<{width}}  {_fmt_range(e.low, e.high):>9} / {e.max_points:g}   ({why})")
    if result.score is not None:
        add(f"  {t('chk_total'):<{width}}  {_fmt_range(report.total_low, report.total_high):>9} / "
            f"{result.score.max_total:g}")

    # 7. verdict
    add("")
    sandbox = result.worker.sandbox if result.worker else ""
    if "NO SANDBOX" in sandbox or sandbox.startswith("plain process"):
        add(f"{warn} " + t("chk_no_sandbox"))
    if report.preview is not None:
        add(t("chk_preview", path=report.preview))
    if report.reasons:
        add(f"{bad} " + t("chk_not_gradable", n=len(report.reasons)))
        for reason in report.reasons:
            add(f"    - {reason}")
    else:
        add(f"{ok} " + t("chk_gradable"))
    add(t("chk_seconds", seconds=f"{report.seconds:.0f}"))
    return lines

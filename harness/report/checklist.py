"""``harness check``'s answer to the student: the checklist printed in the terminal.

One function per part of the checklist (reading, factories, models, modifications and
documentation, --execute, estimates, verdict), each returning its lines in the run's language
(``chk_*`` in templates/i18n).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.config.protocol import Profile, Protocol
from harness.results import CriterionScore, IngestResult, SubmissionResult
from harness.util.i18n import Translator


@dataclass
class CriterionEstimate:
    """A criterion's predicted range in the real grading: its check-run points, and low and high over the scenarios."""

    id: str
    title: str
    max_points: float
    check_points: float
    low: float
    high: float

    @property
    def fixed(self) -> bool:
        """True when the scenarios do not move the criterion's points (low equals high)."""
        return self.low == self.high


@dataclass
class CheckReport:
    """What ``harness check`` found: the exit code and why, the result, the estimates, the printed checklist."""

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
    assumed_gains: tuple[float, float] = (0.0, 0.0)  # the scenarios' worst and best gains (points)


def fmt_range(low: float, high: float, t: Translator) -> str:
    """`low`–`high` in the language's number format (``1,5–2,5``), or one number when they are equal."""
    return t.points(low) if low == high else f"{t.points(low)}–{t.points(high)}"


def can_print(text: str) -> bool:
    """Whether the terminal's encoding can show `text` (else the checklist uses ASCII marks)."""
    try:
        text.encode(sys.stdout.encoding or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _cell_error(t: Translator, cell) -> str:
    """A cell that did not run cleanly: its exception's name and its message, in `t`'s language."""
    return ": ".join(filter(None, (cell.error_name, t.stored(cell.error_message))))


def _evidence(criterion: CriterionScore | None, kinds: set[str]) -> list[str]:
    if criterion is None:
        return []
    return [(f"{e.where}: " if e.where else "") + e.text for e in criterion.evidence if e.kind in kinds]


@dataclass
class _Context:
    """What every part of the checklist reads."""

    report: CheckReport
    ingest: IngestResult
    t: Translator
    profile: Profile
    protocol: Protocol
    ok: str
    bad: str
    warn: str

    @property
    def result(self) -> SubmissionResult:
        return self.report.result


def _reading(c: _Context) -> list[str]:
    """The submission as read: notebook or module, dropped lines, ignored files."""
    t, ok, bad, warn, ingest = c.t, c.ok, c.bad, c.warn, c.ingest
    lines: list[str] = []
    add = lines.append
    dropped = len(ingest.dropped)
    if ingest.main_file.endswith(".ipynb"):
        what = t(
            "chk_notebook",
            name=ingest.main_file,
            version=ingest.notebook_format or "?",
            code=len(ingest.code_cells),
            markdown=len(ingest.markdown),
        )
    else:
        what = t("chk_module", name=ingest.main_file)
    if ingest.status == "invalid" and not ingest.code_cells:
        add(f"{bad} " + t("chk_unreadable", what=what, reason=ingest.reason))
    else:
        add(f"{ok} " + t("chk_read", what=what, dropped=dropped))
    for item in ingest.ignored_files:
        add(f"  {warn} " + t("chk_file_ignored", name=item.name, reason=item.reason))
    return lines


def _factories(c: _Context) -> list[str]:
    """The factories found (named, mapped or discovered) and the functions left aside."""
    t, ok, bad, warn, ingest = c.t, c.ok, c.bad, c.warn, c.ingest
    lines: list[str] = []
    add = lines.append
    if ingest.factory_source == "discovered" and ingest.discovery:
        add(f"{ok} " + t("chk_discovered", n=len(ingest.factories)))
        for model in ingest.discovery.models:
            fitted = t("chk_fitted_in", n=model.fitted_cell) if model.fitted_cell else ""
            fit = ", ".join(
                f"{k}={v if not isinstance(v, list) else '+'.join(map(str, v))}" for k, v in model.fit.items()
            )
            add(
                "    "
                + t(
                    "chk_discovered_model",
                    factory=model.factory,
                    variable=model.variable or "?",
                    built=model.built_cell,
                    fitted=fitted,
                    fit=": " + fit if fit else "",
                )
            )
            for note in model.notes:
                add(f"      {warn} {t.stored(note)}")
        for cell in ingest.discovery.cells:
            if cell.status != "ok":
                add(
                    f"  {warn} "
                    + t(
                        "chk_discovery_cell_failed",
                        cell=cell.cell,
                        error=_cell_error(t, cell),
                    )
                )
    elif ingest.factories:
        names = ", ".join(f"{f.name} ({t('cell', n=f.cell)})" if f.cell else f.name for f in ingest.factories)
        mapped = t("chk_mapped", mapping=ingest.factory_map) if ingest.factory_map else ""
        add(f"{ok} " + t("chk_factories", n=len(ingest.factories), names=names, mapped=mapped))
        if not any(f.role == "baseline" for f in ingest.factories):
            add(f"  {warn} " + t("chk_no_baseline"))
        if not any(f.role == "improved" for f in ingest.factories):
            add(f"  {warn} " + t("chk_no_improved"))
    else:
        add(f"{bad} " + t("chk_no_model", reason=t.stored(ingest.reason)))
        if ingest.discovery is not None:
            add(
                f"  {warn} "
                + t("chk_discovery_failed", reason=t.stored(ingest.discovery.reason) or ingest.discovery.status)
            )
    for item in ingest.ignored_functions:
        add(f"  {warn} {item.name}: {item.reason}")
    for item in ingest.candidates:
        add(f"  {warn} {item.name}(): {item.reason}")
    return lines


def _models(c: _Context) -> list[str]:
    """Each model: built, compiled, trained briefly, its settings; the reference beside them."""
    t, ok, bad, warn, result = c.t, c.ok, c.bad, c.warn, c.result
    lines: list[str] = []
    add = lines.append
    train_images = int(round(c.profile.train_images * (1 - c.protocol.training.validation_split)))
    for model in result.models:
        if model.status != "ok":
            add(f"{bad} " + t("chk_model_failed", name=model.name, status=model.status, reason=model.reason))
            continue
        spec = model.spec
        compiled = ""
        if spec is not None:
            who = t("chk_by_you") if spec.compiled_by == "student" else t("chk_by_harness")
            compiled = t(
                "chk_compiled",
                who=who,
                optimizer=spec.optimizer or "?",
                lr=f", lr {t.localise(f'{spec.learning_rate:g}')}" if spec.learning_rate else "",
                loss=spec.loss or "?",
            )
        accuracy = (
            t("chk_test_accuracy", acc=t.number(100 * model.test_accuracy, 1), n=t.integer(c.profile.test_images))
            if model.test_accuracy is not None
            else ""
        )
        add(f"{ok} " + t("chk_model_ok", name=model.name, params=t.integer(model.params or 0), compiled=compiled))
        add(
            "    "
            + t(
                "chk_trained",
                epochs=model.epochs_run,
                images=t.integer(train_images),
                seconds=t.number(model.train_seconds or 0, 1),
                accuracy=accuracy,
            )
        )
        settings = model.settings
        if settings is not None:
            shown = {
                k: v
                for k, v in (settings.declared or {}).items()
                if v not in ([], None, "") and not (k == "augmentation" and settings.augmentation)
            }
            text = (
                ", ".join(f"{k}={v}" for k, v in shown.items())
                if shown
                else t("chk_settings_default", epochs=c.protocol.training.epochs, batch=c.protocol.training.batch_size)
            )
            if settings.augmentation:
                text += t("chk_augmentation", what=settings.augmentation)
            add("    " + t("chk_settings", settings=text))
            for key in settings.ignored_keys:
                add(f"    {warn} " + t("chk_key_ignored", setting=key))
            for note in settings.augmentation_notes:
                add(f"    {warn} " + t("chk_map_not_reproduced", name=note["name"], why=t(f"map_unfit_{note['why']}")))
        if model.stopped_by_budget:
            add(f"    {warn} " + t("chk_budget"))
    reference = result.reference.model if result.reference else None
    if reference is not None and reference.test_accuracy is not None:
        add("  " + t("chk_reference", acc=t.number(100 * reference.test_accuracy, 1), images=t.integer(train_images)))
    return lines


def _modifications_and_documentation(c: _Context) -> list[str]:
    """What the rubric found (modifications, report sections) and what is missing."""
    t, ok, warn, result, report = c.t, c.ok, c.warn, c.result, c.report
    lines: list[str] = []
    add = lines.append
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
    return lines


def _execution(c: _Context) -> list[str]:
    """--execute: the notebook run top to bottom, cell failures, printed accuracies."""
    t, ok, bad, warn, result = c.t, c.ok, c.bad, c.warn, c.result
    lines: list[str] = []
    add = lines.append
    execution = result.execution
    if execution is not None:
        add("")
        ran = sum(1 for c in execution.cells if c.status == "ok")
        add(
            f"{ok if execution.status == 'ok' else bad} "
            + t(
                "chk_execute",
                ran=ran,
                total=len(execution.cells),
                status=execution.status,
                reason=f" — {execution.reason}" if execution.reason else "",
                seconds=f"{execution.seconds:.0f}",
            )
        )
        for cell in execution.cells:
            if cell.status != "ok":
                add(
                    f"    {warn} "
                    + t(
                        "chk_execute_cell",
                        cell=cell.cell,
                        status=cell.status,
                        error=_cell_error(t, cell)[:200],
                    )
                )
        for accuracy in execution.accuracies[:8]:
            add("    " + t("chk_printed", cell=accuracy.cell, text=accuracy.text))
        add(f"    {execution.data_note}")
    return lines


def _estimates(c: _Context) -> list[str]:
    """The predicted range of each criterion and of the total."""
    t, result, report = c.t, c.result, c.report
    lines: list[str] = []
    add = lines.append
    add("")
    add(t("chk_estimate_title", loss=abs(report.assumed_gains[0]), gain=float(report.assumed_gains[1])))
    width = max((len(e.title) for e in report.estimates), default=10)
    for e in report.estimates:
        why = t("chk_fixed") if e.fixed else t("chk_varies")
        add(f"  {e.title:<{width}}  {fmt_range(e.low, e.high, t):>9} / {t.points(e.max_points)}   ({why})")
    if result.score is not None:
        add(
            f"  {t('chk_total'):<{width}}  {fmt_range(report.total_low, report.total_high, t):>9} / "
            f"{t.points(result.score.max_total)}"
        )
    add(_fidelity(c.t, c.profile))
    return lines


def _fidelity(t: Translator, profile: Profile) -> str:
    """How far this profile's verdicts are from the full protocol's, as measured (docs/fidelity.md)."""
    if profile.verdict_agreement is None:
        return t("chk_fidelity_unmeasured", profile=profile.name)
    rho = t.number(profile.accuracy_rho) if profile.accuracy_rho is not None else "—"
    return t("chk_fidelity", profile=profile.name, agreement=t.number(100 * profile.verdict_agreement, 0), rho=rho)


def _verdict(c: _Context) -> list[str]:
    """Sandbox warning, preview path, gradable or not, time taken."""
    t, ok, bad, warn, result, report = c.t, c.ok, c.bad, c.warn, c.result, c.report
    lines: list[str] = []
    add = lines.append
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


def checklist(
    report: CheckReport,
    ingest: IngestResult,
    t: Translator,
    profile: Profile,
    protocol: Protocol,
    ascii_only: bool = False,
) -> list[str]:
    """The checklist's lines, in the run's language (``chk_*`` in templates/i18n)."""
    marks = ("[ok]", "[!!]", "[ ?]") if ascii_only else ("✓", "✗", "!")
    context = _Context(report, ingest, t, profile, protocol, *marks)
    lines = [t("chk_title", student=report.student, source=report.result.source), ""]
    for part in (_reading, _factories, _models, _modifications_and_documentation, _execution, _estimates, _verdict):
        lines += part(context)
    return lines

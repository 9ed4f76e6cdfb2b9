"""``harness check``'s HTML preview: the student's report with a banner of predicted ranges on top."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from harness.report.checklist import CriterionEstimate
from harness.report.render import render_student
from harness.results import SubmissionResult
from harness.util.i18n import Translator


def _range(low: float, high: float, t: Translator) -> str:
    """`low`–`high` in the report's number format, or one number when they are equal."""
    return t.points(low) if low == high else f"{t.points(low)}–{t.points(high)}"


def write_preview(
    out: Path,
    result: SubmissionResult,
    t: Translator,
    train_images: int,
    estimates: list[CriterionEstimate],
    low: float,
    high: float,
    log: Callable[[str], None] = print,
) -> Path | None:
    """The student's report rendered in `out`, a banner of the predicted ranges on top (None if it failed)."""
    # the error-analysis figures of one-epoch models say nothing and take most of the rendering time
    shown = result.model_copy(
        update={"models": [m.model_copy(update={"error_analysis": None, "robustness": None}) for m in result.models]}
    )
    ranges = {e.id: _range(e.low, e.high, t) for e in estimates}
    try:
        path = render_student(out, shown, t, ranges=ranges)
    except Exception as error:  # the preview is a convenience; the checklist is the answer
        log(f"(the HTML preview could not be rendered: {type(error).__name__}: {error})")
        return None
    # ranges only, never one number: a single total would read as the grade
    banner = (
        f'<div class="card flag" id="harness-check"><p><strong>{t("preview_not_grade")}</strong> '
        f"{escape(t('preview_help', images=t.integer(train_images)))}</p>"
        f"<p>{escape(t('preview_total', range=_range(low, high, t), max=t.points(result.score.max_total)))}</p></div>"
    )
    html = path.read_text(encoding="utf-8")
    marker = "<main"
    at = html.find(marker)
    at = html.find(">", at) + 1 if at >= 0 else html.find("<body>") + len("<body>")
    path.write_text(html[:at] + banner + html[at:], encoding="utf-8")
    return path

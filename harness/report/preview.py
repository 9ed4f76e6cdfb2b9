"""``harness check``'s HTML preview: the student's report with a banner of predicted ranges on top."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from harness.report.checklist import CriterionEstimate, fmt_range
from harness.report.render import render_student
from harness.results import SubmissionResult
from harness.util.i18n import Translator


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
    try:
        path = render_student(out, shown, t)
    except Exception as error:  # the preview is a convenience; the checklist is the answer
        log(f"(the HTML preview could not be rendered: {type(error).__name__}: {error})")
        return None
    french = t.language == "fr"
    rows = "".join(
        f'<tr><td>{escape(e.title)}</td><td class="num">{fmt_range(e.low, e.high)} / {e.max_points:g}</td></tr>'
        for e in estimates
    )
    banner = (
        '<div class="card flag" id="harness-check"><p><strong>'
        + (
            "Aperçu de <code>harness check</code> — ce n'est pas la note."
            if french
            else "<code>harness check</code> preview — this is not the grade."
        )
        + "</strong> "
        + (
            f"Modèles entraînés une époque sur {train_images:,} images : les précisions ci-dessous "
            "ne disent rien de celles de la correction. Fourchettes estimées de chaque critère :"
            if french
            else f"Models trained one epoch on {train_images:,} images: the accuracies below say nothing "
            "of the real grading's. Estimated range of each criterion:"
        )
        + f'</p><table>{rows}<tr><th>Total</th><th class="num">{fmt_range(low, high)} / '
        + f"{result.score.max_total:g}</th></tr></table></div>"
    )
    html = path.read_text(encoding="utf-8")
    marker = "<main"
    at = html.find(marker)
    at = html.find(">", at) + 1 if at >= 0 else html.find("<body>") + len("<body>")
    path.write_text(html[:at] + banner + html[at:], encoding="utf-8")
    return path

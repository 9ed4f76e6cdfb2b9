"""Report stage: per-student ``report.html``, the class ``index.html``, ``grades.csv`` and ``class.json``.

Everything is rendered from stored results (``result.json``), so ``harness report OUT``
re-renders a class without retraining. Pages are self-contained: CSS inline, figures as
base64 PNG data URIs, no script or font from the network.

>>> render_all(Path("out"), results, reference, Translator("en"))  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import csv
import math
import threading
from collections import Counter
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from harness.analysis.analyse import GALLERY_FILE, SUITE_DIR, read_gallery, read_suite_examples, verdict
from harness.report import figure_cache, figures
from harness.report.exports import OVERRIDES_TEMPLATE, read_roster, write_lms_exports, write_overrides_template
from harness.report.feedback import (
    OVERRIDE_COLUMNS,
    class_statistics,
    isolation_key,
    review_flags,
    to_progress,
    to_review,
    unsandboxed,
)
from harness.report.figures import (  # noqa: F401  (re-exported: the figure functions used to live here)
    comparison_bars,
    figure_to_data_uri,
    learning_curves,
    model_label,
    score_histogram,
)
from harness.report.localize import localized
from harness.resources import bundled
from harness.results import ModelResult, SubmissionResult
from harness.similarity.records import SIMILARITY_PAGE, read_summary
from harness.util.atomic import write_json_atomic
from harness.util.i18n import Translator

# pyplot keeps global state: one report draws at a time (grading threads draw while others train)
_DRAWING = threading.RLock()
_SHARED: dict[str, dict] = {}  # figures every report of a run shows, by digest of their inputs


MIN_CHART_SCALE = 0.6  # below this a chart's 10-point text falls under ~7 px: unreadable


def png_width(src: str | None) -> int:
    """The pixel width of a PNG data URI (its IHDR header), 0 when it is not one."""
    prefix = "data:image/png;base64,"
    if not src or not src.startswith(prefix):
        return 0
    header = base64.b64decode(src[len(prefix) : len(prefix) + 32])
    return int.from_bytes(header[16:20], "big") if header[12:16] == b"IHDR" else 0


def _environment(t: Translator) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(bundled("templates"))),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        t=t,
        model_label=lambda m: model_label(m, t),
        isolation_key=isolation_key,
        # our own stylesheet, trusted: escaped, its quotes and ">" would break every rule that uses them
        css=Markup(bundled("templates", "style.css").read_text(encoding="utf-8")),
    )
    env.filters["why"] = t.stored
    env.filters["min_width"] = lambda src: math.ceil(MIN_CHART_SCALE * png_width(src))
    env.filters["say"] = lambda flag: t.render(flag.message) if flag.message else flag.reason
    env.filters["pct"] = t.percent
    env.filters["bin_text"] = lambda b: t("stat_bin", low=t.points(b.low), high=t.points(b.high), n=b.n)
    env.filters["num"] = t.number
    env.filters["int"] = t.integer
    env.filters["secs"] = lambda v: "—" if v is None else f"{t.number(v, 1)}\u00a0s"
    env.filters["pts"] = t.points
    env.filters["pts_gain"] = lambda v: "—" if v is None else ("+" if v >= 0 else "−") + t.number(abs(100 * v))
    env.filters["pvalue"] = lambda v: (
        "—" if v is None else ("< " + t.number(1e-4, 4) if v < 1e-4 else t.number(v, 3 if v >= 0.01 else 4))
    )
    return env


def suite_figures(out: Path, t: Translator) -> dict:
    """The perturbation examples (the assignment's two tests, the whole suite): the same in every
    report of a run, so drawn once per process and language, from ``OUT/_suite/examples.npz``."""
    path = out / SUITE_DIR / "examples.npz"
    key = figure_cache.digest([path, t.language])
    with _DRAWING:
        if key not in _SHARED:
            examples = read_suite_examples(out / SUITE_DIR)
            _SHARED[key] = {
                "assignment_examples": figures.assignment_examples(examples, t),
                "suite_examples": figures.suite_examples(examples, t),
            }
        return _SHARED[key]


def analysis_figures(out: Path, result: SubmissionResult, models: list[ModelResult], t: Translator) -> dict:
    """The error-analysis and robustness figures of one report (data URIs; None where nothing to draw).

    Images come from the output folder, never from the data set: the galleries' test images from
    ``OUT/<student>/gallery.npz``, the perturbation examples from ``OUT/_suite/examples.npz``.
    """
    analysed = [m for m in result.models if m.error_analysis is not None]
    if not analysed:  # nothing of the student's was evaluated: no analysis section
        return {
            "per_digit": None,
            "confusion": {},
            "reliability": {},
            "gallery": {},
            "assignment_examples": None,
            "suite_examples": None,
            "robustness": None,
            "severity": None,
        }
    images = read_gallery(out / result.student / GALLERY_FILE)
    return {
        "per_digit": figures.per_digit_error_bars(models, t),
        "confusion": {m.name: figures.confusion_heatmap(m, t) for m in analysed},
        "reliability": {m.name: figures.reliability_diagram(m, t) for m in analysed},
        "gallery": {m.name: figures.misclassified_gallery(m, images, t) for m in analysed},
        **suite_figures(out, t),
        "robustness": figures.robustness_bars(models, t),
        "severity": figures.severity_curves(models, t),
    }


def _draw(out: Path, result: SubmissionResult, models: list[ModelResult], t: Translator) -> dict:
    with _DRAWING:
        return {
            "curves": {m.name: learning_curves(m, t) for m in result.models},
            "comparison": comparison_bars(models, t),
            "analysis": analysis_figures(out, result, models, t),
        }


def own_names(result: SubmissionResult) -> dict[str, str]:
    """Harness model name -> the student's own name for it (function, call or notebook variable)."""
    names = {m.factory: m.variable for m in result.discovered_models if m.variable}
    return {**names, **result.factory_names}


def render_student(
    out: Path,
    result: SubmissionResult,
    t: Translator,
    env: Environment | None = None,
    ranges: dict[str, str] | None = None,
) -> Path:
    """``OUT/<student>/report.html``. Safe from several threads at once (drawing is serialised); grading
    renders each report as its submission finishes, so ``render_all`` only re-reads the kept figures.

    ``ranges`` (criterion id -> predicted range) makes it ``harness check``'s preview: the ranges stand
    where the points would, and no grade or total is shown."""
    env = env or _environment(t)
    result = localized(result, t)
    models = ([result.reference.model] if result.reference else []) + result.models
    # The figures depend on the models, not on the score: kept between renders (harness/report/figure_cache.py).
    drawn = figure_cache.cached(
        out / result.student / figure_cache.FILE,
        [models, t.language, out / result.student / GALLERY_FILE, out / SUITE_DIR / "examples.npz"],
        lambda: _draw(out, result, models, t),
    )
    html = env.get_template("report.html.j2").render(
        r=result,
        models=models,
        curves=drawn["curves"],
        comparison=drawn["comparison"],
        analysis=drawn["analysis"],
        lang=t.language,
        progress=to_progress(result),
        own=own_names(result),
        ranges=ranges,
        verdict_text=(
            verdict(result.models, result.reference.model if result.reference else None, t).verdict_text
            if result.analysis
            else None
        ),
    )
    path = out / result.student / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _criterion_ids(results: list[SubmissionResult]) -> list[str]:
    for result in results:
        if result.score:
            return [c.id for c in result.score.criteria]
    return []


def write_grades_csv(out: Path, results: list[SubmissionResult]) -> Path:
    """grades.csv: student, status, total, one column per rubric criterion id (final points, the
    instructor's overrides included), then total_auto and <criterion>_auto (the rubric's automatic
    points) and instructor_comments."""
    ids = _criterion_ids(results)
    path = out / "grades.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["student", "status", "total", *ids, "total_auto", *[f"{i}_auto" for i in ids], "instructor_comments"]
        )
        for result in results:
            criteria = {c.id: c for c in result.score.criteria} if result.score else {}
            auto = {i: (c.auto_points if c.auto_points is not None else c.points) for i, c in criteria.items()}
            total_auto = (
                result.score.total_auto if result.score and result.score.total_auto is not None else sum(auto.values())
            )
            comments = " | ".join(f"{i}: {c.instructor_comment}" for i, c in criteria.items() if c.instructor_comment)
            writer.writerow(
                [
                    result.student,
                    result.status,
                    result.score.total if result.score else 0,
                    *[criteria[i].points if i in criteria else 0 for i in ids],
                    total_auto,
                    *[auto.get(i, 0) for i in ids],
                    comments,
                ]
            )
    return path


def class_summary(results: list[SubmissionResult], reference: ModelResult | None) -> dict:
    """The ``class.json`` document: the reference's test accuracy; per student, status, points, verdict, flags."""
    return {
        "reference_test_accuracy": reference.test_accuracy if reference else None,
        "students": [
            {
                "student": r.student,
                "status": r.status,
                "reason": r.reason,
                "total": r.score.total if r.score else None,
                "criteria": {c.id: c.points for c in r.score.criteria} if r.score else {},
                "best_test_accuracy": (r.best_improved().test_accuracy if r.best_improved() else None),
                "verdict": r.analysis.verdict if r.analysis else None,
                "integrity_flags": [
                    {"model": m.name, "rule": f.rule, "reason": f.reason} for m in r.models for f in m.integrity
                ],
                "report": f"{r.student}/report.html",
            }
            for r in results
        ],
    }


def model_ranking(results: list[SubmissionResult], reference: ModelResult | None) -> list[tuple]:
    """(student result or None for the reference, model), best test accuracy first: every evaluated
    improved model, and the reference once (every student's baseline is not a contender)."""
    entries = [(r, m) for r in results for m in r.models if m.role == "improved" and m.test_accuracy is not None]
    if reference is not None and reference.test_accuracy is not None:
        entries.append((None, reference))
    return sorted(entries, key=lambda pair: -pair[1].test_accuracy)


def unsandboxed_runs(results: list[SubmissionResult]) -> list[tuple[str, int]]:
    """(why, number of students) for every reason students' code ran without a sandbox: the dashboard's
    warning at the top, so that an unsandboxed grading is never mistaken for a sandboxed one."""
    reasons = [r.run.sandbox.removeprefix("none: ") or "bubblewrap not available" for r in results if unsandboxed(r)]
    return sorted(Counter(reasons).items())


def render_dashboard(
    out: Path,
    results: list[SubmissionResult],
    reference: ModelResult | None,
    t: Translator,
    env: Environment | None = None,
) -> Path:
    """The class dashboard, ``OUT/index.html``, from the stored results."""
    env = env or _environment(t)
    scored = [r for r in results if r.score]
    html = env.get_template("index.html.j2").render(
        results=results,
        reference=reference,
        criteria=scored[0].score.criteria if scored else [],
        statistics=class_statistics(results),
        histogram=score_histogram(results, t),
        leaderboard=model_ranking(results, reference)[:50],
        reviews=to_review(results, t),
        override_columns=OVERRIDE_COLUMNS,
        flags={r.student: review_flags(r, t) for r in results},
        statuses=sorted({r.status for r in results}),
        unsandboxed=unsandboxed_runs(results),
        run=results[0].run if results else None,
        lang=t.language,
        similarity=read_summary(out),
        similarity_page=SIMILARITY_PAGE,
        overrides_template=OVERRIDES_TEMPLATE if (out / OVERRIDES_TEMPLATE).exists() else None,
        out=out,
    )
    path = out / "index.html"
    path.write_text(html, encoding="utf-8")
    return path


def render_all(
    out: Path,
    results: list[SubmissionResult],
    reference: ModelResult | None,
    t: Translator,
    roster: Path | None = None,
    students: bool = True,
) -> list[str]:
    """grades.csv, the Moodle and Canvas exports, class.json, every student's report (unless `students` is
    False: ``harness grade --no-reports``) and the dashboard.

    The gradebook comes first and a page that cannot be drawn costs only itself: the problems (and
    the students a roster does not name) are returned, one line each, never raised.
    """
    results = [localized(r, t) for r in results]
    write_grades_csv(out, results)
    problems = write_lms_exports(out, results, t, roster=read_roster(roster))
    write_overrides_template(out, results)
    write_json_atomic(out / "class.json", class_summary(results, reference))
    env = _environment(t)
    for result in results if students else []:
        try:
            render_student(out, result, t, env)
        except Exception as error:
            problems.append(f"{result.student}: report not drawn ({type(error).__name__}: {error})")
    try:
        render_dashboard(out, results, reference, t, env)
    except Exception as error:
        problems.append(f"dashboard not drawn ({type(error).__name__}: {error})")
    return problems

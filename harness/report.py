"""Report stage: per-student ``report.html``, the class ``index.html``, ``grades.csv`` and ``class.json``.

Everything is rendered from stored results (``result.json``), so ``harness report OUT``
re-renders a class without retraining. Pages are self-contained: CSS inline, figures as
base64 PNG data URIs, no script or font from the network.

>>> render_all(Path("out"), results, reference, Translator("en"))  # doctest: +SKIP
"""
from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from jinja2 import Environment, FileSystemLoader, select_autoescape  # noqa: E402

from harness.config import bundled  # noqa: E402
from harness.i18n import Translator  # noqa: E402
from harness.results import ModelResult, SubmissionResult, write_json_atomic  # noqa: E402


def figure_to_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def model_label(model: ModelResult, t: Translator) -> str:
    if model.role == "reference":
        return t("label_reference")
    if model.role == "baseline":
        return t("label_student_baseline")
    suffix = model.name.removeprefix("create_improved_model").strip("_")
    return t("label_improved", n=suffix) if suffix else t("label_improved", n="").strip()


def learning_curves(model: ModelResult, t: Translator) -> str | None:
    """The assignment's step-4 figure: accuracy and loss per epoch, train and validation."""
    history = model.history
    if not history.get("loss"):
        return None
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    epochs = range(1, len(history["loss"]) + 1)
    for axis, metric, title in ((axes[0], "accuracy", t("fig_accuracy")), (axes[1], "loss", t("fig_loss"))):
        for key, label in ((metric, t("fig_train")), (f"val_{metric}", t("fig_validation"))):
            if history.get(key):
                axis.plot(list(epochs), history[key], marker="o", label=label)
        axis.set_title(f"{model_label(model, t)} — {title}")
        axis.set_xlabel(t("fig_epoch"))
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure_to_data_uri(figure)


def comparison_bars(models: list[ModelResult], t: Translator) -> str | None:
    """The assignment's step-7 figure: test accuracy and training time per model."""
    trained = [m for m in models if m.test_accuracy is not None]
    if not trained:
        return None
    labels = [model_label(m, t) for m in trained]
    accuracies = [100 * m.test_accuracy for m in trained]
    colors = ["#888888" if m.role == "reference" else "#3568a8" for m in trained]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    axes[0].bar(labels, accuracies, color=colors)
    axes[0].set_ylim(max(0.0, min(accuracies) - 2), 100)
    axes[0].set_title(t("fig_compare_accuracy"))
    axes[0].set_ylabel("%")
    for index, value in enumerate(accuracies):
        axes[0].text(index, value, f"{value:.2f}", ha="center", va="bottom", fontsize=8)
    axes[1].bar(labels, [m.train_seconds or 0 for m in trained], color=colors)
    axes[1].set_title(t("fig_compare_time"))
    axes[1].set_ylabel("s")
    for axis in axes:
        axis.tick_params(axis="x", rotation=30)
        axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure_to_data_uri(figure)


def score_histogram(results: list[SubmissionResult], t: Translator) -> str | None:
    totals = [r.score.total for r in results if r.score]
    if not totals:
        return None
    figure, axis = plt.subplots(figsize=(6, 2.8))
    maximum = results[0].score.max_total if results[0].score else 20
    axis.hist(totals, bins=[x / 2 for x in range(0, int(2 * maximum) + 2)], color="#3568a8")
    axis.set_xlabel(t("total"))
    axis.set_ylabel(t("students"))
    axis.set_title(t("fig_distribution"))
    figure.tight_layout()
    return figure_to_data_uri(figure)


def _environment(t: Translator) -> Environment:
    env = Environment(loader=FileSystemLoader(str(bundled("templates"))),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.globals.update(t=t, model_label=lambda m: model_label(m, t),
                       css=bundled("templates", "style.css").read_text(encoding="utf-8"))
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.2f} %"
    env.filters["secs"] = lambda v: "—" if v is None else f"{v:.1f} s"
    env.filters["pts"] = lambda v: "—" if v is None else f"{v:g}"
    return env


def render_student(out: Path, result: SubmissionResult, t: Translator, env: Environment | None = None) -> Path:
    env = env or _environment(t)
    models = ([result.reference.model] if result.reference else []) + result.models
    figures = {m.name: learning_curves(m, t) for m in result.models}
    html = env.get_template("report.html.j2").render(
        r=result, models=models, curves=figures, comparison=comparison_bars(models, t),
        lang=t.language)
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
    """grades.csv: student, status, total, then one column per rubric criterion id."""
    ids = _criterion_ids(results)
    path = out / "grades.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "status", "total", *ids])
        for result in results:
            points = {c.id: c.points for c in result.score.criteria} if result.score else {}
            writer.writerow([result.student, result.status, result.score.total if result.score else 0,
                             *[points.get(i, 0) for i in ids]])
    return path


def class_summary(results: list[SubmissionResult], reference: ModelResult | None) -> dict:
    return {
        "reference_test_accuracy": reference.test_accuracy if reference else None,
        "students": [{
            "student": r.student, "status": r.status, "reason": r.reason,
            "total": r.score.total if r.score else None,
            "criteria": {c.id: c.points for c in r.score.criteria} if r.score else {},
            "best_test_accuracy": (r.best_improved().test_accuracy if r.best_improved() else None),
            "report": f"{r.student}/report.html",
        } for r in results],
    }


def render_all(out: Path, results: list[SubmissionResult], reference: ModelResult | None, t: Translator) -> None:
    env = _environment(t)
    for result in results:
        render_student(out, result, t, env)
    ids = _criterion_ids(results)
    averages = {}
    scored = [r for r in results if r.score]
    for index, cid in enumerate(ids):
        values = [r.score.criteria[index].points for r in scored if len(r.score.criteria) > index]
        averages[cid] = sum(values) / len(values) if values else 0.0
    leaderboard = sorted(((r, m) for r in results for m in r.models if m.test_accuracy is not None),
                         key=lambda pair: -pair[1].test_accuracy)
    html = env.get_template("index.html.j2").render(
        results=results, reference=reference, criteria=scored[0].score.criteria if scored else [],
        averages=averages, histogram=score_histogram(results, t), leaderboard=leaderboard[:50],
        needs_look=[r for r in results if r.status != "ok"], run=results[0].run if results else None,
        lang=t.language)
    (out / "index.html").write_text(html, encoding="utf-8")
    write_grades_csv(out, results)
    write_json_atomic(out / "class.json", class_summary(results, reference))

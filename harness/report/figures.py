"""Report figures: matplotlib (Agg) drawings of stored results, returned as base64 PNG data URIs.

Every function takes stored results (``ModelResult`` with its analysis, arrays read from the
output folder) and a translator, and returns a ``data:image/png;base64,...`` string, or None when
there is nothing to draw. Nothing here trains, predicts or reads the data set.

>>> uri = comparison_bars(models, Translator("en"))   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's own dependency)

from harness.results import ModelResult, SubmissionResult  # noqa: E402
from harness.util.i18n import Translator  # noqa: E402

REFERENCE_COLOR = "#888888"
MODEL_COLORS = ["#3568a8", "#d9822b", "#2e8b57", "#b03a48", "#7b5ea7", "#1f9bb4", "#c7a500", "#5c5c8a"]
DPI = 90


def figure_to_data_uri(figure) -> str:
    """The figure as a PNG data URI; the figure is closed. Stored as a 256-colour palette PNG: charts
    and digits look the same, at about 40 % of the bytes (a five-model report holds ~20 figures)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    image = Image.open(buffer).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    packed = io.BytesIO()
    image.save(packed, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(packed.getvalue()).decode("ascii")


def model_label(model: ModelResult, t: Translator) -> str:
    """A model's name in the figures, in the report's language: the reference, the baseline, or improved model n."""
    if model.role == "reference":
        return t("label_reference")
    if model.role == "baseline":
        return t("label_student_baseline")
    suffix = model.name.removeprefix("create_improved_model").strip("_")
    return t("label_improved", n=suffix) if suffix else t("label_improved", n="").strip()


def _colors(models: Sequence[ModelResult]) -> list[str]:
    colors, k = [], 0
    for model in models:
        if model.role == "reference":
            colors.append(REFERENCE_COLOR)
        else:
            colors.append(MODEL_COLORS[k % len(MODEL_COLORS)])
            k += 1
    return colors


# --------------------------------------------------------------------------- training (steps 4 and 7)


def learning_curves(model: ModelResult, t: Translator) -> str | None:
    """The assignment's step-4 figure: accuracy and loss per epoch, train and validation (None under
    two epochs: a single dot per curve is no curve)."""
    history = model.history
    if len(history.get("loss", [])) < 2:
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
    colors = [REFERENCE_COLOR if m.role == "reference" else "#3568a8" for m in trained]
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
    """The class's distribution of totals (half-point bins), or None when no submission has a score."""
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


# --------------------------------------------------------------------------- error analysis (step 5)


def confusion_heatmap(model: ModelResult, t: Translator) -> str | None:
    """Row-normalised confusion matrix as colours (diagonal left out of the colour scale so errors
    show), with the counts written in each cell."""
    analysis = model.error_analysis
    if analysis is None:
        return None
    counts = np.asarray(analysis.confusion)
    normalized = np.array([[np.nan if v is None else v for v in row] for row in analysis.confusion_normalized], float)
    shown = normalized.copy()
    np.fill_diagonal(shown, np.nan)
    top = np.nanmax(shown) if np.isfinite(shown).any() else 1.0
    figure, axis = plt.subplots(figsize=(4.6, 4.0))
    image = axis.imshow(np.nan_to_num(shown, nan=0.0), cmap="Reds", vmin=0, vmax=max(top, 1e-6))
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            if counts[i, j]:
                axis.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="#1b5e20" if i == j else ("white" if shown[i, j] > 0.6 * top else "black"),
                    fontweight="bold" if i == j else "normal",
                )
    axis.set_xticks(range(10))
    axis.set_yticks(range(10))
    axis.set_xlabel(t("fig_predicted"))
    axis.set_ylabel(t("fig_true"))
    axis.set_title(f"{model_label(model, t)} — {t('fig_confusion')}", fontsize=9)
    colorbar = figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    colorbar.set_label(t("fig_error_share"), fontsize=8)
    figure.tight_layout()
    return figure_to_data_uri(figure)


def per_digit_error_bars(models: Sequence[ModelResult], t: Translator) -> str | None:
    """The assignment's step-5 bar chart (error rate per digit), one bar per model and digit."""
    analysed = [m for m in models if m.error_analysis is not None]
    if not analysed:
        return None
    figure, axis = plt.subplots(figsize=(10, 3.4))
    width = 0.8 / len(analysed)
    for k, (model, color) in enumerate(zip(analysed, _colors(analysed))):
        rates = [100 * (v or 0.0) for v in model.error_analysis.per_digit_error]
        axis.bar(
            np.arange(10) + (k - (len(analysed) - 1) / 2) * width,
            rates,
            width,
            color=color,
            label=model_label(model, t),
        )
    axis.set_xticks(range(10))
    axis.set_xlabel(t("fig_digit"))
    axis.set_ylabel(t("fig_error_rate"))
    axis.set_title(t("fig_per_digit_error"))
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, ncol=min(4, len(analysed)))
    figure.tight_layout()
    return figure_to_data_uri(figure)


def misclassified_gallery(model: ModelResult, images: dict[int, np.ndarray], t: Translator) -> str | None:
    """Two rows: the first misclassified test images (the assignment's [:10]) and the errors the model
    was most sure about, each titled with its true and predicted digit."""
    analysis = model.error_analysis
    if analysis is None or not images:
        return None
    rows = [(t("fig_first_errors"), analysis.first_errors), (t("fig_confident_errors"), analysis.confident_errors)]
    rows = [(title, [i for i in items if i.index in images]) for title, items in rows]
    rows = [(title, items) for title, items in rows if items]
    if not rows:
        return None
    columns = max(len(items) for _, items in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(1.15 * columns, 1.55 * len(rows)), squeeze=False)
    for r, (title, items) in enumerate(rows):
        for c in range(columns):
            axis = axes[r][c]
            axis.axis("off")
            if c >= len(items):
                continue
            item = items[c]
            axis.imshow(images[item.index], cmap="gray", vmin=0, vmax=255)
            axis.set_title(
                t(
                    "fig_true_predicted",
                    true=item.true,
                    predicted=item.predicted,
                    confidence=f"{100 * item.confidence:.0f}",
                ),
                fontsize=7,
            )
        axes[r][0].text(
            -0.15, 0.5, title, transform=axes[r][0].transAxes, rotation=90, ha="right", va="center", fontsize=8
        )
    figure.suptitle(f"{t('fig_gallery')} — {model_label(model, t)}", fontsize=9)
    figure.tight_layout()
    return figure_to_data_uri(figure)


def reliability_diagram(model: ModelResult, t: Translator) -> str | None:
    """Accuracy against confidence per bin, the diagonal being perfect calibration; bar widths are the
    bins, the bin's share of images is written above it."""
    calibration = model.error_analysis.calibration if model.error_analysis else None
    if calibration is None:
        return None
    figure, axis = plt.subplots(figsize=(4.0, 4.0))
    total = sum(b.count for b in calibration.bins) or 1
    for b in calibration.bins:
        if not b.count:
            continue
        axis.bar(b.low, b.accuracy, width=b.high - b.low, align="edge", color="#3568a8", edgecolor="white", alpha=0.85)
        axis.plot([b.low, b.high], [b.confidence, b.confidence], color="#b3261e", linewidth=1)
        if b.count / total >= 0.01:
            axis.text(
                (b.low + b.high) / 2,
                min(1.0, b.accuracy) + 0.01,
                f"{100 * b.count / total:.0f}%",
                ha="center",
                fontsize=6,
            )
    axis.plot([0, 1], [0, 1], linestyle="--", color="#555555", linewidth=1)
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1.08)
    axis.set_xlabel(t("fig_confidence"))
    axis.set_ylabel(t("fig_bin_accuracy"))
    axis.set_title(f"{model_label(model, t)} — ECE {100 * calibration.ece:.2f} %", fontsize=9)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure_to_data_uri(figure)


# --------------------------------------------------------------------------- robustness (step 6)


def _short_name(name: str) -> str:
    return name.split("/", 1)[-1]


def assignment_examples(
    examples: dict | None, t: Translator, entries: Sequence[str] = ("assignment/noise", "assignment/rotation")
) -> str | None:
    """The assignment's step-6 figure: original, noisy and rotated test images (the harness's sets)."""
    if not examples or any(e not in examples["entries"] for e in entries):
        return None
    rows = [
        (t("fig_original"), examples["clean"]),
        (t("fig_noisy"), examples["entries"][entries[0]]),
        (t("fig_rotated"), examples["entries"][entries[1]]),
    ]
    columns = len(examples["clean"])
    figure, axes = plt.subplots(3, columns, figsize=(1.5 * columns, 4.6), squeeze=False)
    for r, (title, images) in enumerate(rows):
        for c in range(columns):
            axes[r][c].imshow(images[c], cmap="gray", vmin=0, vmax=255)
            axes[r][c].axis("off")
        axes[r][columns // 2].set_title(title, fontsize=9)
    figure.tight_layout()
    return figure_to_data_uri(figure)


def suite_examples(examples: dict | None, t: Translator, group_prefix: str = "mnist_c/", rows: int = 2) -> str | None:
    """One row per test image: the clean digit, then the same digit under every MNIST-C corruption."""
    if not examples:
        return None
    names = [n for n in examples["entries"] if n.startswith(group_prefix)]
    if not names:
        return None
    rows = min(rows, len(examples["clean"]))
    columns = len(names) + 1
    figure, axes = plt.subplots(rows, columns, figsize=(0.95 * columns, 1.15 * rows + 0.3), squeeze=False)
    for r in range(rows):
        for c in range(columns):
            image = examples["clean"][r] if c == 0 else examples["entries"][names[c - 1]][r]
            axes[r][c].imshow(image, cmap="gray", vmin=0, vmax=255)
            axes[r][c].axis("off")
            if r == 0:
                axes[r][c].set_title(
                    t("fig_clean") if c == 0 else _short_name(names[c - 1]).replace("_", " "), fontsize=6.5
                )
    figure.tight_layout()
    return figure_to_data_uri(figure)


def robustness_bars(models: Sequence[ModelResult], t: Translator) -> str | None:
    """Accuracy on the clean test set, the assignment's two tests and every MNIST-C corruption, one
    horizontal bar per model (the assignment's step-6 comparison, on the whole suite)."""
    measured = [m for m in models if m.robustness is not None]
    if not measured:
        return None
    first = measured[0].robustness
    names = [e.name for e in first.entries if e.group in ("assignment", "mnist_c")]
    labels = [t("fig_clean")] + [
        t("fig_noise_01")
        if n == "assignment/noise"
        else t("fig_rotation_15")
        if n == "assignment/rotation"
        else _short_name(n).replace("_", " ")
        for n in names
    ]
    height = 0.8 / len(measured)
    figure, axis = plt.subplots(figsize=(8.5, 0.32 * len(labels) * max(1.0, len(measured) / 2.5) + 1.2))
    for k, (model, color) in enumerate(zip(measured, _colors(measured))):
        by_name = {e.name: e.accuracy for e in model.robustness.entries}
        values = [model.robustness.clean_accuracy] + [by_name.get(n, np.nan) for n in names]
        axis.barh(
            np.arange(len(labels)) + (k - (len(measured) - 1) / 2) * height,
            [100 * v for v in values],
            height,
            color=color,
            label=model_label(model, t),
        )
    axis.set_yticks(range(len(labels)))
    axis.set_yticklabels(labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    axis.set_xlabel(t("fig_accuracy_pct"))
    axis.set_title(t("fig_robustness"))
    axis.grid(axis="x", alpha=0.3)
    axis.legend(
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.045 * 18 / len(labels) - 0.02),
        ncol=min(3, len(measured)),
    )
    figure.tight_layout()
    return figure_to_data_uri(figure)


def severity_curves(models: Sequence[ModelResult], t: Translator) -> str | None:
    """Accuracy against severity for each sweep family (noise sigma, rotation angle, shift, blur);
    the reference dashed."""
    measured = [m for m in models if m.robustness is not None and m.robustness.curves]
    if not measured:
        return None
    families = [c.family for c in measured[0].robustness.curves]
    figure, axes = plt.subplots(1, len(families), figsize=(3.0 * len(families), 3.0), squeeze=False)
    for model, color in zip(measured, _colors(measured)):
        curves = {c.family: c for c in model.robustness.curves}
        for axis, family in zip(axes[0], families):
            curve = curves.get(family)
            if curve is None:
                continue
            axis.plot(
                curve.severities,
                [100 * a for a in curve.accuracies],
                marker="o",
                markersize=3,
                color=color,
                linestyle="--" if model.role == "reference" else "-",
                label=model_label(model, t),
            )
    for axis, family in zip(axes[0], families):
        axis.set_title(
            t(f"fig_family_{family}") if t(f"fig_family_{family}") != f"fig_family_{family}" else family, fontsize=9
        )
        axis.set_ylim(0, 100)
        axis.set_xlabel(t("fig_severity"))
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(t("fig_accuracy_pct"))
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    return figure_to_data_uri(figure)

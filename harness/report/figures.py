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


def image_grid(
    rows: list[tuple[str | None, list[tuple[np.ndarray, str | None]]]],
    *,
    title: str | None = None,
    caption_lines: int = 0,
    caption_size: float = 7,
    digit_inches: float = 0.85,
) -> str:
    """Rows of 28×28 digits, each row with an optional label at its left and each digit with an optional
    caption above it, drawn as one image on one axes: a grid of small axes, one per digit, was the
    slowest figure of a report to lay out and save (docs/benchmarks.md, "Footprint")."""
    pixel = digit_inches / 28  # inches per image pixel
    above = int(np.ceil(caption_lines * caption_size * 1.3 / 72 / pixel)) if caption_lines else 0
    gap = 4
    cell_w, cell_h = 28 + gap, 28 + above + gap
    columns = max(len(items) for _, items in rows)
    canvas = np.full((len(rows) * cell_h, columns * cell_w), 255, np.uint8)  # white between the digits
    figure = plt.figure(figsize=(canvas.shape[1] * pixel, canvas.shape[0] * pixel))
    axis = figure.add_axes((0, 0, 1, 1))
    for r, (label, items) in enumerate(rows):
        top = r * cell_h + above
        for c, (image, caption) in enumerate(items):
            left = c * cell_w + gap // 2
            canvas[top : top + 28, left : left + 28] = image
            if caption:
                axis.text(left + 14, top - 1, caption, ha="center", va="bottom", fontsize=caption_size, linespacing=1.1)
        if label:
            axis.text(-1, top + 14, label, rotation=90, ha="right", va="center", fontsize=8)
    axis.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axis.axis("off")
    if title:
        axis.set_title(title, fontsize=9)
    return figure_to_data_uri(figure)


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
    cells = [
        (
            title,
            [
                (
                    images[item.index],
                    t(
                        "fig_true_predicted",
                        true=item.true,
                        predicted=item.predicted,
                        confidence=f"{100 * item.confidence:.0f}",
                    ),
                )
                for item in items
            ],
        )
        for title, items in rows
        if items
    ]
    if not cells:
        return None
    return image_grid(cells, title=f"{t('fig_gallery')} — {model_label(model, t)}", caption_lines=2)


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
    middle = len(examples["clean"]) // 2  # each row's title stands above its middle digit
    grid = [
        (None, [(image, title if c == middle else None) for c, image in enumerate(images)]) for title, images in rows
    ]
    return image_grid(grid, caption_lines=1, caption_size=9, digit_inches=1.2)


def suite_examples(examples: dict | None, t: Translator, group_prefix: str = "mnist_c/", rows: int = 2) -> str | None:
    """One row per test image: the clean digit, then the same digit under every MNIST-C corruption."""
    if not examples:
        return None
    names = [n for n in examples["entries"] if n.startswith(group_prefix)]
    if not names:
        return None
    captions = [t("fig_clean")] + [_short_name(n).replace("_", " ") for n in names]
    grid = []
    for r in range(min(rows, len(examples["clean"]))):
        digits = [examples["clean"][r], *(examples["entries"][n][r] for n in names)]
        grid.append((None, [(image, captions[c] if r == 0 else None) for c, image in enumerate(digits)]))
    return image_grid(grid, caption_lines=1, caption_size=6.5, digit_inches=0.75)


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

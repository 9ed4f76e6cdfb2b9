"""Model fingerprints and error overlap: two submissions with the same model, even when the code differs.

Every model was retrained by the harness under one seed, so two submissions with the same architecture
and training settings have the same **design** fingerprint, and usually the very same predictions. The
handout's own model (the reference CNN's architecture) is every student's baseline: never evidence; a
design shared by a large share of the class is a common choice, not a copy.

For models that differ, the errors they make on the same test images are compared. Any two MNIST models
share more errors than independence predicts (some digits are hard for every model), so the overlap of
a pair is measured against the class's own: ``excess`` is the pair's ratio of shared errors to what
independence predicts, divided by the median of that ratio over every pair of models in the class, with a
binomial test against that usual overlap.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
from scipy import stats

from harness.config.similarity import ModelSettings
from harness.results import ModelResult
from harness.similarity.records import ModelMatch, ModelPrint

_BLOCK = 2048  # rows of the error matrix multiplied at once: memory stays flat for thousands of models


def _sha(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def architecture(model: ModelResult) -> dict:
    """What the model is: its layers and their settings, the optimizer, learning rate and loss."""
    spec = model.spec
    if spec is None:
        return {}
    rate = None if spec.learning_rate is None else float(f"{spec.learning_rate:.4g}")
    layers = [[layer.class_name, layer.config] for layer in spec.layers if layer.class_name != "InputLayer"]
    return {"layers": layers, "optimizer": spec.optimizer, "learning_rate": rate, "loss": spec.loss}


def architecture_hash(model: ModelResult) -> str:
    """sha256 of the model's architecture: equal for the handout's model and every unchanged copy of it."""
    return _sha(architecture(model))


def design(model: ModelResult) -> dict:
    """The architecture with how it is trained: declared settings, epochs, batch size, callbacks, augmentation."""
    settings = model.settings.model_dump(mode="json", exclude={"ignored_keys"}) if model.settings else {}
    return {**architecture(model), "settings": settings}


def summary(model: ModelResult) -> str:
    """The layers in a few words, for the page: ``Conv2D(32) → MaxPooling2D → Dense(10)``."""
    if model.spec is None:
        return ""
    parts = []
    for layer in model.spec.layers:
        size = layer.config.get("filters") or layer.config.get("units") or layer.config.get("rate")
        parts.append(f"{layer.class_name}({size})" if size is not None else layer.class_name)
    return " → ".join(parts)


def predictions_digest(probabilities: np.ndarray) -> str:
    """sha256 of the predicted digits and the probabilities rounded to 3 decimals: the same trained model."""
    digest = hashlib.sha256(np.asarray(probabilities).argmax(axis=1).astype(np.uint8).tobytes())
    digest.update(np.round(np.asarray(probabilities, dtype=np.float64), 3).tobytes())
    return digest.hexdigest()


def model_print(
    model: ModelResult, label: str, probabilities: np.ndarray | None, labels: np.ndarray | None, handout: str | None
) -> ModelPrint:
    """One model's fingerprints; its errors when its predictions and the test labels are at hand."""
    arch = architecture_hash(model)
    found = ModelPrint(
        name=model.name,
        label=label,
        architecture=arch,
        design=_sha(design(model)),
        summary=summary(model),
        handout=arch == handout,
        test_accuracy=model.test_accuracy,
    )
    if probabilities is None:
        return found
    update: dict = {"predictions_sha256": predictions_digest(probabilities)}
    if labels is not None and len(labels) >= len(probabilities):
        wrong = np.asarray(probabilities).argmax(axis=1) != np.asarray(labels)[: len(probabilities)]
        update.update(n=int(len(probabilities)), errors=[int(i) for i in np.flatnonzero(wrong)])
    return found.model_copy(update=update)


# --------------------------------------------------------------------------- matches between two submissions


def identical(a: ModelPrint, b: ModelPrint, design_count: dict[str, int], common: int) -> ModelMatch | None:
    """Two models that are the same: the same predictions, or the same design when it is not a common one."""
    if a.handout or b.handout:
        return None
    if a.predictions_sha256 is not None and a.predictions_sha256 == b.predictions_sha256:
        return ModelMatch(a=a.name, b=b.name, kind="same_predictions", design_count=design_count.get(a.design, 0))
    if a.design == b.design and design_count.get(a.design, 0) < common:
        return ModelMatch(a=a.name, b=b.name, kind="same_design", design_count=design_count[a.design])
    return None


def _error_matrix(models: list[ModelPrint], n: int) -> np.ndarray:
    matrix = np.zeros((len(models), n), dtype=np.float32)
    for row, model in enumerate(models):
        matrix[row, model.errors] = 1.0
    return matrix


def _overlaps(models: list[ModelPrint], owners: list[str], n: int):
    """(i, j, shared errors) of every pair of models of two different submissions, i < j."""
    matrix = _error_matrix(models, n)
    owner = np.array(owners)
    for start in range(0, len(models), _BLOCK):
        shared = matrix[start : start + _BLOCK] @ matrix.T
        rows, cols = np.nonzero(np.ones_like(shared, dtype=bool))
        rows += start
        keep = (rows < cols) & (owner[rows] != owner[cols])
        yield rows[keep], cols[keep], shared[rows[keep] - start, cols[keep]]


def error_overlaps(prints: list[tuple[str, ModelPrint]], settings: ModelSettings) -> list[tuple[str, str, ModelMatch]]:
    """Pairs of models of two submissions whose shared test errors are beyond the class's usual overlap:
    (owner a, owner b, the match). Models are compared only on the same test images."""
    found = []
    groups: dict[int, list[tuple[str, ModelPrint]]] = {}
    for owner, model in prints:
        if not model.handout and model.n and len(model.errors) >= settings.min_errors:
            groups.setdefault(model.n, []).append((owner, model))
    for n, group in groups.items():
        found += _group_overlaps(group, n, settings)
    return found


def _group_overlaps(group, n: int, settings: ModelSettings) -> list[tuple[str, str, ModelMatch]]:
    owners, models = [o for o, _ in group], [m for _, m in group]
    errors = np.array([len(m.errors) for m in models], dtype=np.float64)
    parts = list(_overlaps(models, owners, n))
    if not parts:
        return []
    rows, cols, shared = (np.concatenate(p) for p in zip(*parts))
    digests = {d: k for k, d in enumerate({m.predictions_sha256 for m in models})}
    digest = np.array([digests[m.predictions_sha256] for m in models])
    same = digest[rows] == digest[cols]
    expected = errors[rows] * errors[cols] / n
    ratio = shared / expected
    usual = float(np.median(ratio[~same])) if (~same).any() else 1.0
    excess = ratio / max(usual, 1e-9)
    candidates = np.flatnonzero((excess >= settings.min_excess) & ~same)
    small = np.minimum(errors[rows[candidates]], errors[cols[candidates]])
    large = np.maximum(errors[rows[candidates]], errors[cols[candidates]])
    p_class = stats.binom.sf(shared[candidates] - 1, small, np.minimum(1.0, usual * large / n))
    found = []
    for index, p_value in zip(candidates[p_class < settings.alpha], p_class[p_class < settings.alpha]):
        i, j, s = int(rows[index]), int(cols[index]), int(shared[index])
        match = ModelMatch(
            a=models[i].name,
            b=models[j].name,
            kind="error_overlap",
            shared_errors=s,
            errors_a=int(errors[i]),
            errors_b=int(errors[j]),
            expected_independent=round(float(expected[index]), 2),
            ratio_independent=round(float(ratio[index]), 2),
            p_independent=float(stats.hypergeom.sf(s - 1, n, int(errors[i]), int(errors[j]))),
            excess=round(float(excess[index]), 2),
            p_class=float(p_value),
        )
        found.append((owners[i], owners[j], match))
    return found

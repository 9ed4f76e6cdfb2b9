"""A student's ``tf.data`` augmentation, reproduced: the functions a training pipeline maps.

Students who augment in a ``tf.data`` pipeline (``ds.map(augmenter)`` before or after ``.batch``) do
not put the augmentation in the model, so the harness, which trains on its own batches, would
drop it. ``TRAINING_CONFIG[name]['augmentation']`` may therefore be ``{'map': function, 'batched':
False}`` (or a list of them, in the pipeline's order); ingest writes it from the student's pipeline.

The function is the student's, written for the student's data, and it now sees the harness's:
images as float32 in [0, 1] shaped (28, 28, 1), one-hot labels. So each map is tried first on a few
training images and kept only if it is an augmentation that fits them: labels untouched, shape kept,
pixels still on the same scale, and a random result (a fixed transformation is preprocessing, which
the harness does itself: a ``/ 255`` or a ``tf.cast`` meant for the student's uint8 images). What is
not kept is recorded with why (``augmentation_notes``); the model trains on the harness's own batches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

TRIAL_IMAGES = 8
# why a map is not reproduced: not defined where the harness trains, fails on the harness's images, changes
# the labels, the images' shape, their pixels' scale, or is the same transformation every time (preprocessing)
UNFIT = ("undefined", "fails", "labels", "shape", "scale", "fixed")
# pixels after the map, on the harness's [0, 1] scale: a map meant for 0–255 images (``/ 255``) or
# for [-1, 1] leaves them far outside
SCALE = (-0.5, 1.5)
MIN_PEAK = 0.25


def dataset_maps(augmentation: Any) -> list[dict] | None:
    """The pipeline maps an ``augmentation`` setting names, or None when it is not a map setting."""
    entries = augmentation if isinstance(augmentation, (list, tuple)) else [augmentation]
    if not entries or not all(isinstance(e, dict) and "map" in e for e in entries):
        return None
    return list(entries)


def checked_maps(entries: list[dict], x: np.ndarray, y: np.ndarray) -> tuple[list[dict], list[dict]]:
    """The maps that augment the harness's images (each tried on a few of them), and for the others why
    not: ``{"name", "why", "detail"}``, ``why`` one of :data:`UNFIT` (the grader words it)."""
    kept, notes = [], []
    for entry in entries:
        name = map_name(entry)
        why, detail = _unfit(entry, x[:TRIAL_IMAGES], y[:TRIAL_IMAGES])
        if why is None:
            kept.append({**entry, "name": name})
        else:
            notes.append({"name": name, "why": why, "detail": detail})
    return kept, notes


def _unfit(entry: dict, x: np.ndarray, y: np.ndarray) -> tuple[str | None, str]:
    """Why a map cannot augment the harness's images (a code of :data:`UNFIT`, a detail), or (None, "")."""
    function, batched = entry.get("map"), bool(entry.get("batched"))
    if not callable(function):
        return "undefined", ""
    try:
        (image, label), (again, _) = (_applied(function, batched, x, y) for _ in range(2))
    except Exception as error:  # the student's code, on images it was not written for
        return "fails", f"{type(error).__name__}: {str(error)[:120]}"
    if label.shape != y.shape or not np.array_equal(label, y):
        return "labels", ""
    if image.shape != x.shape:
        return "shape", f"{x.shape[1:]} -> {image.shape[1:]}"
    if not np.all(np.isfinite(image)) or image.min() < SCALE[0] or image.max() > SCALE[1] or image.max() < MIN_PEAK:
        return "scale", f"{image.min():.3g}..{image.max():.3g}"
    if np.array_equal(image, again):
        return "fixed", ""
    return None, ""


def _applied(function, batched: bool, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The map run eagerly on the trial images, one by one or as one batch, as the pipeline would."""
    if batched:
        image, label = function(tf.constant(x), tf.constant(y))
        return np.asarray(image, dtype="float32"), np.asarray(label)
    pairs = [function(tf.constant(xi), tf.constant(yi)) for xi, yi in zip(x, y, strict=True)]
    return (
        np.stack([np.asarray(p[0], dtype="float32") for p in pairs]),
        np.stack([np.asarray(p[1]) for p in pairs]),
    )


def mapped_dataset(x: np.ndarray, y: np.ndarray, maps: list[dict], batch_size: int, seed: int) -> tf.data.Dataset:
    """The harness's shuffled batches with the student's maps where the pipeline had them. The maps run
    one element at a time, in order (no parallel calls): a random op then draws the same numbers on
    every machine."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    for entry in (e for e in maps if not e.get("batched")):
        dataset = dataset.map(_cast(entry["map"]))
    dataset = dataset.batch(batch_size)
    for entry in (e for e in maps if e.get("batched")):
        dataset = dataset.map(_cast(entry["map"]))
    return dataset.prefetch(1)


def _cast(function):
    """The map with float32 images out, whatever dtype the student's ops return."""

    def mapped(image, label):
        image, label = function(image, label)
        return tf.cast(image, tf.float32), label

    return mapped


def map_name(entry: dict) -> str:
    """The name a map setting gives its function, else the function's own (a lambda: ``<lambda>``)."""
    return str(entry.get("name") or getattr(entry.get("map"), "__name__", "map"))


def describe(maps: list[dict]) -> str:
    """``map(translation_aleatoire)``: the maps, for the result and the report."""
    return " + ".join(f"map({map_name(e)})" for e in maps)

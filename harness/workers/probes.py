"""Invariance probe: the test set again, with changes that cannot matter to a model that learned digits.

The MNIST test set and its labels are public, so a factory can build a model that carries them (a
table keyed on the pixels, a memory of embedded test images, a layer that recognises a test
image by its position in a batch). Such a model answers the stored label on the exact test images
and collapses when they change in ways no digit reader notices. The probe (``unnoticeable``)
makes three such changes at once, to every test image:

* every pixel moved by +1/255 or -1/255 at random (clipped to [0, 1]): breaks exact hashes;
* the digit moved by one pixel, towards a side whose border row or column is blank, so that
  nothing is cut (an image with no blank border is not moved): breaks perceptual hashes;
* the images shuffled and predicted in batches of another size (the predictions are put back in
  test order): breaks whatever depends on a position in a batch.

One pass over a subset of the test set drawn from the run's seed (``probe_indices``, chosen by the
grading process: 2,000 images, a few percent of the evaluation); the model cannot tell which images
will be probed, and a lookup collapses on any subset. A genuine model's
accuracy moves by a few tenths of a point at most (``reference/analysis.toml``,
``[integrity.invariance]``). The changes are drawn from the job's seed: every model, the reference
included, sees the same images.
"""

from __future__ import annotations

import numpy as np

PROBES = ("unnoticeable",)
PROBE_BATCH = 251  # prime, and not PREDICT_BATCH: no known batch comes back, whatever the test set's size
# (axis, shift) on (images, rows, columns, channels): down, up, right, left
_SHIFTS = ((1, 1), (1, -1), (2, 1), (2, -1))


def pixel_jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each pixel ±1/255 (images scaled to [0, 1])."""
    step = rng.choice(np.array([-1.0, 1.0], dtype=x.dtype), size=x.shape) / np.asarray(255.0, dtype=x.dtype)
    return np.clip(x + step, 0.0, 1.0).astype(x.dtype)


def _blank_borders(x: np.ndarray) -> np.ndarray:
    """(images, 4): whether the row or column each of `_SHIFTS` would wrap around is blank."""
    lines = (x[:, -1], x[:, 0], x[:, :, -1], x[:, :, 0])
    return np.stack([~line.reshape(len(x), -1).any(axis=1) for line in lines], axis=1)


def border_shift(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each image moved one pixel in a random direction whose wrapped border line is blank."""
    blank = _blank_borders(x)
    choice = np.argmax(np.where(blank, rng.random(blank.shape), -1.0), axis=1)
    out = x.copy()
    for index, (axis, shift) in enumerate(_SHIFTS):
        chosen = (choice == index) & blank[:, index]
        out[chosen] = np.roll(x[chosen], shift, axis=axis)
    return out


def probe_predictions(predict, x: np.ndarray, seed: int, indices: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The predicted digit of every probed test image (`indices`, default all) under the probe, in
    test order (``probe_names``, ``probe_predicted``, ``probe_indices``). `predict(images,
    batch_size)` returns the model's outputs."""
    indices = np.arange(len(x)) if indices is None else np.asarray(indices)
    x = x[indices]
    rng = np.random.default_rng([seed, 0x1A7E])
    changed = border_shift(pixel_jitter(x, rng), rng)
    order = rng.permutation(len(x))
    shuffled = predict(changed[order], PROBE_BATCH).argmax(axis=1)
    in_test_order = np.empty_like(shuffled)
    in_test_order[order] = shuffled
    return {
        "probe_names": np.array(PROBES),
        "probe_predicted": in_test_order[None, :].astype("uint8"),
        "probe_indices": indices.astype("int64"),
    }


def private_predictions(predict, checks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The predicted digit of every image of the course's private check set (test images rewritten by
    a secret seed, ``harness/analysis/private_set.py``), with the test positions they rewrite, and of
    its control (validation images, as they are and rewritten alike); the worker never sees a label."""
    arrays = {
        "private_predicted": predict(checks["x_private"]).argmax(axis=1).astype("uint8"),
        "private_indices": np.asarray(checks["private_indices"], dtype="int64"),
    }
    if "x_control" in checks:  # a test file written without the control has none (the flag then needs it)
        arrays["control_predicted"] = predict(checks["x_control"]).argmax(axis=1).astype("uint8")
        arrays["control_private_predicted"] = predict(checks["x_control_private"]).argmax(axis=1).astype("uint8")
    return arrays

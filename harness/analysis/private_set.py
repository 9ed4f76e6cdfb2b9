"""The private check set: test images the students cannot hold, and the probe's image subset.

The MNIST test set and its labels are public, so a model can carry them. The private check set is
a subset of the test images, each rewritten as another hand would have written it (strokes
thicker or thinner, an elastic distortion, the digit re-centred), drawn and transformed once per
course by a **secret seed**, with the same labels. A model that learned digits loses a little on
it, about as much as the reference does; a model that recognises the public test images keeps
its public accuracy there only where its memory still matches.

The seed is the instructor's, never the package's: ``$HARNESS_PRIVATE_SEED`` when set (one course
graded on several machines keeps one set), else a seed drawn at random on the first run and kept
beside the stage cache, readable by its owner only: ``OUT/.cache/private/seed`` by default, so
one per course, or ``DIR/private/seed`` with ``--cache DIR``, so that output folders sharing a
cache share a private set (a cached evaluation holds its predictions: another set would redo it).
Anyone who reads the harness's code knows how the set is made, not which set it is. The set is
rebuilt from the seed at every run (about a second for 2,000 images) and written beside the seed
(``private_set.npz``, owner only) for the instructor to look at.

Models differ in how much such rewriting moves them (a one-epoch model with re-estimated
BatchNormalization statistics loses 26 points where the reference loses 7), so a model is compared
with itself: the same rewriting of validation images, which no memory of the test set holds, is
the **control** (``CONTROL_STREAM``). A model that learned digits changes its answer about as
often on rewritten test images as on rewritten validation images; a memory of the test images
changes far more often on the first.

The grading process builds both; the evaluation worker predicts them like the test set (it never
sees a label); :func:`harness.analysis.analyse.private_check` compares them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.analysis.perturbations import elastic, recentre, stroke_thickness
from harness.config.analysis import IntegritySettings
from harness.config.environment import PRIVATE_SEED_ENV
from harness.errors import CannotStart
from harness.util.atomic import atomic_write

PRIVATE_DIR = "private"  # in the stage cache's folder: the course's seed and its private set, owner only
SEED_FILE = "seed"
SET_FILE = "private_set.npz"
CONTROL_STREAM = 0xC0DE  # the validation images' rewriting: same seed, another draw


@dataclass(frozen=True)
class PrivateSet:
    """The private images (float32 in [0, 1], quantised to 8 bits) and the test positions they rewrite."""

    indices: np.ndarray
    images: np.ndarray
    checksum: str  # sha256 of the indices and the 8-bit images: part of every evaluation's key
    seed_source: str  # where the seed came from (never the seed itself): results and logs may say it


def private_seed(cache_root: Path) -> tuple[int, str]:
    """(seed, where it came from): ``$HARNESS_PRIVATE_SEED``, else ``<cache_root>/private/seed``,
    created at random (63 bits, mode 600) the first time; a second grader racing for it reads the
    winner's."""
    chosen = os.environ.get(PRIVATE_SEED_ENV, "").strip()
    if chosen:
        try:
            return int(chosen), PRIVATE_SEED_ENV
        except ValueError:
            raise CannotStart(f"{PRIVATE_SEED_ENV} must be a whole number, not {chosen!r}") from None
    folder = Path(cache_root) / PRIVATE_DIR
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / SEED_FILE
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return int(path.read_text(encoding="ascii").strip()), str(path)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(f"{secrets.randbits(63)}\n")
    return int(path.read_text(encoding="ascii").strip()), str(path)


def rewrite(x: np.ndarray, rng: np.random.Generator, settings: IntegritySettings) -> np.ndarray:
    """The digits of `x` (float (N, 28, 28, 1) in [0, 1]) as another hand would write them, 8-bit."""
    x = stroke_thickness(x, rng, thicker=settings.private_thicker, amount=settings.private_thickness)
    x = elastic(x, rng, pixels=settings.private_elastic_pixels, sigma=settings.private_elastic_sigma)
    x = recentre(x, rng, jitter=settings.private_recentre_jitter)
    return np.rint(x * 255.0).astype(np.uint8)


def build_private_set(
    x_test: np.ndarray, seed: int, settings: IntegritySettings, source: str, stream: int = 0x9B1D
) -> PrivateSet:
    """`settings.private_images` test images (all of them when fewer), drawn and rewritten by `seed`
    (`stream`: another one for another set from the same seed, the validation control's)."""
    rng = np.random.default_rng([seed, stream])
    n = min(settings.private_images, len(x_test))
    indices = np.sort(rng.choice(len(x_test), size=n, replace=False))
    stored = rewrite(np.asarray(x_test[indices], dtype=np.float32), rng, settings)
    digest = hashlib.sha256(indices.astype("<i8").tobytes() + stored.tobytes()).hexdigest()
    return PrivateSet(indices, stored.astype(np.float32) / np.float32(255.0), digest, source)


def keep_private_set(cache_root: Path, private: PrivateSet) -> Path:
    """``<cache_root>/private/private_set.npz`` (mode 600, as ``mkstemp`` creates it): the images and
    their test positions, to look at."""
    path = Path(cache_root) / PRIVATE_DIR / SET_FILE
    images = np.rint(private.images * 255.0).astype(np.uint8)
    return atomic_write(path, lambda handle: np.savez_compressed(handle, indices=private.indices, images=images))


def probe_indices(n_test: int, seed: int, images: int) -> np.ndarray:
    """The test positions the invariance probe changes: `images` of them drawn from the run's seed
    (the same for every model of the run, the reference's too), or all when the test set is smaller."""
    if images >= n_test:
        return np.arange(n_test)
    return np.sort(np.random.default_rng([seed, 0x1A7E, 1]).choice(n_test, size=images, replace=False))

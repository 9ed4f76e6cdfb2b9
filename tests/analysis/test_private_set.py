"""The private check set (harness/analysis/private_set.py): test images rewritten by a secret seed.

The seed is the instructor's and never in the package; the set is the same for a given seed and
another for another seed; a model whose answers the rewriting changes on test images far more often
than on validation images rewritten alike is flagged, a merely brittle model is not."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from harness.analysis.analyse import Predictions, private_check, private_set_flags
from harness.analysis.perturbations import elastic, recentre, stroke_thickness
from harness.analysis.private_set import build_private_set, keep_private_set, private_seed, probe_indices
from harness.config.analysis import load_analysis_config
from harness.config.environment import PRIVATE_SEED_ENV
from harness.errors import CannotStart
from harness.util.i18n import Translator

SETTINGS = load_analysis_config().integrity


def digits(n: int = 40) -> np.ndarray:
    """MNIST-like digits: a stroke (a thick ring or bar) off the centre, on a blank border."""
    rng = np.random.default_rng(2)
    x = np.zeros((n, 28, 28, 1), "float32")
    rows, cols = np.mgrid[:28, :28]
    for image in x:
        r, c, radius = rng.integers(10, 16), rng.integers(10, 16), rng.integers(4, 7)
        ring = np.abs(np.hypot(rows - r, cols - c) - radius) < 1.5
        image[..., 0] = ring * rng.uniform(0.7, 1.0)
    return x


@pytest.fixture
def no_seed_env(monkeypatch):
    monkeypatch.delenv(PRIVATE_SEED_ENV, raising=False)


def test_the_seed_is_drawn_once_kept_for_its_owner_only_and_reused(tmp_path, no_seed_env):
    seed, source = private_seed(tmp_path)
    path = tmp_path / "private" / "seed"
    assert source == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert private_seed(tmp_path) == (seed, source)
    assert private_seed(tmp_path / "another course")[0] != seed  # 63 random bits


def test_the_instructors_variable_wins_and_must_be_a_number(tmp_path, monkeypatch):
    monkeypatch.setenv(PRIVATE_SEED_ENV, "424242")
    assert private_seed(tmp_path) == (424242, PRIVATE_SEED_ENV)
    assert not (tmp_path / "private").exists()
    monkeypatch.setenv(PRIVATE_SEED_ENV, "le secret")
    with pytest.raises(CannotStart, match=PRIVATE_SEED_ENV):
        private_seed(tmp_path)


def test_one_seed_one_set_another_seed_another_set(tmp_path):
    x = digits()
    first, again = build_private_set(x, 7, SETTINGS, "t"), build_private_set(x, 7, SETTINGS, "t")
    other = build_private_set(x, 8, SETTINGS, "t")
    assert first.checksum == again.checksum and np.array_equal(first.images, again.images)
    assert other.checksum != first.checksum
    assert len(first.indices) == len(x) and first.images.shape == x.shape  # fewer test images than asked: all
    assert np.array_equal(first.images, np.rint(first.images * 255) / 255)  # 8-bit, as stored
    kept = keep_private_set(tmp_path, first)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    with np.load(kept) as npz:
        assert np.array_equal(npz["indices"], first.indices) and npz["images"].dtype == np.uint8


def test_every_image_is_rewritten_but_stays_the_same_digit_shape():
    x = digits()
    private = build_private_set(x, 7, SETTINGS, "t")
    original = x[private.indices]
    assert all(not np.array_equal(a, b) for a, b in zip(original, private.images, strict=True))
    ink = (original > 0.3).sum(axis=(1, 2, 3)), (private.images > 0.3).sum(axis=(1, 2, 3))
    assert np.all(ink[1] > 0.4 * ink[0]) and np.all(ink[1] < 2.5 * ink[0])  # thicker or thinner, not erased


def test_the_handwriting_changes_one_by_one():
    x, rng = digits(), np.random.default_rng(0)
    assert np.allclose(elastic(x, rng, pixels=0.0), x, atol=1e-6)
    moved = elastic(x, rng, pixels=1.0)
    assert 0.01 < np.abs(moved - x).mean() < 0.2
    thicker = stroke_thickness(x, rng, thicker=1.0)
    thinner = stroke_thickness(x, rng, thicker=0.0)
    ink = x.sum(axis=(1, 2, 3))
    assert np.all(thicker.sum(axis=(1, 2, 3)) > ink) and np.all(thinner.sum(axis=(1, 2, 3)) < ink)
    centred = recentre(x, rng, jitter=0)
    mass = centred[..., 0].sum(axis=(1, 2))
    row = (centred[..., 0].sum(axis=2) * np.arange(28)).sum(axis=1) / mass
    assert np.all(np.abs(row - 14) <= 0.5)  # the centre of mass where MNIST puts it
    assert np.isclose(centred.sum(), x.sum(), rtol=1e-5)  # a move: nothing cut


def test_the_probe_subset_is_the_runs_and_everything_on_small_test_sets():
    assert np.array_equal(probe_indices(300, 1, 2000), np.arange(300))
    subset = probe_indices(10_000, 1, 2000)
    assert len(subset) == 2000 and len(set(subset)) == 2000 and np.all(np.diff(subset) > 0)
    assert np.array_equal(subset, probe_indices(10_000, 1, 2000))
    assert not np.array_equal(subset, probe_indices(10_000, 2, 2000))


LABELS = np.arange(2000) % 10
INDICES = np.arange(0, 2000, 2)
CONTROL = np.arange(400) % 10


def outputs_with_errors(wrong: np.ndarray) -> np.ndarray:
    predicted = LABELS.copy()
    predicted[wrong] = (predicted[wrong] + 1) % 10
    return np.eye(10)[predicted]


def changed(digits: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = digits.copy()
    out[where] = (out[where] + 3) % 10
    return out


def check(public_wrong: np.ndarray, private_changed: np.ndarray, control_changed: np.ndarray):
    """A model wrong on `public_wrong` test positions, whose answer the rewriting changes on the private
    images at `private_changed` (of INDICES) and on the control images at `control_changed`."""
    outputs = outputs_with_errors(public_wrong)
    predictions = Predictions(
        outputs,
        private_predicted=changed(outputs.argmax(axis=1)[INDICES], private_changed),
        private_indices=INDICES,
        control_predicted=CONTROL,
        control_private_predicted=changed(CONTROL, control_changed),
    )
    return private_check(LABELS, outputs, predictions)


def test_a_brittle_model_that_reads_test_and_validation_images_alike_is_not_flagged():
    # a one-epoch BatchNormalization model: the rewriting changes a third of its answers, everywhere
    brittle = check(np.arange(0, 2000, 5), np.arange(0, 1000, 3), np.arange(0, 400, 3))
    assert brittle.private_accuracy < brittle.public_accuracy - 0.2
    assert abs(brittle.changed - brittle.control_changed) < 0.01
    assert private_set_flags(brittle, SETTINGS, Translator("fr")) == []


def test_a_model_that_knows_the_public_images_is_flagged_with_its_reason():
    # 100 % public; on rewritten images what is underneath answers (a third wrong), on the control it is steady
    memory = check(np.array([], int), np.arange(0, 1000, 3), np.arange(0, 400, 12))
    assert memory.public_accuracy == 1.0 and memory.private_accuracy < 0.7
    (flag,) = private_set_flags(memory, SETTINGS, Translator("fr"))
    assert flag.rule == "private_set" and "jeu de contrôle privé" in flag.reason and "100.00" in flag.reason
    assert "private check set" in Translator("en").render(flag.message)


def test_no_flag_without_a_control():
    memory = check(np.array([], int), np.arange(0, 1000, 3), np.arange(0, 400, 12))
    alone = memory.model_copy(update={"control_n": 0, "control_changed": None})
    assert private_set_flags(alone, SETTINGS, Translator("fr")) == []

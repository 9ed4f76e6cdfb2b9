"""The invariance probes (harness/workers/probes.py): changes no digit reader notices."""

from __future__ import annotations

import numpy as np

from harness.workers.probes import (
    PROBE_BATCH,
    PROBES,
    border_shift,
    pixel_jitter,
    private_predictions,
    probe_predictions,
)

RNG = np.random.default_rng(1)


def digits(n: int = 20) -> np.ndarray:
    """Blank 28x28 images with a random blob in the middle, like MNIST's centred digits."""
    x = np.zeros((n, 28, 28, 1), "float32")
    x[:, 6:22, 6:22, 0] = RNG.random((n, 16, 16)) * (RNG.random((n, 16, 16)) > 0.5)
    return x


def test_jitter_moves_every_pixel_by_one_level_at_most():
    x = digits()
    moved = pixel_jitter(x, np.random.default_rng(0))
    assert np.all(np.abs(moved - x) <= 1 / 255 + 1e-7) and moved.min() >= 0 and moved.max() <= 1
    assert np.mean(np.abs(moved - x) > 0.5 / 255) > 0.5  # most pixels did move


def test_border_shift_moves_the_digit_without_cutting_it():
    x = digits()
    shifted = border_shift(x, np.random.default_rng(0))
    for before, after in zip(x, shifted, strict=True):
        assert not np.array_equal(before, after)
        assert np.array_equal(np.sort(after.ravel()), np.sort(before.ravel()))  # a translation: nothing cut


def test_an_image_without_a_blank_border_is_left_as_it_is():
    full = np.ones((1, 28, 28, 1), "float32")
    assert np.array_equal(border_shift(full, np.random.default_rng(0)), full)


def test_predictions_come_back_in_test_order_from_batches_of_another_size():
    x = (digits(300) > 0.3).astype("float32") * 0.8  # strokes far from the reader's threshold
    seen_batches = []

    def blob_size(images, batch):  # what a digit reader sees: the same answer, whatever the changes
        seen_batches.append(batch)
        return np.eye(10)[(images.reshape(len(images), -1) > 0.5).sum(axis=1) % 10]

    arrays = probe_predictions(blob_size, x, seed=3)
    assert list(arrays["probe_names"]) == list(PROBES)
    assert np.array_equal(arrays["probe_predicted"][0], blob_size(x, None).argmax(axis=1))
    assert seen_batches == [PROBE_BATCH, None]


def test_the_probes_are_the_same_for_every_model_of_a_run():
    x = digits()

    def images(images, batch):
        return np.eye(10)[np.argmax(images.reshape(len(images), -1), axis=1) % 10]

    first, second = probe_predictions(images, x, seed=5), probe_predictions(images, x, seed=5)
    assert np.array_equal(first["probe_predicted"], second["probe_predicted"])


def test_a_probe_subset_comes_back_in_the_order_of_its_test_positions():
    x = (digits(300) > 0.3).astype("float32") * 0.8
    positions = np.array([3, 50, 51, 120, 299])

    def blob_size(images, batch):
        return np.eye(10)[(images.reshape(len(images), -1) > 0.5).sum(axis=1) % 10]

    arrays = probe_predictions(blob_size, x, seed=3, indices=positions)
    assert np.array_equal(arrays["probe_indices"], positions)
    assert np.array_equal(arrays["probe_predicted"][0], blob_size(x[positions], None).argmax(axis=1))


def test_the_private_set_and_its_control_are_predicted_with_their_test_positions():
    x = digits(6)
    checks = {"x_private": x, "private_indices": np.arange(6) * 7, "x_control": x[:4], "x_control_private": x[:2]}
    arrays = private_predictions(lambda images, batch=None: np.eye(10)[np.arange(len(images)) % 10], checks)
    assert arrays["private_predicted"].dtype == np.uint8 and list(arrays["private_predicted"]) == [0, 1, 2, 3, 4, 5]
    assert list(arrays["private_indices"]) == [0, 7, 14, 21, 28, 35]
    assert list(arrays["control_predicted"]) == [0, 1, 2, 3] and list(arrays["control_private_predicted"]) == [0, 1]

"""A student's tf.data maps, tried on the harness's images before they train a model (harness/workers/dataset_maps.py):
an augmentation is kept; preprocessing written for the student's own data, or a map that would corrupt the
labels or the images, is not, and says why."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from harness.workers.dataset_maps import checked_maps, dataset_maps, describe, mapped_dataset  # noqa: E402


@pytest.fixture(scope="module")
def images():
    """Sixteen images as the harness gives them: float32 in [0, 1], (28, 28, 1), one-hot labels."""
    rng = np.random.default_rng(0)
    x = rng.random((16, 28, 28, 1), dtype=np.float32)
    return x, np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]


def shift(image, label):
    image = tf.image.resize_with_crop_or_pad(image, 32, 32)
    return tf.image.random_crop(image, size=[28, 28, 1]), label


def normalise(image, label):
    return tf.cast(image, tf.float32) / 255.0, label


def flip_once(image, label):
    return tf.image.flip_left_right(image), label


def sparse(image, label):
    return image, tf.one_hot(label, 10)


def flat(image, label):
    return tf.reshape(image, (-1,)), label


def noisy_batch(images, labels):
    return images + tf.random.normal(tf.shape(images), stddev=0.05), labels


def test_an_augmentation_is_kept_and_preprocessing_or_a_corrupting_map_is_said_not_reproduced(images):
    x, y = images
    entries = [{"map": f, "batched": False} for f in (shift, normalise, flip_once, sparse, flat)]
    entries += [{"map": noisy_batch, "batched": True}, {"map": None, "batched": False, "name": "gone"}]
    kept, notes = checked_maps(entries, x, y)
    assert [e["name"] for e in kept] == ["shift", "noisy_batch"]
    assert [(n["name"], n["why"]) for n in notes] == [
        ("normalise", "scale"),  # meant for 0–255 pixels: the harness's would be divided again
        ("flip_once", "fixed"),  # the same every time: preprocessing, not augmentation
        ("sparse", "fails"),  # the harness's labels are one-hot already
        ("flat", "shape"),
        ("gone", "undefined"),  # not defined in the module the worker imported
    ]
    assert describe(kept) == "map(shift) + map(noisy_batch)"


def test_the_augmented_batches_are_the_same_under_the_same_seed(images):
    """The maps run one element at a time, in order: the same seed draws the same shifts and noise."""
    x, y = images
    maps = dataset_maps([{"map": shift, "batched": False}, {"map": noisy_batch, "batched": True}])

    def first_batch():
        tf.keras.utils.set_random_seed(7)
        return next(iter(mapped_dataset(x, y, maps, batch_size=8, seed=7)))

    (a, la), (b, lb) = first_batch(), first_batch()
    assert a.shape == (8, 28, 28, 1) and a.dtype == tf.float32
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(la.numpy(), lb.numpy())


def test_only_a_map_setting_is_read_as_one():
    assert dataset_maps({"map": shift, "batched": False}) == [{"map": shift, "batched": False}]
    assert dataset_maps([{"rotation_range": 10}]) is None
    assert dataset_maps(None) is None

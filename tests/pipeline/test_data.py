"""MNIST loading, validation and hashing; the assignment's preprocessing; the training split."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from harness.config.protocol import load_protocol
from harness.pipeline.data import (
    DATA_ENV,
    DataUnavailable,
    RawMnist,
    content_sha256,
    load_mnist,
    one_hot,
    preprocess_images,
    training_split,
)
from harness.pipeline.data import held_out_test_set as take_test_set


def fake_mnist(n_train: int = 50, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays with MNIST's layout (uint8 images 28x28, labels 0..9)."""
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def save(path, arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def assert_says_how_to_provide(error: pytest.ExceptionInfo) -> None:
    message = str(error.value)
    assert DATA_ENV in message and "--data" in message and "mnist.npz" in message


# --------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def raw(mnist_npz) -> RawMnist:
    return load_mnist(mnist_npz)


def test_loads_the_npz_with_its_hashes(raw, mnist_npz, mnist_arrays):
    assert raw.source == str(mnist_npz)
    assert raw.file_sha256 == hashlib.sha256(mnist_npz.read_bytes()).hexdigest()
    assert raw.content_sha256 == content_sha256(mnist_arrays)
    for key in ("x_train", "x_test"):
        x = getattr(raw, key)
        assert x.dtype == np.uint8 and x.ndim == 3 and x.shape[1:] == (28, 28)
        np.testing.assert_array_equal(x, mnist_arrays[key])
    assert raw.y_train.shape == (raw.x_train.shape[0],) and set(np.unique(raw.y_train)) == set(range(10))
    assert raw.x_train.shape[0] >= 2000 and raw.x_test.shape[0] >= 300  # what the test profiles need


def test_env_variable_is_used_and_an_explicit_path_wins(tmp_path, monkeypatch, mnist_npz):
    small = save(tmp_path / "small.npz", fake_mnist())
    monkeypatch.setenv(DATA_ENV, small)
    from_env = load_mnist()
    assert from_env.source == small and from_env.x_train.shape == (50, 28, 28)
    explicit = load_mnist(mnist_npz)
    assert explicit.source == str(mnist_npz)


def test_content_hash_ignores_the_zip_wrapper_but_not_the_pixels(tmp_path):
    arrays = fake_mnist()
    plain = load_mnist(save(tmp_path / "plain.npz", arrays))
    np.savez_compressed(tmp_path / "packed.npz", **arrays)
    packed = load_mnist(tmp_path / "packed.npz")
    assert plain.file_sha256 != packed.file_sha256
    assert plain.content_sha256 == packed.content_sha256
    arrays["x_test"][0, 0, 0] ^= 1
    changed = load_mnist(save(tmp_path / "changed.npz", arrays))
    assert changed.content_sha256 != plain.content_sha256


def test_missing_file(tmp_path):
    with pytest.raises(DataUnavailable, match="No MNIST file") as error:
        load_mnist(tmp_path / "absent.npz")
    assert_says_how_to_provide(error)


def test_file_that_is_not_a_zip(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_text("<html>404 Not Found</html>", encoding="utf-8")
    with pytest.raises(DataUnavailable, match="not a readable .npz") as error:
        load_mnist(path)
    assert_says_how_to_provide(error)


def test_truncated_download(tmp_path):
    good = tmp_path / "good.npz"
    save(good, fake_mnist())
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(DataUnavailable) as error:
        load_mnist(bad)
    assert_says_how_to_provide(error)


def test_missing_keys(tmp_path):
    arrays = fake_mnist()
    del arrays["y_test"]
    with pytest.raises(DataUnavailable, match="lacks the key.*y_test") as error:
        load_mnist(save(tmp_path / "m.npz", arrays))
    assert_says_how_to_provide(error)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("x_train", np.zeros((50, 28, 27), np.uint8), "x_train has shape"),
        ("x_test", np.zeros((20, 784), np.uint8), "x_test has shape"),
        ("y_train", np.zeros(49, np.uint8), "y_train has shape"),
        ("y_test", np.zeros((20, 10), np.uint8), "y_test has shape"),
        ("y_train", np.full(50, 10, np.int64), "labels outside"),
        ("x_test", np.full((20, 28, 28), 300, np.int64), "pixels outside"),
    ],
)
def test_wrong_shapes_and_values(tmp_path, key, value, message):
    arrays = fake_mnist()
    arrays[key] = value
    with pytest.raises(DataUnavailable, match=message) as error:
        load_mnist(save(tmp_path / "m.npz", arrays))
    assert_says_how_to_provide(error)


# --------------------------------------------------------------------------- preprocessing and split


def test_preprocess_images_shape_dtype_range():
    x = np.array([np.zeros((28, 28)), np.full((28, 28), 255), np.arange(784).reshape(28, 28) % 256], dtype=np.uint8)
    out = preprocess_images(x)
    assert out.shape == (3, 28, 28, 1) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert out[1].min() == 1.0 and out[0].max() == 0.0
    np.testing.assert_allclose(out[2, ..., 0], x[2] / 255.0, rtol=1e-6)


def test_one_hot():
    y = one_hot(np.array([3, 0, 9], dtype=np.uint8))
    assert y.shape == (3, 10) and y.dtype == np.float32
    np.testing.assert_array_equal(y.argmax(axis=1), [3, 0, 9])
    np.testing.assert_array_equal(y.sum(axis=1), [1, 1, 1])


def test_training_split_validation_is_the_last_20_percent(raw):
    split = training_split(raw, train_images=600, validation_split=0.2)
    assert split.x_train.shape == (480, 28, 28, 1) and split.x_val.shape == (120, 28, 28, 1)
    assert split.y_train.shape == (480, 10) and split.y_val.shape == (120, 10)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.float32
    np.testing.assert_array_equal(split.x_train, preprocess_images(raw.x_train[:480]))
    np.testing.assert_array_equal(split.x_val, preprocess_images(raw.x_train[480:600]))
    np.testing.assert_array_equal(split.y_val.argmax(axis=1), raw.y_train[480:600])
    np.testing.assert_array_equal(split.y_train.argmax(axis=1), raw.y_train[:480])


def test_smoke_profile_split_sizes(raw):
    protocol = load_protocol()
    smoke = protocol.profile("smoke")
    split = training_split(raw, smoke.train_images, protocol.training.validation_split)
    assert (len(split.x_train), len(split.x_val)) == (1600, 400)
    np.testing.assert_array_equal(split.x_val, preprocess_images(raw.x_train[1600:2000]))


def test_test_set_is_the_first_images(raw):
    x, y = take_test_set(raw, 300)
    assert x.shape == (300, 28, 28, 1) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, preprocess_images(raw.x_test[:300]))
    np.testing.assert_array_equal(y, raw.y_test[:300])


def test_an_installed_copy_finds_its_course_files(tmp_path):
    """Laid out as `pip install .` installs it (reference/, rubric/, templates/ inside the package,
    without __init__.py and away from the repository), the harness finds its protocol, suite,
    rubric and templates there."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import harness

    repo = Path(harness.__file__).resolve().parent.parent
    site = tmp_path / "site-packages"
    shutil.copytree(repo / "harness", site / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("reference", "rubric", "templates"):
        shutil.copytree(repo / folder, site / "harness" / folder)
    probe = (
        f"import sys; sys.path.insert(0, {str(site)!r})\n"
        "from harness.resources import bundled\n"
        "from harness.config.protocol import load_protocol\n"
        "from harness.analysis.perturbations import default_suite_path\n"
        "load_protocol()\n"
        "print(bundled('reference', 'protocol.toml'), default_suite_path(), bundled('rubric', 'default.toml'),"
        " bundled('templates', 'report.html.j2'), sep='\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    paths = [Path(line) for line in done.stdout.split()]
    assert len(paths) == 4 and all(p.is_file() and site in p.parents for p in paths), done.stdout

"""The robustness suite: each perturbation's defining property, the suite file, building and caching."""

from __future__ import annotations

import inspect
import json
import os
import textwrap

import numpy as np
import pytest
from scipy import ndimage

from harness.analysis import perturbations as P
from harness.analysis.perturbations import DETERMINISTIC, PERTURBATIONS
from harness.config.protocol import load_protocol

MNIST_C = {
    "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness",
    "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges",
}  # fmt: skip


def digit_like(n: int = 12, seed: int = 0) -> np.ndarray:
    """Synthetic 'digits': a few thick random strokes near the centre, values in [0, 1], float32."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((n, 28, 28))
    for i in range(n):
        pts = rng.uniform(7, 21, size=(4, 2))
        for a, b in zip(pts[:-1], pts[1:]):
            for t in np.linspace(0, 1, 40):
                r, c = np.rint(a + t * (b - a)).astype(int)
                canvas[i, r - 1 : r + 2, c - 1 : c + 2] = 1.0
    canvas = ndimage.gaussian_filter(canvas, (0, 0.6, 0.6))
    return (np.clip(canvas / canvas.max(axis=(1, 2), keepdims=True), 0, 1)).astype(np.float32)[..., None]


def blank(n: int = 8) -> np.ndarray:
    return np.zeros((n, 28, 28, 1), np.float32)


def centre_of_mass(img: np.ndarray) -> np.ndarray:
    return np.array(ndimage.center_of_mass(img[..., 0]))


def orientation(img: np.ndarray) -> float:
    """Orientation (radians, in (-pi/2, pi/2]) of an elongated blob's principal axis, x to the right, y up."""
    rows, cols = np.nonzero(img[..., 0] > 0.3)
    weights = img[rows, cols, 0]
    y, x = -(rows - np.average(rows, weights=weights)), cols - np.average(cols, weights=weights)
    cov = np.cov(np.stack([x, y]), aweights=weights)
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, -1]
    angle = np.arctan2(vy, vx)
    if angle > np.pi / 2:
        angle -= np.pi
    if angle <= -np.pi / 2:
        angle += np.pi
    return float(angle)


def horizontal_bar(n: int = 1) -> np.ndarray:
    x = blank(n)
    x[:, 13:15, 4:24] = 1.0
    return x


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- contract of every perturbation


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_contract_shape_dtype_range_purity(name):
    x = digit_like()
    before = x.copy()
    y = PERTURBATIONS[name](x, rng(1))
    assert y.shape == x.shape
    assert y.dtype == np.float32
    assert np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 1.0
    np.testing.assert_array_equal(x, before)  # the input (and so the test set) is never modified
    assert not np.array_equal(y, x)  # it does perturb


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_determinism_given_the_seed(name):
    x = digit_like()
    f = PERTURBATIONS[name]
    a, b = f(x, rng(7)), f(x, rng(7))
    assert a.tobytes() == b.tobytes()
    c = f(x, rng(8))
    if name in DETERMINISTIC:
        assert c.tobytes() == a.tobytes()
    else:
        assert c.tobytes() != a.tobytes()


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_images_are_perturbed_independently(name):
    """Changing one image of the batch leaves the others' results unchanged (no mixing across the batch)."""
    x = digit_like()
    x2 = x.copy()
    x2[0] = digit_like(1, seed=99)[0]
    a, b = PERTURBATIONS[name](x, rng(3)), PERTURBATIONS[name](x2, rng(3))
    np.testing.assert_array_equal(a[1:], b[1:])


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_signature_and_defaults(name):
    """``f(images, rng, **params)``: no labels anywhere, every parameter has a default."""
    params = list(inspect.signature(PERTURBATIONS[name]).parameters.values())
    assert [p.name for p in params[:2]] == ["images", "rng"]
    assert all(p.default is not inspect.Parameter.empty for p in params[2:])
    assert not any("label" in p.name for p in params)
    assert PERTURBATIONS[name](blank(0), rng()).shape == (0, 28, 28, 1)


def test_rejects_unscaled_or_misshapen_images():
    with pytest.raises(ValueError):
        PERTURBATIONS["gaussian_noise"](digit_like() * 255, rng())
    with pytest.raises(ValueError):
        PERTURBATIONS["gaussian_noise"](digit_like()[..., 0], rng())
    with pytest.raises(ValueError):
        PERTURBATIONS["gaussian_noise"]((digit_like() * 255).astype(np.uint8), rng())


# --------------------------------------------------------------------------- the assignment's two tests


def test_gaussian_noise_statistics_on_mid_grey():
    x = np.full((20, 28, 28, 1), 0.5, np.float32)  # 0.5 is 5 sigma from either clip: no clipping in practice
    d = PERTURBATIONS["gaussian_noise"](x, rng(0), sigma=0.1).astype(np.float64) - 0.5
    assert abs(d.mean()) < 0.003
    assert abs(d.std() - 0.1) < 0.003


def test_gaussian_noise_is_the_assignments_formula():
    x = digit_like()
    expected = np.clip(x + rng(5).normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    np.testing.assert_array_equal(PERTURBATIONS["gaussian_noise"](x, rng(5), sigma=0.1), expected)


def test_rotation_angles_are_uniform_in_plus_minus_15():
    angles = P.rotation_angles(rng(0), 10_000, 15.0)
    assert angles.min() >= -15 and angles.max() <= 15
    assert angles.min() < -14.9 and angles.max() > 14.9 and abs(angles.mean()) < 0.3


def test_random_rotation_is_the_assignments_scipy_rotate():
    x = digit_like(6)
    angles = P.rotation_angles(rng(11), len(x), 15.0)
    expected = np.stack(
        [ndimage.rotate(x[i, :, :, 0].astype(np.float64), a, reshape=False) for i, a in enumerate(angles)]
    )
    expected = np.clip(expected, 0, 1).astype(np.float32)[..., None]
    np.testing.assert_array_equal(PERTURBATIONS["random_rotation"](x, rng(11)), expected)


def test_random_rotation_turns_a_bar_by_at_most_15_degrees():
    y = PERTURBATIONS["random_rotation"](horizontal_bar(40), rng(2))
    turned = np.degrees([orientation(img) for img in y])
    assert np.all(np.abs(turned) <= 15.5)
    assert np.abs(turned).max() > 8  # it really rotates


# --------------------------------------------------------------------------- MNIST-C


def test_mnist_c_corruptions_are_all_registered():
    assert MNIST_C <= set(PERTURBATIONS)


def test_shot_noise_keeps_black_and_quantises_to_photon_counts():
    x = digit_like()
    y = PERTURBATIONS["shot_noise"](x, rng(0), photons=5.0)
    assert np.all(y[x == 0] == 0)
    np.testing.assert_allclose(y * 5, np.rint(y * 5), atol=1e-5)
    grey = PERTURBATIONS["shot_noise"](np.full((20, 28, 28, 1), 0.1, np.float32), rng(0), photons=60.0)
    assert abs(grey.mean() - 0.1) < 0.005  # Poisson noise is unbiased (no clipping at this level)


def test_impulse_noise_sets_a_fraction_of_pixels_to_exactly_0_or_1():
    x = np.full((20, 28, 28, 1), 0.5, np.float32)
    y = PERTURBATIONS["impulse_noise"](x, rng(0), amount=0.17)
    salt, pepper = np.mean(y == 1.0), np.mean(y == 0.0)
    assert abs(salt + pepper - 0.17) < 0.01 and abs(salt - pepper) < 0.01
    assert np.all((y == 0) | (y == 1) | (y == 0.5))


def test_glass_blur_scrambles_locally_but_keeps_the_ink():
    x = digit_like()
    y = PERTURBATIONS["glass_blur"](x, rng(0))
    blurred_twice = ndimage.gaussian_filter(
        ndimage.gaussian_filter(x[..., 0].astype(np.float64), (0, 0.7, 0.7)), (0, 0.7, 0.7)
    )
    assert not np.allclose(y[..., 0], blurred_twice, atol=1e-3)  # the shuffle did something
    np.testing.assert_allclose(y.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)), rtol=0.05)  # swaps move, never create ink
    assert np.all(np.abs(centre_of_mass(y[0]) - centre_of_mass(x[0])) < 1.5)


def test_motion_blur_is_a_weighted_sum_of_shifted_copies():
    x = digit_like(5)
    y = PERTURBATIONS["motion_blur"](x, rng(4), radius=6, sigma=2.0, max_angle=45.0)
    r = rng(4)
    theta = np.deg2rad(r.uniform(-45, 45, size=len(x)))
    direction = np.stack([np.sin(theta), np.cos(theta)], axis=1)
    k = np.arange(7.0)
    w = np.exp(-(k**2) / 8.0)
    w /= w.sum()
    eye = np.broadcast_to(np.eye(2), (len(x), 2, 2))
    expected = sum(wk * P._warp_affine(x[..., 0].astype(np.float64), eye, -kk * direction) for kk, wk in zip(k, w))
    np.testing.assert_allclose(y[..., 0], np.clip(expected, 0, 1), atol=1e-5)


def test_shear_slants_a_vertical_bar_by_sin_shear():
    x = blank(6)
    x[:, 4:24, 13:15] = 1.0
    y = PERTURBATIONS["shear"](x, rng(0), shear=0.4)
    for img in y[..., 0]:
        rows = np.arange(6, 22)
        cols = np.array([np.average(np.arange(28), weights=img[r]) for r in rows])
        slope = np.polyfit(rows, cols, 1)[0]
        assert abs(abs(slope) - np.sin(0.4)) < 0.03


def test_scale_shrinks_about_the_centre():
    x = blank(1)
    x[:, 9:19, 9:19] = 1.0  # 10x10 square centred on (13.5, 13.5)
    y = PERTURBATIONS["scale"](x, rng(0), factor=0.6)
    assert abs(y.sum() / x.sum() - 0.36) < 0.03
    np.testing.assert_allclose(centre_of_mass(y[0]), [13.5, 13.5], atol=1e-6)


def test_mnist_c_rotate_turns_a_bar_by_the_angle():
    y = PERTURBATIONS["rotate"](horizontal_bar(8), rng(0), angle=0.4)
    angles = np.array([orientation(img) for img in y])
    np.testing.assert_allclose(np.abs(angles), 0.4, atol=0.03)


def test_brightness_adds_to_every_pixel():
    x = digit_like()
    y = PERTURBATIONS["brightness"](x, rng(0), amount=0.4)
    np.testing.assert_allclose(y, np.clip(x + 0.4, 0, 1), atol=1e-6)
    assert y.mean() > x.mean() + 0.3


def test_translate_moves_the_centre_of_mass_diagonally():
    x = blank(10)
    x[:, 11:17, 12:16] = 1.0
    y = PERTURBATIONS["translate"](x, rng(0), pixels=3)
    moves = np.array([centre_of_mass(b) - centre_of_mass(a) for a, b in zip(x, y)])
    np.testing.assert_allclose(np.abs(moves), 3.0, atol=1e-9)
    assert len({tuple(m) for m in np.sign(moves)}) > 1  # directions vary
    np.testing.assert_allclose(y.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)))  # exact integer move


def test_stripe_inverts_one_vertical_band():
    y = PERTURBATIONS["stripe"](blank(20), rng(0), width=3, margin=6)
    for img in y[..., 0]:
        lit = np.flatnonzero(img.min(axis=0) == 1.0)
        assert len(lit) == 3 and lit[-1] - lit[0] == 2 and lit[0] >= 6 and lit[-1] <= 21
        assert img.sum() == 3 * 28
    x = digit_like()
    y = PERTURBATIONS["stripe"](x, rng(0))
    changed = ~np.isclose(y, x)
    np.testing.assert_allclose(y[changed], 1 - x[changed], atol=1e-6)


def test_fog_brightens_the_background_with_a_smooth_field():
    x = digit_like()
    y = PERTURBATIONS["fog"](x, rng(0), strength=1.5, decay=2.0)
    assert y.mean() > x.mean() + 0.1
    background = x[..., 0] == 0
    assert np.mean(y[..., 0][background] > 0) > 0.9  # fog covers the background
    plasma = P._plasma_fractal(rng(0), 4, 32, 2.0)
    assert plasma.shape == (4, 32, 32)
    np.testing.assert_allclose(plasma.min(axis=(1, 2)), 0)
    np.testing.assert_allclose(plasma.max(axis=(1, 2)), 1)


def test_spatter_only_adds_ink_in_blobs():
    x = digit_like(20)
    y = PERTURBATIONS["spatter"](x, rng(0))
    assert np.all(y >= x - 1e-6)
    added = np.mean(y > x + 0.05)
    assert 0.005 < added < 0.2


def test_dotted_line_adds_collinear_separate_dots():
    y = PERTURBATIONS["dotted_line"](blank(12), rng(0), dot_spacing=3)
    for img in y[..., 0]:
        rows, cols = np.nonzero(img == 1.0)
        assert len(rows) >= 5
        pts = np.stack([rows, cols], axis=1).astype(float)
        singular = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
        assert singular[1] / np.sqrt(len(rows)) < 0.6  # on one straight line (rounding only)
        _, dots = ndimage.label(img > 0, structure=np.ones((3, 3)))
        assert dots >= 4  # dotted, not solid
    x = digit_like()
    assert np.all(PERTURBATIONS["dotted_line"](x, rng(0)) >= x)


def test_zigzag_adds_one_connected_polyline():
    y = PERTURBATIONS["zigzag"](blank(12), rng(0))
    for img in y[..., 0]:
        assert np.sum(img == 1.0) >= 15
        _, parts = ndimage.label(img > 0, structure=np.ones((3, 3)))
        assert parts == 1
    x = digit_like()
    assert np.all(PERTURBATIONS["zigzag"](x, rng(0)) >= x)


def test_canny_edges_is_binary_and_outlines_a_square():
    x = blank(1)
    x[:, 8:20, 8:20] = 1.0
    y = PERTURBATIONS["canny_edges"](x, rng(0))[0, ..., 0]
    assert set(np.unique(y)) == {0.0, 1.0}
    rows, cols = np.nonzero(y)
    distance_to_border = np.minimum(
        np.minimum(np.abs(rows - 7.5), np.abs(rows - 19.5)), np.minimum(np.abs(cols - 7.5), np.abs(cols - 19.5))
    )
    assert distance_to_border.max() <= 1.5
    assert y[11:17, 11:17].sum() == 0  # no edge inside
    assert len(rows) >= 36  # the whole outline, roughly 4 x 12 pixels
    digits = PERTURBATIONS["canny_edges"](digit_like(), rng(0))
    assert set(np.unique(digits)) <= {0.0, 1.0}


# --------------------------------------------------------------------------- sweeps


def test_fixed_rotation_turns_every_image_by_plus_or_minus_the_angle():
    x = digit_like(8)
    y = PERTURBATIONS["fixed_rotation"](x, rng(0), angle=30.0)
    signs = set()
    for a, b in zip(x[..., 0].astype(np.float64), y[..., 0]):
        plus = np.clip(ndimage.rotate(a, 30.0, reshape=False), 0, 1).astype(np.float32)
        minus = np.clip(ndimage.rotate(a, -30.0, reshape=False), 0, 1).astype(np.float32)
        assert np.array_equal(b, plus) or np.array_equal(b, minus)
        signs.add(np.array_equal(b, plus))
    assert signs == {True, False}


@pytest.mark.parametrize("pixels", [1, 3, 6])
def test_shift_moves_by_exactly_n_pixels_along_one_axis(pixels):
    x = blank(12)
    x[:, 11:17, 12:16] = 1.0
    y = PERTURBATIONS["shift"](x, rng(0), pixels=pixels)
    for a, b in zip(x, y):
        move = np.abs(centre_of_mass(b) - centre_of_mass(a))
        assert sorted(np.round(move, 9).tolist()) == [0.0, float(pixels)]


def test_gaussian_blur_matches_scipy():
    x = digit_like()
    y = PERTURBATIONS["gaussian_blur"](x, rng(0), sigma=1.5)
    expected = np.stack([ndimage.gaussian_filter(img[..., 0].astype(np.float64), 1.5, mode="constant") for img in x])
    np.testing.assert_allclose(y[..., 0], expected, atol=1e-6)


# --------------------------------------------------------------------------- the suite file


@pytest.fixture(scope="module")
def suite():
    return P.load_suite()


def test_default_suite_loads_and_is_consistent(suite):
    names = [e.name for e in suite]
    assert len(names) == len(set(names))
    assert all(e.perturbation in PERTURBATIONS for e in suite)
    assert {e.group for e in suite} == {"assignment", "mnist_c", "sweep"}
    assert suite.subset == 2000


def test_suite_has_the_assignments_two_tests_on_the_full_test_set(suite):
    noise, rotation = suite["assignment/noise"], suite["assignment/rotation"]
    assert (noise.perturbation, dict(noise.params), noise.subset) == ("gaussian_noise", {"sigma": 0.1}, None)
    assert (rotation.perturbation, dict(rotation.params), rotation.subset) == (
        "random_rotation",
        {"max_angle": 15.0},
        None,
    )


def test_suite_has_the_15_mnist_c_corruptions(suite):
    mnist_c = suite.group("mnist_c")
    assert len(mnist_c) == 15
    assert {e.perturbation for e in mnist_c} == MNIST_C


def test_suite_sweeps_have_five_levels_each(suite):
    sweeps = suite.sweeps()
    for family in ("gaussian_noise", "rotation", "shift", "gaussian_blur"):
        levels = [e.severity for e in sweeps[family]]
        assert len(levels) >= 5 and len(set(levels)) == len(levels)
        assert levels == sorted(levels)


def test_suite_size_fits_the_prediction_budget(suite):
    # 25 s at a conservative 5,000 images/s on 2 CPU cores, clean test set (10,000) included
    assert suite.n_images(10_000) + 10_000 <= 125_000


def write_suite(tmp_path, body: str):
    path = tmp_path / "suite.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "body, message",
    [
        (
            'subset = 10\n[[entries]]\nname = "a"\ngroup = "mnist_c"\nperturbation = "nope"\nseed = 1\n',
            "unknown perturbation",
        ),
        ('[[entries]]\nname = "a"\ngroup = "mnist_c"\nperturbation = "fog"\nseed = 1\n' * 2, "unique"),
        (
            '[[entries]]\nname = "a"\ngroup = "mnist_c"\nperturbation = "fog"\nseed = 1\nparams = { wind = 3 }\n',
            "bad params",
        ),
        ('[[entries]]\nname = "a"\ngroup = "sweep"\nperturbation = "shift"\nseed = 1\n', "severity"),
        ('[[entries]]\nname = "a"\ngroup = "other"\nperturbation = "shift"\nseed = 1\n', "group"),
        ('[[entries]]\nname = "a"\ngroup = "mnist_c"\nperturbation = "shift"\n', "seed"),
        ('subset = 0\n[[entries]]\nname = "a"\ngroup = "mnist_c"\nperturbation = "shift"\nseed = 1\n', "subset"),
    ],
)
def test_malformed_suites_are_rejected(tmp_path, body, message):
    with pytest.raises(P.SuiteError, match=message):
        P.load_suite(write_suite(tmp_path, body))


# --------------------------------------------------------------------------- building and caching


@pytest.fixture()
def test_images():
    return digit_like(120, seed=5)


def test_build_suite_builds_then_loads_from_cache(tmp_path, suite, test_images):
    first = P.build_suite(test_images, suite, tmp_path)
    assert set(first.rebuilt) == set(suite.names) and not first.from_cache
    assert len(first) == len(suite)
    second = P.build_suite(test_images, suite, tmp_path)
    assert second.rebuilt == () and second.from_cache
    assert second.checksum == first.checksum and second.key == first.key
    assert {n: e.checksum for n, e in second.entries.items()} == {n: e.checksum for n, e in first.entries.items()}
    entry = second["mnist_c/fog"]
    np.testing.assert_array_equal(entry.indices, np.arange(len(test_images)))  # subset = min(2000, 120)
    images = entry.load()
    assert images.dtype == np.float32 and images.shape == test_images.shape
    expected = np.rint(suite["mnist_c/fog"].apply(test_images) * 255) / 255  # stored as 8-bit
    np.testing.assert_allclose(images, expected, atol=1e-6)
    assert not [p for p in first.directory.iterdir() if p.suffix == ".tmp"]  # no leftover temporary files


# one entry on the whole test set (the assignment's kind), one on the suite's default subset
TWO_ENTRY_SUITE = """
subset = 2000
[[entries]]
name = "full"
group = "assignment"
perturbation = "gaussian_noise"
seed = 1
subset = "all"
[[entries]]
name = "part"
group = "mnist_c"
perturbation = "brightness"
seed = 2
"""


def test_build_suite_subset_and_full_entries(tmp_path, suite):
    x = digit_like(2500, seed=1)
    small = P.load_suite(write_suite(tmp_path, TWO_ENTRY_SUITE))
    built = P.build_suite(x, small, tmp_path / "cache")
    assert len(built["full"].indices) == 2500 and len(built["part"].indices) == 2000
    assert built.n_images == 4500 == small.n_images(len(x))


def test_a_profiles_cap_shrinks_the_subset_entries_only_and_is_cached_apart(tmp_path):
    x = digit_like(2500, seed=1)
    small = P.load_suite(write_suite(tmp_path, TWO_ENTRY_SUITE))
    capped = P.capped(small, 300)
    built = P.build_suite(x, capped, tmp_path / "cache")
    assert len(built["full"].indices) == 2500 and len(built["part"].indices) == 300
    uncapped = P.build_suite(x, small, tmp_path / "cache")
    assert uncapped.key != built.key and len(uncapped["part"].indices) == 2000  # not served the capped sets
    np.testing.assert_array_equal(built["part"].load(), uncapped["part"].load()[:300])  # the same first images
    assert P.capped(small, None) is small


def test_the_tiny_profiles_cap_the_suite_and_the_grading_ones_do_not():
    profiles = load_protocol().profiles
    assert profiles["smoke"].suite_images and profiles["check"].suite_images
    assert profiles["full"].suite_images is None and profiles["quick"].suite_images is None


def test_build_suite_detects_and_repairs_a_corrupted_file(tmp_path, suite, test_images, caplog):
    first = P.build_suite(test_images, suite, tmp_path)
    victim = first["mnist_c/zigzag"]
    raw = bytearray(victim.path.read_bytes())
    raw[-10] ^= 0xFF  # flip bits in the pixel data, past the .npy header
    victim.path.write_bytes(bytes(raw))
    with pytest.raises(P.CacheCorrupted):
        victim.load()
    again = P.build_suite(test_images, suite, tmp_path)
    assert again.rebuilt == ("mnist_c/zigzag",)
    assert again.checksum == first.checksum  # rebuilt identically (deterministic)
    assert "rebuilding" in caplog.text
    np.testing.assert_array_equal(again["mnist_c/zigzag"].load(), first["mnist_c/zigzag"].load())
    victim.path.write_bytes(b"not a numpy file")
    assert P.build_suite(test_images, suite, tmp_path).rebuilt == ("mnist_c/zigzag",)
    os.remove(victim.path)
    assert P.build_suite(test_images, suite, tmp_path).rebuilt == ("mnist_c/zigzag",)


def test_build_suite_rebuilds_on_a_damaged_manifest(tmp_path, suite, test_images):
    first = P.build_suite(test_images, suite, tmp_path)
    (first.directory / "manifest.json").write_text("{ truncated", encoding="utf-8")
    again = P.build_suite(test_images, suite, tmp_path)
    assert set(again.rebuilt) == set(suite.names) and again.checksum == first.checksum
    manifest = json.loads((first.directory / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["key"] == first.key and set(manifest["entries"]) == set(suite.names)


def test_cache_key_follows_the_images_and_the_suite_file(tmp_path, suite, test_images):
    key = P.suite_cache_key(test_images, suite)
    other_images = test_images.copy()
    other_images[0, 0, 0, 0] = 0.5
    assert P.suite_cache_key(other_images, suite) != key
    text = suite.path.read_text(encoding="utf-8") + "\n# edited\n"
    edited = P.load_suite(write_suite(tmp_path, text))
    assert P.suite_cache_key(test_images, edited) != key
    assert P.suite_cache_key(test_images.astype(np.float64), suite) == key  # same pixels, other dtype


def test_examples_take_the_same_first_images_from_every_entry(tmp_path, suite, test_images):
    built = P.build_suite(test_images, suite, tmp_path)
    ex = P.examples(built, n=5)
    assert set(ex) == set(suite.names)
    for name, (indices, images) in ex.items():
        np.testing.assert_array_equal(indices, np.arange(5))
        assert images.shape == (5, 28, 28, 1) and images.dtype == np.float32
        np.testing.assert_array_equal(images, built[name].load()[:5])
    assert set(P.examples(built, n=2, names=["mnist_c/fog"])) == {"mnist_c/fog"}

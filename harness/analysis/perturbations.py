"""The robustness suite: image perturbations, the suite file, and building/caching the perturbed sets.

Every perturbation is a pure function ``f(images, rng, **params) -> images``:

* ``images`` is a float array of shape (N, H, W, 1) with values in [0, 1] (MNIST: H = W = 28);
* ``rng`` is a :class:`numpy.random.Generator`, the only source of randomness (same seed, same bytes);
* the result is a new float32 array of the same shape, clipped to [0, 1]. Labels are never involved.

They are registered by name in :data:`PERTURBATIONS`. Three groups use them:

``assignment``
    the two tests of step 6 of the assignment, exactly: Gaussian noise (sigma = 0.1, clipped) and a
    rotation by an angle drawn uniformly in [-15, 15] degrees per image with
    ``scipy.ndimage.rotate(..., reshape=False)``.
``mnist_c``
    the 15 corruptions of MNIST-C (Mu & Gilmer 2019, "MNIST-C: A Robustness Benchmark for Computer
    Vision", arXiv:1906.02337), re-implemented here from their definitions with numpy/scipy.
    MNIST-C adapts the ImageNet-C corruptions (Hendrycks & Dietterich 2019) and adds affine
    transforms and line/edge corruptions; each corruption is used at a single severity. The parameter
    values (recorded in ``reference/robustness_suite.toml``) are the published ones as far as they
    are known to us; no code from the MNIST-C repository is used, so the images are *not*
    byte-identical to the published MNIST-C files and the numbers are not directly comparable with
    the paper's tables.
``sweep``
    severity sweeps (Gaussian noise sigma, rotation angle, shift in pixels, Gaussian blur sigma) for
    accuracy-versus-severity curves.

The suite itself is data (``reference/robustness_suite.toml``, read by :func:`load_suite`);
:func:`build_suite` builds every perturbed set once and caches it on disk.

>>> rng = np.random.default_rng(0)
>>> x = np.zeros((2, 28, 28, 1), np.float32)
>>> PERTURBATIONS["brightness"](x, rng, amount=0.4).max()
np.float32(0.4)
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from harness.resources import bundled
from harness.util.atomic import atomic_write

log = logging.getLogger(__name__)

Perturbation = Callable[..., np.ndarray]

#: name -> perturbation function ``f(images, rng, **params)``.
PERTURBATIONS: dict[str, Perturbation] = {}

#: Perturbations that draw nothing from ``rng`` (the same output whatever the seed).
DETERMINISTIC: frozenset[str] = frozenset({"gaussian_blur", "scale", "brightness", "canny_edges"})

#: Bumped whenever a perturbation's output changes, so that caches built by older code are not reused.
IMPLEMENTATION_VERSION = "1"

GROUPS = ("assignment", "mnist_c", "sweep")


def register_perturbation(name: str) -> Callable[[Perturbation], Perturbation]:
    """Register the decorated function as the perturbation `name` (``perturbation = "<name>"`` in a suite file)."""

    def decorate(func: Perturbation) -> Perturbation:
        if name in PERTURBATIONS:
            raise ValueError(f"perturbation {name!r} registered twice")
        PERTURBATIONS[name] = func
        return func

    return decorate


# --------------------------------------------------------------------------- helpers


def _prepare(images: np.ndarray) -> np.ndarray:
    """Validate an (N, H, W, 1) batch in [0, 1]; return a float64 (N, H, W) copy to work on."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 1:
        raise ValueError(f"expected images of shape (N, H, W, 1), got {images.shape}")
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"expected float images in [0, 1], got dtype {images.dtype}")
    if images.size and (not np.isfinite(images).all() or images.min() < -1e-6 or images.max() > 1 + 1e-6):
        raise ValueError("expected image values in [0, 1] (divide uint8 images by 255 first)")
    return images[..., 0].astype(np.float64)


def _finish(x: np.ndarray) -> np.ndarray:
    """(N, H, W) float -> (N, H, W, 1) float32 clipped to [0, 1]."""
    return np.clip(x, 0.0, 1.0).astype(np.float32)[..., None]


def _random_signs(rng: np.random.Generator, size: int | tuple[int, ...]) -> np.ndarray:
    return rng.choice(np.array([-1.0, 1.0]), size=size)


_WARP_CHUNK = 256


def _warp_affine(x: np.ndarray, matrices: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
    """Bilinear warp of a batch (N, H, W), zero outside, per-image inverse map.

    The output pixel at p (row, col) takes the input value at ``A @ (p - c) + c + t``, where c is the
    image centre ((H-1)/2, (W-1)/2), A = ``matrices[n]`` (2x2, row/col order) and t = ``offsets[n]``.
    This is ``skimage.transform.warp(image, inverse_map)`` with order=1 and a zero constant border,
    the interpolation MNIST-C uses for its affine corruptions. Integer translations are exact.
    """
    n, h, w = x.shape
    if offsets is None:
        offsets = np.zeros((n, 2))
    if n > _WARP_CHUNK:  # small blocks keep the temporaries in cache: several times faster on 10k images
        return np.concatenate(
            [
                _warp_affine(x[i : i + _WARP_CHUNK], matrices[i : i + _WARP_CHUNK], offsets[i : i + _WARP_CHUNK])
                for i in range(0, n, _WARP_CHUNK)
            ]
        )
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    grid = np.stack([rows.ravel() - centre[0], cols.ravel() - centre[1]])  # (2, HW)
    src = np.einsum("nij,jk->nik", matrices, grid) + (centre + offsets)[:, :, None]  # (N, 2, HW)
    r, c = src[:, 0], src[:, 1]
    r0, c0 = np.floor(r), np.floor(c)
    fr, fc = r - r0, c - c0
    r0, c0 = r0.astype(np.intp), c0.astype(np.intp)
    flat = x.reshape(n, h * w)
    out = np.zeros((n, h * w))
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        index = np.where(inside, rr * w + cc, 0)
        out += np.where(inside, np.take_along_axis(flat, index, axis=1) * weight, 0.0)
    return out.reshape(n, h, w)


def _shift_exact(x: np.ndarray, dr: np.ndarray, dc: np.ndarray) -> np.ndarray:
    """Move each image's content by integer (dr[n], dc[n]) pixels (down/right positive), zero fill."""
    n = len(x)
    eye = np.broadcast_to(np.eye(2), (n, 2, 2))
    return _warp_affine(x, eye, -np.stack([dr, dc], axis=1).astype(np.float64))


def _gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return x.copy()
    return ndimage.gaussian_filter(x, sigma=(0, sigma, sigma), mode="constant", cval=0.0)


def _draw_polylines(
    canvas: np.ndarray,
    vertices: np.ndarray,
    value: float = 1.0,
    dot_spacing: int | None = None,
    step: float = 0.5,
) -> None:
    """Draw one polyline per image in place: ``vertices`` is (N, V, 2) in (row, col) pixel coordinates.

    The segments are sampled every ``step`` pixels of arc length and each sample sets its nearest pixel
    to ``max(pixel, value)``; parts outside the image are dropped. With ``dot_spacing`` = k only one
    sample every k pixels of arc length is kept: single-pixel dots k pixels apart (a dotted line).
    """
    n, h, w = canvas.shape
    if n == 0:
        return
    image_index = np.arange(n)[:, None]
    arc_start = np.zeros(n)
    samples_per_dot = None if dot_spacing is None else max(1, int(round(dot_spacing / step)))
    for v in range(vertices.shape[1] - 1):
        p0, p1 = vertices[:, v], vertices[:, v + 1]
        length = np.hypot(*(p1 - p0).T)
        k_max = int(np.ceil(length.max() / step)) + 1
        t = np.arange(k_max) * step  # arc length from p0
        keep = t[None, :] <= length[:, None] + 1e-9
        frac = np.divide(t[None, :], length[:, None], out=np.zeros((n, k_max)), where=length[:, None] > 0)
        pts = p0[:, None, :] + frac[..., None] * (p1 - p0)[:, None, :]  # (N, K, 2)
        if samples_per_dot is not None:
            arc_index = np.rint((arc_start[:, None] + t[None, :]) / step).astype(np.int64)
            keep &= arc_index % samples_per_dot == 0
        rr, cc = np.rint(pts[..., 0]).astype(np.intp), np.rint(pts[..., 1]).astype(np.intp)
        keep &= (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        ii = np.broadcast_to(image_index, rr.shape)[keep]
        rr, cc = rr[keep], cc[keep]
        canvas[ii, rr, cc] = np.maximum(canvas[ii, rr, cc], value)
        arc_start = arc_start + length


def _plasma_fractal(rng: np.random.Generator, n: int, size: int = 32, decay: float = 3.0) -> np.ndarray:
    """Diamond-square plasma fractal, (n, size, size) in [0, 1]; ``size`` a power of two, wrapping edges.

    At each level the new points are the mean of their four neighbours plus a uniform random
    displacement whose amplitude is divided by ``decay`` at every level (the fog of ImageNet-C and
    MNIST-C; a smaller decay keeps more fine-scale texture).
    """
    if size & (size - 1):
        raise ValueError("plasma size must be a power of two")
    m = np.zeros((n, size, size))
    step, amplitude = size, 100.0
    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        square = (corners + np.roll(corners, -1, 1) + np.roll(corners, -1, 2) + np.roll(corners, (-1, -1), (1, 2))) / 4
        m[:, half::step, half::step] = square + amplitude * rng.uniform(-1, 1, square.shape)
        corners = m[:, 0::step, 0::step]
        centres = m[:, half::step, half::step]
        top = (corners + np.roll(corners, -1, 2) + centres + np.roll(centres, 1, 1)) / 4
        left = (corners + np.roll(corners, -1, 1) + centres + np.roll(centres, 1, 2)) / 4
        m[:, 0::step, half::step] = top + amplitude * rng.uniform(-1, 1, top.shape)
        m[:, half::step, 0::step] = left + amplitude * rng.uniform(-1, 1, left.shape)
        step, amplitude = half, amplitude / decay
    m -= m.min(axis=(1, 2), keepdims=True)
    peak = m.max(axis=(1, 2), keepdims=True)
    return np.divide(m, peak, out=np.zeros_like(m), where=peak > 0)


# --------------------------------------------------------------------------- assignment (step 6)


@register_perturbation("gaussian_noise")
def gaussian_noise(images: np.ndarray, rng: np.random.Generator, sigma: float = 0.1) -> np.ndarray:
    """Additive Gaussian noise N(0, sigma^2) per pixel, then clipped to [0, 1] (the assignment's test).

    >>> x = np.full((1, 28, 28, 1), 0.5, np.float32)
    >>> y = gaussian_noise(x, np.random.default_rng(0), sigma=0.1)
    >>> round(float((y - x).std()), 2)
    0.1
    """
    x = _prepare(images)
    return _finish(x + rng.normal(0.0, sigma, size=x.shape))


def rotation_angles(rng: np.random.Generator, n: int, max_angle: float = 15.0) -> np.ndarray:
    """The angles (degrees) :func:`random_rotation` draws first from ``rng``: uniform in [-max, max].

    >>> a = rotation_angles(np.random.default_rng(0), 1000)
    >>> bool(a.min() >= -15 and a.max() <= 15)
    True
    """
    return rng.uniform(-max_angle, max_angle, size=n)


@register_perturbation("random_rotation")
def random_rotation(images: np.ndarray, rng: np.random.Generator, max_angle: float = 15.0) -> np.ndarray:
    """Rotate each image by its own angle drawn uniformly in [-max_angle, max_angle] degrees.

    Exactly the assignment's test: ``scipy.ndimage.rotate(img, angle, reshape=False)`` (cubic spline,
    zero border), one angle per image (from :func:`rotation_angles`). The spline can overshoot
    slightly; the result is clipped to [0, 1] (the assignment does not clip).

    >>> x = np.zeros((3, 28, 28, 1), np.float32); x[:, 10:18, 13:15] = 1
    >>> random_rotation(x, np.random.default_rng(0)).shape
    (3, 28, 28, 1)
    """
    x = _prepare(images)
    angles = rotation_angles(rng, len(x), max_angle)
    out = np.empty_like(x)
    for i, angle in enumerate(angles):
        out[i] = ndimage.rotate(x[i], angle, reshape=False)
    return _finish(out)


# --------------------------------------------------------------------------- MNIST-C: noise


@register_perturbation("shot_noise")
def shot_noise(images: np.ndarray, rng: np.random.Generator, photons: float = 5.0) -> np.ndarray:
    """Poisson (shot) noise: ``Poisson(x * photons) / photons``; fewer photons, more noise.

    Black pixels stay black (Poisson(0) = 0); ink gets grainy. Poisson sampling consumes a
    data-dependent amount of randomness, so each image draws from its own child generator
    (``rng.spawn``): an image's noise does not depend on the other images of the batch.

    >>> x = np.zeros((1, 28, 28, 1), np.float32)
    >>> float(shot_noise(x, np.random.default_rng(0)).max())
    0.0
    """
    x = _prepare(images)
    out = np.empty_like(x)
    for i, child in enumerate(rng.spawn(len(x))):
        out[i] = child.poisson(x[i] * photons)
    return _finish(out / photons)


@register_perturbation("impulse_noise")
def impulse_noise(
    images: np.ndarray, rng: np.random.Generator, amount: float = 0.17, salt_vs_pepper: float = 0.5
) -> np.ndarray:
    """Salt-and-pepper noise: a fraction ``amount`` of pixels is replaced, by 1 (salt, with probability
    ``salt_vs_pepper``) or 0 (pepper).

    >>> x = np.full((1, 28, 28, 1), 0.5, np.float32)
    >>> y = impulse_noise(x, np.random.default_rng(0))
    >>> bool(((y == 0) | (y == 1)).any())
    True
    """
    x = _prepare(images)
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < salt_vs_pepper
    x[hit & salt] = 1.0
    x[hit & ~salt] = 0.0
    return _finish(x)


# --------------------------------------------------------------------------- MNIST-C: blur


@register_perturbation("glass_blur")
def glass_blur(
    images: np.ndarray, rng: np.random.Generator, sigma: float = 0.7, max_delta: int = 1, iterations: int = 2
) -> np.ndarray:
    """Glass blur: Gaussian blur, then locally shuffle pixels, then blur again.

    The shuffle visits every pixel at least ``max_delta`` from the border (bottom-right to top-left,
    ``iterations`` times) and swaps it with a neighbour at a random offset in [-max_delta, max_delta]^2
    (drawn independently per image). Vectorised over the batch; the loop is over pixel positions.
    """
    x = _gaussian_blur(_prepare(images), sigma)
    n, h, w = x.shape
    if n:
        rows = np.arange(h - 1 - max_delta, max_delta - 1, -1)
        cols = np.arange(w - 1 - max_delta, max_delta - 1, -1)
        offsets = rng.integers(-max_delta, max_delta + 1, size=(iterations, len(rows), len(cols), 2, n))
        idx = np.arange(n)
        for it in range(iterations):
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    r2 = r + offsets[it, i, j, 0]
                    c2 = c + offsets[it, i, j, 1]
                    here = x[idx, r, c]
                    x[idx, r, c] = x[idx, r2, c2]
                    x[idx, r2, c2] = here
    return _finish(_gaussian_blur(x, sigma))


@register_perturbation("motion_blur")
def motion_blur(
    images: np.ndarray, rng: np.random.Generator, radius: int = 10, sigma: float = 3.0, max_angle: float = 45.0
) -> np.ndarray:
    """One-sided motion blur (ImageMagick's ``-motion-blur radius x sigma + angle``, used by MNIST-C).

    Each output pixel is a weighted mean of the input along a line behind it, at distances
    k = 0..radius pixels in the direction of an angle drawn uniformly in [-max_angle, max_angle] degrees
    per image, with weights proportional to exp(-k^2 / (2 sigma^2)) (bilinear sampling, zero outside).
    """
    x = _prepare(images)
    n, h, w = x.shape
    theta = np.deg2rad(rng.uniform(-max_angle, max_angle, size=n))
    direction = np.stack([np.sin(theta), np.cos(theta)], axis=1)  # (row, col)
    k = np.arange(radius + 1, dtype=np.float64)
    weights = np.exp(-(k**2) / (2 * sigma**2))
    weights /= weights.sum()
    # Sampling x bilinearly at p - k*d for every pixel p is a correlation of x with a small kernel
    # (the bilinear weights of -k*d spread over four integer offsets), so the whole blur is one
    # per-image convolution, done with batched FFTs (exactly the sum of the shifted copies).
    reach = radius + 1
    size = 2 * reach + 1
    kernel = np.zeros((n, size, size))
    rows = np.arange(n)
    for dist, weight in zip(k, weights):
        source = -dist * direction  # offset of the sampled point from the output pixel
        base = np.floor(source)
        frac = source - base
        base = base.astype(np.intp)
        for a in (0, 1):
            for b in (0, 1):
                beta = (frac[:, 0] if a else 1 - frac[:, 0]) * (frac[:, 1] if b else 1 - frac[:, 1])
                # convolution index of correlation offset o is -o, centred at `reach`
                np.add.at(kernel, (rows, reach - (base[:, 0] + a), reach - (base[:, 1] + b)), weight * beta)
    shape = (h + size - 1, w + size - 1)
    out = np.empty_like(x)
    for i in range(0, n, 512):
        spectrum = np.fft.rfft2(x[i : i + 512], s=shape) * np.fft.rfft2(kernel[i : i + 512], s=shape)
        out[i : i + 512] = np.fft.irfft2(spectrum, s=shape)[:, reach : reach + h, reach : reach + w]
    return _finish(out)


# --------------------------------------------------------------------------- MNIST-C: affine


@register_perturbation("shear")
def shear(images: np.ndarray, rng: np.random.Generator, shear: float = 0.4) -> np.ndarray:
    """Shear about the image centre by ``shear`` radians, with a random sign per image.

    As ``skimage.transform.AffineTransform(shear=s)`` used as the inverse map of a bilinear warp,
    with the translation chosen to keep the centre fixed: the output pixel (row, col) (centred
    coordinates) takes the input at (cos(s) * row, col - sin(s) * row).
    """
    x = _prepare(images)
    s = shear * _random_signs(rng, len(x))
    a = np.zeros((len(x), 2, 2))
    a[:, 0, 0] = np.cos(s)
    a[:, 1, 0] = -np.sin(s)
    a[:, 1, 1] = 1.0
    return _finish(_warp_affine(x, a))


@register_perturbation("scale")
def scale(images: np.ndarray, rng: np.random.Generator, factor: float = 0.6) -> np.ndarray:
    """Scale the digit about the image centre by ``factor`` (0.6: shrink to 60 %), bilinear, zero fill.

    The inverse map is ``AffineTransform(scale=1/factor)``, centre fixed. Deterministic.
    """
    x = _prepare(images)
    a = np.broadcast_to(np.eye(2) / factor, (len(x), 2, 2))
    return _finish(_warp_affine(x, a))


@register_perturbation("rotate")
def rotate(images: np.ndarray, rng: np.random.Generator, angle: float = 0.4) -> np.ndarray:
    """MNIST-C's rotation: by ``angle`` radians about the centre, with a random sign per image
    (bilinear, zero fill). Not the assignment's test, which is :func:`random_rotation`.
    """
    x = _prepare(images)
    a = angle * _random_signs(rng, len(x))
    cos, sin = np.cos(a), np.sin(a)
    m = np.stack([np.stack([cos, -sin], axis=1), np.stack([sin, cos], axis=1)], axis=1)
    return _finish(_warp_affine(x, m))


@register_perturbation("translate")
def translate(images: np.ndarray, rng: np.random.Generator, pixels: int = 3) -> np.ndarray:
    """Translate by ``pixels`` along both axes, each with a random sign (a diagonal move), zero fill.

    >>> x = np.zeros((1, 28, 28, 1), np.float32); x[0, 14, 14] = 1
    >>> y = translate(x, np.random.default_rng(0), pixels=3)
    >>> [abs(int(v) - 14) for v in np.argwhere(y[0, ..., 0] == 1)[0]]
    [3, 3]
    """
    x = _prepare(images)
    signs = _random_signs(rng, (len(x), 2))
    return _finish(_shift_exact(x, signs[:, 0] * pixels, signs[:, 1] * pixels))


@register_perturbation("brightness")
def brightness(images: np.ndarray, rng: np.random.Generator, amount: float = 0.4) -> np.ndarray:
    """Brightness: add ``amount`` to the HSV value channel and clip.

    For a grey image (R = G = B) this is exactly ``clip(x + amount, 0, 1)``: saturation is 0, value is
    the grey level, and converting back to grey returns the value. Deterministic.
    """
    return _finish(_prepare(images) + amount)


# --------------------------------------------------------------------------- MNIST-C: occlusion


@register_perturbation("stripe")
def stripe(images: np.ndarray, rng: np.random.Generator, width: int = 3, margin: int = 6) -> np.ndarray:
    """Invert a vertical stripe ``width`` pixels wide (x -> 1 - x) whose left column is drawn uniformly
    per image between ``margin`` and ``W - margin - width``: a bright bar in which the stroke shows dark.
    """
    x = _prepare(images)
    n, _, w = x.shape
    start = rng.integers(margin, w - margin - width + 1, size=n)
    cols = np.arange(w)[None, :]
    inside = (cols >= start[:, None]) & (cols < start[:, None] + width)  # (N, W)
    inside = np.broadcast_to(inside[:, None, :], x.shape)
    return _finish(np.where(inside, 1.0 - x, x))


@register_perturbation("fog")
def fog(images: np.ndarray, rng: np.random.Generator, strength: float = 1.5, decay: float = 2.0) -> np.ndarray:
    """Fog: add ``strength`` times a plasma fractal (diamond-square, 32x32 cropped), then rescale by
    ``max / (max + strength)`` where ``max`` is the image's largest value (ImageNet-C's fog)."""
    x = _prepare(images)
    n, h, w = x.shape
    size = 1 << max(h - 1, w - 1).bit_length()
    plasma = _plasma_fractal(rng, n, size, decay)[:, :h, :w]
    peak = x.max(axis=(1, 2), keepdims=True)
    return _finish((x + strength * plasma) * peak / (peak + strength))


@register_perturbation("spatter")
def spatter(
    images: np.ndarray,
    rng: np.random.Generator,
    loc: float = 0.65,
    scale: float = 0.3,
    sigma: float = 1.0,
    threshold: float = 0.8,
    intensity: float = 0.6,
) -> np.ndarray:
    """Spatter: grey splashes. A Gaussian field N(loc, scale^2) per pixel is blurred (``sigma``), its
    excess over ``threshold`` marks the drops, whose mask (softened by a 0.5-pixel blur) is added with
    weight ``intensity``. About 4 % of the pixels are covered with the default values.
    """
    x = _prepare(images)
    liquid = _gaussian_blur(rng.normal(loc, scale, size=x.shape), sigma)
    drops = ndimage.gaussian_filter((liquid > threshold).astype(np.float64), sigma=(0, 0.5, 0.5), mode="constant")
    return _finish(x + intensity * np.clip(1.5 * drops, 0.0, 1.0))


def _random_line_through_centre(
    rng: np.random.Generator, n: int, h: int, w: int, jitter: float
) -> tuple[np.ndarray, np.ndarray]:
    """A random point near the centre (uniform within +-jitter) and a random direction, per image."""
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0]) + rng.uniform(-jitter, jitter, size=(n, 2))
    theta = rng.uniform(0.0, np.pi, size=n)
    return centre, np.stack([np.sin(theta), np.cos(theta)], axis=1)


@register_perturbation("dotted_line")
def dotted_line(
    images: np.ndarray, rng: np.random.Generator, dot_spacing: int = 3, jitter: float = 7.0, value: float = 1.0
) -> np.ndarray:
    """Draw a dotted straight line across the whole image: through a point within ``jitter`` pixels of
    the centre, at a uniform random angle, one white dot every ``dot_spacing`` pixels."""
    x = _prepare(images)
    n, h, w = x.shape
    centre, direction = _random_line_through_centre(rng, n, h, w, jitter)
    reach = float(h + w)
    vertices = np.stack([centre - reach * direction, centre + reach * direction], axis=1)
    _draw_polylines(x, vertices, value=value, dot_spacing=dot_spacing)
    return _finish(x)


@register_perturbation("zigzag")
def zigzag(
    images: np.ndarray,
    rng: np.random.Generator,
    segments: int = 4,
    run: float = 5.0,
    amplitude: float = 3.0,
    jitter: float = 5.0,
    value: float = 1.0,
) -> np.ndarray:
    """Draw a solid zigzag polyline over the digit: ``segments`` strokes, each advancing ``run`` pixels
    along a random direction while alternating ``amplitude`` pixels either side of it, centred within
    ``jitter`` pixels of the image centre."""
    x = _prepare(images)
    n, h, w = x.shape
    centre, direction = _random_line_through_centre(rng, n, h, w, jitter)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    k = np.arange(segments + 1)
    along = (k - segments / 2.0) * run
    across = amplitude * np.where(k % 2 == 0, 1.0, -1.0) * _random_signs(rng, n)[:, None]  # (N, V)
    vertices = (
        centre[:, None, :] + along[None, :, None] * direction[:, None, :] + across[..., None] * normal[:, None, :]
    )
    _draw_polylines(x, vertices, value=value)
    return _finish(x)


# --------------------------------------------------------------------------- MNIST-C: edges


def canny(x: np.ndarray, sigma: float = 1.0, low: float = 0.1, high: float = 0.2) -> np.ndarray:
    """Canny edge detector on a batch (N, H, W) in [0, 1]; returns a boolean edge map (N, H, W).

    Gaussian smoothing (``sigma``), Sobel gradients (3x3, per image), non-maximum suppression
    along the gradient direction quantised to 0/45/90/135 degrees, double threshold on the gradient
    magnitude (``low``/``high``, the defaults of ``skimage.feature.canny`` for float images), and
    hysteresis: a weak pixel is kept when its 8-connected component of weak pixels holds a strong one.
    """
    n, h, w = x.shape
    smooth = ndimage.gaussian_filter(x, sigma=(0, sigma, sigma), mode="constant")
    # Sobel per image: ndimage.sobel would also smooth across the batch axis, mixing images.
    derivative, smoothing = np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0])
    g_row = ndimage.correlate1d(
        ndimage.correlate1d(smooth, derivative, axis=1, mode="constant"), smoothing, axis=2, mode="constant"
    )
    g_col = ndimage.correlate1d(
        ndimage.correlate1d(smooth, derivative, axis=2, mode="constant"), smoothing, axis=1, mode="constant"
    )
    magnitude = np.hypot(g_row, g_col)
    angle = np.rad2deg(np.arctan2(g_row, g_col)) % 180.0
    sector = (np.floor((angle + 22.5) / 45.0).astype(np.intp)) % 4  # 0: 0deg, 1: 45deg, 2: 90deg, 3: 135deg
    steps = np.array([(0, 1), (1, 1), (1, 0), (1, -1)])
    padded = np.pad(magnitude, ((0, 0), (1, 1), (1, 1)))
    is_max = np.zeros_like(magnitude, dtype=bool)
    for s, (dr, dc) in enumerate(steps):
        ahead = padded[:, 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w]
        behind = padded[:, 1 - dr : 1 - dr + h, 1 - dc : 1 - dc + w]
        is_max |= (sector == s) & (magnitude >= ahead) & (magnitude >= behind)
    is_max &= magnitude > 0
    strong = is_max & (magnitude >= high)
    weak = is_max & (magnitude >= low)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # 8-connectivity within an image, never across images
    labels, count = ndimage.label(weak, structure=structure)
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return keep[labels]


@register_perturbation("canny_edges")
def canny_edges(
    images: np.ndarray, rng: np.random.Generator, sigma: float = 1.0, low: float = 0.1, high: float = 0.2
) -> np.ndarray:
    """Replace each image by its Canny edge map (1 on edges, 0 elsewhere): the digit's outline.
    Deterministic; see :func:`canny`."""
    return _finish(canny(_prepare(images), sigma, low, high).astype(np.float64))


# --------------------------------------------------------------------------- sweeps


@register_perturbation("fixed_rotation")
def fixed_rotation(images: np.ndarray, rng: np.random.Generator, angle: float = 15.0) -> np.ndarray:
    """Rotate every image by exactly ``angle`` degrees, clockwise or anticlockwise at random (per image),
    with the assignment's interpolation (``scipy.ndimage.rotate``, cubic spline, ``reshape=False``)."""
    x = _prepare(images)
    signs = _random_signs(rng, len(x))
    out = np.empty_like(x)
    for sign in (-1.0, 1.0):
        chosen = signs == sign
        if chosen.any():
            # axes=(2, 1) on a (N, H, W) stack is the same rotation as rotate(img, angle) on each (H, W) image
            out[chosen] = ndimage.rotate(x[chosen], sign * angle, axes=(2, 1), reshape=False)
    return _finish(out)


@register_perturbation("shift")
def shift(images: np.ndarray, rng: np.random.Generator, pixels: int = 2) -> np.ndarray:
    """Shift each image by exactly ``pixels`` pixels up, down, left or right (chosen at random per
    image), zero fill; an exact integer move, no interpolation."""
    x = _prepare(images)
    n = len(x)
    moves = np.array([(-1, 0), (1, 0), (0, -1), (0, 1)], dtype=np.float64) * pixels
    chosen = moves[rng.integers(0, 4, size=n)]
    return _finish(_shift_exact(x, chosen[:, 0], chosen[:, 1]))


@register_perturbation("gaussian_blur")
def gaussian_blur(images: np.ndarray, rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` pixels (zero border). Deterministic."""
    return _finish(_gaussian_blur(_prepare(images), sigma))


# --------------------------------------------------------------------------- handwriting (the private check set)


@register_perturbation("elastic")
def elastic(images: np.ndarray, rng: np.random.Generator, pixels: float = 1.0, sigma: float = 4.0) -> np.ndarray:
    """Elastic distortion (Simard et al. 2003): every pixel displaced by a smooth random field,
    Gaussian-filtered white noise of scale ``sigma`` pixels rescaled so that the displacement's root
    mean square is ``pixels`` per image; bilinear, zero outside. The same digit, written by another hand."""
    x = _prepare(images)
    n, h, w = x.shape
    field = ndimage.gaussian_filter(rng.uniform(-1.0, 1.0, (2, n, h, w)), sigma=(0, 0, sigma, sigma), mode="constant")
    rms = np.sqrt(np.mean(field**2, axis=(0, 2, 3), keepdims=True))
    field *= pixels / np.maximum(rms, 1e-12)
    batch, rows, cols = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
    coords = np.stack([batch, rows + field[0], cols + field[1]]).astype(np.float64)
    # integer coordinates along the batch axis: linear interpolation never mixes two images
    return _finish(ndimage.map_coordinates(x, coords, order=1, mode="constant", cval=0.0))


@register_perturbation("stroke_thickness")
def stroke_thickness(
    images: np.ndarray, rng: np.random.Generator, thicker: float = 0.5, amount: float = 1.0
) -> np.ndarray:
    """Strokes thicker (grey dilation, 2x2) with probability ``thicker``, else thinner (grey erosion,
    2x2), per image, by ``amount`` of a pixel (1: the whole morphological step, 0.5: half of it, a
    blend): Morpho-MNIST's thickening and thinning, in grey levels."""
    x = _prepare(images)
    grow = rng.random(len(x)) < thicker
    changed = np.empty_like(x)
    changed[grow] = ndimage.grey_dilation(x[grow], size=(1, 2, 2))
    changed[~grow] = ndimage.grey_erosion(x[~grow], size=(1, 2, 2))
    return _finish(x + amount * (changed - x))


@register_perturbation("recentre")
def recentre(images: np.ndarray, rng: np.random.Generator, jitter: int = 1) -> np.ndarray:
    """The digit moved so that its centre of mass is at the image's centre, as MNIST's own
    preprocessing placed it (a distortion moves it), then by a random whole number of pixels in
    [-jitter, jitter] along each axis; exact, zero fill. A blank image is only jittered."""
    x = _prepare(images)
    n, h, w = x.shape
    mass = x.sum(axis=(1, 2))
    weight = np.where(mass > 0, mass, 1.0)
    row = np.where(mass > 0, (x.sum(axis=2) * np.arange(h)).sum(axis=1) / weight, h / 2)
    col = np.where(mass > 0, (x.sum(axis=1) * np.arange(w)).sum(axis=1) / weight, w / 2)
    moves = rng.integers(-jitter, jitter + 1, size=(n, 2))
    return _finish(_shift_exact(x, np.rint(h / 2 - row) + moves[:, 0], np.rint(w / 2 - col) + moves[:, 1]))


# --------------------------------------------------------------------------- the suite file


@dataclass(frozen=True)
class SuiteEntry:
    """One perturbed test set of the suite."""

    name: str
    perturbation: str
    params: Mapping[str, Any]
    seed: int
    group: str
    subset: int | None  # number of test images used (the first ones); None: the whole test set
    severity: float | None = None
    family: str | None = None
    description: str = ""

    def apply(self, images: np.ndarray) -> np.ndarray:
        """Perturb ``images`` with this entry's function, parameters and seed."""
        return PERTURBATIONS[self.perturbation](images, np.random.default_rng(self.seed), **dict(self.params))

    def n_images(self, n_test: int) -> int:
        """Test images this entry perturbs: its subset of the first ones, or all ``n_test``."""
        return n_test if self.subset is None else min(self.subset, n_test)


@dataclass(frozen=True)
class Suite:
    """The robustness suite, as read from its TOML file by :func:`load_suite`."""

    entries: tuple[SuiteEntry, ...]
    subset: int | None  # the file's default number of test images per entry; None: all
    sha256: str  # of the file's bytes
    path: Path | None = None

    def __iter__(self) -> Iterator[SuiteEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, name: str) -> SuiteEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """The entries' names, in suite order."""
        return [e.name for e in self.entries]

    def group(self, group: str) -> list[SuiteEntry]:
        """The entries of one group (assignment, mnist_c or sweep), in suite order."""
        return [e for e in self.entries if e.group == group]

    def sweeps(self) -> dict[str, list[SuiteEntry]]:
        """Sweep entries by family, each list sorted by severity."""
        families: dict[str, list[SuiteEntry]] = {}
        for e in self.group("sweep"):
            families.setdefault(e.family or "", []).append(e)
        return {f: sorted(es, key=lambda e: e.severity) for f, es in families.items()}

    def n_images(self, n_test: int) -> int:
        """Images a model must predict to cover the whole suite, for a test set of ``n_test`` images."""
        return sum(e.n_images(n_test) for e in self.entries)


class SuiteError(ValueError):
    """The suite file is malformed."""


def default_suite_path() -> Path:
    """``reference/robustness_suite.toml`` as shipped with the harness."""
    return bundled("reference", "robustness_suite.toml")


_ENTRY_KEYS = {"name", "perturbation", "params", "seed", "group", "severity", "family", "subset", "description"}


def _parse_subset(value: Any, where: str) -> int | None:
    if value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SuiteError(f'{where}: subset must be a positive integer or "all", got {value!r}')
    return value


def load_suite(path: str | os.PathLike | None = None) -> Suite:
    """Read and validate a suite file (default: :func:`default_suite_path`).

    Checks: every entry has a unique ``name``, names a registered ``perturbation`` whose signature
    accepts its ``params``, an integer ``seed``, a known ``group``; sweep entries have a numeric
    ``severity`` and a ``family``. Entries use the first ``subset`` test images (top-level setting,
    overridable per entry; ``"all"`` means the whole test set).
    """
    path = Path(path) if path is not None else default_suite_path()
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from exc
    default_subset = _parse_subset(data.get("subset", "all"), f"{path}: subset")
    items = data.get("entries")
    if not isinstance(items, list) or not items:
        raise SuiteError(f"{path}: no [[entries]]")
    entries: list[SuiteEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        where = f"{path}: entry {i} ({item.get('name', '?')!r})"
        unknown = set(item) - _ENTRY_KEYS
        if unknown:
            raise SuiteError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("name", "perturbation", "seed", "group"):
            if key not in item:
                raise SuiteError(f"{where}: missing {key!r}")
        name, perturbation, seed, group = item["name"], item["perturbation"], item["seed"], item["group"]
        if not isinstance(name, str) or not name or name in seen:
            raise SuiteError(f"{where}: name must be a unique non-empty string")
        seen.add(name)
        if perturbation not in PERTURBATIONS:
            raise SuiteError(f"{where}: unknown perturbation {perturbation!r}; known: {sorted(PERTURBATIONS)}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SuiteError(f"{where}: seed must be a non-negative integer")
        if group not in GROUPS:
            raise SuiteError(f"{where}: group must be one of {GROUPS}")
        params = item.get("params", {})
        if not isinstance(params, dict):
            raise SuiteError(f"{where}: params must be a table")
        try:
            inspect.signature(PERTURBATIONS[perturbation]).bind(None, None, **params)
        except TypeError as exc:
            raise SuiteError(f"{where}: bad params for {perturbation}: {exc}") from exc
        severity, family = item.get("severity"), item.get("family")
        if group == "sweep":
            if isinstance(severity, bool) or not isinstance(severity, (int, float)) or not isinstance(family, str):
                raise SuiteError(f"{where}: sweep entries need a numeric severity and a family")
        subset = _parse_subset(item["subset"], where) if "subset" in item else default_subset
        entries.append(
            SuiteEntry(
                name=name,
                perturbation=perturbation,
                params=dict(params),
                seed=seed,
                group=group,
                subset=subset,
                severity=None if severity is None else float(severity),
                family=family,
                description=str(item.get("description", "")),
            )
        )
    return Suite(tuple(entries), default_subset, hashlib.sha256(raw).hexdigest(), path)


# --------------------------------------------------------------------------- building and caching


class CacheCorrupted(RuntimeError):
    """A cached perturbed set no longer matches its recorded checksum."""


def _array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def _from_uint8(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) / np.float32(255.0)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__")) + ".npy"


@dataclass(frozen=True)
class BuiltEntry:
    """A perturbed set on disk: ``load()`` gives its images, ``indices`` the test images it perturbs."""

    entry: SuiteEntry
    indices: np.ndarray  # positions in the test set (labels: y_test[indices])
    checksum: str  # sha256 of the stored uint8 array's bytes
    path: Path

    @property
    def name(self) -> str:
        """The suite entry's name."""
        return self.entry.name

    def load(self, verify: bool = True) -> np.ndarray:
        """The perturbed images, float32 (n, 28, 28, 1) in [0, 1] (stored as 8-bit, like MNIST-C).

        Read from the cache on every call (nothing is kept in memory); with ``verify`` the bytes are
        checked against :attr:`checksum` and :class:`CacheCorrupted` is raised on a mismatch.
        """
        stored = np.load(self.path, allow_pickle=False)
        if verify and _array_sha256(stored) != self.checksum:
            raise CacheCorrupted(f"{self.path}: checksum mismatch")
        return _from_uint8(stored)

    def head(self, k: int) -> np.ndarray:
        """The first ``k`` perturbed images (memory-mapped read, not re-verified): for report figures."""
        stored = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return _from_uint8(np.array(stored[:k]))


@dataclass(frozen=True)
class BuiltSuite:
    """The suite's perturbed sets built for one test set (or loaded from the cache), by entry name."""

    suite: Suite
    key: str  # cache key: sha256 of (implementation version, x_test bytes, suite file bytes)
    checksum: str  # sha256 over every entry's name and checksum, in suite order
    directory: Path
    entries: dict[str, BuiltEntry]
    rebuilt: tuple[str, ...] = field(default=())  # entries (re)built by this call rather than loaded

    def __iter__(self) -> Iterator[BuiltEntry]:
        return iter(self.entries.values())

    def __getitem__(self, name: str) -> BuiltEntry:
        return self.entries[name]

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def n_images(self) -> int:
        """Perturbed images over all the built sets."""
        return sum(len(e.indices) for e in self)

    @property
    def from_cache(self) -> bool:
        """True when every set was loaded from the cache (none rebuilt by this call)."""
        return not self.rebuilt


def _canonical_test_images(x_test: np.ndarray) -> np.ndarray:
    x = np.asarray(x_test)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"x_test must be (N, 28, 28, 1), got {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def capped(suite: Suite, images: int | None) -> Suite:
    """``suite`` with every entry that uses a subset of the test images capped at ``images`` (a
    profile's ``suite_images``); entries on the whole test set (the assignment's two tests) keep it.
    The cap is part of the suite's identity (``sha256``), so capped sets are cached apart."""
    if images is None:
        return suite
    entries = tuple(e if e.subset is None else dataclasses.replace(e, subset=min(e.subset, images)) for e in suite)
    identity = hashlib.sha256(f"{suite.sha256}/cap={images}".encode()).hexdigest()
    return dataclasses.replace(
        suite, entries=entries, subset=None if suite.subset is None else min(suite.subset, images), sha256=identity
    )


def suite_cache_key(x_test: np.ndarray, suite: Suite) -> str:
    """sha256 over the implementation version, x_test (as float32, with its shape) and the suite file."""
    x = _canonical_test_images(x_test)
    digest = hashlib.sha256()
    digest.update(f"harness-robustness-suite/{IMPLEMENTATION_VERSION}/{x.shape}\n".encode())
    digest.update(hashlib.sha256(x.tobytes()).digest())
    digest.update(bytes.fromhex(suite.sha256))
    return digest.hexdigest()


def _suite_checksum(checksums: list[tuple[str, str]]) -> str:
    return hashlib.sha256("".join(f"{n}\t{c}\n" for n, c in checksums).encode()).hexdigest()


def _read_manifest(path: Path, key: str) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("key") != key or not isinstance(manifest.get("entries"), dict):
            raise ValueError("manifest for another key")
        return manifest["entries"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("robustness cache manifest %s unreadable (%s); rebuilding", path, exc)
        return {}


def build_suite(x_test: np.ndarray, suite: Suite, cache_dir: str | os.PathLike) -> BuiltSuite:
    """Build every perturbed set of ``suite`` from ``x_test`` (float (N, 28, 28, 1) in [0, 1]), or load it.

    Sets live in ``cache_dir/robustness-<key[:24]>/``, one ``.npy`` of uint8 pixels per entry plus a
    ``manifest.json`` recording each set's sha256; ``key`` (:func:`suite_cache_key`) changes with the
    test images, the suite file and the implementation version. On a later call each set is loaded
    and its checksum verified; a missing, unreadable or mismatching file is rebuilt (logged, and listed
    in ``BuiltSuite.rebuilt``). Every file is written atomically (temporary file, then ``os.replace``),
    the manifest last. The images are quantised to 8 bits (as MNIST-C publishes its sets), so the
    images a model sees are identical whether they were just built or read back.
    """
    x = _canonical_test_images(x_test)
    key = suite_cache_key(x, suite)
    directory = Path(cache_dir) / f"robustness-{key[:24]}"
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.json"
    recorded = _read_manifest(manifest_path, key)
    built: dict[str, BuiltEntry] = {}
    rebuilt: list[str] = []
    for entry in suite:
        n = entry.n_images(len(x))
        path = directory / _file_name(entry.name)
        info = recorded.get(entry.name)
        checksum = None
        if info is not None and info.get("file") == path.name and info.get("n") == n:
            try:
                stored = np.load(path, allow_pickle=False)
                if (
                    stored.dtype == np.uint8
                    and stored.shape == (n, *x.shape[1:])
                    and _array_sha256(stored) == info.get("sha256")
                ):
                    checksum = info["sha256"]
                else:
                    log.warning("robustness cache: %s does not match its checksum; rebuilding", path)
            except (OSError, ValueError) as exc:
                log.warning("robustness cache: %s unreadable (%s); rebuilding", path, exc)
        if checksum is None:
            stored = _to_uint8(entry.apply(x[:n]))
            atomic_write(path, lambda handle, a=stored: np.save(handle, a, allow_pickle=False))
            checksum = _array_sha256(stored)
            if info is not None and info.get("sha256") not in (None, checksum) and info.get("n") == n:
                log.warning("robustness cache: rebuilt %s differs from the recorded set (non-determinism?)", entry.name)
            rebuilt.append(entry.name)
        built[entry.name] = BuiltEntry(entry, np.arange(n), checksum, path)
    if rebuilt or set(recorded) != set(built):
        manifest = {
            "key": key,
            "implementation_version": IMPLEMENTATION_VERSION,
            "suite_sha256": suite.sha256,
            "entries": {
                name: {"file": b.path.name, "n": len(b.indices), "sha256": b.checksum} for name, b in built.items()
            },
        }
        atomic_write(manifest_path, lambda handle: handle.write(json.dumps(manifest, indent=1).encode("utf-8")))
    checksum = _suite_checksum([(name, b.checksum) for name, b in built.items()])
    return BuiltSuite(suite, key, checksum, directory, built, tuple(rebuilt))


def examples(built: BuiltSuite, n: int = 5, names: list[str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A few perturbed images per entry for reports: name -> (test indices, images (n, 28, 28, 1)).

    The same test images (the first ``n``) are taken from every entry, so a report can show one
    digit under every perturbation; the clean originals are ``x_test[indices]``.
    """
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for entry in built:
        if names is not None and entry.name not in names:
            continue
        k = min(n, len(entry.indices))
        out[entry.name] = (entry.indices[:k].copy(), entry.head(k))
    return out

"""Shared drawing and degradation helpers for the synthetic generators (any number of dims)."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
from scipy import ndimage

Size = Union[int, Sequence[int]]


def resolve_size(size: Size, ndim: int, name: str, default_ratio: Sequence[float] = ()) -> tuple[int, ...]:
    """``size`` as a shape of ``ndim`` ints. An int ``s`` means ``s`` along the last axes and
    ``round(s * ratio)`` along leading axes given by ``default_ratio`` (3D vessels: 72 x 128 x 128)."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        s = int(size)
        ratios = list(default_ratio) + [1.0] * (ndim - len(default_ratio))
        shape = tuple(max(int(round(s * r)), 1) for r in ratios)
    elif isinstance(size, (tuple, list)) and len(size) == ndim and all(isinstance(v, (int, np.integer)) for v in size):
        shape = tuple(int(v) for v in size)
    else:
        raise TypeError(f"{name}: size must be an int or a sequence of {ndim} ints, got {size!r}")
    if min(shape) < 32:
        raise ValueError(f"{name}: every side must be >= 32, got size {size!r} -> shape {shape}")
    return shape


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Smooth random field scaled to [-1, 1]; computed at a coarse scale for speed."""
    step = max(int(sigma // 3), 1)
    coarse = tuple(max(-(-s // step), 2) for s in shape)
    f = ndimage.gaussian_filter(rng.standard_normal(coarse), sigma / step, mode="wrap")
    if step > 1:
        f = ndimage.zoom(f, [s / c for s, c in zip(shape, coarse)], order=1, grid_mode=True, mode="grid-wrap")
        f = f[tuple(slice(0, s) for s in shape)]
        if f.shape != shape:  # zoom rounding: pad by edge values
            f = np.pad(f, [(0, s - fs) for s, fs in zip(shape, f.shape)], mode="edge")
    return f / (np.abs(f).max() + 1e-8)


def min_radius(ndim: int) -> float:
    """Smallest ball radius: balls are centred on the nearest voxel, so radius 0.5 is one voxel
    and a chain of balls 0.5 px apart is connected (8-connected in 2D, 26 in 3D)."""
    return 0.5


_STENCILS: dict[tuple[int, float], np.ndarray] = {}


def _stencil(ndim: int, r: float) -> np.ndarray:
    key = (ndim, r)
    if key not in _STENCILS:
        R = int(np.floor(r))
        grids = np.ogrid[(slice(-R, R + 1),) * ndim]
        _STENCILS[key] = sum(g * g for g in grids) <= r * r + 1e-9
    return _STENCILS[key]


def draw_balls(
    label: np.ndarray, value: np.ndarray, centres: np.ndarray, radii: np.ndarray, values: np.ndarray
) -> None:
    """Union of balls into ``label`` (bool) and the max of ``values`` into ``value`` (in place).

    Centres are rounded to the nearest voxel and radii to quarter pixels (cached stencils)."""
    ndim = label.ndim
    shape = label.shape
    for c, r, v in zip(np.rint(centres).astype(int), radii, values):
        st = _stencil(ndim, round(max(float(r), 0.5) * 4) / 4)
        R = st.shape[0] // 2
        sl, ssl = [], []
        for ci, n in zip(c, shape):
            a, b = max(ci - R, 0), min(ci + R + 1, n)
            if b <= a:
                break
            sl.append(slice(a, b))
            ssl.append(slice(a - (ci - R), b - (ci - R)))
        else:
            sl, ssl = tuple(sl), tuple(ssl)
            ball = st[ssl]
            label[sl] |= ball
            if v > 0:
                np.maximum(value[sl], ball * float(v), out=value[sl])


def thin_out(points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Indices of a subset of densely sampled path points: consecutive kept points are at most
    ``max(0.5, r / 2)`` apart (thin stretches keep every point, thick ones fewer)."""
    keep = [0]
    acc = 0.0
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1) if len(points) > 1 else np.zeros(0)
    for i, s in enumerate(steps, start=1):
        acc += s
        if acc >= max(0.5, 0.5 * radii[i]) - 1e-9 or i == len(points) - 1:
            keep.append(i)
            acc = 0.0
    return np.asarray(keep)


def random_unit(rng: np.random.Generator, ndim: int) -> np.ndarray:
    v = rng.standard_normal(ndim)
    return v / (np.linalg.norm(v) + 1e-12)


def perpendicular(rng: np.random.Generator, d: np.ndarray) -> np.ndarray:
    """A random unit vector orthogonal to unit vector ``d``."""
    for _ in range(10):
        v = rng.standard_normal(d.size)
        v -= v.dot(d) * d
        n = np.linalg.norm(v)
        if n > 1e-6:
            return v / n
    raise RuntimeError("could not draw a perpendicular vector")  # pragma: no cover


def finish(image: np.ndarray, rng: np.random.Generator, blur: float, noise: float, channel_axis: bool = False) -> np.ndarray:
    """Blur (spatial axes only), add Gaussian noise, z-score; returns float32 ``(C, *S)``."""
    if image.ndim and not channel_axis:
        image = image[None]
    sigma = (0.0,) + (blur,) * (image.ndim - 1)
    image = ndimage.gaussian_filter(image, sigma)
    image = image + rng.normal(0.0, noise, image.shape)
    image = (image - image.mean()) / (image.std() + 1e-8)
    return image.astype(np.float32)

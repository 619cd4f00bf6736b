"""Seeded synthetic data with known topology.

``vessels2d``: retina-like branching trees whose branches taper to 1-2 px; the *image* fades
along thin branches, has occluded stretches (gaps in the image, not in the label), a smooth
structured background, blur and noise — so a plain U-Net breaks thin branches.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from toposeg.data.case import Case


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return f / (np.abs(f).max() + 1e-8)


def _draw_branch(
    rng: np.random.Generator, label: np.ndarray, contrast: np.ndarray,
    start: np.ndarray, angle: float, width: float, depth: int,
) -> None:
    size = label.shape[0]
    yy, xx = np.mgrid[0:size, 0:size]
    length = rng.uniform(0.6, 1.0) * size * (0.7 ** depth)
    n = max(int(length * 2), 2)
    pos = start.astype(float)
    gap_at = rng.uniform(0.2, 0.9) if rng.random() < 0.6 else -1.0  # occluded stretch in the image
    forks = set(rng.integers(n // 5, n, rng.integers(1, 3)).tolist()) if depth < 3 else set()
    for i in range(n):
        angle += rng.normal(0.0, 0.06)
        pos = pos + 0.5 * np.array([np.sin(angle), np.cos(angle)])
        if not (0 <= pos[0] < size and 0 <= pos[1] < size):
            break
        frac = i / n
        r = max(width * (1.0 - 0.6 * frac), 0.5)
        y0, y1 = int(max(pos[0] - r - 1, 0)), int(min(pos[0] + r + 2, size))
        x0, x1 = int(max(pos[1] - r - 1, 0)), int(min(pos[1] + r + 2, size))
        d2 = (yy[y0:y1, x0:x1] - pos[0]) ** 2 + (xx[y0:y1, x0:x1] - pos[1]) ** 2
        disk = d2 <= r * r
        label[y0:y1, x0:x1] |= disk
        c = min(1.0, 0.25 + 0.35 * r)  # thin branches are faint
        if gap_at >= 0 and abs(frac - gap_at) < 0.04:
            c *= 0.1
        contrast[y0:y1, x0:x1] = np.where(disk, np.maximum(contrast[y0:y1, x0:x1], c), contrast[y0:y1, x0:x1])
        if i in forks:
            side = rng.choice([-1.0, 1.0])
            _draw_branch(rng, label, contrast, pos, angle + side * rng.uniform(0.5, 1.1), r * 0.8, depth + 1)


def vessels2d(size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One 2D vessel-tree image ``(1, size, size)`` float32 and its bool label."""
    if size < 32:
        raise ValueError(f"size must be >= 32, got {size}")
    rng = np.random.default_rng(seed)
    label = np.zeros((size, size), bool)
    contrast = np.zeros((size, size), float)
    for _ in range(rng.integers(2, 4)):
        edge = rng.integers(4)
        t = rng.uniform(0.2, 0.8) * size
        start = [np.array([0.0, t]), np.array([size - 1.0, t]), np.array([t, 0.0]), np.array([t, size - 1.0])][edge]
        angle = [np.pi / 2, -np.pi / 2, 0.0, np.pi][edge] + rng.normal(0, 0.3)
        _draw_branch(rng, label, contrast, start, angle, rng.uniform(2.0, 3.5), 0)
    signal = ndimage.gaussian_filter(contrast, 1.0)
    background = 0.25 * _smooth_field(rng, label.shape, size / 12)
    image = signal + background + rng.normal(0.0, 0.18, label.shape)
    image = (image - image.mean()) / (image.std() + 1e-8)
    return image[None].astype(np.float32), label


SYNTHETIC: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {"vessels2d": vessels2d}


def make_synthetic(kind: str, n: int, *, size: int = 128, seed: int = 0) -> list[Case]:
    """``n`` seeded cases of a synthetic ``kind``; case ``i`` depends only on ``(seed, i)``."""
    if kind not in SYNTHETIC:
        raise KeyError(f"unknown synthetic kind {kind!r}; valid: {sorted(SYNTHETIC)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    cases = []
    for i in range(n):
        image, label = SYNTHETIC[kind](size=size, seed=int(np.random.SeedSequence([seed, i]).generate_state(1)[0]))
        cases.append(Case(id=f"{kind}_{i:04d}", image=image, label=label))
    return cases

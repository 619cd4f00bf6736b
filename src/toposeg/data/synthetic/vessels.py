"""Vessel trees in 2D (retina-like) and 3D (coronary-like): one tree generator for any ``ndim``.

Label: the union of balls along branching random-walk centre lines whose radius tapers from
2-3.5 px down to the smallest connected radius (1-2 px wide). Trees start on the border; trees
of different roots cross each other (loops in 2D, as in retinal images where arteries cross
veins). Image: contrast fades with the radius, short occluded stretches (stenoses, crossings
in shadow, imaging gaps) drop the contrast *in the image only*, plus structured background,
distractor blobs, blur and noise.

Generator versions (:data:`VERSIONS`, current :data:`VERSION`): "1" is the original generator,
where 17 % of the 1-px branches in 2D and 62 % in 3D had no image evidence (contrast-to-noise
ratio < 1 at their own scale). "2" keeps every branch visible: a contrast floor tied to the noise level, occlusions
only on vessels >= 3 px wide and away from branch ends and forks, distractor blobs away from the
vessels (measured by ``benchmarks/synthetic_cnr.py``; docs/data.md).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from toposeg.data.synthetic._render import (
    Size, draw_balls, finish, min_radius, perpendicular, random_unit, resolve_size, smooth_field, thin_out,
)

_STEP = 0.5


def _border_start(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A start point on a random face and a direction pointing inwards."""
    ndim = len(shape)
    axis = int(rng.integers(ndim))
    high = bool(rng.integers(2))
    p = np.array([rng.uniform(0.2, 0.8) * (s - 1) for s in shape])
    p[axis] = shape[axis] - 1.0 if high else 0.0
    d = random_unit(rng, ndim) * 0.5
    d[axis] = -1.0 if high else 1.0
    return p, d / np.linalg.norm(d)


def vessel_tree(
    rng: np.random.Generator, shape: tuple[int, ...], *, n_roots: tuple[int, int] = (2, 4),
    root_radius: tuple[float, float] = (2.0, 3.5), max_depth: int = 3, curvature: float = 0.08,
    gap_prob: float = 0.6, contrast_floor: float = 0.0, version: str = "1",
) -> tuple[np.ndarray, np.ndarray]:
    """Label (bool) and image contrast map (float in [0, 1]) of a vessel forest in ``shape``.

    ``contrast_floor`` (version "2"): the least contrast of any non-occluded centre-line point, so
    that thin branches stay faint but visible. Version "2" also keeps every occlusion strictly
    inside its branch, >= 4 px (or 25 % of the branch) from both ends and from a fork, so the label
    never ends in, or hangs off, a stretch with no image evidence."""
    ndim = len(shape)
    rmin = min_radius(ndim)
    label = np.zeros(shape, bool)
    contrast = np.zeros(shape, float)
    size = float(max(shape))
    stack = []
    for _ in range(int(rng.integers(n_roots[0], n_roots[1] + 1))):
        p, d = _border_start(rng, shape)
        stack.append((p, d, rng.uniform(*root_radius), 0))
    hi = np.array(shape) - 1.0
    while stack:
        p, d, r0, depth = stack.pop()
        length = rng.uniform(0.6, 1.0) * size * (0.7 ** depth)
        n = max(int(length / _STEP), 2)
        # angular random walk of the unit direction (plain floats: fast for short vectors)
        dv, rows = d.tolist(), []
        for e in rng.normal(0.0, curvature, (n, ndim)).tolist():
            dv = [a + b for a, b in zip(dv, e)]
            norm = math.sqrt(sum(a * a for a in dv))
            dv = [a / norm for a in dv]
            rows.append(dv)
        dirs = np.asarray(rows)
        pts_all = p + _STEP * np.cumsum(dirs, axis=0)
        outside = np.nonzero(((pts_all < 0) | (pts_all > hi)).any(axis=1))[0]
        m = int(outside[0]) if outside.size else n
        pts = pts_all[:m]
        rad = np.maximum(r0 * (1.0 - 0.65 * np.arange(m) / n), rmin)
        n_forks = int(rng.integers(1, 3)) if depth < max_depth else 0
        forks = []
        for i in sorted(set(rng.integers(n // 5, max(n // 5 + 1, n - 2), n_forks).tolist())):
            if i >= m:
                continue
            forks.append(i)
            angle = rng.uniform(0.5, 1.1)
            child = np.cos(angle) * dirs[i] + np.sin(angle) * perpendicular(rng, dirs[i])
            stack.append((pts[i].copy(), child / np.linalg.norm(child), max(rad[i] * 0.8, rmin), depth + 1))
        if len(pts) < 2:
            continue
        pts_a, rad_a = pts, rad
        # image contrast: thin is faint; an occluded stretch (a gap in the image, not the label)
        c = np.clip(0.15 + 0.35 * rad_a, 0.0, 1.0) * rng.uniform(0.7, 1.0)
        if version != "1":
            c = np.maximum(c, contrast_floor)
        if rng.random() < (gap_prob if version == "1" else _GAP_PROB):
            if version == "1":
                centre = rng.uniform(0.2, 0.95) * len(c)
                half = rng.uniform(1.5, 4.0) / _STEP
                c[np.abs(np.arange(len(c)) - centre) < half] *= rng.uniform(0.0, 0.2)
            else:
                _occlude(rng, c, rad_a, forks)
        keep = thin_out(pts_a, rad_a)
        draw_balls(label, contrast, pts_a[keep], rad_a[keep], c[keep])
    return label, contrast


_GAP_HALF = (1.5, 4.0)  # px: occlusions are 3-8 px long
_GAP_MARGIN = 4.0  # px of visible vessel kept between an occlusion and a branch end or fork (version 2)
_GAP_MIN_RADIUS = 1.0  # version 2: occlusions only where the vessel is >= 3 px wide
#: version 2: every branch tries for an occlusion (where allowed); about 30 % of the branches get
#: one, ~5 per 128^2 image (version 1: 60 % of the branches, thin twigs and branch tips included)
_GAP_PROB = 1.0


def _occlude(rng: np.random.Generator, c: np.ndarray, rad: np.ndarray, forks: list[int]) -> None:
    """Version 2 occlusion: drop the contrast of one 3-8 px stretch to 0-20 % (in place), only
    where the vessel is >= 3 px wide (radius >= 1: a thinner branch is only just visible, so a gap
    would leave it no evidence at all) and where visible vessel of >= 4 px (or 25 % of the branch)
    remains on both sides and between the stretch and every fork point; up to 5 positions are
    drawn, else the branch keeps no occlusion."""
    n = len(c)
    half = rng.uniform(*_GAP_HALF) / _STEP
    factor = rng.uniform(0.0, 0.2)
    margin = max(_GAP_MARGIN / _STEP, 0.25 * n) + half
    if n - 2 * margin < 0:
        return
    idx = np.arange(n)
    for _ in range(5):
        centre = rng.uniform(margin, n - margin)
        stretch = np.abs(idx - centre) < half
        if rad[stretch].min() >= _GAP_MIN_RADIUS and all(abs(centre - f) >= half + _GAP_MARGIN / _STEP for f in forks):
            c[stretch] *= factor
            return


def _blobs(
    rng: np.random.Generator, shape: tuple[int, ...], n: int, radius: tuple[float, float],
    away_from: np.ndarray | None = None, clearance: float = 0.0,
) -> np.ndarray:
    """Distractor blobs (contrast map). With ``away_from`` (a bool mask; version 2) a blob's edge
    stays >= ``clearance`` px from it (centres redrawn up to 20 times, else the blob is dropped)."""
    out = np.zeros(shape, float)
    dummy = np.zeros(shape, bool)
    if away_from is None:
        centres = np.array([[rng.uniform(0, s - 1) for s in shape] for _ in range(n)]).reshape(n, len(shape))
        draw_balls(dummy, out, centres, rng.uniform(*radius, n), rng.uniform(0.3, 1.0, n))
        return out
    dist = ndimage.distance_transform_edt(~away_from)
    radii, values = rng.uniform(*radius, n), rng.uniform(0.3, 1.0, n)
    for r, v in zip(radii, values):
        for _ in range(20):
            c = np.array([rng.uniform(0, s - 1) for s in shape])
            if dist[tuple(np.rint(c).astype(int))] >= r + clearance:
                draw_balls(dummy, out, c[None], np.array([r]), np.array([v]))
                break
    return out


#: generator versions (see docs/data.md): "1" = the original vessels (thin branches could be
#: invisible: 1-px branches with CNR < 1 in 17 % (2D) / 62 % (3D) of cases); "2" = every branch of
#: >= 12 px has CNR >= 1 at its own scale
VERSIONS = ("1", "2")
VERSION = "2"
#: version 2: least centre-line contrast (before the 0.9 scale of the image) as a multiple of the
#: noise std (3D higher: a 1-voxel line is spread over two axes by the blur). Measured branch CNR
#: of 1-px branches then: median 4.5 (2D) / 2.6 (3D), smallest 1.5 (benchmarks/synthetic_cnr.py)
_FLOOR = {2: 4.0, 3: 4.5}
#: version 2: px between a distractor blob's edge and the nearest label pixel
_CLEARANCE = 8.0


def vessels(ndim: int, size: Size, seed: int, version: str = VERSION) -> tuple[np.ndarray, np.ndarray]:
    name = f"vessels{ndim}d"
    if version not in VERSIONS:
        raise ValueError(f"{name}: unknown generator version {version!r}; valid: {list(VERSIONS)}")
    shape = resolve_size(size, ndim, name, default_ratio=(72 / 128,) if ndim == 3 else ())
    rng = np.random.default_rng(seed)
    tree_kw = {} if ndim == 2 else {"n_roots": (2, 3), "root_radius": (2.0, 3.0), "curvature": 0.05}
    if version == "1":
        label, contrast = vessel_tree(rng, shape, **tree_kw)
    else:
        noise = rng.uniform(0.12, 0.2)
        label, contrast = vessel_tree(rng, shape, contrast_floor=_FLOOR[ndim] * noise, version=version, **tree_kw)
    s = float(max(shape))
    background = 0.35 * smooth_field(rng, shape, s / 8) + 0.12 * smooth_field(rng, shape, s / 40)
    if ndim == 3:  # a bright blood pool (chamber) next to the vessels, as in cardiac CT
        background += 0.8 * np.clip(smooth_field(rng, shape, s / 6) - 0.4, 0, None)
    if version == "1":
        distractors = _blobs(rng, shape, int(rng.integers(3, 9)), (1.5, 4.0))
    else:  # not on a branch's background ring: a blob there hides a thin branch entirely
        distractors = _blobs(rng, shape, int(rng.integers(3, 9)), (1.5, 4.0), away_from=label, clearance=_CLEARANCE)
    signal = contrast * 0.9 + 0.35 * distractors * (1 - label)
    image = background + signal if ndim == 3 else background - signal  # dark vessels in fundus images
    if version == "1":
        noise = rng.uniform(0.12, 0.2)
    return finish(image, rng, blur=1.0 if ndim == 2 else 0.8, noise=noise), label


def vessels2d(size: Size = 128, seed: int = 0, version: str = VERSION) -> tuple[np.ndarray, np.ndarray]:
    """One retina-like 2D vessel image ``(1, H, W)`` float32 (z-scored) and its bool ``(H, W)`` label.

    ``version`` selects the generator version (default the current one, :data:`VERSION`); "1"
    reproduces the images of toposeg tables made before version 2. Raises ValueError for an
    unknown version and as :func:`resolve_size` for a bad ``size``."""
    return vessels(2, size, seed, version)


def vessels3d(size: Size = 128, seed: int = 0, version: str = VERSION) -> tuple[np.ndarray, np.ndarray]:
    """One coronary-like 3D volume ``(1, D, H, W)``; an int ``size`` s gives ``(round(0.5625 s), s, s)``,
    i.e. 72 x 128 x 128 by default. ``version`` as in :func:`vessels2d`."""
    return vessels(3, size, seed, version)

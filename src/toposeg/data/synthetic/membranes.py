"""EM-like membranes: boundaries of a warped random Voronoi tessellation (loops everywhere).

Label: cell boundaries 2-5 px wide (the width varies smoothly over the image), from
:func:`toposeg.data.labels.membranes_from_ids` (the same code that turns CREMI neuron ids into
membranes). Image: textured cell interiors with per-cell brightness, dark organelles
(mitochondria/vesicle-like blobs and rings that look like small cells), membranes whose contrast
varies along their length and fades to gaps in places (image only), blur and noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from toposeg.data.labels import membranes_from_ids
from toposeg.data.synthetic._render import Size, draw_balls, finish, resolve_size, smooth_field


def voronoi_ids(rng: np.random.Generator, shape: tuple[int, int], cell: float, warp: float) -> np.ndarray:
    """Cell-id map of a jittered-grid Voronoi tessellation, warped by a smooth displacement."""
    grid = [np.arange(-cell / 2, s + cell, cell) for s in shape]
    gy, gx = np.meshgrid(*grid, indexing="ij")
    seeds = np.stack([gy.ravel(), gx.ravel()], 1) + rng.uniform(-0.35, 0.35, (gy.size, 2)) * cell
    margin = int(np.ceil(cell))
    big = tuple(s + 2 * margin for s in shape)
    seed_img = np.ones(big, bool)
    idx = np.clip(np.round(seeds).astype(int) + margin, 0, np.array(big) - 1)
    seed_img[idx[:, 0], idx[:, 1]] = False
    lookup = np.zeros(big, np.int32)
    lookup[idx[:, 0], idx[:, 1]] = np.arange(1, len(idx) + 1)
    _, (iy, ix) = ndimage.distance_transform_edt(seed_img, return_indices=True)
    ids = lookup[iy, ix]
    coords = np.mgrid[0:shape[0], 0:shape[1]].astype(float) + margin
    for a in range(2):
        coords[a] += warp * smooth_field(rng, shape, cell / 1.5)
    return ndimage.map_coordinates(ids, coords, order=0, mode="nearest").astype(np.int32)


def membranes2d(size: Size = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One EM-like image ``(1, H, W)`` float32 (z-scored) and its bool membrane label."""
    shape = resolve_size(size, 2, "membranes2d")
    rng = np.random.default_rng(seed)
    cell = rng.uniform(22.0, 32.0)
    ids = voronoi_ids(rng, shape, cell, warp=rng.uniform(2.0, 4.0))
    widths = np.clip(np.round(3.5 + 1.6 * smooth_field(rng, shape, 12.0)), 2, 5).astype(np.int64)
    label = membranes_from_ids(ids, widths)
    # cell interiors: per-cell grey level + texture
    level = rng.uniform(-0.25, 0.25, ids.max() + 1)
    image = level[ids] + 0.2 * smooth_field(rng, shape, 2.0) + 0.2 * smooth_field(rng, shape, 20.0)
    # membranes: contrast varies along them and drops to gaps (image only)
    strength = smooth_field(rng, shape, 4.0)
    contrast = np.clip(0.6 + 0.6 * strength, 0.0, 1.0)
    contrast[strength < rng.uniform(-0.55, -0.4)] *= 0.1
    image -= 0.9 * label * contrast
    # organelles: dark blobs and rings inside cells (look like small membrane loops)
    n = int(rng.integers(2, 5) * shape[0] * shape[1] / 128 ** 2)
    blob = np.zeros(shape, float)
    centres = np.stack([rng.uniform(0, s - 1, n) for s in shape], 1)
    radii = rng.uniform(1.5, 4.0, n)
    draw_balls(np.zeros(shape, bool), blob, centres, radii, rng.uniform(0.4, 0.9, n))
    rings = rng.random(n) < 0.5
    inner = np.zeros(shape, float)
    draw_balls(np.zeros(shape, bool), inner, centres[rings], np.maximum(radii[rings] - 1.3, 0.3), np.ones(rings.sum()))
    image -= 0.8 * blob * (inner == 0)
    return finish(image, rng, blur=rng.uniform(0.8, 1.3), noise=rng.uniform(0.15, 0.25)), label

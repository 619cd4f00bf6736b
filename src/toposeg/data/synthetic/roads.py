"""Road networks seen from above (3-channel, like Massachusetts Roads).

Label: a jittered grid graph with random edges removed (loops and dead ends), each edge a
slightly curved road of its own width (2-7 px). Image: RGB fields with smooth colour
variation, buildings (grey rectangles next to roads), roads whose colour ranges from clearly
visible asphalt to dirt tracks close to the background, and tree shadows/canopies (dark green
blobs) that occlude roads in the image only; blur and noise.
"""

from __future__ import annotations

import numpy as np

from toposeg.data.synthetic._render import Size, draw_balls, finish, min_radius, resolve_size, smooth_field, thin_out


def _curve(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, bend: float) -> np.ndarray:
    """Densely sampled quadratic Bezier from ``a`` to ``b`` (points 0.5 px apart or closer)."""
    d = b - a
    normal = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9)
    ctrl = (a + b) / 2 + normal * rng.normal(0, bend)
    n = max(int(np.ceil(np.linalg.norm(d) * 2.5)), 2)
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t ** 2 * b


def road_graph(rng: np.random.Generator, shape: tuple[int, int]) -> list[tuple[np.ndarray, float, float]]:
    """Edges as (points, radius, visibility in [0, 1])."""
    spacing = rng.uniform(28.0, 42.0)
    ny, nx = (int(np.ceil(s / spacing)) + 3 for s in shape)
    nodes = np.stack(np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij"), -1).astype(float) - 1
    nodes = nodes * spacing + rng.uniform(-0.3, 0.3, nodes.shape) * spacing
    edges = []
    main_row, main_col = int(rng.integers(1, ny - 1)), int(rng.integers(1, nx - 1))
    for i in range(ny):
        for j in range(nx):
            for di, dj in ((0, 1), (1, 0), (1, 1)):
                k, m = i + di, j + dj
                if k >= ny or m >= nx:
                    continue
                main = (di, dj) == (0, 1) and i == main_row or (di, dj) == (1, 0) and j == main_col
                keep = 1.0 if main else (0.12 if di and dj else 0.6)
                if rng.random() >= keep:
                    continue
                width = rng.uniform(5.0, 7.0) if main else rng.choice([2.0, 2.5, 3.0, 3.5, 4.0])
                vis = rng.uniform(0.6, 0.9) if main else rng.choice([rng.uniform(0.35, 0.8), rng.uniform(0.1, 0.3)], p=[0.75, 0.25])
                edges.append((_curve(rng, nodes[i, j], nodes[k, m], spacing * 0.08), width / 2, vis))
    return edges


def roads2d(size: Size = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One aerial-like RGB image ``(3, H, W)`` float32 (z-scored) and its bool road label."""
    shape = resolve_size(size, 2, "roads2d")
    rng = np.random.default_rng(seed)
    rmin = min_radius(2)
    label = np.zeros(shape, bool)
    visibility = np.zeros(shape, float)
    for pts, radius, vis in road_graph(rng, shape):
        rad = np.full(len(pts), max(radius, rmin))
        keep = thin_out(pts, rad)
        draw_balls(label, visibility, pts[keep], rad[keep], np.full(len(keep), vis))
    ground = np.array([0.35, 0.42, 0.30]) + rng.uniform(-0.05, 0.05, 3)
    image = np.empty((3,) + shape)
    for ch in range(3):
        image[ch] = ground[ch] + 0.12 * smooth_field(rng, shape, 10.0) + 0.06 * smooth_field(rng, shape, 1.5)
    # grey urban patches (pavement, parking lots) that look like asphalt
    urban = np.clip(1.5 * smooth_field(rng, shape, 12.0) - 0.2, 0.0, 0.85)[None]
    image = image * (1 - urban) + (0.55 + 0.08 * smooth_field(rng, shape, 2.0))[None] * urban
    # buildings next to roads (image only)
    for _ in range(int(rng.integers(8, 20) * shape[0] * shape[1] / 128 ** 2)):
        y, x = (int(rng.integers(0, s)) for s in shape)
        h, w = (int(rng.integers(3, 12)) for _ in range(2))
        image[:, y:y + h, x:x + w] = rng.uniform(0.45, 0.8) + rng.uniform(-0.03, 0.03, (3, 1, 1))
    asphalt = np.array([0.62, 0.62, 0.60])[:, None, None]
    image = image * (1 - visibility) + asphalt * visibility
    # tree canopies / shadows occluding roads (image only)
    n = int(rng.integers(6, 14) * shape[0] * shape[1] / 128 ** 2)
    canopy = np.zeros(shape, float)
    centres = np.stack([rng.uniform(0, s - 1, n) for s in shape], 1)
    draw_balls(np.zeros(shape, bool), canopy, centres, rng.uniform(2.5, 6.0, n), np.ones(n))
    tree = np.array([0.12, 0.22, 0.10])[:, None, None]
    image = image * (1 - canopy) + tree * canopy
    return finish(image, rng, blur=0.8, noise=rng.uniform(0.06, 0.1), channel_axis=True), label

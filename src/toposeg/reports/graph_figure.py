"""Route-planning figure like the paper's Fig. 1: image, predictions and ground truth with their
skeleton graphs and the same routes planned on each, path lengths in the legends (PNG, headless)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from toposeg.reports._figure import pyplot, save
from toposeg.reports._inputs import named_masks
from toposeg.topology._inputs import as_mask

ROUTE_COLOURS = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6")


def _image_rgb(image: Optional[np.ndarray], shape: tuple) -> np.ndarray:
    from toposeg.reports.overlay import to_gray

    if image is None:
        return np.zeros((*shape, 3))
    image = np.asarray(image, dtype=float)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = image[..., :3]
        lo, hi = np.percentile(image, [1, 99])
        rgb = np.clip((image - lo) / (hi - lo + 1e-8), 0, 1)
    elif image.ndim == 2:
        rgb = np.repeat(to_gray(image)[..., None], 3, axis=-1)
    else:
        raise ValueError(f"image must be (H, W) or (H, W, 3|4), got shape {image.shape}")
    if rgb.shape[:2] != tuple(shape):
        raise ValueError(f"image shape {image.shape[:2]} does not match the masks' shape {tuple(shape)}")
    return rgb


def _draw_graph(ax, graph) -> None:
    for _, _, path in graph.edges(data="path"):
        ax.plot(path[:, 1], path[:, 0], color="#7fdbff", lw=0.8, alpha=0.9, zorder=2)
    for kind, colour, size in (("junction", "#ff851b", 9), ("end", "#ffffff", 6)):
        pts = np.asarray([d["coord"] for _, d in graph.nodes(data=True) if d["kind"] == kind])
        if len(pts):
            ax.scatter(pts[:, 1], pts[:, 0], s=size, c=colour, zorder=3, linewidths=0)


def _fmt(length: float) -> str:
    return "unreachable" if not math.isfinite(length) else f"{length:.1f} px"


def route_figure(image: Optional[np.ndarray], gt: Any, preds: Any, path: Union[str, Path], *,
                 pairs: Optional[Sequence] = None, n_routes: int = 3, seed: int = 0, snap: Optional[float] = None,
                 min_branch: float = 0.0, backend: str = "skan", cell: float = 4.0, dpi: int = 100) -> Path:
    """Draw image | prediction(s) | ground truth with graphs and routes; write a PNG.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` image, or ``None`` (black background).
        gt: binary 2D ground truth.
        preds: one mask, a list of masks, or ``{name: mask}`` (e.g. ``{"U-Net": a, "SHPM": b}``).
        path: output PNG.
        pairs: ``(n, 2, 2)`` route end points; default ``n_routes`` random connected pairs of
            ground-truth graph nodes (seeded).
        snap, min_branch, backend: as in :func:`toposeg.graph.plan_routes`.
        cell, dpi: each panel is ``cell`` inches square; the PNG is
            ``(n_panels * cell * dpi)`` wide and ``(1.25 * cell * dpi)`` high (room for the
            legends under the panels), ``n_panels = len(preds) + 2``.

    Returns:
        The path written.
    """
    plt = pyplot()
    from matplotlib.lines import Line2D

    from toposeg.graph import DEFAULT_SNAP, mask_to_graph, plan_routes, sample_pairs

    g = as_mask(gt, "gt")
    if g.ndim != 2:
        raise ValueError(f"route_figure draws 2D masks only, got gt of shape {g.shape}")
    named = named_masks(preds)
    for name, p in named.items():
        if p.shape != g.shape:
            raise ValueError(f"prediction {name!r} has shape {p.shape}, ground truth has {g.shape}")
    snap = DEFAULT_SNAP if snap is None else snap
    rgb = _image_rgb(image, g.shape)
    g_gt = mask_to_graph(g, min_branch=min_branch, backend=backend)
    if pairs is None:
        pairs = sample_pairs(g_gt, n_routes, seed=seed) if g_gt.number_of_edges() else []
    graphs = {name: mask_to_graph(p, min_branch=min_branch, backend=backend) for name, p in named.items()}
    plans = {name: plan_routes(gr, g_gt, pairs, snap=snap) for name, gr in graphs.items()}
    gt_plan = plan_routes(g_gt, g_gt, pairs, snap=snap)

    panels = [("image", None, None, None)]
    panels += [(name, named[name], graphs[name], [(r.pred_length, r.pred_path) for r in plans[name].routes])
               for name in named]
    panels.append(("ground truth", g, g_gt, [(r.gt_length, r.gt_path) for r in gt_plan.routes]))
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * cell, 1.25 * cell), dpi=dpi, squeeze=False)
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.2, top=0.94, wspace=0.03)
    for ax, (title, mask, graph, routes) in zip(axes[0], panels):
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
        if mask is None:
            ax.imshow(rgb, interpolation="nearest")
            src = [r.source for r in gt_plan.routes]
            dst = [r.target for r in gt_plan.routes]
            for k, (s, t) in enumerate(zip(src, dst)):
                c = ROUTE_COLOURS[k % len(ROUTE_COLOURS)]
                ax.scatter([s[1], t[1]], [s[0], t[0]], s=30, c=c, edgecolors="k", zorder=4)
            continue
        ax.imshow(mask, cmap="gray", vmin=0, vmax=2.5, interpolation="nearest")
        _draw_graph(ax, graph)
        handles = []
        for k, ((length, px), route) in enumerate(zip(routes, gt_plan.routes)):
            c = ROUTE_COLOURS[k % len(ROUTE_COLOURS)]
            if px is not None:
                # earlier routes thicker, so routes sharing a road stay visible
                ax.plot(px[:, 1], px[:, 0], color=c, lw=max(1.0, 4.0 - 0.8 * k), zorder=5 + k / 100)
            s, t = route.source, route.target
            ax.scatter([s[1], t[1]], [s[0], t[0]], s=30, c=c, edgecolors="k", zorder=6)
            handles.append(Line2D([], [], color=c, lw=2.5, ls="-" if px is not None else ":",
                                  label=f"route {k + 1}: {_fmt(length)}"))
        if handles:
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), fontsize=8,
                      ncol=2 if len(handles) > 3 else 1, frameon=False)
    return save(fig, path, dpi)

"""Route planning on skeleton graphs: snap points onto a graph and measure shortest paths.

This reproduces the use case of the paper's Fig. 1: plan routes between the same places on the
graph of a prediction and on the graph of the ground truth; a topological error (a broken road)
makes a route impossible or forces a detour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from toposeg.graph.extract import _import, mask_to_graph, path_length, split_path

DEFAULT_SNAP = 5.0


def as_graph(x: Any, name: str, *, min_branch: float = 0.0, backend: str = "skan",
             skeleton_method: str = "thin", skeleton_backend: str = "auto"):
    """A networkx graph as-is (built by :func:`mask_to_graph`), or the graph of a mask (the other
    arguments are passed to :func:`mask_to_graph`)."""
    nx = _import("networkx")
    if isinstance(x, nx.Graph):
        if "shape" not in x.graph:
            raise ValueError(f"{name}: a graph must come from toposeg.graph.mask_to_graph (no 'shape' attribute)")
        return x
    return mask_to_graph(x, min_branch=min_branch, backend=backend, skeleton_method=skeleton_method,
                         skeleton_backend=skeleton_backend)


def check_snap(snap: float) -> float:
    if isinstance(snap, bool) or not isinstance(snap, (int, float)) or not snap >= 0 or math.isinf(snap):
        raise ValueError(f"snap must be a finite distance >= 0 in pixels, got {snap!r}")
    return float(snap)


def insert_points(graph, points: np.ndarray, snap: float):
    """Snap points onto a graph, inserting nodes where they fall inside an edge.

    Each point goes to the nearest skeleton pixel of ``graph`` (a node, or a pixel inside an
    edge's path) if that pixel is within ``snap`` pixels (Euclidean); the edge is then cut there
    with a node of kind ``"control"``. Returns ``(new_graph, nodes)`` where ``nodes[i]`` is the
    node id of point ``i`` or ``None`` when nothing is within ``snap``. ``graph`` is unchanged.
    """
    from scipy.spatial import cKDTree

    shape = graph.graph["shape"]
    points = np.asarray(points, dtype=float)
    if points.size == 0:
        points = points.reshape(0, len(shape))
    if points.ndim != 2 or points.shape[1] != len(shape):
        raise ValueError(f"points must have shape (n, {len(shape)}), got shape {points.shape}")
    coords, refs = [], []
    for node, coord in graph.nodes(data="coord"):
        coords.append(coord)
        refs.append((node, None, -1))
    edges = list(graph.edges(data=True))
    for e, (u, v, data) in enumerate(edges):
        path = data["path"]
        for i in range(1, len(path) - 1):
            coords.append(path[i])
            refs.append((None, e, i))
    out = graph.copy()
    nodes: list[Optional[int]] = [None] * len(points)
    if not coords or not len(points):
        return out, nodes
    tree = cKDTree(np.asarray(coords, dtype=float))
    dist, idx = tree.query(points, k=1, distance_upper_bound=snap + 1e-9)
    cuts: dict[int, set[int]] = {}
    for p, (d, j) in enumerate(zip(dist, idx)):
        if not np.isfinite(d):
            continue
        node, e, i = refs[j]
        if node is not None:
            nodes[p] = node
        else:
            cuts.setdefault(e, set()).add(i)
            nodes[p] = int(np.ravel_multi_index(tuple(int(c) for c in edges[e][2]["path"][i]), shape))
    for e, indices in cuts.items():
        u, v, data = edges[e]
        out.remove_edge(u, v)
        for piece in split_path(data["path"], indices):
            a = int(np.ravel_multi_index(tuple(int(c) for c in piece[0]), shape))
            b = int(np.ravel_multi_index(tuple(int(c) for c in piece[-1]), shape))
            for n, c in ((a, piece[0]), (b, piece[-1])):
                if n not in out:
                    out.add_node(n, coord=tuple(int(x) for x in c), kind="control")
            out.add_edge(a, b, path=piece, start=a, length=path_length(piece))
    return out, nodes


def route_pixels(graph, nodes: Sequence[int]) -> np.ndarray:
    """Pixel path ``(k, ndim)`` along a node path of the graph."""
    if len(nodes) == 1:
        return np.asarray([graph.nodes[nodes[0]]["coord"]])
    parts = []
    for a, b in zip(nodes[:-1], nodes[1:]):
        data = graph.edges[a, b]
        path = data["path"] if data["start"] == a else data["path"][::-1]
        parts.append(path if not parts else path[1:])
    return np.concatenate(parts, axis=0)


@dataclass
class Route:
    """One planned route between ``source`` and ``target`` (pixel coordinates)."""

    source: tuple
    target: tuple
    gt_length: float
    pred_length: float
    gt_path: Optional[np.ndarray] = field(default=None, repr=False)
    pred_path: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def status(self) -> str:
        """``"ok"``, ``"unreachable"`` (no route on the prediction) or ``"no_gt_route"``."""
        if not math.isfinite(self.gt_length):
            return "no_gt_route"
        return "ok" if math.isfinite(self.pred_length) else "unreachable"

    @property
    def ratio(self) -> float:
        """``pred_length / gt_length``: > 1 is a detour, inf is unreachable, NaN without a GT route."""
        if self.status == "no_gt_route" or self.gt_length == 0:
            return math.nan
        return self.pred_length / self.gt_length

    @property
    def similarity(self) -> float:
        """APLS term ``1 - min(1, |L_gt - L_pred| / L_gt)``; 0 if unreachable, NaN without a GT route."""
        if self.status == "no_gt_route" or self.gt_length == 0:
            return math.nan
        if self.status == "unreachable":
            return 0.0
        return 1.0 - min(1.0, abs(self.gt_length - self.pred_length) / self.gt_length)

    def row(self) -> dict:
        return {
            "source": list(self.source), "target": list(self.target),
            "gt_length": self.gt_length, "pred_length": self.pred_length,
            "ratio": self.ratio, "similarity": self.similarity, "status": self.status,
        }


@dataclass
class RoutePlan:
    """Routes planned on a prediction's graph and on the ground truth's graph."""

    routes: list[Route]
    snap: float

    def summary(self) -> dict:
        """``n_pairs``; ``n_valid`` (pairs with a ground-truth route); ``n_unreachable``;
        ``unreachable_fraction`` (of valid pairs); ``mean_ratio``/``median_ratio`` of
        pred/gt lengths over reachable pairs; ``apls_gt_to_pred`` (mean APLS term over valid
        pairs). Undefined values are NaN."""
        valid = [r for r in self.routes if r.status != "no_gt_route" and r.gt_length > 0]
        reach = [r.ratio for r in valid if r.status == "ok"]
        n_unreach = sum(r.status == "unreachable" for r in valid)
        return {
            "n_pairs": len(self.routes),
            "n_valid": len(valid),
            "n_unreachable": n_unreach,
            "unreachable_fraction": n_unreach / len(valid) if valid else math.nan,
            "mean_ratio": float(np.mean(reach)) if reach else math.nan,
            "median_ratio": float(np.median(reach)) if reach else math.nan,
            "apls_gt_to_pred": float(np.mean([r.similarity for r in valid])) if valid else math.nan,
        }

    def rows(self) -> list[dict]:
        return [r.row() for r in self.routes]


def sample_pairs(graph, n_pairs: int, *, seed: int = 0) -> list[tuple[tuple, tuple]]:
    """Up to ``n_pairs`` distinct unordered pairs of graph nodes joined by a path, seeded.

    Pairs are drawn uniformly at random (``seed``) among the unordered pairs of junction/end
    nodes that lie in the same connected component; all of them when there are at most
    ``n_pairs``. A junction cluster is one node (:func:`mask_to_graph`), so no pair lies
    inside one intersection. Returns ``[(source_coord, target_coord), ...]``.
    """
    nx = _import("networkx")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a positive integer, got {n_pairs!r}")
    comps = []
    for comp in nx.connected_components(graph):
        nodes = sorted(n for n in comp if graph.nodes[n]["kind"] in ("junction", "end"))
        if len(nodes) >= 2:
            comps.append(nodes)
    comps.sort()
    all_pairs = [(a, b) for nodes in comps for i, a in enumerate(nodes) for b in nodes[i + 1 :]] \
        if sum(len(c) * (len(c) - 1) // 2 for c in comps) <= max(4 * n_pairs, 10_000) else None
    rng = np.random.default_rng(seed)
    if all_pairs is not None:
        if len(all_pairs) > n_pairs:
            chosen = rng.choice(len(all_pairs), size=n_pairs, replace=False)
            all_pairs = [all_pairs[i] for i in sorted(chosen)]
        pairs = all_pairs
    else:  # many pairs: rejection sampling, component chosen proportionally to its pair count
        weights = np.array([len(c) * (len(c) - 1) / 2 for c in comps], dtype=float)
        weights /= weights.sum()
        seen: set = set()
        pairs = []
        while len(pairs) < n_pairs:
            nodes = comps[rng.choice(len(comps), p=weights)]
            a, b = rng.choice(len(nodes), size=2, replace=False)
            key = (nodes[min(a, b)], nodes[max(a, b)])
            if key not in seen:
                seen.add(key)
                pairs.append(key)
    return [(graph.nodes[a]["coord"], graph.nodes[b]["coord"]) for a, b in pairs]


def _check_pairs(pairs: Any, ndim: int, shape: tuple) -> np.ndarray:
    arr = np.asarray(pairs, dtype=float) if len(pairs) else np.zeros((0, 2, ndim))
    if arr.ndim != 3 or arr.shape[1:] != (2, ndim):
        raise ValueError(
            f"pairs must be a sequence of (source, target) points with {ndim} coordinates each, "
            f"i.e. shape (n, 2, {ndim}); got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("pairs contain NaN or infinite coordinates")
    return arr


def _shortest(graph, a: Optional[int], b: Optional[int]) -> tuple[float, Optional[np.ndarray]]:
    nx = _import("networkx")
    if a is None or b is None:
        return math.inf, None
    try:
        length, nodes = nx.single_source_dijkstra(graph, a, target=b, weight="length")
    except nx.NetworkXNoPath:
        return math.inf, None
    return float(length), route_pixels(graph, nodes)


def plan_routes(pred: Any, gt: Any, pairs: Optional[Sequence] = None, *, n_pairs: int = 50, seed: int = 0,
                snap: float = DEFAULT_SNAP, min_branch: float = 0.0, backend: str = "skan",
                skeleton_method: str = "thin", skeleton_backend: str = "auto") -> RoutePlan:
    """Shortest routes between the same points on the prediction's and the ground truth's graphs.

    Args:
        pred, gt: binary 2D/3D masks of the same shape (or graphs from :func:`mask_to_graph`).
        pairs: ``(n, 2, ndim)`` source/target points in pixel coordinates; default: ``n_pairs``
            random pairs of connected ground-truth graph nodes (:func:`sample_pairs`, ``seed``).
        snap: a point is placed on the nearest skeleton pixel within ``snap`` pixels (separately
            on each graph); a point that cannot be placed on the prediction makes its routes
            unreachable, one that cannot be placed on the ground truth has no ground-truth route.
        min_branch, backend, skeleton_method, skeleton_backend: passed to :func:`mask_to_graph`
            for masks (defaults: no pruning, ``"skan"`` tracing, the ``"thin"`` skeleton rule,
            ``"auto"`` implementation); ignored for graphs.

    Returns:
        A :class:`RoutePlan`; ``.summary()`` gives the unreachable fraction, length ratios and
        the one-way APLS over these pairs.
    """
    snap = check_snap(snap)
    kw = dict(min_branch=min_branch, backend=backend, skeleton_method=skeleton_method, skeleton_backend=skeleton_backend)
    g_gt = as_graph(gt, "gt", **kw)
    g_pred = as_graph(pred, "pred", **kw)
    if tuple(g_gt.graph["shape"]) != tuple(g_pred.graph["shape"]):
        raise ValueError(
            f"pred and gt must have the same shape, got {tuple(g_pred.graph['shape'])} and {tuple(g_gt.graph['shape'])}"
        )
    ndim = len(g_gt.graph["shape"])
    if pairs is None:
        pairs = sample_pairs(g_gt, n_pairs, seed=seed)
    arr = _check_pairs(pairs, ndim, g_gt.graph["shape"])
    points = arr.reshape(-1, ndim)
    gi, gnodes = insert_points(g_gt, points, snap)
    pi, pnodes = insert_points(g_pred, points, snap)
    routes = []
    for k, (s, t) in enumerate(arr):
        gl, gp = _shortest(gi, gnodes[2 * k], gnodes[2 * k + 1])
        pl, pp = _shortest(pi, pnodes[2 * k], pnodes[2 * k + 1])
        routes.append(Route(tuple(float(x) for x in s), tuple(float(x) for x in t), gl, pl, gp, pp))
    return RoutePlan(routes, snap)

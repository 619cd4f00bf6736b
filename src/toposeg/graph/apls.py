"""APLS (average path length similarity, Van Etten et al., SpaceNet 3) on skeleton graphs.

Variant implemented here (pixel units, no geographic projection):

* **Control points** of a graph ``A``: all its nodes (junctions, end points, loop/path nodes)
  plus, when ``step`` is given, a point every ``step`` pixels inside each edge.
* **One-way score** ``C(A -> B)``: for ordered pairs ``(s, t)``, ``s != t``, of control points
  of ``A`` that are joined by a path in ``A`` (``L_A = d_A(s, t) > 0``), snap ``s`` and ``t`` onto
  ``B`` (nearest skeleton pixel within ``snap`` pixels) and take ``L_B = d_B(s', t')``; the pair
  scores ``1 - min(1, |L_A - L_B| / L_A)``, and 0 when a point cannot be snapped or ``B`` has
  no path. ``C(A -> B)`` is the mean over pairs. Sources are all control points, or a seeded
  random subset of ``max_sources`` of them (targets are always all control points).
* **APLS** is the harmonic mean of ``C(gt -> pred)`` (penalises missing roads and breaks) and
  ``C(pred -> gt)`` (penalises spurious roads and bridges), as in SpaceNet. A one-way score
  with no pair (a graph with fewer than two connected control points) is undefined (NaN) and is
  left out; when both are undefined APLS is NaN.

Consequences: identical masks score 1; an empty prediction against a non-empty ground truth
scores 0 (and vice versa); two empty masks give NaN.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from toposeg.graph.extract import _import
from toposeg.graph.routes import DEFAULT_SNAP, as_graph, check_snap, insert_points


def control_points(graph, step: Optional[float] = None) -> np.ndarray:
    """Pixel coordinates ``(n, ndim)`` of the control points of a graph (sorted, unique)."""
    pts = [graph.nodes[n]["coord"] for n in graph.nodes]
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step >= 1:
            raise ValueError(f"step must be a number of pixels >= 1 or None, got {step!r}")
        for _, _, path in graph.edges(data="path"):
            seg = np.linalg.norm(np.diff(path.astype(float), axis=0), axis=1)
            arc = np.concatenate([[0.0], np.cumsum(seg)])
            marks = np.arange(step, arc[-1] - 0.5 * step + 1e-9, step)
            for m in marks:
                i = int(np.searchsorted(arc, m))
                if 0 < i < len(path) - 1:
                    pts.append(tuple(int(c) for c in path[i]))
    ndim = len(graph.graph["shape"])
    if not pts:
        return np.zeros((0, ndim), dtype=np.int64)
    return np.unique(np.asarray(pts, dtype=np.int64), axis=0)


def one_way(a, b, *, snap: float = DEFAULT_SNAP, step: Optional[float] = None,
            max_sources: Optional[int] = None, seed: int = 0) -> dict:
    """``C(A -> B)`` with its counts: ``{"score", "n_pairs", "n_unreachable"}``."""
    nx = _import("networkx")
    pts = control_points(a, step)
    ai, anodes = insert_points(a, pts, 0.5)
    bi, bnodes = insert_points(b, pts, snap)
    sources = np.arange(len(pts))
    if max_sources is not None and len(sources) > max_sources:
        sources = np.sort(np.random.default_rng(seed).choice(len(pts), size=max_sources, replace=False))
    total, n_pairs, n_unreach = 0.0, 0, 0
    for s in sources:
        da = nx.single_source_dijkstra_path_length(ai, anodes[s], weight="length")
        db = nx.single_source_dijkstra_path_length(bi, bnodes[s], weight="length") if bnodes[s] is not None else {}
        for t in range(len(pts)):
            if t == s:
                continue
            la = da.get(anodes[t], math.inf)
            if not (math.isfinite(la) and la > 0):
                continue
            n_pairs += 1
            lb = db.get(bnodes[t], math.inf) if bnodes[t] is not None else math.inf
            if math.isfinite(lb):
                total += 1.0 - min(1.0, abs(la - lb) / la)
            else:
                n_unreach += 1
    return {"score": total / n_pairs if n_pairs else math.nan, "n_pairs": n_pairs, "n_unreachable": n_unreach}


def apls_report(pred: Any, gt: Any, *, snap: float = DEFAULT_SNAP, step: Optional[float] = None,
                max_sources: Optional[int] = 200, seed: int = 0, min_branch: float = 0.0,
                backend: str = "skan", skeleton_method: str = "thin", skeleton_backend: str = "auto") -> dict:
    """APLS with both one-way scores and their pair counts.

    Arguments as :func:`apls`. Keys: ``apls``, ``gt_to_pred``, ``pred_to_gt``, ``n_pairs_gt``, ``n_pairs_pred``,
    ``unreachable_gt_to_pred``, ``unreachable_pred_to_gt`` (fractions of pairs).
    """
    snap = check_snap(snap)
    if max_sources is not None and (isinstance(max_sources, bool) or not isinstance(max_sources, int) or max_sources < 1):
        raise ValueError(f"max_sources must be a positive integer or None, got {max_sources!r}")
    kw = dict(min_branch=min_branch, backend=backend, skeleton_method=skeleton_method, skeleton_backend=skeleton_backend)
    g_gt = as_graph(gt, "gt", **kw)
    g_pred = as_graph(pred, "pred", **kw)
    if tuple(g_gt.graph["shape"]) != tuple(g_pred.graph["shape"]):
        raise ValueError(
            f"pred and gt must have the same shape, got {tuple(g_pred.graph['shape'])} and {tuple(g_gt.graph['shape'])}"
        )
    fwd = one_way(g_gt, g_pred, snap=snap, step=step, max_sources=max_sources, seed=seed)
    bwd = one_way(g_pred, g_gt, snap=snap, step=step, max_sources=max_sources, seed=seed)
    halves = [h["score"] for h in (fwd, bwd) if not math.isnan(h["score"])]
    if not halves:
        score = math.nan
    elif min(halves) == 0:
        score = 0.0
    else:
        score = len(halves) / sum(1.0 / h for h in halves)
    frac = lambda h: h["n_unreachable"] / h["n_pairs"] if h["n_pairs"] else math.nan  # noqa: E731
    return {
        "apls": score, "gt_to_pred": fwd["score"], "pred_to_gt": bwd["score"],
        "n_pairs_gt": fwd["n_pairs"], "n_pairs_pred": bwd["n_pairs"],
        "unreachable_gt_to_pred": frac(fwd), "unreachable_pred_to_gt": frac(bwd),
    }


def apls(pred: Any, gt: Any, *, snap: float = DEFAULT_SNAP, step: Optional[float] = None,
         max_sources: Optional[int] = 200, seed: int = 0, min_branch: float = 0.0,
         backend: str = "skan", skeleton_method: str = "thin", skeleton_backend: str = "auto") -> float:
    """APLS of a binary prediction against a binary ground truth (2D or 3D masks); in [0, 1].

    See the module docstring for the exact definition. ``snap``: matching tolerance in pixels;
    ``step``: extra control points every ``step`` pixels along edges (default: nodes only);
    ``max_sources``: cap on the number of source control points per direction (seeded by
    ``seed``; ``None`` = all); ``min_branch``, ``backend``, ``skeleton_method`` (default
    ``"thin"``), ``skeleton_backend`` (default ``"auto"``): how masks become graphs, see
    :func:`mask_to_graph` (ignored for inputs that are already graphs).
    Empty prediction vs non-empty ground truth -> 0; both empty -> NaN.
    """
    return apls_report(pred, gt, snap=snap, step=step, max_sources=max_sources, seed=seed,
                       min_branch=min_branch, backend=backend, skeleton_method=skeleton_method,
                       skeleton_backend=skeleton_backend)["apls"]

"""Graph of a binary road/vessel mask: skeleton -> nodes (junctions, end points) and edges.

The skeleton comes from :func:`toposeg.skeleton.skeletonize` (topology-preserving thinning);
its pixel graph (8-connected in 2D, 26-connected in 3D) is traced into branches and stored in a
:class:`networkx.Graph`:

* node ids are flat pixel indices (``numpy.ravel_multi_index`` of the pixel in the mask);
* node attributes: ``coord`` (tuple of ints, array-index order ``(row, col)`` or
  ``(z, row, col)``) and ``kind``: ``"junction"`` (degree >= 3), ``"end"`` (degree <= 1,
  isolated skeleton pixels included) or ``"path"`` (degree 2: a node inserted to split a loop
  or a parallel branch so that the graph stays simple, or a former junction after pruning);
* edge attributes: ``path`` (``(k, ndim)`` int array of the skeleton pixels from one end to
  the other, both end nodes included), ``start`` (the node id of ``path[0]``) and ``length``
  (Euclidean length along the path in pixels: 1 per axis step, sqrt(2) per 2D diagonal,
  sqrt(3) per 3D diagonal).

Two tracing backends (:data:`BACKENDS`):

* ``"skan"`` (default): the branches of `skan <https://skeleton-analysis.org>`_'s
  ``Skeleton``. skan merges a cluster of adjacent junction pixels into one junction, so the
  graph's cycles are the skeleton's loops and the edge lengths add up to the skeleton length;
  a route turning at a junction goes through that junction pixel and can be a fraction of a
  pixel (at most ~1.5 px) longer than the 8/26-connected geodesic. Its first call in a process
  pays numba compilation (measured: ~2 s import + ~7.5 s compilation on a 2-core CPU).
* ``"pixel"``: pure NumPy/Python. Every skeleton pixel whose neighbour count is not 2 is a
  node and every pixel adjacency is an edge, so shortest paths equal the geodesic lengths along
  the skeleton pixels exactly; the price is that a junction cluster stays a small clique of
  junction nodes (tiny cycles, edge lengths overlapping by a pixel or two), so use it for
  route lengths, not to count loops or measure total length.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from toposeg.topology._inputs import as_mask

KINDS = ("junction", "end", "path")


def _import(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"toposeg.graph needs {module}: pip install 'toposeg[graph]' (networkx, skan, trimesh)"
        ) from exc


def path_length(path: np.ndarray) -> float:
    """Euclidean length along a pixel path ``(k, ndim)`` (0 for a single pixel)."""
    path = np.asarray(path, dtype=float)
    if len(path) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())


def _node_id(coord: np.ndarray, shape: tuple[int, ...]) -> int:
    return int(np.ravel_multi_index(tuple(int(c) for c in coord), shape))


def _add_node(graph, coord: np.ndarray, shape: tuple[int, ...]) -> int:
    node = _node_id(coord, shape)
    if node not in graph:
        graph.add_node(node, coord=tuple(int(c) for c in coord), kind="path")
    return node


def _put_edge(graph, path: np.ndarray, shape: tuple[int, ...]) -> None:
    u = _add_node(graph, path[0], shape)
    v = _add_node(graph, path[-1], shape)
    graph.add_edge(u, v, path=path, start=u, length=path_length(path))


def split_path(path: np.ndarray, indices) -> list[np.ndarray]:
    """Cut a path at interior pixel ``indices``; consecutive pieces share the cut pixel."""
    cuts = [0, *sorted(set(int(i) for i in indices)), len(path) - 1]
    return [path[a : b + 1] for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def _add_branch(graph, path: np.ndarray, shape: tuple[int, ...]) -> None:
    """Add a traced branch, splitting loops and parallel branches so the graph stays simple."""
    u, v = _node_id(path[0], shape), _node_id(path[-1], shape)
    if u == v:  # a closed loop (a ring, or a loop hanging from a junction): cut it in three
        k = len(path) - 1
        if k < 3:  # pragma: no cover - impossible for a thinned skeleton
            return
        for piece in split_path(path, (k // 3, (2 * k) // 3)):
            _add_branch(graph, piece, shape)
        return
    if graph.has_edge(u, v):  # two branches between the same nodes: cut the longer one
        old = graph.edges[u, v]["path"]
        if len(old) > len(path):
            graph.remove_edge(u, v)
            _put_edge(graph, path, shape)
            path = old
        if len(path) < 3:  # the same single adjacency twice: nothing to add
            return
        for piece in split_path(path, (len(path) // 2,)):
            _add_branch(graph, piece, shape)
        return
    _put_edge(graph, path, shape)


def _label_kinds(graph) -> None:
    for node, degree in graph.degree():
        graph.nodes[node]["kind"] = "junction" if degree >= 3 else ("end" if degree <= 1 else "path")


def _prune(graph, min_branch: float) -> None:
    """One pass: remove terminal branches (end -> junction) shorter than ``min_branch``."""
    spurs = []
    for u, v, data in graph.edges(data=True):
        du, dv = graph.degree(u), graph.degree(v)
        if data["length"] < min_branch and min(du, dv) == 1 and max(du, dv) >= 3:
            spurs.append((u, v) if du == 1 else (v, u))
    for end, junction in spurs:
        if graph.has_node(end) and graph.degree(junction) >= 3:
            graph.remove_node(end)


def _trace_pixel(skeleton: np.ndarray) -> list[np.ndarray]:
    """Branches of a skeleton without isolated pixels, as pixel paths (see module docstring)."""
    from itertools import product

    coords = np.argwhere(skeleton)
    index = np.full(tuple(s + 2 for s in skeleton.shape), -1, dtype=np.int64)
    index[tuple((coords + 1).T)] = np.arange(len(coords))
    offsets = [o for o in product((-1, 0, 1), repeat=skeleton.ndim) if any(o)]
    table = np.stack([index[tuple((coords + 1 + np.asarray(o)).T)] for o in offsets], axis=1)
    neighbours = [row[row >= 0].tolist() for row in table]
    degree = (table >= 0).sum(axis=1)
    is_node = degree != 2
    seen = np.zeros(len(coords), dtype=bool)
    paths: list[list[int]] = []
    for u in np.flatnonzero(is_node).tolist():
        for v in neighbours[u]:
            if is_node[v]:
                if u < v:
                    paths.append([u, v])
                continue
            if seen[v]:
                continue
            path, prev, cur = [u, v], u, v
            while not is_node[cur]:
                seen[cur] = True
                a, b = neighbours[cur]
                prev, cur = cur, (b if a == prev else a)
                path.append(cur)
            paths.append(path)
    for start in np.flatnonzero(~is_node & ~seen).tolist():  # rings without any node
        if seen[start]:
            continue
        seen[start] = True
        path, prev, cur = [start], start, neighbours[start][0]
        while cur != start:
            seen[cur] = True
            path.append(cur)
            a, b = neighbours[cur]
            prev, cur = cur, (b if a == prev else a)
        path.append(start)
        paths.append(path)
    return [coords[p] for p in paths]


def _trace_skan(skeleton: np.ndarray) -> list[np.ndarray]:
    skan = _import("skan")
    traced = skan.Skeleton(skeleton)
    return [np.asarray(traced.path_coordinates(i)).round().astype(np.int64) for i in range(traced.n_paths)]


BACKENDS = {"skan": _trace_skan, "pixel": _trace_pixel}


def skeleton_to_graph(skeleton: np.ndarray, *, min_branch: float = 0.0, backend: str = "skan"):
    """Graph of an already thinned skeleton (bool 2D/3D array); see :func:`mask_to_graph`."""
    if backend not in BACKENDS:
        raise KeyError(f"unknown graph backend {backend!r}; valid: {list(BACKENDS)}")
    nx = _import("networkx")
    skeleton = as_mask(skeleton, "skeleton")
    if not isinstance(min_branch, (int, float)) or min_branch < 0:
        raise ValueError(f"min_branch must be a non-negative number of pixels, got {min_branch!r}")
    shape = tuple(skeleton.shape)
    graph = nx.Graph(shape=shape, ndim=skeleton.ndim)
    if not skeleton.any():
        return graph
    from scipy import ndimage

    neighbours = ndimage.convolve(skeleton.astype(np.uint8), np.ones((3,) * skeleton.ndim, np.uint8),
                                  mode="constant") - skeleton
    isolated = skeleton & (neighbours == 0)
    for coord in np.argwhere(isolated):
        _add_node(graph, coord, shape)
    rest = skeleton & ~isolated
    if rest.any():
        for path in BACKENDS[backend](rest):
            _add_branch(graph, path, shape)
    if min_branch > 0:
        _label_kinds(graph)
        _prune(graph, float(min_branch))
    _label_kinds(graph)
    return graph


def mask_to_graph(mask: Any, *, min_branch: float = 0.0, backend: str = "skan"):
    """Skeleton graph of a binary 2D or 3D mask.

    Args:
        mask: bool or {0, 1} NumPy array / tensor, ``(H, W)`` or ``(D, H, W)``.
        min_branch: terminal branches (end point to junction) shorter than this many pixels are
            removed (one pass; short spurs are what thinning leaves on thick or noisy shapes).
            Isolated short pieces are kept: they are real, if tiny, parts of the mask.
        backend: branch tracing, one of :data:`BACKENDS` (``"skan"``: skan's branches,
            ``"pixel"``: exact geodesics; see the module docstring).

    Returns:
        A :class:`networkx.Graph` (see the module docstring for attributes); graph attributes
        ``shape`` and ``ndim``. An empty mask gives an empty graph; a mask without junctions
        (a line, a ring) gives end/path nodes only.
    """
    from toposeg.skeleton import skeletonize

    m = as_mask(mask, "mask")
    skeleton = skeletonize(m) if m.any() else m
    return skeleton_to_graph(skeleton, min_branch=min_branch, backend=backend)


def graph_pixels(graph) -> np.ndarray:
    """All skeleton pixels of the graph as a bool array of ``graph.graph['shape']``."""
    out = np.zeros(graph.graph["shape"], dtype=bool)
    for node, coord in graph.nodes(data="coord"):
        out[coord] = True
    for _, _, path in graph.edges(data="path"):
        out[tuple(path.T)] = True
    return out

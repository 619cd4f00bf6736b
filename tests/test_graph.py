"""toposeg.graph: skeleton graphs, route planning and APLS on hand-made masks.

References are independent of the code under test: hand-computed lengths, scikit-image's
``MCP_Geometric`` (geodesic distances along the skeleton pixels, 8/26-connected), skan's own
branch lengths, and a brute-force implementation of the APLS definition.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

nx = pytest.importorskip("networkx")
pytest.importorskip("skan")

from skimage.draw import line_nd as _line_nd  # noqa: E402
from skimage.graph import MCP_Geometric  # noqa: E402

import toposeg.graph as tg  # noqa: E402
from toposeg.skeleton import skeletonize  # noqa: E402

SQ2, SQ3 = math.sqrt(2), math.sqrt(3)
# With the default backend="skan", branches pass through one pixel of each junction: a route
# turning at a junction may be longer than the 8/26-connected geodesic by a fraction of a pixel.
# backend="pixel" gives the geodesics exactly.
JUNCTION_SLACK = 1.5


def line_nd(a, b):
    return _line_nd(a, b, endpoint=True)


def grid(cut_inner: bool = False, cut_stub: bool = False) -> np.ndarray:
    """3x3 grid of 1-pixel roads (rows/cols 10, 30, 50) with a dead-end stub (30, 50..58)."""
    m = np.zeros((64, 64), bool)
    for k in (10, 30, 50):
        m[k, 10:51] = True
        m[10:51, k] = True
    m[30, 50:59] = True  # stub to the east, dead end at (30, 58)
    if cut_inner:
        m[30, 39:42] = False  # road between junctions (30, 30) and (30, 50)
    if cut_stub:
        m[30, 54] = False
    return m


def geodesic(skeleton: np.ndarray, source) -> np.ndarray:
    """Reference: geodesic lengths along skeleton pixels (1 per axis step, sqrt(2)/sqrt(3) diagonals)."""
    cost = np.where(skeleton, 1.0, np.inf)
    mcp = MCP_Geometric(cost, fully_connected=True)
    dist, _ = mcp.find_costs([tuple(int(c) for c in source)])
    return dist


# ----------------------------------------------------------------------------- extraction


def test_straight_line_length_and_ends():
    m = np.zeros((20, 40), bool)
    m[7, 5:36] = True
    g = tg.mask_to_graph(m)
    assert g.number_of_edges() == 1
    (u, v, data), = g.edges(data=True)
    assert data["length"] == pytest.approx(30.0)
    assert {g.nodes[u]["coord"], g.nodes[v]["coord"]} == {(7, 5), (7, 35)}
    assert {g.nodes[u]["kind"], g.nodes[v]["kind"]} == {"end"}
    assert len(data["path"]) == 31 and tuple(data["path"][0]) == g.nodes[data["start"]]["coord"]


def test_diagonal_and_thick_line_lengths():
    m = np.zeros((40, 40), bool)
    m[line_nd((5, 5), (25, 25))] = True
    (_, _, d), = tg.skeleton_to_graph(m).edges(data=True)  # already thin: exact
    assert d["length"] == pytest.approx(20 * SQ2)
    # Zhang-Suen thinning removes the end pixel of a diagonal: compare with the skeleton's geodesic
    g = tg.mask_to_graph(m)
    (u, v, d), = g.edges(data=True)
    sk = skeletonize(m)
    assert d["length"] == pytest.approx(geodesic(sk, g.nodes[u]["coord"])[g.nodes[v]["coord"]])
    assert 19 * SQ2 - 1e-9 <= d["length"] <= 20 * SQ2 + 1e-9
    # a 5-pixel-wide horizontal bar: thinning shortens the ends by at most the half-width
    thick = np.zeros((30, 60), bool)
    thick[13:18, 10:51] = True
    total = sum(d for _, _, d in tg.mask_to_graph(thick).edges(data="length"))
    assert 40 - 2 * 3 <= total <= 40 + 1e-9


def test_3d_line_and_branch():
    v = np.zeros((16, 16, 16), bool)
    v[line_nd((2, 2, 2), (12, 12, 12))] = True
    (_, _, d), = tg.skeleton_to_graph(v).edges(data=True)  # already thin: exact
    assert d["length"] == pytest.approx(10 * SQ3)
    (_, _, d), = tg.mask_to_graph(v).edges(data=True)  # Lee thinning may drop an end voxel
    assert 9 * SQ3 - 1e-9 <= d["length"] <= 10 * SQ3 + 1e-9
    v[line_nd((7, 7, 7), (7, 14, 3))] = True
    kinds = sorted(k for _, k in tg.mask_to_graph(v).nodes(data="kind"))
    assert kinds.count("end") == 3 and kinds.count("junction") >= 1


def test_cross_kinds_match_pixel_neighbour_counts():
    m = np.zeros((41, 41), bool)
    m[20, 3:38] = True
    m[3:38, 20] = True
    g = tg.mask_to_graph(m)
    ends = sorted(c for c, k in ((d["coord"], d["kind"]) for _, d in g.nodes(data=True)) if k == "end")
    # reference: skeleton pixels with exactly one 8-neighbour
    from scipy.ndimage import convolve

    sk = skeletonize(m)
    nb = convolve(sk.astype(int), np.ones((3, 3), int), mode="constant") - sk
    assert ends == sorted(map(tuple, np.argwhere(sk & (nb == 1))))
    assert [k for _, k in g.nodes(data="kind")].count("junction") >= 1
    assert sum(d for _, _, d in g.edges(data="length")) == pytest.approx(68.0)


def test_skan_backend_agrees_with_skan_and_pixel_backend():
    import skan

    m = grid()
    sk = skeletonize(m)
    g = tg.mask_to_graph(m)
    assert sum(d for _, _, d in g.edges(data="length")) == pytest.approx(skan.Skeleton(sk).path_lengths().sum())
    assert np.array_equal(tg.graph_pixels(g), sk)
    gp = tg.mask_to_graph(m, backend="pixel")
    assert np.array_equal(tg.graph_pixels(gp), sk)
    ends = lambda gr: sorted(d["coord"] for _, d in gr.nodes(data=True) if d["kind"] == "end")  # noqa: E731
    assert ends(g) == ends(gp)
    # both are paths on the skeleton: skan's are never shorter than the exact geodesic
    a, b = (30, 10), (30, 58)
    ls = tg.plan_routes(g, g, [(a, b)]).routes[0].gt_length
    lp = tg.plan_routes(gp, gp, [(a, b)]).routes[0].gt_length
    assert lp == pytest.approx(geodesic(sk, a)[b])
    assert lp - 1e-9 <= ls <= lp + 3 * JUNCTION_SLACK


def test_pixel_graph_distances_equal_skeleton_geodesics():
    m = grid(cut_inner=True)
    sk = skeletonize(m)
    g = tg.mask_to_graph(m, backend="pixel")
    assert np.array_equal(tg.graph_pixels(g), sk)
    assert isinstance(g, nx.Graph) and not g.is_multigraph()
    assert g.graph["shape"] == m.shape
    src = (30, 10)
    ref = geodesic(sk, src)
    node = {d["coord"]: n for n, d in g.nodes(data=True)}[src]
    dist = nx.single_source_dijkstra_path_length(g, node, weight="length")
    for n, d in dist.items():
        assert d == pytest.approx(ref[g.nodes[n]["coord"]])
    unreachable = [n for n in g if n not in dist]
    assert all(np.isinf(ref[g.nodes[n]["coord"]]) for n in unreachable)
    assert isinstance(g, nx.Graph) and not g.is_multigraph()
    assert g.graph["shape"] == m.shape


def test_ring_without_junctions_is_a_simple_cycle():
    from skimage.draw import disk

    m = np.zeros((31, 31), bool)
    m[disk((15, 15), 10)] = True
    m[disk((15, 15), 7)] = False
    g = tg.mask_to_graph(m)
    assert {k for _, k in g.nodes(data="kind")} == {"path"}
    assert len(nx.cycle_basis(g)) == 1 and nx.number_of_selfloops(g) == 0
    sk = skeletonize(m)
    assert np.array_equal(tg.graph_pixels(g), sk)
    # ring length: go around from one node back to it = closed geodesic; check via two halves
    a, b = list(g.nodes)[:2]
    d_ab = nx.shortest_path_length(g, a, b, weight="length")
    assert d_ab == pytest.approx(geodesic(sk, g.nodes[a]["coord"])[g.nodes[b]["coord"]])


def test_parallel_branches_are_kept_geometrically():
    m = np.zeros((30, 40), bool)
    m[10, 5:35] = True  # 29 px long
    m[10:20, 12] = True  # 9
    m[10:20, 28] = True  # 9
    m[20, 13:28] = True  # 14, joined to the verticals by two diagonal steps (thin corners)
    # a loop between two junctions: two branches join the same pair of nodes
    g = tg.skeleton_to_graph(m)
    assert not g.is_multigraph() and nx.number_of_selfloops(g) == 0
    assert len(nx.cycle_basis(g)) == 1
    assert sum(d for _, _, d in g.edges(data="length")) == pytest.approx(29 + 9 + 9 + 14 + 2 * SQ2)
    assert np.array_equal(tg.graph_pixels(g), m)


@pytest.mark.parametrize("backend", ["skan", "pixel"])
def test_graph_covers_arbitrary_pixel_sets(backend):
    """Robustness on non-thin, random inputs: every pixel lands in the graph, graph stays simple."""
    rng = np.random.default_rng(0)
    for _ in range(15):
        m = rng.random((12, 12)) < 0.35
        g = tg.skeleton_to_graph(m, backend=backend)
        assert np.array_equal(tg.graph_pixels(g), m)
        assert not g.is_multigraph() and nx.number_of_selfloops(g) == 0
        assert all(d["length"] == pytest.approx(tg.path_length(d["path"])) for _, _, d in g.edges(data=True))


def test_isolated_pixel_and_empty_mask():
    m = np.zeros((10, 10), bool)
    assert tg.mask_to_graph(m).number_of_nodes() == 0
    m[4, 4] = True
    g = tg.skeleton_to_graph(m)
    assert list(g.nodes(data=True)) == [(44, {"coord": (4, 4), "kind": "end"})]
    assert g.number_of_edges() == 0


def test_min_branch_prunes_short_spurs_only():
    m = np.zeros((30, 50), bool)
    m[15, 5:45] = True
    m[16:19, 20] = True  # spur of length 3 below the road
    m[16:28, 32] = True  # long branch of length 12
    g = tg.skeleton_to_graph(m, min_branch=5)
    ends = {d["coord"] for _, d in g.nodes(data=True) if d["kind"] == "end"}
    assert ends == {(15, 5), (15, 44), (27, 32)}
    assert sum(d for _, _, d in g.edges(data="length")) == pytest.approx(39 + 12)


def test_tensor_input_and_input_not_modified():
    m = grid()
    before = m.copy()
    g1 = tg.mask_to_graph(m)
    g2 = tg.mask_to_graph(torch.from_numpy(m))
    assert np.array_equal(m, before)
    assert sorted(g1.nodes) == sorted(g2.nodes)


@pytest.mark.parametrize("bad, exc, match", [
    (np.zeros(10, bool), ValueError, r"2D \(H, W\) or 3D \(D, H, W\).*\(10,\)"),
    (np.zeros((2, 3, 4, 5), bool), ValueError, r"2D \(H, W\) or 3D.*\(2, 3, 4, 5\)"),
    (np.full((5, 5), 0.5), ValueError, r"binary.*0\.5"),
    ([[0, 1], [1, 0]], TypeError, r"numpy.ndarray or torch.Tensor, got list"),
])
def test_mask_to_graph_bad_input(bad, exc, match):
    with pytest.raises(exc, match=match):
        tg.mask_to_graph(bad)


def test_min_branch_and_backend_bad_value():
    with pytest.raises(ValueError, match=r"min_branch must be a non-negative.*-1"):
        tg.mask_to_graph(grid(), min_branch=-1)
    with pytest.raises(KeyError, match=r"unknown graph backend 'networkx'; valid: \['skan', 'pixel'\]"):
        tg.mask_to_graph(grid(), backend="networkx")


# ----------------------------------------------------------------------------- routes


def test_grid_cut_makes_specific_pairs_unreachable_and_others_detour():
    gt = grid()
    pred = grid(cut_inner=True, cut_stub=True)
    pairs = [
        ((30, 10), (30, 58)),  # beyond the cut stub: unreachable
        ((10, 30), (30, 58)),  # idem
        ((30, 10), (30, 50)),  # through the cut inner road: detour around a block
        ((10, 12), (10, 48)),  # untouched border road, straight through a junction: same length
        ((50, 12), (50, 48)),
    ]
    plan = tg.plan_routes(pred, gt, pairs, snap=2.0)
    status = [r.status for r in plan.routes]
    assert status == ["unreachable", "unreachable", "ok", "ok", "ok"]
    r = plan.routes[2]
    assert r.gt_length == pytest.approx(40.0)
    # detour: (30,10) -> (30,30), up to (10,30), east to (10,50), down to (30,50) = 80 px
    # minus 2 - sqrt(2) at each of the 3 turns where the 8-connected path cuts the corner
    expected = 80 - 3 * (2 - SQ2)
    assert geodesic(skeletonize(pred), (30, 10))[30, 50] == pytest.approx(expected)  # the reference
    assert expected - 1e-9 <= r.pred_length <= expected + 3 * JUNCTION_SLACK
    exact = tg.plan_routes(pred, gt, pairs, snap=2.0, backend="pixel")
    assert exact.routes[2].pred_length == pytest.approx(expected)
    assert [q.status for q in exact.routes] == status
    assert r.ratio == pytest.approx(r.pred_length / 40)
    assert r.similarity == pytest.approx(1 - min(1, abs(40 - r.pred_length) / 40))
    assert plan.routes[3].gt_length == pytest.approx(36.0)
    assert plan.routes[3].pred_length == pytest.approx(36.0)
    # the returned pixel routes are connected skeleton paths from source to target
    px = r.pred_path
    assert tuple(px[0]) == (30, 10) and tuple(px[-1]) == (30, 50)
    assert np.abs(np.diff(px, axis=0)).max() == 1 and skeletonize(pred)[tuple(px.T)].all()
    assert tg.path_length(px) == pytest.approx(r.pred_length)
    s = plan.summary()
    assert s["n_valid"] == 5 and s["n_unreachable"] == 2
    assert s["unreachable_fraction"] == pytest.approx(2 / 5)
    assert s["apls_gt_to_pred"] == pytest.approx((0 + 0 + r.similarity + 1 + 1) / 5)


def test_snapping_tolerance_and_points_off_the_graph():
    gt = grid()
    pairs = [((33, 10), (30, 47.5)), ((40, 40), (10, 30))]  # (40, 40) is 10 px from any road
    plan = tg.plan_routes(gt, gt, pairs, snap=3.0)
    assert plan.routes[0].status == "ok" and plan.routes[0].gt_length == pytest.approx(37 + 3 * 0 + 0, abs=3)
    assert plan.routes[1].status == "no_gt_route" and math.isnan(plan.routes[1].ratio)
    assert plan.summary()["n_valid"] == 1


def test_sampled_pairs_are_seeded_connected_and_exact_copy_scores_one():
    gt = grid()
    g = tg.mask_to_graph(gt)
    a = tg.sample_pairs(g, 6, seed=3)
    assert a == tg.sample_pairs(g, 6, seed=3)
    assert len(a) == 6 and len(set(a)) == 6
    coords = {d["coord"]: n for n, d in g.nodes(data=True)}
    assert all(nx.has_path(g, coords[s], coords[t]) for s, t in a)
    # fewer connected pairs than requested: all of them
    assert len(tg.sample_pairs(g, 1000, seed=0)) == math.comb(g.number_of_nodes(), 2)
    plan = tg.plan_routes(gt.copy(), gt, n_pairs=10, seed=1)
    s = plan.summary()
    assert s["n_pairs"] == 10 and s["unreachable_fraction"] == 0 and s["median_ratio"] == pytest.approx(1)


def test_plan_routes_bad_input():
    gt = grid()
    with pytest.raises(ValueError, match=r"pairs must be .*shape \(n, 2, 2\); got shape \(1, 3\)"):
        tg.plan_routes(gt, gt, [[1, 2, 3]])
    with pytest.raises(ValueError, match=r"same shape, got \(10, 10\) and \(64, 64\)"):
        tg.plan_routes(np.zeros((10, 10), bool), gt)
    with pytest.raises(ValueError, match=r"snap must be a finite distance >= 0.*-1"):
        tg.plan_routes(gt, gt, snap=-1)
    with pytest.raises(ValueError, match=r"n_pairs must be a positive integer, got 0"):
        tg.plan_routes(gt, gt, n_pairs=0)
    with pytest.raises(ValueError, match=r"NaN or infinite"):
        tg.plan_routes(gt, gt, [((0, 0), (np.nan, 1))])


# ----------------------------------------------------------------------------- APLS


def reference_one_way(a_mask: np.ndarray, b_mask: np.ndarray, controls: np.ndarray, snap: float):
    """Brute-force C(A -> B): geodesics by MCP on the skeletons, nearest skeleton pixel by search."""
    sa, sb = skeletonize(a_mask), skeletonize(b_mask)
    bpix = np.argwhere(sb)
    snapped = []
    for p in controls:
        d = np.linalg.norm(bpix - p, axis=1) if len(bpix) else np.array([])
        snapped.append(tuple(bpix[d.argmin()]) if len(d) and d.min() <= snap else None)
    terms = []
    for i, s in enumerate(controls):
        da = geodesic(sa, s)
        db = geodesic(sb, snapped[i]) if snapped[i] is not None else None
        for j, t in enumerate(controls):
            la = da[tuple(t)]
            if i == j or not np.isfinite(la) or la == 0:
                continue
            lb = db[snapped[j]] if db is not None and snapped[j] is not None else np.inf
            terms.append(math.nan if not np.isfinite(lb) else 1 - min(1, abs(la - lb) / la))
    terms = np.asarray(terms)
    return float(np.nan_to_num(terms).mean()), len(terms), int(np.isnan(terms).sum())


def test_apls_matches_brute_force_definition_on_cut_grid():
    gt, pred = grid(), grid(cut_inner=True, cut_stub=True)
    rep = tg.apls_report(pred, gt, snap=3.0, max_sources=None, backend="pixel")
    cp_gt = tg.control_points(tg.mask_to_graph(gt, backend="pixel"))
    cp_pred = tg.control_points(tg.mask_to_graph(pred, backend="pixel"))
    ref_fwd, n_fwd, u_fwd = reference_one_way(gt, pred, cp_gt, 3.0)
    ref_bwd, n_bwd, u_bwd = reference_one_way(pred, gt, cp_pred, 3.0)
    assert (rep["n_pairs_gt"], rep["n_pairs_pred"]) == (n_fwd, n_bwd)
    assert rep["unreachable_gt_to_pred"] == pytest.approx(u_fwd / n_fwd)
    assert rep["unreachable_pred_to_gt"] == pytest.approx(u_bwd / n_bwd)
    assert rep["gt_to_pred"] == pytest.approx(ref_fwd)
    assert rep["pred_to_gt"] == pytest.approx(ref_bwd)
    assert rep["apls"] == pytest.approx(2 / (1 / rep["gt_to_pred"] + 1 / rep["pred_to_gt"]))
    assert 0 < rep["apls"] < 1 and rep["unreachable_gt_to_pred"] > 0
    assert tg.apls(pred, gt, snap=3.0, max_sources=None, backend="pixel") == pytest.approx(rep["apls"])
    # skan's graph has other control points (one node per junction cluster): another value,
    # same qualitative verdict
    skan_rep = tg.apls_report(pred, gt, snap=3.0, max_sources=None)
    assert 0 < skan_rep["apls"] < 1 and 0 < skan_rep["unreachable_gt_to_pred"] < 1


def test_apls_with_step_control_points_matches_brute_force():
    gt, pred = grid(), grid(cut_inner=True)
    rep = tg.apls_report(pred, gt, snap=3.0, step=7, max_sources=None, backend="pixel")
    cp_gt = tg.control_points(tg.mask_to_graph(gt, backend="pixel"), step=7)
    cp_pred = tg.control_points(tg.mask_to_graph(pred, backend="pixel"), step=7)
    n_nodes = tg.mask_to_graph(gt, backend="pixel").number_of_nodes()
    assert len(cp_gt) > n_nodes  # points were added inside edges (several per edge)
    ref_fwd, n_fwd, _ = reference_one_way(gt, pred, cp_gt, 3.0)
    ref_bwd, n_bwd, _ = reference_one_way(pred, gt, cp_pred, 3.0)
    assert (rep["n_pairs_gt"], rep["n_pairs_pred"]) == (n_fwd, n_bwd)
    assert rep["gt_to_pred"] == pytest.approx(ref_fwd)
    assert rep["pred_to_gt"] == pytest.approx(ref_bwd)


def test_apls_exact_copy_empty_and_nan():
    gt = grid()
    assert tg.apls(gt.copy(), gt) == pytest.approx(1.0)
    assert tg.apls(gt, gt, step=5) == pytest.approx(1.0)
    empty = np.zeros_like(gt)
    assert tg.apls(empty, gt) == 0.0
    assert tg.apls(gt, empty) == 0.0
    assert math.isnan(tg.apls(empty, empty))
    rep = tg.apls_report(empty, gt)
    assert rep["gt_to_pred"] == 0 and math.isnan(rep["pred_to_gt"]) and rep["unreachable_gt_to_pred"] == 1


def test_apls_single_line_without_junctions_and_shift_within_snap():
    gt = np.zeros((20, 50), bool)
    gt[10, 5:45] = True
    shifted = np.roll(gt, 2, axis=0)
    assert tg.apls(shifted, gt, snap=3) == pytest.approx(1.0)
    assert tg.apls(shifted, gt, snap=1) == 0.0  # nothing snaps
    half = gt.copy()
    half[10, 25:] = False  # pred covers 20 of 40 px: one-way scores by the definition
    rep = tg.apls_report(half, gt, snap=2)
    # gt control points (5) and (44); (44) cannot snap -> the only pair scores 0
    assert rep["gt_to_pred"] == 0.0 and rep["apls"] == 0.0


def test_apls_3d_copy_and_break():
    v = np.zeros((16, 16, 16), bool)
    v[line_nd((2, 2, 2), (12, 12, 12))] = True
    v[line_nd((7, 7, 7), (7, 14, 3))] = True
    assert tg.apls(v, v) == pytest.approx(1.0)
    broken = v.copy()
    broken[9:11, 9:11, 9:11] = False
    assert tg.apls(broken, v) < 1.0


def test_apls_is_seeded_with_max_sources():
    gt, pred = grid(), grid(cut_inner=True)
    a = tg.apls(pred, gt, max_sources=2, seed=5)
    assert a == tg.apls(pred, gt, max_sources=2, seed=5)
    assert 0 <= a <= 1


def test_apls_bad_input():
    gt = grid()
    with pytest.raises(ValueError, match=r"max_sources must be a positive integer or None, got 0"):
        tg.apls(gt, gt, max_sources=0)
    with pytest.raises(ValueError, match=r"step must be a number of pixels >= 1 or None, got 0"):
        tg.apls(gt, gt, step=0)
    with pytest.raises(ValueError, match=r"same shape"):
        tg.apls(gt[:10], gt)
    with pytest.raises(ValueError, match=r"binary"):
        tg.apls(gt * 2, gt)

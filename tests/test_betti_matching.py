"""Betti matching error and local Betti error vs hand counts and an independent brute force.

The brute force builds the cubical complexes of P, G and C = P ∪ G explicitly (closed pixels/
voxels for the default pair, pixels as vertices for the opposite pair), computes cycle and
boundary spaces by Gaussian elimination over Z/2 and evaluates the definition

    matched_k = rank(H_k(P)→H_k(C)) + rank(H_k(G)→H_k(C)) − rank(H_k(P)⊕H_k(G)→H_k(C))
    error_k   = β_k(P) + β_k(G) − 2·matched_k

directly. It shares no code with toposeg (no labelling, no duality, no persistence); its complex
builder is checked against gudhi's cubical Betti numbers.
"""

import itertools

import numpy as np
import pytest
import torch

from toposeg.metrics.betti_matching import _betti_matching, betti_matching_error
from toposeg.metrics.local_betti import local_betti_error
from toposeg.topology import betti_numbers

gudhi = pytest.importorskip("gudhi")


# ------------------------------------------------------------------ brute-force reference


def _cells(mask: np.ndarray, closed_pixels: bool) -> dict[tuple[int, ...], int]:
    """Cells (doubled-grid coordinates) of the complex of ``mask`` -> their dimension."""
    shape = mask.shape
    out = {}
    if closed_pixels:  # each pixel is a closed unit square/cube: grid 2n + 1, pixel at 2v + 1
        for v in zip(*np.nonzero(mask)):
            for off in itertools.product((-1, 0, 1), repeat=len(shape)):
                c = tuple(2 * a + 1 + o for a, o in zip(v, off))
                out[c] = sum(x % 2 for x in c)
    else:  # pixels are vertices (2v); a cube exists when all its vertices are in the mask
        grid = [range(2 * s - 1) for s in shape]
        for c in itertools.product(*grid):
            odd = [i for i, x in enumerate(c) if x % 2]
            ok = True
            for signs in itertools.product((-1, 1), repeat=len(odd)):
                v = list(c)
                for i, s in zip(odd, signs):
                    v[i] += s
                if not mask[tuple(x // 2 for x in v)]:
                    ok = False
                    break
            if ok:
                out[c] = len(odd)
    return out


def _boundary(c: tuple[int, ...]) -> list[tuple[int, ...]]:
    faces = []
    for i, x in enumerate(c):
        if x % 2:
            for s in (-1, 1):
                f = list(c)
                f[i] += s
                faces.append(tuple(f))
    return faces


def _rank(vectors) -> int:
    basis: dict[int, int] = {}
    for v in vectors:
        while v:
            top = v.bit_length() - 1
            if top not in basis:
                basis[top] = v
                break
            v ^= basis[top]
    return len(basis)


def _cycles(cells: dict, k: int, index: dict) -> list[int]:
    """Basis of Z_k (as bitsets over the global index of k-cells) of the complex ``cells``."""
    kcells = [c for c, d in cells.items() if d == k]
    if k == 0:
        return [1 << index[c] for c in kcells]
    basis: dict[int, tuple[int, int]] = {}
    out = []
    for c in kcells:
        vec = 0
        for f in _boundary(c):
            vec ^= 1 << index[f]
        combo = 1 << index[c]
        while vec:
            top = vec.bit_length() - 1
            if top not in basis:
                basis[top] = (vec, combo)
                break
            bv, bc = basis[top]
            vec ^= bv
            combo ^= bc
        if not vec:
            out.append(combo)
    return out


def _boundaries(cells: dict, k: int, index: dict) -> list[int]:
    out = []
    for c, d in cells.items():
        if d == k + 1:
            vec = 0
            for f in _boundary(c):
                vec ^= 1 << index[f]
            out.append(vec)
    return out


def reference_matching(p: np.ndarray, g: np.ndarray, closed_pixels: bool) -> dict[int, int]:
    """error_k from the definition, by linear algebra over Z/2 on explicit complexes."""
    kp, kg, kc = _cells(p, closed_pixels), _cells(g, closed_pixels), _cells(p | g, closed_pixels)
    if closed_pixels:  # the complex of P ∪ G is the union of the two complexes
        assert set(kc) == set(kp) | set(kg)
    index = {c: i for i, c in enumerate(sorted(kc))}
    out = {}
    for k in range(p.ndim):
        zp, zg = _cycles(kp, k, index), _cycles(kg, k, index)
        bp, bg, bc = _boundaries(kp, k, index), _boundaries(kg, k, index), _boundaries(kc, k, index)
        beta_p, beta_g = len(zp) - _rank(bp), len(zg) - _rank(bg)
        rank_bc = _rank(bc)
        r_p = _rank(zp + bc) - rank_bc
        r_g = _rank(zg + bc) - rank_bc
        r_sum = _rank(zp + zg + bc) - rank_bc
        out[k] = beta_p + beta_g - 2 * (r_p + r_g - r_sum)
    return out


def gudhi_betti(mask: np.ndarray, closed_pixels: bool) -> tuple[int, ...]:
    f = np.where(mask, 0.0, 1.0)
    cc = gudhi.CubicalComplex(top_dimensional_cells=f) if closed_pixels else gudhi.CubicalComplex(vertices=f)
    cc.compute_persistence(homology_coeff_field=2, min_persistence=-1)
    out = []
    for k in range(mask.ndim):
        iv = np.asarray(cc.persistence_intervals_in_dimension(k)).reshape(-1, 2)
        out.append(int(np.count_nonzero((iv[:, 0] <= 0) & (iv[:, 1] > 0.5))))
    return tuple(out)


def reference_betti(mask: np.ndarray, closed_pixels: bool) -> tuple[int, ...]:
    cells = _cells(mask, closed_pixels)
    index = {c: i for i, c in enumerate(sorted(cells))}
    return tuple(len(_cycles(cells, k, index)) - _rank(_boundaries(cells, k, index)) for k in range(mask.ndim))


def as_errors(d: dict, ndim: int) -> dict[int, int]:
    return {k: int(d[f"betti_matching_error_{k}"]) for k in range(ndim)}


# ------------------------------------------------------------------ hand-built shapes


def ring(shape=(40, 40), top=5, left=5, size=12, width=2) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[top:top + size, left:left + size] = True
    m[top + width:top + size - width, left + width:left + size - width] = False
    return m


def test_reference_complexes_agree_with_gudhi():
    rng = np.random.default_rng(0)
    for shape in [(6, 7), (4, 4, 5)]:
        for closed in (True, False):
            for _ in range(6):
                m = rng.random(shape) < 0.5
                assert reference_betti(m, closed) == gudhi_betti(m, closed)


def test_far_apart_rings_betti_error_zero_matching_error_two():
    gt = ring(left=3)
    pred = ring(left=24)
    assert not (gt & pred).any()
    assert betti_numbers(pred) == betti_numbers(gt) == (1, 1)          # Betti error 0
    r = betti_matching_error(pred, gt)
    assert r["betti_matching_error_1"] == 2.0    # the two loops are different loops
    assert r["betti_matching_error_0"] == 2.0    # and the two components different components
    assert r["betti_matching_error"] == 4.0
    assert as_errors(r, 2) == reference_matching(pred[:, :40], gt[:, :40], True)


def test_ring_with_gap():
    gt = ring()
    pred = gt.copy()
    pred[10:13, 5:7] = False                      # cut the left side: no loop, one component
    assert betti_numbers(pred) == (1, 0)
    r = betti_matching_error(pred, gt)
    assert (r["betti_matching_error_0"], r["betti_matching_error_1"]) == (0.0, 1.0)
    assert as_errors(r, 2) == reference_matching(pred, gt, True)


def test_ring_shifted_by_one_pixel_is_matched():
    gt = ring()
    for dy, dx in [(0, 1), (1, 0), (1, 1), (-1, 0)]:
        pred = np.roll(gt, (dy, dx), axis=(0, 1))
        r = betti_matching_error(pred, gt)
        assert r["betti_matching_error"] == 0.0
        assert betti_matching_error(pred, gt, connectivity=4)["betti_matching_error"] == 0.0


def test_identical_and_swapped_inputs():
    rng = np.random.default_rng(3)
    for shape in [(30, 27), (9, 10, 11)]:
        a = rng.random(shape) < 0.45
        b = rng.random(shape) < 0.45
        ra, rb = betti_matching_error(a, b), betti_matching_error(b, a)
        assert ra == rb
        assert ra["betti_matching_error"] > 0
        assert all(v == 0.0 for v in betti_matching_error(a, a).values())


def test_split_cell_counts_one_extra_hole():
    # GT: one square cell; prediction: the same cell split in two by a wall -> one G hole matched
    # to one P hole, the second P hole is unmatched (error 1 = Betti error here)
    gt = ring(size=14)
    pred = gt.copy()
    pred[11:13, 5:19] = True
    assert betti_numbers(pred) == (1, 2)
    r = betti_matching_error(pred, gt)
    assert (r["betti_matching_error_0"], r["betti_matching_error_1"]) == (0.0, 1.0)
    # walls in different places: vertical split vs horizontal split. Each of the two P cells
    # overlaps both G cells; only the outer boundary (sum of both cells) is a common class:
    # matched 1 of 2 holes per side, error 2 although the Betti error is 0
    vert = gt.copy()
    vert[5:19, 11:13] = True
    r = betti_matching_error(pred, vert)
    assert r["betti_matching_error_1"] == 2.0
    assert as_errors(r, 2) == reference_matching(pred[:22, :22], vert[:22, :22], True)


def test_hole_filled_by_the_other_mask_is_unmatched():
    gt = ring()
    pred = gt.copy()
    pred[7:15, 7:15] = True                      # solid square: the hole is gone
    r = betti_matching_error(pred, gt)
    assert (r["betti_matching_error_0"], r["betti_matching_error_1"]) == (0.0, 1.0)


def test_3d_hollow_box_cavity_and_tube_loop():
    box = np.zeros((12, 12, 12), bool)
    box[2:9, 2:9, 2:9] = True
    box[4:7, 4:7, 4:7] = False                   # one cavity
    assert betti_numbers(box) == (1, 0, 1)
    moved = np.zeros((12, 12, 24), bool)
    moved[:, :, :12] = box
    other = np.zeros_like(moved)
    other[:, :, 12:] = box
    r = betti_matching_error(other, moved)
    assert (r["betti_matching_error_0"], r["betti_matching_error_1"], r["betti_matching_error_2"]) == (2.0, 0.0, 2.0)
    shifted = np.roll(box, 1, axis=2)
    assert betti_matching_error(shifted, box)["betti_matching_error"] == 0.0
    opened = box.copy()
    opened[5, 5, 2:4] = False                    # a channel to the outside: no cavity
    assert betti_numbers(opened) == (1, 0, 0)
    r = betti_matching_error(opened, box)
    assert (r["betti_matching_error_0"], r["betti_matching_error_1"], r["betti_matching_error_2"]) == (0.0, 0.0, 1.0)

    # a square tube loop (solid torus) vs the same loop far away / shifted / cut
    loop = np.zeros((5, 14, 30), bool)
    loop[1:4, 1:12, 1:12] = True
    loop[1:4, 4:9, 4:9] = False
    assert betti_numbers(loop) == (1, 1, 0)
    far_loop = np.roll(loop, 16, axis=2)
    r = betti_matching_error(far_loop, loop)
    assert (r["betti_matching_error_0"], r["betti_matching_error_1"], r["betti_matching_error_2"]) == (2.0, 2.0, 0.0)
    r = betti_matching_error(np.roll(loop, 1, axis=1), loop)
    assert r["betti_matching_error"] == 0.0
    cut = loop.copy()
    cut[1:4, 5:7, 1:4] = False
    assert betti_numbers(cut) == (1, 0, 0)
    r = betti_matching_error(cut, loop)
    assert (r["betti_matching_error_0"], r["betti_matching_error_1"], r["betti_matching_error_2"]) == (0.0, 1.0, 0.0)


@pytest.mark.parametrize("conn,closed", [(None, True), (4, False)])
def test_random_2d_equals_brute_force(conn, closed):
    rng = np.random.default_rng(10)
    for i in range(150):
        shape = tuple(rng.integers(3, 9, 2))
        p = rng.random(shape) < rng.uniform(0.3, 0.85)
        g = rng.random(shape) < rng.uniform(0.3, 0.85)
        if i % 2 == 0:  # correlated pairs: a perturbed copy
            g = p ^ (rng.random(shape) < 0.15)
        got = as_errors(betti_matching_error(p, g, connectivity=conn), 2)
        assert got == reference_matching(p, g, closed), (p.astype(int), g.astype(int))


@pytest.mark.parametrize("conn,closed", [(None, True), (6, False)])
def test_random_3d_equals_brute_force(conn, closed):
    rng = np.random.default_rng(11)
    for i in range(40):
        shape = tuple(rng.integers(3, 6, 3))
        p = rng.random(shape) < rng.uniform(0.3, 0.85)
        g = rng.random(shape) < rng.uniform(0.3, 0.85)
        if i % 2 == 0:
            g = p ^ (rng.random(shape) < 0.15)
        got = as_errors(betti_matching_error(p, g, connectivity=conn), 3)
        assert got == reference_matching(p, g, closed), (p.astype(int), g.astype(int))


@pytest.mark.parametrize("conn,closed", [(None, True), (6, False)])
def test_random_dense_3d_cavities_equal_brute_force(conn, closed):
    # dense volumes: many cavities and loops (the sparse test above has few cavities)
    rng = np.random.default_rng(13)
    for i in range(30):
        shape = tuple(rng.integers(4, 7, 3))
        p = rng.random(shape) < rng.uniform(0.75, 0.95)
        g = p ^ (rng.random(shape) < 0.1) if i % 2 == 0 else rng.random(shape) < rng.uniform(0.75, 0.95)
        got = as_errors(betti_matching_error(p, g, connectivity=conn), 3)
        assert got == reference_matching(p, g, closed), (p.astype(int), g.astype(int))


def test_3d_loop_methods_agree():
    # Mayer–Vietoris (default pair) and the 4D layered filtration must give the same rank
    rng = np.random.default_rng(12)
    for _ in range(8):
        p = rng.random((5, 6, 7)) < 0.55
        g = p ^ (rng.random(p.shape) < 0.2)
        assert _betti_matching(p, g, 26, 6) == _betti_matching(p, g, 26, 6, loops="layers")


def test_lower_bound_and_parity_and_inputs():
    rng = np.random.default_rng(4)
    p = rng.random((25, 25)) < 0.5
    g = rng.random((25, 25)) < 0.5
    r = betti_matching_error(torch.from_numpy(p), g.astype(np.uint8))
    for k, (a, b) in enumerate(zip(betti_numbers(p), betti_numbers(g))):
        e = r[f"betti_matching_error_{k}"]
        assert e >= abs(a - b) and (e - abs(a - b)) % 2 == 0
    with pytest.raises(ValueError, match=r"same shape, got \(25, 25\) and \(25, 24\)"):
        betti_matching_error(p, g[:, :24])
    with pytest.raises(ValueError, match="connectivity for a 2D mask must be one of \\[4, 8\\].*got 6"):
        betti_matching_error(p, g, connectivity=6)
    with pytest.raises(TypeError, match="pred must be a numpy.ndarray or torch.Tensor, got list"):
        betti_matching_error([[0, 1]], g)
    assert set(betti_matching_error(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)))) == {
        "betti_matching_error_0", "betti_matching_error_1", "betti_matching_error_2", "betti_matching_error"}


# ------------------------------------------------------------------ local Betti error


def reference_local(p: np.ndarray, g: np.ndarray, window: int, closed: bool) -> list[float]:
    """Tiles cut by hand (clipped at the border), Betti numbers by gudhi, mean |difference|."""
    diffs = []
    for start in itertools.product(*[range(0, s, window) for s in p.shape]):
        sl = tuple(slice(a, a + window) for a in start)
        diffs.append(np.abs(np.subtract(gudhi_betti(p[sl], closed), gudhi_betti(g[sl], closed))))
    return list(np.mean(diffs, axis=0))


@pytest.mark.parametrize("shape,window,conn,closed", [((37, 50), 8, None, True), ((37, 50), (8, 16), 4, False),
                                                      ((11, 13, 9), 4, None, True), ((11, 13, 9), 5, 6, False)])
def test_local_betti_matches_gudhi_on_tiles(shape, window, conn, closed):
    rng = np.random.default_rng(6)
    p = rng.random(shape) < 0.55
    g = p ^ (rng.random(shape) < 0.1)
    r = local_betti_error(p, g, window=window, connectivity=conn)
    w = window if isinstance(window, int) else None
    if w is None:  # per-axis windows: cut with the same per-axis sizes
        diffs = []
        for start in itertools.product(*[range(0, s, k) for s, k in zip(shape, window)]):
            sl = tuple(slice(a, a + k) for a, k in zip(start, window))
            diffs.append(np.abs(np.subtract(gudhi_betti(p[sl], closed), gudhi_betti(g[sl], closed))))
        ref = list(np.mean(diffs, axis=0))
    else:
        ref = reference_local(p, g, w, closed)
    got = [r[f"local_betti{k}_error"] for k in range(len(shape))]
    assert got == pytest.approx(ref, abs=1e-12)
    assert r["local_betti_error"] == pytest.approx(sum(ref), abs=1e-12)
    assert sum(ref) > 0


def test_local_betti_sees_errors_that_cancel_globally():
    # a missed loop in one place and a spurious loop elsewhere: global β1 error 0, local > 0
    gt = np.zeros((64, 128), bool)
    gt |= ring((64, 128), top=10, left=10, size=14)
    pred = np.zeros_like(gt)
    pred |= ring((64, 128), top=10, left=80, size=14)
    assert betti_numbers(pred) == betti_numbers(gt)
    r = local_betti_error(pred, gt, window=32)
    # 2 x 4 tiles; the GT ring lies in tile (0, 0), the predicted ring in tile (0, 2)
    assert r["local_betti1_error"] == pytest.approx(2 / 8)
    assert r["local_betti0_error"] == pytest.approx(2 / 8)
    assert local_betti_error(gt, gt)["local_betti_error"] == 0.0


def test_local_betti_window_errors():
    m = np.zeros((10, 10), bool)
    with pytest.raises(ValueError, match=r"window must be a positive int or 2 positive ints for 2D masks, got \(4, 0\)"):
        local_betti_error(m, m, window=(4, 0))
    with pytest.raises(ValueError, match=r"got \(4, 4, 4\)"):
        local_betti_error(m, m, window=(4, 4, 4))
    with pytest.raises(TypeError, match="window must be an int or a sequence of 2 ints, got 2.5"):
        local_betti_error(m, m, window=2.5)


def test_order_free_where_index_order_implementations_disagree():
    # Betti-Matching-3D (4/8, V-construction) reports 0 for this pair and 2 after flipping the
    # rows (tied intervals matched in array order); the hole of P is one pixel of the hole of G
    # whose rest is, in P, open to the outside: different classes of P ∪ G, error 2 always
    p = np.array([list(r) for r in "1100 1001 0011 1111 1011 1111".split()]) == "1"
    g = np.array([list(r) for r in "1111 1011 1001 1011 1011 1110".split()]) == "1"
    assert betti_numbers(p, connectivity=4)[1] == betti_numbers(g, connectivity=4)[1] == 1
    assert reference_matching(p, g, False)[1] == 2
    for f in (lambda a: a, np.transpose, lambda a: a[::-1], lambda a: a[:, ::-1]):
        assert betti_matching_error(f(p), f(g), connectivity=4)["betti_matching_error_1"] == 2.0


def test_invariant_under_flips_transposes_and_translation():
    rng = np.random.default_rng(7)
    for shape in [(20, 17), (6, 7, 8)]:
        p = rng.random(shape) < 0.55
        g = p ^ (rng.random(shape) < 0.1)
        ref = betti_matching_error(p, g)
        for axis in range(len(shape)):
            assert betti_matching_error(np.flip(p, axis), np.flip(g, axis)) == ref
        perm = tuple(reversed(range(len(shape))))
        assert betti_matching_error(p.transpose(perm), g.transpose(perm)) == ref
        pad = [(2, 3)] * len(shape)
        assert betti_matching_error(np.pad(p, pad), np.pad(g, pad)) == ref


def test_smooth_structures_equal_brute_force():
    # thresholded smooth noise: blobs, loops and tunnels of several pixels, prediction = a
    # perturbed threshold of the same field (partly overlapping features)
    from scipy import ndimage

    rng = np.random.default_rng(99)
    for shape, sigma in [((14, 14), 1.0)] * 12 + [((6, 8, 8), 0.8)] * 5:
        x = ndimage.gaussian_filter(rng.random(shape), sigma)
        p = x > np.quantile(x, rng.uniform(0.3, 0.6))
        y = ndimage.gaussian_filter(x + 0.05 * rng.normal(size=shape), 0.5)
        g = y > np.quantile(y, rng.uniform(0.3, 0.6))
        for conn, closed in [(None, True), ({2: 4, 3: 6}[len(shape)], False)]:
            got = as_errors(betti_matching_error(p, g, connectivity=conn), len(shape))
            assert got == reference_matching(p, g, closed), (p.astype(int), g.astype(int))


# ------------------------------------------------------------------ evaluate_case integration


def test_evaluate_case_reports_betti_matching_and_local_betti():
    from toposeg.metrics import evaluate_case
    from toposeg.metrics import betti_matching_error as exported_bm
    from toposeg.metrics import local_betti_error as exported_local

    assert exported_bm is betti_matching_error and exported_local is local_betti_error
    gt = ring((64, 64), top=10, left=10, size=14)
    pred = ring((64, 64), top=10, left=40, size=14)
    timings = {}
    r = evaluate_case(pred, gt, timings=timings)
    assert r["betti1_error"] == 0.0
    assert {k: r[k] for k in betti_matching_error(pred, gt)} == betti_matching_error(pred, gt)
    assert r["betti_matching_error_1"] == 2.0
    assert {k: r[k] for k in local_betti_error(pred, gt)} == local_betti_error(pred, gt)
    assert {"betti_matching", "local_betti"} <= set(timings)
    assert "betti_matching_error" not in evaluate_case(pred, gt, betti_matching=False)
    small = evaluate_case(pred, gt, local_window=16)
    assert small["local_betti1_error"] == local_betti_error(pred, gt, window=16)["local_betti1_error"]
    # 3D: on by default for 26/6; off for 6/26 (exact loop matching is slow) unless asked for
    vol = np.zeros((6, 12, 12), bool)
    vol[1:5, 2:10, 2:10] = True
    vol[2:4, 4:8, 4:8] = False
    r3 = evaluate_case(vol, np.roll(vol, 1, axis=2))
    assert r3["betti_matching_error"] == 0.0 and "betti_matching_error_2" in r3
    assert "betti_matching_error" not in evaluate_case(vol, vol, connectivity=6)
    assert evaluate_case(vol, vol, connectivity=6, betti_matching=True)["betti_matching_error"] == 0.0


def test_empty_full_and_tiny_masks_equal_brute_force():
    for shape in [(1, 1), (1, 5), (5, 5), (1, 1, 1), (2, 3, 4)]:
        z, o = np.zeros(shape, bool), np.ones(shape, bool)
        for a, b in [(z, z), (o, o), (z, o), (o, z)]:
            for conn, closed in [(None, True), ({2: 4, 3: 6}[len(shape)], False)]:
                got = as_errors(betti_matching_error(a, b, connectivity=conn), len(shape))
                assert got == reference_matching(a, b, closed)
                assert local_betti_error(a, b, connectivity=conn)["local_betti_error"] == (0.0 if a is b else 1.0)
    # one full mask vs empty: exactly one unmatched component
    assert betti_matching_error(np.ones((3, 3), bool), np.zeros((3, 3), bool))["betti_matching_error"] == 1.0

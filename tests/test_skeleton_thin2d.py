"""The default 2D rule "thin": topology preserving and thin, checked against independent references.

References written here, not taken from toposeg: the simple-point test counts components with
``scipy.ndimage.label`` in the 3x3 neighbourhood; Betti numbers are 8-components of the
foreground and 4-holes of the background (scipy labelling of the zero-padded image).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage.morphology import skeletonize as sk_skeletonize

from toposeg.skeleton import skeletonize
from toposeg.skeleton._thin2d import DIRECTIONS, MOVES, SIMPLE, deletion_tables, thin2d_dense, thin2d_sparse

sys.path.insert(0, str(Path(__file__).parent))
from test_skeleton_2d import GENERATORS  # noqa: E402

EIGHT = np.ones((3, 3), bool)
FOUR = ndi.generate_binary_structure(2, 1)
# 8-neighbour code: bit k <- offset (drow, dcol); the order is only used inside this test
OFFS = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]


# --------------------------------------------------------------------------- independent references


def ref_simple(patch: np.ndarray) -> bool:
    """Definition of a simple pixel for (8, 4) topology, by scipy labelling of the 3x3 patch:
    one 8-component of foreground around the centre, one background 4-component 4-adjacent
    to it."""
    fg = patch.astype(bool).copy()
    fg[1, 1] = False
    n_fg = ndi.label(fg, structure=EIGHT)[1]
    lab = ndi.label(~patch.astype(bool), structure=FOUR)[0]
    touching = {lab[0, 1], lab[2, 1], lab[1, 0], lab[1, 2]} - {0}
    return n_fg == 1 and len(touching) == 1


def _patch(code: int) -> np.ndarray:
    p = np.zeros((3, 3), bool)
    p[1, 1] = True
    for k, (dr, dc) in enumerate(OFFS):
        p[1 + dr, 1 + dc] = bool(code >> k & 1)
    return p


REF_SIMPLE = np.array([ref_simple(_patch(c)) for c in range(256)])


def codes(batch: np.ndarray) -> np.ndarray:
    """8-neighbour codes of every pixel of a bool batch ``(N, H, W)`` (outside = background)."""
    p = np.pad(batch, ((0, 0), (1, 1), (1, 1)))
    h, w = batch.shape[1:]
    out = np.zeros(batch.shape, np.int64)
    for k, (dr, dc) in enumerate(OFFS):
        out |= p[:, 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w].astype(np.int64) << k
    return out


def _popcount(c: np.ndarray) -> np.ndarray:
    return np.unpackbits(c.astype(np.uint8)[..., None], axis=-1).sum(axis=-1)


def interior(batch: np.ndarray) -> np.ndarray:
    """Foreground pixels whose four 4-neighbours are foreground."""
    p = np.pad(batch, ((0, 0), (1, 1), (1, 1)))
    return batch & p[:, :-2, 1:-1] & p[:, 2:, 1:-1] & p[:, 1:-1, :-2] & p[:, 1:-1, 2:]


def betti(batch: np.ndarray) -> np.ndarray:
    """``(N, 2)``: 8-components of the foreground, 4-holes (background 4-components that do not
    reach the outside), per image."""
    n = len(batch)
    per_slice = np.zeros((3, 3, 3), bool)

    def count(stack: np.ndarray, structure: np.ndarray) -> np.ndarray:
        per_slice[:] = False
        per_slice[1] = structure
        lab, k = ndi.label(stack, structure=per_slice)
        if k == 0:
            return np.zeros(n, np.int64)
        first = ndi.minimum_position(np.broadcast_to(np.arange(n)[:, None, None], stack.shape), lab, range(1, k + 1))
        return np.bincount([f[0] for f in first], minlength=n)

    b0 = count(batch, EIGHT)
    b1 = count(~np.pad(batch, ((0, 0), (1, 1), (1, 1))), FOUR) - 1
    return np.stack([b0, b1], axis=1)


def thin(batch: np.ndarray) -> np.ndarray:
    return skeletonize(torch.from_numpy(batch)[:, None])[:, 0].numpy()


def move_applies(x: np.ndarray, x0: np.ndarray, r: int, c: int) -> bool:
    """Independent check of the documented re-routing: around the interior pixel (r, c) of the
    skeleton ``x`` (input ``x0``), can one add a diagonal input pixel q, then delete the
    4-neighbour n of (r, c) next to q, then (r, c) -- each step keeping topology, n and (r, c)
    not end points -- without giving a pixel four foreground 4-neighbours?"""
    h, w = x.shape
    pad, pad0 = np.pad(x, 2), np.pad(x0, 2)
    r, c = r + 2, c + 2

    def simple_nonend(img, rr, cc):
        patch = img[rr - 1 : rr + 2, cc - 1 : cc + 2]
        return ref_simple(patch) and patch.sum() - 1 > 1

    for (qr, qc), (nr, nc) in MOVES:
        q, nb = (r + qr, c + qc), (r + nr, c + nc)
        if not pad0[q] or pad[q]:
            continue
        y = pad.copy()
        y[q] = True
        if not ref_simple(y[q[0] - 1 : q[0] + 2, q[1] - 1 : q[1] + 2]):
            continue
        if not simple_nonend(y, *nb):
            continue
        y[nb] = False
        if not simple_nonend(y, r, c):
            continue
        y[r, c] = False
        before = interior(pad[None])[0].sum() - 1
        if interior(y[None])[0].sum() <= before:
            return True
    return False


def assert_thin_and_topological(batch: np.ndarray, out: np.ndarray | None = None, check_moves: bool = True) -> None:
    out = thin(batch) if out is None else out
    assert not (out & ~batch).any(), "skeleton outside the mask"
    # topology: same 8-components and 4-holes, image by image
    bad = np.flatnonzero((betti(out) != betti(batch)).any(axis=1))
    assert bad.size == 0, f"topology changed in {bad.size} images, first:\n{batch[bad[0]].astype(int)}"
    # thin: no simple pixel with more than one 8-neighbour
    c = codes(out)
    removable = out & REF_SIMPLE[c] & (_popcount(c) > 1)
    bad = np.flatnonzero(removable.any(axis=(1, 2)))
    assert bad.size == 0, f"{bad.size} images keep a removable non-end pixel, first:\n{out[bad[0]].astype(int)}"
    # idempotent
    np.testing.assert_array_equal(thin(out), out)
    # pixels with four foreground 4-neighbours: only where no re-routing removes them
    if check_moves:
        for i, r, cc in np.argwhere(interior(out)):
            assert not move_applies(out[i], batch[i], r, cc), f"image {i}: interior pixel {(r, cc)} is avoidable"


# --------------------------------------------------------------------------- the references themselves


def test_reference_simple_point_hand_cases():
    assert not ref_simple(_patch(0))  # isolated pixel
    assert ref_simple(_patch(1 << 1))  # end of a line (one neighbour N)
    assert not ref_simple(_patch((1 << 1) | (1 << 5)))  # middle of a vertical line
    assert not ref_simple(_patch(255))  # interior: deleting it opens a hole
    assert not ref_simple(_patch((1 << 1) | (1 << 3) | (1 << 5) | (1 << 7)))  # centre of a "+"
    assert ref_simple(_patch((1 << 0) | (1 << 1) | (1 << 7)))  # corner of a block
    assert not ref_simple(_patch((1 << 0) | (1 << 4)))  # joins two diagonal neighbours


def test_reference_betti_hand_counts():
    ring = np.zeros((1, 5, 5), bool)
    ring[0, 1:4, 1:4] = True
    ring[0, 2, 2] = False
    diamond = np.zeros((1, 5, 5), bool)  # 8-connected ring around one 4-isolated hole
    for r, c in [(1, 2), (2, 1), (2, 3), (3, 2)]:
        diamond[0, r, c] = True
    two = np.zeros((1, 5, 5), bool)
    two[0, 0, 0] = two[0, 4, 4] = True
    np.testing.assert_array_equal(betti(np.concatenate([ring, diamond, two])), [[1, 1], [1, 1], [2, 0]])


def test_lookup_table_matches_reference():
    """The 256-entry table of the implementation equals the scipy definition (all codes)."""
    np.testing.assert_array_equal(np.array(SIMPLE), REF_SIMPLE)
    assert REF_SIMPLE.sum() == 116


# --------------------------------------------------------------------------- parallel deletion is sound

# direction name -> offset of the direction's 4-neighbour
DIRS = {"N": (-1, 0), "S": (1, 0), "E": (0, 1), "W": (0, -1)}


def deletable(img: np.ndarray, r: int, c: int, d: str) -> bool:
    """The documented deletion condition of a directional pass, from the reference test:
    foreground, 4-neighbour in direction d background, simple, more than one 8-neighbour."""
    pad = np.pad(img, 1)
    patch = pad[r : r + 3, c : c + 3]
    dr, dc = DIRS[d]
    return bool(patch[1, 1]) and not patch[1 + dr, 1 + dc] and ref_simple(patch) and patch.sum() - 1 > 1


def test_deletion_tables_match_definition():
    table = deletion_tables().numpy()
    assert [d for d, _, _ in DIRECTIONS] == ["N", "S", "E", "W"]
    for i, (d, _, _) in enumerate(DIRECTIONS):
        expected = [deletable(_patch(code), 1, 1, d) for code in range(256)]
        np.testing.assert_array_equal(table[i], expected, err_msg=d)


@pytest.mark.parametrize("d", list(DIRS))
def test_ronse_conditions_for_every_pass(d):
    """Ronse (1988): deleting D at once keeps (8, 4) topology if every pixel of D is simple
    (by construction), every 4-adjacent pair p, q of D stays deletable one after the other, and
    no 8-component inside a 2x2 square is wholly in D. Checked here for every configuration."""
    dr, dc = DIRS[d]
    # two d-border pixels are never adjacent along d: only pairs across d remain
    side = (0, 1) if dr else (1, 0)
    pairs = 0
    for bits in range(1 << 12):
        win = ((bits >> np.arange(12)) & 1).astype(bool).reshape((4, 3) if dr == 0 else (3, 4))
        p = (1, 1)
        q = (p[0] + side[0], p[1] + side[1])
        if not (win[p] and win[q]):
            continue
        if not (deletable(win, *p, d) and deletable(win, *q, d)):
            continue
        pairs += 1
        for a, b in ((p, q), (q, p)):
            rest = win.copy()
            rest[a] = False
            patch = np.pad(rest, 1)[b[0] : b[0] + 3, b[1] : b[1] + 3]
            assert ref_simple(patch), f"pair {a}, {b} in\n{win.astype(int)}"
    assert pairs > 0
    for bits in range(1, 16):  # 8-connected subsets of a 2x2 square, alone in the image
        sq = np.zeros((4, 4), bool)
        sq[1:3, 1:3] = ((bits >> np.arange(4)) & 1).astype(bool).reshape(2, 2)
        assert not all(deletable(sq, r, c, d) for r, c in np.argwhere(sq)), sq.astype(int)


# --------------------------------------------------------------------------- the issue's example


ISSUE_7X7 = np.array(
    [[int(ch) for ch in row] for row in ["0001000", "0101000", "1011110", "0111101", "0011110", "0010100", "0001000"]],
    bool,
)


def test_issue_7x7_is_thin():
    """Issue 11: Zhang keeps pixel (3, 3) with four foreground 4-neighbours and the removable
    non-end pixels (2,4), (3,4), (4,2), (4,3). The default rule leaves neither."""
    # hand count: one 8-component and three one-pixel holes at (2, 1), (3, 5), (5, 3)
    assert betti(ISSUE_7X7[None]).tolist() == [[1, 3]]
    zhang = sk_skeletonize(ISSUE_7X7, method="zhang")
    assert interior(zhang[None])[0, 3, 3]
    for r, c in [(2, 4), (3, 4), (4, 2), (4, 3)]:
        patch = np.pad(zhang, 1)[r : r + 3, c : c + 3]
        assert zhang[r, c] and ref_simple(patch) and patch.sum() - 1 > 1
    np.testing.assert_array_equal(skeletonize(ISSUE_7X7, method="zhang"), zhang)

    # the checker used everywhere below rejects Zhang's result
    with pytest.raises(AssertionError, match="removable non-end pixel"):
        assert_thin_and_topological(ISSUE_7X7[None], zhang[None], check_moves=False)

    out = skeletonize(ISSUE_7X7)
    assert isinstance(out, np.ndarray) and out.dtype == bool
    assert not interior(out[None]).any()
    assert_thin_and_topological(ISSUE_7X7[None], out[None])


# --------------------------------------------------------------------------- exhaustive and random


@pytest.mark.parametrize("shape", [(3, 3), (4, 4)])
def test_all_small_patterns(shape):
    """All 2**9 and 2**16 binary images, alone and with a one-pixel frame of background."""
    n = shape[0] * shape[1]
    allc = np.arange(2**n)
    batch = ((allc[:, None] >> np.arange(n)) & 1).astype(bool).reshape(-1, *shape)
    assert_thin_and_topological(batch)
    assert_thin_and_topological(np.pad(batch, ((0, 0), (1, 1), (1, 1))))


@pytest.mark.parametrize("density", [0.2, 0.4, 0.5, 0.6, 0.8])
def test_random_noise(density):
    rng = np.random.default_rng(int(density * 100))
    for size in (16, 32):
        assert_thin_and_topological(rng.random((200, size, size)) < density)


@pytest.mark.parametrize("gen", GENERATORS, ids=lambda g: g.__name__)
def test_random_shapes(gen):
    rng = np.random.default_rng(len(gen.__name__))
    for size in (16, 32):
        assert_thin_and_topological(gen(rng, 100, size, size + 3))


def test_large_images():
    rng = np.random.default_rng(11)
    batch = np.concatenate([g(rng, 1, 256, 256) for g in GENERATORS] + [rng.random((1, 256, 256)) < 0.55])
    assert_thin_and_topological(batch)


def plus_centres(batch: np.ndarray) -> np.ndarray:
    """Pixels with four foreground 4-neighbours and four background diagonal neighbours."""
    p = np.pad(batch, ((0, 0), (1, 1), (1, 1)))
    diag = p[:, :-2, :-2] | p[:, :-2, 2:] | p[:, 2:, :-2] | p[:, 2:, 2:]
    return interior(batch) & ~diag


def test_smooth_shapes_keep_no_interior_pixel():
    """On smooth shapes (not noise) a pixel with four foreground 4-neighbours is left only where
    the input itself has a crossing of two 1-pixel lines there."""
    rng = np.random.default_rng(12)
    for gen in GENERATORS[1:]:
        batch = gen(rng, 100, 40, 40)
        out = thin(batch)
        assert not (interior(out) & ~plus_centres(batch)).any(), gen.__name__


# --------------------------------------------------------------------------- shapes by hand


def test_forced_interior_pixels_are_kept():
    """Where the input leaves no choice, a pixel with four foreground 4-neighbours must stay:
    the crossing of two 1-pixel lines, and a 3x3 block with eight 2-pixel arms. Both are already
    thin (no simple non-end pixel, by the reference test), so any thinning that keeps topology
    and end points returns them unchanged."""
    plus = np.zeros((9, 9), bool)
    plus[4, 2:7] = plus[2:7, 4] = True
    block = np.zeros((11, 11), bool)
    block[4:7, 4:7] = True
    for k in (2, 3):
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                block[5 + dr * k, 5 + dc * k] = True
    for m in (plus, block):
        c = codes(m[None])[0]
        assert not (m & REF_SIMPLE[c] & (_popcount(c) > 1)).any()  # irreducible
        np.testing.assert_array_equal(skeletonize(m), m)


def test_centred_and_unchanged_curves():
    bar = np.zeros((11, 24), bool)
    bar[2:9, 2:22] = True  # 7 rows: the skeleton is the middle row
    out = skeletonize(bar)
    assert out[5, 4:20].all() and out.sum() == out[5].sum()
    line = np.zeros((12, 12), bool)
    line[np.arange(1, 11), np.arange(1, 11)] = True  # diagonal 1-pixel line
    ring = np.zeros((12, 12), bool)
    ring[2, 3:9] = ring[9, 3:9] = ring[3:9, 2] = ring[3:9, 9] = True  # 8-connected ring
    for m in (line, ring):
        np.testing.assert_array_equal(skeletonize(m), m)
    stair = np.zeros((8, 8), bool)  # 4-connected staircase: its inner corners go
    for i in range(6):
        stair[i + 1, i + 1] = stair[i + 1, i + 2] = True
    out = skeletonize(stair)
    # an 8-path (its ends may shorten: an end pixel with two adjacent neighbours is simple and
    # not an end point), no pixel with more than two 8-neighbours
    assert betti(out[None]).tolist() == [[1, 0]] and out.sum() >= 5
    assert (_popcount(codes(out[None]))[0][out] <= 2).all()


def test_batch_equals_single_images_and_channels():
    rng = np.random.default_rng(13)
    batch = np.concatenate([g(rng, 2, 30, 30) for g in GENERATORS])
    out = thin(batch)
    for i, m in enumerate(batch):
        np.testing.assert_array_equal(skeletonize(m), out[i])
    x = torch.from_numpy(batch.reshape(2, 5, 30, 30))
    np.testing.assert_array_equal(skeletonize(x).numpy().reshape(10, 30, 30), out)


def test_dense_equals_sparse():
    """The whole-image implementation (used on accelerators) equals the CPU one."""
    rng = np.random.default_rng(14)
    batch = np.concatenate([g(rng, 20, 24, 31) for g in GENERATORS] + [rng.random((40, 24, 31)) < 0.5])
    x = torch.from_numpy(batch)[:, None]
    assert torch.equal(thin2d_dense(x), thin2d_sparse(x))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu_thin2d():
    rng = np.random.default_rng(15)
    batch = np.concatenate([g(rng, 8, 256, 256) for g in GENERATORS] + [rng.random((8, 256, 256)) < 0.5])
    x = torch.from_numpy(batch)[:, None]
    gpu = skeletonize(x.cuda())
    assert gpu.device.type == "cuda" and gpu.dtype == torch.bool
    assert torch.equal(gpu.cpu(), skeletonize(x))

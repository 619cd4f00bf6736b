"""component_errors: hand-counted cases and the identity with the Betti numbers (scikit-image reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.measure import label

from toposeg.metrics.decomposition import DECOMPOSITION_KEYS, component_errors


def _expect(**nonzero):
    out = {k: 0.0 for k in DECOMPOSITION_KEYS}
    out.update({k: float(v) for k, v in nonzero.items()})
    return out


def _two_lines(h=11, w=20):
    m = np.zeros((h, w), bool)
    m[3, 2:18] = True
    m[7, 2:18] = True
    return m


def test_perfect_prediction_is_all_zero():
    t = _two_lines()
    assert component_errors(t, t) == _expect()
    assert set(component_errors(t, t)) == set(DECOMPOSITION_KEYS)


def test_one_spurious_speck():
    t = _two_lines()
    p = t.copy()
    p[9, 10] = True
    assert component_errors(p, t) == _expect(spurious_components=1)


def test_one_broken_line():
    t = _two_lines()
    p = t.copy()
    p[3, 10] = False
    assert component_errors(p, t) == _expect(split_components=1)


def test_a_line_broken_twice_counts_two():
    t = _two_lines()
    p = t.copy()
    p[3, 6] = p[3, 12] = False
    assert component_errors(p, t) == _expect(split_components=2)


def test_one_bridge_merging_two_lines():
    t = _two_lines()
    p = t.copy()
    p[4:7, 10] = True  # an H shape: no hole
    assert component_errors(p, t) == _expect(merged_components=1)


def test_two_bridges_close_a_loop_merge_once_and_add_a_hole():
    t = _two_lines()
    p = t.copy()
    p[4:7, 5] = p[4:7, 14] = True  # two bridges: one component with a hole (rows 4-6, columns 6-13)
    assert component_errors(p, t) == _expect(merged_components=1, spurious_holes=1)


def test_one_missing_line():
    t = _two_lines()
    p = t.copy()
    p[7] = False
    assert component_errors(p, t) == _expect(missing_components=1)


def test_one_pinhole():
    t = np.zeros((11, 20), bool)
    t[2:9, 3:17] = True
    p = t.copy()
    p[5, 9] = False
    assert component_errors(p, t) == _expect(spurious_holes=1)


def _ring():
    t = np.zeros((14, 14), bool)
    t[2:12, 2:12] = True
    t[4:10, 4:10] = False  # a thick square ring, hole 6 x 6
    return t


def test_missing_hole_filled_or_opened():
    t = _ring()
    filled = t.copy()
    filled[4:10, 4:10] = True
    assert component_errors(filled, t) == _expect(missing_holes=1)
    opened = t.copy()
    opened[6, 2:4] = False  # the ring is cut: the hole joins the outside
    assert component_errors(opened, t) == _expect(missing_holes=1)


def test_split_and_merged_holes():
    t = _ring()
    p = t.copy()
    p[4:10, 6] = True  # a wall across the hole: two holes where the GT has one
    assert component_errors(p, t) == _expect(split_holes=1)
    assert component_errors(t, p) == _expect(merged_holes=1)  # roles swapped


def test_beta0_error_cancels_the_decomposition_does_not():
    t = _two_lines()
    p = t.copy()
    p[7] = False       # a missing line ...
    p[9, 10] = True    # ... and a spurious speck
    assert label(p, connectivity=2).max() == label(t, connectivity=2).max()  # β0 error 0 (skimage)
    assert component_errors(p, t) == _expect(spurious_components=1, missing_components=1)


def test_connectivity_option_uses_the_dual_pair():
    t = np.zeros((6, 6), bool)
    t[2, 2] = t[3, 3] = True  # one 8-connected component, two 4-connected ones
    p = np.zeros_like(t)
    p[2, 2] = True
    assert component_errors(p, t) == _expect()  # default 8: the one GT component is found
    assert component_errors(p, t, connectivity=4) == _expect(missing_components=1)
    # background with the dual: a diagonal "ring" encloses a 4-connected hole under 8/4 only
    d = np.zeros((7, 7), bool)
    d[[1, 2, 2, 3, 3, 4, 4, 5], [3, 2, 4, 1, 5, 2, 4, 3]] = True  # diamond around (3, 3)
    empty = np.zeros_like(d)
    assert component_errors(d, empty)["spurious_holes"] == 1.0
    assert component_errors(d, empty, connectivity=4)["spurious_holes"] == 0.0


def test_3d_cavity_and_split():
    t = np.zeros((7, 7, 12), bool)
    t[1:6, 1:6, 1:11] = True
    p = t.copy()
    p[3, 3, 5] = False  # an internal cavity
    assert component_errors(p, t) == _expect(spurious_holes=1)
    t2 = np.zeros((5, 5, 12), bool)
    t2[2, 2, 1:11] = True
    p2 = t2.copy()
    p2[2, 2, 6] = False
    assert component_errors(torch.from_numpy(p2), torch.from_numpy(t2)) == _expect(split_components=1)


def _betti_ref(m: np.ndarray) -> tuple[int, int]:
    """(β0, last Betti number) with scikit-image, default dual pair: fg full, bg face connectivity."""
    b0 = int(label(m, connectivity=m.ndim).max())
    bg = label(~np.pad(m, 1), connectivity=1)  # the padded outside is one component
    return b0, int(bg.max()) - 1


@pytest.mark.parametrize("shape", [(24, 31), (9, 10, 11)])
@pytest.mark.parametrize("seed", range(4))
def test_identity_with_betti_numbers_random_masks(shape, seed):
    rng = np.random.default_rng(seed)
    for density in (0.3, 0.5, 0.7):
        t = rng.random(shape) < density
        p = t ^ (rng.random(shape) < 0.15)
        d = component_errors(p, t)
        assert all(v >= 0 for v in d.values())
        (b0p, bhp), (b0t, bht) = _betti_ref(p), _betti_ref(t)
        assert b0p - b0t == d["spurious_components"] - d["missing_components"] + d["split_components"] - d["merged_components"]
        assert bhp - bht == d["spurious_holes"] - d["missing_holes"] + d["split_holes"] - d["merged_holes"]


def test_bad_inputs():
    t = _two_lines()
    with pytest.raises(ValueError, match=r"same shape, got \(11, 20\) and \(11, 19\)"):
        component_errors(t, t[:, :19])
    with pytest.raises(ValueError, match=r"pred must be binary.*found values"):
        component_errors(t * 3, t)
    with pytest.raises(ValueError, match="got 26"):
        component_errors(t, t, connectivity=26)
    with pytest.raises(TypeError, match="target must be a numpy.ndarray or torch.Tensor, got list"):
        component_errors(t, t.tolist())

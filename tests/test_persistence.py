"""Cubical persistence (cripser T-construction) against gudhi, hand cases and scipy labelling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from toposeg.topology.persistence import critical_pixels, persistence_pairs

gudhi = pytest.importorskip("gudhi")


def _gudhi_diagram(values: np.ndarray, dim: int) -> tuple[np.ndarray, int]:
    """Finite (birth, death) pairs sorted, and the number of essential classes, from gudhi."""
    cc = gudhi.CubicalComplex(top_dimensional_cells=values)
    cc.compute_persistence(homology_coeff_field=2, min_persistence=0)
    iv = np.asarray(cc.persistence_intervals_in_dimension(dim)).reshape(-1, 2)
    fin = iv[np.isfinite(iv[:, 1])]
    fin = fin[fin[:, 1] > fin[:, 0]]  # drop zero-persistence pairs
    return fin[np.lexsort((fin[:, 1], fin[:, 0]))], int((~np.isfinite(iv[:, 1])).sum())


@pytest.mark.parametrize("shape", [(20, 37), (37, 20), (5, 7, 11), (9, 4, 6)])
def test_sublevel_diagram_matches_gudhi(shape):
    rng = np.random.default_rng(sum(shape))
    values = rng.random(shape)
    pairs = persistence_pairs(values)
    for d in range(len(shape)):
        ref, n_ess = _gudhi_diagram(values, d)
        sel = (pairs.dim == d) & pairs.finite
        ours = pairs.diagram(d)
        ours = ours[np.isfinite(ours[:, 1])]
        np.testing.assert_allclose(ours, ref)
        assert int(((pairs.dim == d) & ~pairs.finite).sum()) == n_ess
        assert sel.sum() == len(ref)


@pytest.mark.parametrize("shape", [(20, 37), (6, 5, 13)])
def test_superlevel_is_sublevel_of_negation(shape):
    rng = np.random.default_rng(1)
    values = rng.random(shape)
    pairs = persistence_pairs(values, superlevel=True)
    fin = pairs.finite
    assert np.all(pairs.birth[fin] >= pairs.death[fin])
    assert np.all(pairs.death[~fin] == -np.inf)
    for d in range(len(shape)):
        ref, _ = _gudhi_diagram(-values, d)
        sel = (pairs.dim == d) & fin
        ours = np.stack([-pairs.birth[sel], -pairs.death[sel]], 1)
        np.testing.assert_allclose(ours[np.lexsort((ours[:, 1], ours[:, 0]))], ref)


@pytest.mark.parametrize("shape", [(20, 37), (5, 7, 11)])
def test_locations_index_the_array_in_its_own_axis_order(shape):
    rng = np.random.default_rng(2)
    values = rng.random(shape)
    for superlevel in (False, True):
        pairs = persistence_pairs(values, superlevel=superlevel)
        fin = pairs.finite
        np.testing.assert_array_equal(values[tuple(pairs.birth_index.T)], pairs.birth)
        np.testing.assert_array_equal(values[tuple(pairs.death_index[fin].T)], pairs.death[fin])


def test_single_defect_found_at_its_location_non_square():
    # a horizontal line at value 1 with one weak pixel (5, 17): one finite 0-dim superlevel pair
    # dying exactly there
    values = np.zeros((20, 37))
    values[5, 3:30] = 1.0
    values[5, 17] = 0.3
    mask = critical_pixels(values, dims=(0,))
    weak = np.argwhere(mask & (values > 0) & (values < 1))
    assert weak.tolist() == [[5, 17]]
    pairs = persistence_pairs(values, superlevel=True, maxdim=0)
    sel = pairs.finite & (pairs.death > 0)
    assert pairs.death_index[sel].tolist() == [[5, 17]]


def test_single_defect_found_at_its_location_non_cubic():
    values = np.zeros((5, 7, 11))
    values[2, 3, 1:10] = 1.0
    values[2, 3, 8] = 0.4
    pairs = persistence_pairs(values, superlevel=True, maxdim=0)
    sel = pairs.finite & (pairs.death > 0)
    assert pairs.death_index[sel].tolist() == [[2, 3, 8]]
    assert critical_pixels(values, dims=(0,))[2, 3, 8]


def _betti_binary_2d(mask: np.ndarray) -> tuple[int, int]:
    """Reference: foreground 8-connected components, holes = 4-connected background components."""
    b0 = ndimage.label(mask, structure=np.ones((3, 3)))[1]
    padded = np.pad(~mask, 1, constant_values=True)
    b1 = ndimage.label(padded, structure=ndimage.generate_binary_structure(2, 1))[1] - 1
    return b0, b1


def test_superlevel_of_binary_mask_has_8_4_connectivity():
    diag = np.zeros((5, 6))
    diag[1, 1] = diag[2, 2] = 1  # touching at a corner: ONE 8-connected component
    pairs = persistence_pairs(diag, superlevel=True)
    assert int(((pairs.dim == 0) & (pairs.birth == 1)).sum()) == 1
    diamond = np.zeros((5, 5))
    diamond[1, 2] = diamond[2, 1] = diamond[2, 3] = diamond[3, 2] = 1  # 8-connected ring around a 4-hole
    pairs = persistence_pairs(diamond, superlevel=True)
    assert int(((pairs.dim == 1) & (pairs.birth == 1)).sum()) == 1
    rng = np.random.default_rng(3)
    for _ in range(10):
        mask = rng.random((17, 23)) < 0.45
        pairs = persistence_pairs(mask.astype(float), superlevel=True)
        ours = tuple(int(((pairs.dim == d) & (pairs.birth == 1)).sum()) for d in (0, 1))
        assert ours == _betti_binary_2d(mask)


def test_3d_binary_mask_has_26_connectivity():
    vol = np.zeros((4, 5, 6))
    vol[1, 1, 1] = vol[2, 2, 2] = 1  # corner-touching voxels: one 26-connected component
    pairs = persistence_pairs(vol, superlevel=True)
    assert int(((pairs.dim == 0) & (pairs.birth == 1)).sum()) == 1


def test_critical_pixels_dims_selection():
    values = np.zeros((9, 9))
    values[2:7, 2:7] = 0.9
    values[4, 4] = 0.2  # a hole: dim-1 pair born at 0.9 (ring closes) dying at 0.2
    values[0, 8] = 0.6  # an isolated blob: dim-0 pair (0.6, 0)
    m0 = critical_pixels(values, dims=(0,))
    m1 = critical_pixels(values, dims=(1,))
    assert m0[0, 8] and not m1[0, 8]
    assert m1[4, 4] and not m0[4, 4]
    np.testing.assert_array_equal(critical_pixels(values, dims=(0, 1)), m0 | m1)


def test_no_finite_pairs_gives_empty_mask():
    assert not critical_pixels(np.ones((4, 7))).any()


@pytest.mark.parametrize(
    "values, kwargs, exc, match",
    [
        ([[0.0, 1.0]], {}, TypeError, r"numpy.ndarray .*got list"),
        (np.zeros(5), {}, ValueError, r"2D \(H, W\) or 3D .*got shape \(5,\)"),
        (np.array([[0.0, np.nan]]), {}, ValueError, "NaN or infinite"),
        (np.array([["a", "b"]]), {}, TypeError, "numeric, got dtype"),
    ],
)
def test_bad_values(values, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        persistence_pairs(values, **kwargs)


def test_bad_maxdim_and_dims():
    with pytest.raises(ValueError, match=r"maxdim must be an integer in \[0, 1\].*got 2"):
        persistence_pairs(np.zeros((3, 3)), maxdim=2)
    with pytest.raises(ValueError, match=r"dims must be a non-empty subset of \(0, 1\).*got \(2,\)"):
        critical_pixels(np.zeros((3, 3)), dims=(2,))
    with pytest.raises(ValueError, match=r"non-empty subset.*got \(\)"):
        critical_pixels(np.zeros((3, 3)), dims=())
    with pytest.raises(ValueError, match=r"non-empty subset.*got \(0.5,\)"):
        critical_pixels(np.zeros((3, 3)), dims=(0.5,))
    with pytest.raises(TypeError, match="iterable of homology dimensions"):
        critical_pixels(np.zeros((3, 3)), dims=None)

"""Betti numbers / Euler characteristic vs independent references (gudhi cubical homology)."""

import numpy as np
import pytest
import torch

from toposeg.metrics import betti_numbers as metrics_betti_numbers
from toposeg.metrics import euler_characteristic as metrics_euler
from toposeg.topology import betti_numbers, euler_characteristic

gudhi = pytest.importorskip("gudhi")


def gudhi_betti(mask: np.ndarray, *, vertices: bool = False) -> tuple[int, ...]:
    """Betti numbers of the sublevel set at 0 of the binary image (0 = foreground, 1 = background).

    ``top_dimensional_cells``: each foreground pixel is a closed square (8/4 in 2D, 26/6 in 3D);
    ``vertices``: foreground pixels are vertices of the complex (4/8 in 2D, 6/26 in 3D).
    Counts the intervals born at 0 that are still alive at 0.5.
    """
    f = np.where(mask, 0.0, 1.0)
    cc = gudhi.CubicalComplex(vertices=f) if vertices else gudhi.CubicalComplex(top_dimensional_cells=f)
    cc.compute_persistence(homology_coeff_field=2, min_persistence=-1)
    out = []
    for k in range(mask.ndim):
        iv = np.asarray(cc.persistence_intervals_in_dimension(k)).reshape(-1, 2)
        out.append(int(np.count_nonzero((iv[:, 0] <= 0) & (iv[:, 1] > 0.5))))
    return tuple(out)


def torus(shape=(9, 20, 20), r_major=6.0, r_minor=2.2) -> np.ndarray:
    z, y, x = np.indices(shape, dtype=float)
    cz, cy, cx = [(s - 1) / 2 for s in shape]
    rho = np.hypot(y - cy, x - cx)
    return (rho - r_major) ** 2 + (z - cz) ** 2 <= r_minor**2


def hollow_sphere(n=15, r_out=6.5, r_in=4.0) -> np.ndarray:
    z, y, x = np.indices((n, n, n), dtype=float) - (n - 1) / 2
    r = np.sqrt(x**2 + y**2 + z**2)
    return (r <= r_out) & (r >= r_in)


def test_diagonal_pixels_default_pair_is_gudhi_top_cells():
    m = np.zeros((4, 4), bool)
    m[1, 1] = m[2, 2] = True
    assert gudhi_betti(m) == (1, 0)  # closed squares share a corner: one component
    assert betti_numbers(m) == (1, 0)
    assert gudhi_betti(m, vertices=True) == (2, 0)
    assert betti_numbers(m, connectivity=4) == (2, 0)


def test_diamond_ring_has_a_hole_with_8_4_not_with_8_8():
    # 8-connected diamond ring around one background pixel. With the paper's 8/8 convention the
    # centre leaks out diagonally and β1 would be 0; the dual 8/4 pair (= cubical homology) says 1.
    m = np.zeros((5, 5), bool)
    m[[1, 2, 2, 3], [2, 1, 3, 2]] = True
    assert gudhi_betti(m) == (1, 1)
    assert betti_numbers(m) == (1, 1)
    assert betti_numbers(m, connectivity=4) == (4, 0) == gudhi_betti(m, vertices=True)


@pytest.mark.parametrize("conn,vertices", [(None, False), (8, False), (4, True)])
def test_random_2d_matches_gudhi(conn, vertices):
    rng = np.random.default_rng(0)
    for _ in range(60):
        shape = tuple(rng.integers(3, 16, 2))
        m = rng.random(shape) < rng.uniform(0.2, 0.8)
        assert betti_numbers(m, connectivity=conn) == gudhi_betti(m, vertices=vertices), m.astype(int)


@pytest.mark.parametrize("conn,vertices", [(None, False), (26, False), (6, True)])
def test_random_3d_matches_gudhi(conn, vertices):
    rng = np.random.default_rng(1)
    for _ in range(25):
        shape = tuple(rng.integers(3, 9, 3))
        m = rng.random(shape) < rng.uniform(0.2, 0.8)
        assert betti_numbers(m, connectivity=conn) == gudhi_betti(m, vertices=vertices)


def test_euler_matches_gudhi_alternating_sum_and_skimage():
    from skimage.measure import euler_number

    rng = np.random.default_rng(2)
    for shape in [(14, 11), (6, 7, 8)]:
        for conn, vertices, sk_conn in [(None, False, len(shape)), ({2: 4, 3: 6}[len(shape)], True, 1)]:
            m = rng.random(shape) < 0.5
            b = gudhi_betti(m, vertices=vertices)
            chi = sum((-1) ** k * bk for k, bk in enumerate(b))
            assert euler_characteristic(m, conn) == chi == euler_number(m, connectivity=sk_conn)


def test_solid_torus_has_one_loop_not_zero():
    t = torus()
    assert gudhi_betti(t) == (1, 1, 0)
    assert betti_numbers(t) == (1, 1, 0)
    assert betti_numbers(t, connectivity=6) == (1, 1, 0)


def test_hollow_sphere_has_one_cavity_and_no_loop():
    s = hollow_sphere()
    assert gudhi_betti(s) == (1, 0, 1)
    assert betti_numbers(s) == (1, 0, 1)


def test_shapes_touching_the_border():
    # a frame on the image border encloses the interior: one hole
    f = np.ones((6, 7), bool)
    f[1:-1, 1:-1] = False
    assert betti_numbers(f) == gudhi_betti(f) == (1, 1)
    # a U open towards the border: no hole (outside the image is background)
    u = f.copy()
    u[0, 2:5] = False
    assert betti_numbers(u) == gudhi_betti(u) == (1, 0)
    # hollow box filling the whole volume: one cavity; opening a face removes it
    box = np.ones((5, 6, 7), bool)
    box[1:-1, 1:-1, 1:-1] = False
    assert betti_numbers(box) == gudhi_betti(box) == (1, 0, 1)
    box[0, 2:4, 2:4] = False
    assert betti_numbers(box) == gudhi_betti(box) == (1, 0, 0)
    # torus cut by the volume border
    t = torus()[:, :, :10]
    assert betti_numbers(t) == gudhi_betti(t)


def test_empty_and_full_masks():
    assert betti_numbers(np.zeros((5, 5), bool)) == (0, 0)
    assert betti_numbers(np.ones((5, 5), bool)) == (1, 0)
    assert betti_numbers(np.zeros((3, 4, 5), bool)) == (0, 0, 0)
    assert betti_numbers(np.ones((3, 4, 5), bool)) == (1, 0, 0)


def test_accepts_tensors_and_01_arrays_and_metrics_reexports():
    t = torus()
    assert betti_numbers(torch.from_numpy(t)) == (1, 1, 0)
    assert betti_numbers(t.astype(np.uint8)) == (1, 1, 0)
    assert metrics_betti_numbers is betti_numbers
    assert metrics_euler(t) == 0


@pytest.mark.parametrize(
    "mask,kw,exc,match",
    [
        (np.zeros((4, 4), bool), {"connectivity": 6}, ValueError, r"2D mask must be one of \[4, 8\].*got 6"),
        (np.zeros((3, 4, 4), bool), {"connectivity": 8}, ValueError, r"3D mask must be one of \[6, 26\].*got 8"),
        (np.zeros((4, 4), bool), {"connectivity": True}, ValueError, "got True"),
        (np.array([[0, 2], [1, 0]]), {}, ValueError, r"binary.*found values \[0, 1, 2\]"),
        (np.zeros(5, bool), {}, ValueError, r"2D \(H, W\) or 3D \(D, H, W\) mask, got shape \(5,\)"),
        ([[0, 1]], {}, TypeError, "numpy.ndarray or torch.Tensor, got list"),
    ],
)
def test_bad_input(mask, kw, exc, match):
    with pytest.raises(exc, match=match):
        betti_numbers(mask, **kw)

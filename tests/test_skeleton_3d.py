"""3D skeletonization: topology preserved (26/6), thin, idempotent, close to Lee; simple-point test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage.morphology import skeletonize as sk_skeletonize

from toposeg.metrics import betti_numbers
from toposeg.skeleton import is_simple, skeletonize


N26 = [o for o in itertools.product((-1, 0, 1), repeat=3) if o != (0, 0, 0)]


# --------------------------------------------------------------------------- independent references


def ref_simple(cube: np.ndarray) -> bool:
    """Simple-point definition with scipy labelling: one 26-component of the foreground in
    N26*, one 6-component of the background in N18* that is 6-adjacent to the center."""
    fg = cube.copy()
    fg[1, 1, 1] = False
    n_fg = ndi.label(fg, structure=np.ones((3, 3, 3)))[1]
    n18 = np.zeros((3, 3, 3), bool)
    for o in N26:
        if sum(map(abs, o)) <= 2:
            n18[o[0] + 1, o[1] + 1, o[2] + 1] = True
    lab = ndi.label(~cube & n18, structure=ndi.generate_binary_structure(3, 1))[0]
    faces = {lab[1 + o[0], 1 + o[1], 1 + o[2]] for o in N26 if sum(map(abs, o)) == 1}
    return n_fg == 1 and len(faces - {0}) == 1


def gudhi_betti(mask: np.ndarray) -> tuple[int, int, int]:
    """Cubical homology of the union of the closed foreground voxels (26/6 pair)."""
    gudhi = pytest.importorskip("gudhi")
    cc = gudhi.CubicalComplex(top_dimensional_cells=np.pad(~mask, 1, constant_values=True).astype(float))
    pairs = cc.persistence()
    return tuple(sum(1 for d, (b, e) in pairs if d == k and b <= 0 < e) for k in range(3))


def mean_symmetric_distance(a: np.ndarray, b: np.ndarray) -> float:
    da, db = ndi.distance_transform_edt(~a), ndi.distance_transform_edt(~b)
    return float((db[a].mean() + da[b].mean()) / 2)


def thin(mask: np.ndarray) -> np.ndarray:
    return skeletonize(torch.from_numpy(mask)[None, None], backend="torch")[0, 0].numpy()


# --------------------------------------------------------------------------- shapes


def tubes(shape, radius, n, seed):
    """Union of ``n`` random straight cylinders (they cross each other and the border)."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).reshape(3, -1).T.astype(float)
    out = np.zeros(int(np.prod(shape)), bool)
    for _ in range(n):
        p = rng.uniform(0, 1, 3) * np.array(shape)
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        v = grid - p
        out |= np.linalg.norm(v - np.outer(v @ d, d), axis=1) < radius
    return out.reshape(shape)


def tree(shape, seed, radius=1.5):
    """Branching vessel tree: random-walk segments that branch, dilated to tubes."""
    rng = np.random.default_rng(seed)
    pts = np.zeros(shape, bool)
    stack = [(np.array(shape, float) / 2, rng.normal(size=3), 0)]
    while stack:
        p, d, depth = stack.pop()
        d /= np.linalg.norm(d)
        for _ in range(int(rng.integers(8, 20))):
            d = d + 0.3 * rng.normal(size=3)
            d /= np.linalg.norm(d)
            p = np.clip(p + d, 0, np.array(shape) - 1)
            pts[tuple(np.round(p).astype(int))] = True
        if depth < 3:
            for _ in range(2):
                stack.append((p.copy(), d + rng.normal(size=3), depth + 1))
    return ndi.distance_transform_edt(~pts) <= radius


def torus(shape, big, small, center=None):
    z, y, x = np.indices(shape).astype(float)
    c = np.array(shape, float) / 2 - 0.5 if center is None else np.asarray(center, float)
    r = np.hypot(y - c[1], x - c[2])
    return (r - big) ** 2 + (z - c[0]) ** 2 < small**2


def noisy_blobs(shape, seed, sigma=1.5, level=0.55):
    rng = np.random.default_rng(seed)
    f = ndi.gaussian_filter(rng.random(shape), sigma)
    return f > np.quantile(f, level)


def shell(shape, r_out, r_in):
    z, y, x = np.indices(shape).astype(float)
    c = np.array(shape, float) / 2 - 0.5
    r = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
    return (r < r_out) & (r > r_in)


SHAPES = {
    "tubes": lambda: tubes((28, 32, 36), 2.5, 3, 0),
    "thick_tubes": lambda: tubes((30, 30, 30), 4.0, 2, 1),
    "tree": lambda: tree((32, 40, 40), 2),
    "torus": lambda: torus((16, 32, 32), 9, 3.5),
    "torus_on_border": lambda: torus((12, 30, 30), 10, 3.5, center=(3, 14.5, 5)),
    "two_tori": lambda: torus((16, 30, 60), 8, 3) | torus((16, 30, 60), 8, 3, center=(7.5, 14.5, 40)),
    "noisy_blobs": lambda: noisy_blobs((24, 24, 24), 3),
    "noisy_blobs_dense": lambda: noisy_blobs((20, 26, 22), 4, sigma=1.0, level=0.35),
    "shell": lambda: shell((20, 20, 20), 8.5, 5),
    "full_box": lambda: np.ones((6, 7, 8), bool),
}


@pytest.fixture(scope="module")
def thinned():
    return {name: (make(), thin(make())) for name, make in SHAPES.items()}


# --------------------------------------------------------------------------- simple-point test


def test_simple_point_test_matches_definition():
    rng = np.random.default_rng(0)
    cubes = rng.random((4000, 3, 3, 3)) < rng.uniform(0.05, 0.95, (4000, 1, 1, 1))
    cubes[:, 1, 1, 1] = True
    idx = [(o[0] + 1) * 9 + (o[1] + 1) * 3 + o[2] + 1 for o in N26]
    got = is_simple(torch.from_numpy(cubes.reshape(-1, 27)[:, idx])).numpy()
    ref = np.array([ref_simple(c) for c in cubes])
    assert 0.2 < ref.mean() < 0.8  # both outcomes well represented
    np.testing.assert_array_equal(got, ref)
    # the component-counting variant (used to build the C̄ table) agrees too
    from toposeg.skeleton._thin3d import _is_simple_floodfill, neighbourhood_code

    nb = torch.from_numpy(cubes.reshape(-1, 27)[:, idx])
    np.testing.assert_array_equal(_is_simple_floodfill(neighbourhood_code(nb)).numpy(), ref)


def test_simple_point_hand_cases():
    def nb(voxels):
        cube = np.zeros((3, 3, 3), bool)
        for v in voxels:
            cube[v] = True
        return torch.from_numpy(np.array([[cube[o[0] + 1, o[1] + 1, o[2] + 1] for o in N26]]))

    assert not is_simple(nb([]))[0]  # isolated voxel
    assert is_simple(nb([(1, 1, 0)]))[0]  # end of a curve: deletable topologically
    assert not is_simple(nb([(1, 1, 0), (1, 1, 2)]))[0]  # middle of a curve
    assert not is_simple(torch.ones(1, 26, dtype=torch.bool))[0]  # interior: would make a cavity
    assert is_simple(nb([(1, 1, 0), (0, 1, 0), (0, 1, 1)]))[0]  # corner of a staircase


# --------------------------------------------------------------------------- thinning invariants


@pytest.mark.parametrize("name", list(SHAPES))
def test_topology_preserved(thinned, name):
    mask, skel = thinned[name]
    assert skel.sum() > 0 and not (skel & ~mask).any()
    assert betti_numbers(skel) == betti_numbers(mask)


@pytest.mark.parametrize("name", ["torus", "two_tori", "shell", "tree", "noisy_blobs"])
def test_topology_preserved_gudhi(thinned, name):
    mask, skel = thinned[name]
    assert gudhi_betti(skel) == gudhi_betti(mask) == betti_numbers(mask)


def test_gudhi_reference_sanity():
    assert gudhi_betti(torus((16, 32, 32), 9, 3.5)) == (1, 1, 0)
    assert gudhi_betti(shell((20, 20, 20), 8.5, 5)) == (1, 0, 1)


@pytest.mark.parametrize("name", list(SHAPES))
def test_thin_no_simple_non_end_voxel_left(thinned, name):
    _, skel = thinned[name]
    padded = np.pad(skel, 1)
    for z, y, x in np.argwhere(skel):
        cube = padded[z : z + 3, y : y + 3, x : x + 3]
        is_end = cube.sum() - 1 == 1
        assert is_end or not ref_simple(cube), f"voxel {(z, y, x)} is simple and not an end point"


@pytest.mark.parametrize("name", list(SHAPES))
def test_idempotent(thinned, name):
    _, skel = thinned[name]
    np.testing.assert_array_equal(thin(skel), skel)


def test_curves_are_kept_with_their_end_points():
    vol = np.zeros((20, 20, 20), bool)
    i = np.arange(2, 18)
    vol[i, i, i] = True  # diagonal line
    vol[5, 2:18, 15] = True  # straight line
    np.testing.assert_array_equal(thin(vol), vol)
    # a thick straight tube thins to a curve spanning (almost) its whole length
    tube = np.zeros((16, 16, 60), bool)
    z, y = np.indices((16, 16))
    tube[(z - 7.5) ** 2 + (y - 7.5) ** 2 < 16, 5:55] = True
    skel = thin(tube)
    xs = np.flatnonzero(skel.any(axis=(0, 1)))
    # not collapsed to a point: the ends lose at most about a radius (4) + 1 voxels
    assert xs.min() <= 5 + 5 and xs.max() >= 54 - 5
    assert betti_numbers(skel) == (1, 0, 0)
    assert skel.sum() <= 1.2 * (xs.max() - xs.min() + 1)  # one voxel thick


@pytest.mark.parametrize("seed", range(4))
def test_close_to_lee_on_tubes(seed):
    mask = tubes((36, 40, 44), 2.5 + 0.5 * seed, 3, 10 + seed) | tree((36, 40, 44), seed)
    ours = thin(mask)
    lee = sk_skeletonize(mask, method="lee").astype(bool)
    assert abs(int(ours.sum()) - int(lee.sum())) <= 0.2 * lee.sum()
    assert mean_symmetric_distance(ours, lee) <= 1.0


def test_non_cubic_volume():
    mask = tree((72, 128, 128), 5, radius=2.0) | tubes((72, 128, 128), 3.0, 2, 6)
    skel = thin(mask)
    assert betti_numbers(skel) == betti_numbers(mask)
    lee = sk_skeletonize(mask, method="lee").astype(bool)
    assert abs(int(skel.sum()) - int(lee.sum())) <= 0.2 * lee.sum()
    assert mean_symmetric_distance(skel, lee) <= 1.0


# --------------------------------------------------------------------------- API behaviour


def test_batch_equals_single_samples():
    masks = np.stack([SHAPES["tubes"]()[:24, :24, :24], noisy_blobs((24, 24, 24), 9), torus((24, 24, 24), 7, 3)])
    x = torch.from_numpy(masks)[:, None]
    before = x.clone()
    out = skeletonize(x, backend="torch")
    assert torch.equal(x, before)
    assert out.shape == x.shape and out.dtype == torch.bool
    for i, m in enumerate(masks):
        np.testing.assert_array_equal(out[i, 0].numpy(), thin(m))
    # channels are independent too
    out_c = skeletonize(x.reshape(1, 3, 24, 24, 24).float(), backend="torch")
    assert torch.equal(out_c.reshape(3, 1, 24, 24, 24), out)


def test_skimage_backend_is_lee_and_numpy_roundtrip():
    mask = tubes((20, 24, 28), 2.5, 2, 4)
    out = skeletonize(mask, method="lee", backend="skimage")
    assert isinstance(out, np.ndarray) and out.dtype == bool and out.shape == mask.shape
    np.testing.assert_array_equal(out, sk_skeletonize(mask, method="lee").astype(bool))
    ours = skeletonize(mask.astype(np.uint8), backend="torch")
    assert isinstance(ours, np.ndarray) and ours.shape == mask.shape
    batch = torch.from_numpy(np.stack([mask, mask[::-1].copy()]))[:, None]
    sk = skeletonize(batch, method="lee")
    np.testing.assert_array_equal(sk[1, 0].numpy(), sk_skeletonize(mask[::-1].copy(), method="lee").astype(bool))


def test_empty_volumes():
    x = torch.zeros(2, 1, 5, 6, 7, dtype=torch.bool)
    for method, backend in (("thin", "torch"), ("thin", "auto"), ("lee", "skimage"), ("lee", "auto")):
        assert not skeletonize(x, method=method, backend=backend).any()
    assert skeletonize(torch.zeros(0, 1, 4, 4, 4), backend="torch").shape == (0, 1, 4, 4, 4)


def test_bad_3d_inputs():
    with pytest.raises(ValueError, match=r"binary.*found values \[0, 1, 7\]"):
        x = torch.zeros(1, 1, 3, 3, 3)
        x[0, 0, 0, 0, 0], x[0, 0, 1, 1, 1] = 7, 1
        skeletonize(x)
    with pytest.raises(ValueError, match=r"NaN.*shape \(2, 3, 4\)"):
        skeletonize(np.full((2, 3, 4), np.nan))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu_3d():
    masks = np.stack([tubes((32, 40, 48), 3.0, 3, s) | tree((32, 40, 48), s) for s in range(3)])
    x = torch.from_numpy(masks)[:, None]
    cpu = skeletonize(x, backend="torch")
    gpu = skeletonize(x.cuda(), backend="torch")
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)


# --------------------------------------------------------------------------- objects Lee deletes


def _box(shape, size, start=2):
    vol = np.zeros(shape, bool)
    vol[tuple(slice(start, start + s) for s in size)] = True
    return vol


def _even_tube():
    """Straight tube of even diameter (radius 2 around a voxel-corner axis), 50 voxels long."""
    vol = np.zeros((16, 16, 60), bool)
    z, y = np.indices((16, 16))
    vol[(z - 7.5) ** 2 + (y - 7.5) ** 2 < 16, 5:55] = True
    return vol


EVEN_OBJECTS = {
    "cube_2x2x2": lambda: _box((6, 6, 6), (2, 2, 2)),
    "bar_4x4x40": lambda: _box((8, 8, 44), (4, 4, 40)),
    "box_2x4x9": lambda: _box((6, 8, 13), (2, 4, 9)),
    "box_4x4x12": lambda: _box((8, 8, 16), (4, 4, 12)),
    "box_6x6x20": lambda: _box((10, 10, 24), (6, 6, 20)),
    "even_tube": _even_tube,
    "hollow_bar_4x4": lambda: _box((8, 8, 24), (4, 4, 20)) & ~_box((8, 8, 24), (2, 2, 20), start=3),
}


@pytest.mark.parametrize("name", list(EVEN_OBJECTS))
def test_default_keeps_objects_lee_deletes(name):
    """Issue 11: with the old default (Lee on the CPU) these objects had an empty skeleton.

    The default rule, on the default backend of the CPU, keeps β0, β1, β2 (gudhi's cubical
    homology is the reference) and leaves no simple voxel that is not an end point."""
    mask = EVEN_OBJECTS[name]()
    skel = skeletonize(mask)  # method="thin", backend="auto", CPU
    assert skel.any()
    assert not (skel & ~mask).any()
    expected = gudhi_betti(mask)
    assert expected[0] == 1
    assert gudhi_betti(skel) == expected
    padded = np.pad(skel, 1)
    for z, y, x in np.argwhere(skel):
        cube = padded[z : z + 3, y : y + 3, x : x + 3]
        assert cube.sum() - 1 == 1 or not ref_simple(cube), f"voxel {(z, y, x)} is simple and not an end point"
    # the same on an explicit torch backend and for a batch
    np.testing.assert_array_equal(skeletonize(mask, backend="torch"), skel)
    batch = torch.from_numpy(np.stack([mask, mask]))[:, None]
    assert torch.equal(skeletonize(batch), torch.from_numpy(np.stack([skel, skel]))[:, None])


def test_lee_only_by_name():
    """Lee is reachable only as method="lee"; the default never gives Lee's empty result."""
    bar = EVEN_OBJECTS["bar_4x4x40"]()
    lee = skeletonize(bar, method="lee")
    np.testing.assert_array_equal(lee, sk_skeletonize(bar, method="lee").astype(bool))
    assert skeletonize(bar).sum() >= 30  # a curve along most of the 40-voxel bar

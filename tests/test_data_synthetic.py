"""Synthetic generators: determinism, shapes, known topology (checked with gudhi), hard images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from toposeg.data import SYNTHETIC, make_synthetic, open_dataset
from toposeg.data.synthetic import SyntheticCases, synthetic_case

KINDS_2D = ["vessels2d", "membranes2d", "roads2d"]


def gudhi_betti(mask: np.ndarray) -> tuple[int, ...]:
    """Betti numbers of the closed cubical complex of the foreground pixels (independent reference:
    foreground 8/26-connected, background 4/6-connected)."""
    gudhi = pytest.importorskip("gudhi")
    padded = np.pad(mask, 1)
    cc = gudhi.CubicalComplex(top_dimensional_cells=np.where(padded, 0.0, 1.0))
    cc.compute_persistence()
    betti = cc.persistent_betti_numbers(0.0, 0.0)
    return tuple(int(b) for b in (list(betti) + [0] * mask.ndim)[: mask.ndim])


@pytest.mark.parametrize("kind", KINDS_2D)
def test_2d_shapes_dtypes_and_determinism(kind):
    a, la = SYNTHETIC[kind](size=64, seed=3)
    b, lb = SYNTHETIC[kind](size=64, seed=3)
    c, lc = SYNTHETIC[kind](size=64, seed=4)
    channels = 3 if kind == "roads2d" else 1
    assert a.shape == (channels, 64, 64) and a.dtype == np.float32 and la.shape == (64, 64) and la.dtype == bool
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.array_equal(la, lc)
    assert np.isfinite(a).all() and abs(float(a.mean())) < 1e-3 and abs(float(a.std()) - 1) < 1e-2
    assert 0.02 < la.mean() < 0.5


def test_vessels3d_default_shape():
    image, label = SYNTHETIC["vessels3d"](seed=1)
    assert image.shape == (1, 72, 128, 128) and label.shape == (72, 128, 128)
    assert 0.0005 < label.mean() < 0.05


@pytest.mark.parametrize("kind", KINDS_2D)
def test_betti_meta_matches_gudhi(kind):
    for i in range(2):
        case = synthetic_case(kind, i, size=96, seed=7)
        assert case.meta["betti"] == gudhi_betti(case.label)


def test_betti_meta_3d_matches_gudhi():
    case = synthetic_case("vessels3d", 0, size=(40, 48, 48), seed=2)
    assert case.meta["betti"] == gudhi_betti(case.label)


def test_topology_of_each_kind():
    """Membranes have many loops, roads have loops, vessel trees are few components."""
    mem = [synthetic_case("membranes2d", i, size=128).meta["betti"] for i in range(3)]
    roads = [synthetic_case("roads2d", i, size=128).meta["betti"] for i in range(3)]
    assert all(b1 >= 5 for _, b1 in mem)
    assert all(b1 >= 1 for _, b1 in roads)
    ves = [synthetic_case("vessels2d", i, size=128).meta["betti"] for i in range(3)]
    assert all(1 <= b0 <= 6 for b0, _ in ves)


def test_vessels_taper_to_thin_branches():
    _, label = SYNTHETIC["vessels2d"](size=128, seed=0)
    dist = ndimage.distance_transform_edt(label)
    from skimage.morphology import skeletonize

    widths = 2 * dist[skeletonize(label)] - 1
    assert widths.min() <= 2 and widths.max() >= 4  # 1-2 px wide twigs and thick trunks


def test_membrane_width_between_2_and_5():
    _, label = SYNTHETIC["membranes2d"](size=128, seed=5)
    from skimage.morphology import skeletonize

    dist = ndimage.distance_transform_edt(label)
    local = 2 * dist[skeletonize(label)]
    assert np.median(local) >= 2 and np.percentile(local, 90) <= 7


@pytest.mark.parametrize("kind", KINDS_2D)
def test_image_is_informative_but_hard(kind):
    """The label is visible in the image (foreground and background differ on average) but noisy:
    a fixed threshold on the raw intensity is far from perfect."""
    scores = []
    for seed in range(3):
        image, label = SYNTHETIC[kind](size=96, seed=seed)
        x = image.mean(axis=0)
        sep = abs(x[label].mean() - x[~label].mean()) / x.std()
        assert sep > 0.3, (kind, seed, sep)
        t = np.quantile(x, 1 - label.mean()) if x[label].mean() > x[~label].mean() else np.quantile(x, label.mean())
        pred = x > t if x[label].mean() > x[~label].mean() else x < t
        dice = 2 * (pred & label).sum() / (pred.sum() + label.sum())
        scores.append(dice)
    assert max(scores) < 0.9


def test_gaps_are_in_the_image_not_the_label():
    """Occluded stretches: some label pixels are much fainter than the typical vessel pixel."""
    image, label = SYNTHETIC["vessels2d"](size=128, seed=11)
    from scipy.ndimage import gaussian_filter

    smooth = gaussian_filter(image[0], 1.5)
    background = np.median(smooth[~label])
    vessel = smooth[label]
    assert np.mean(np.abs(vessel - background) < 0.2) > 0.05  # a visible fraction of the label is lost in the background


def test_make_synthetic_compatible_and_prefix_stable():
    cases = make_synthetic("vessels2d", 3, size=64, seed=9)
    assert [c.id for c in cases] == ["vessels2d_0000", "vessels2d_0001", "vessels2d_0002"]
    more = make_synthetic("vessels2d", 4, size=64, seed=9)
    np.testing.assert_array_equal(cases[2].label, more[2].label)
    lazy = open_dataset("vessels2d", n=3, size=64, seed=9)
    np.testing.assert_array_equal(lazy[1].image, cases[1].image)


def test_synthetic_errors():
    with pytest.raises(KeyError, match=r"unknown synthetic kind 'blobs'; valid: \['membranes2d', 'roads2d', 'vessels2d', 'vessels3d'\]"):
        make_synthetic("blobs", 2)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        make_synthetic("vessels2d", 0)
    with pytest.raises(ValueError, match=r"every side must be >= 32, got size 16"):
        SYNTHETIC["membranes2d"](size=16)
    with pytest.raises(TypeError, match=r"size must be an int or a sequence of 3 ints, got \(64, 64\)"):
        SYNTHETIC["vessels3d"](size=(64, 64))
    with pytest.raises(IndexError, match="out of range"):
        SyntheticCases("roads2d", 2)[5]

"""Hard pixel miners: hand-computed cases (2D/3D), NumPy + scikit-image / gudhi references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.morphology import skeletonize as sk_skeletonize

import inspect

from toposeg import mining
from toposeg.mining import DEFAULT_MINING_THRESHOLD, MINERS, mine, phpm, shpm, thpm
from toposeg.skeleton import skeletonize

gudhi = pytest.importorskip("gudhi")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))[None, None]


def _np(x: torch.Tensor) -> np.ndarray:
    return x[0, 0].numpy()


def _sk(mask: np.ndarray) -> np.ndarray:
    return sk_skeletonize(mask, method="zhang") if mask.ndim == 2 else sk_skeletonize(mask, method="lee").astype(bool)


def _random_case(shape, seed, sigma=1.5):
    rng = np.random.default_rng(seed)
    y = ndimage.gaussian_filter(rng.random(shape), sigma) > 0.52
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), 1.0)
    prob = 1 / (1 + np.exp(-(3.0 * (y - 0.5) + 4.0 * noise)))
    return prob.astype(np.float32), y


# ---------------------------------------------------------------- references (NumPy + skimage / gudhi)

def _ref_thpm(prob, y, t):
    pt = prob > t
    return y & ~pt, pt & ~y


def _ref_shpm(prob, y, t):
    pt = prob > t
    sy, sp = _sk(y), _sk(pt)
    return (pt & sy) ^ sy, (sp & y) ^ sp


def _ref_phpm(prob, y, t, dims):
    """Critical pixels from gudhi's diagram of -p_f: misclassified pixels have distinct values in (0, 1),
    so a pixel is critical iff its value is a finite birth or death value of a pair in ``dims``."""
    pt = prob > t
    wrong = pt != y
    pf = np.where(wrong, prob.astype(np.float64), y.astype(np.float64))
    cc = gudhi.CubicalComplex(top_dimensional_cells=-pf)
    cc.compute_persistence(homology_coeff_field=2, min_persistence=0)
    vals = []
    for d in dims:
        iv = np.asarray(cc.persistence_intervals_in_dimension(d)).reshape(-1, 2)
        iv = iv[np.isfinite(iv[:, 1]) & (iv[:, 1] > iv[:, 0])]
        vals.extend((-iv).ravel().tolist())
    crit = wrong & np.isin(pf, np.asarray(vals, dtype=np.float64))
    return crit & y, crit & ~y


# ---------------------------------------------------------------- THPM

def test_thpm_is_xor_hand_case():
    y = np.zeros((4, 5), bool)
    y[1, 1:4] = True
    prob = np.full((4, 5), 0.1, np.float32)
    prob[1, 1:3] = 0.9  # (1, 3) missed
    prob[3, 0] = 0.7  # (3, 0) false
    pos, neg = thpm(_t(prob), _t(y))
    assert np.argwhere(_np(pos)).tolist() == [[1, 3]]
    assert np.argwhere(_np(neg)).tolist() == [[3, 0]]


@pytest.mark.parametrize("shape", [(2, 1, 16, 23), (1, 2, 5, 6, 7)])
def test_thpm_random_equals_xor(shape):
    g = torch.Generator().manual_seed(0)
    prob = torch.rand(shape, generator=g)
    y = torch.rand(shape, generator=g) > 0.5
    pos, neg = thpm(prob, y, threshold=0.6)
    assert torch.equal(pos | neg, (prob > 0.6) ^ y)
    assert not (pos & neg).any() and torch.equal(pos, y & ~(prob > 0.6))


# ---------------------------------------------------------------- SHPM

def test_shpm_broken_line_2d_pos_exactly_at_gap():
    y = np.zeros((20, 37), bool)
    y[9:12, 4:33] = True  # a 3-pixel-thick bar; its skeleton is row 10
    prob = np.where(y, 0.9, 0.1).astype(np.float32)
    prob[:, 20] = 0.2  # break across the bar
    pos, neg = shpm(_t(prob), _t(y), method="zhang", backend="skimage")
    gap = _sk(y) & (np.arange(37) == 20)[None, :]
    assert gap.sum() == 1
    np.testing.assert_array_equal(_np(pos), gap)
    assert not _np(neg).any()


def test_shpm_spurious_blob_2d_neg_on_its_skeleton():
    y = np.zeros((24, 30), bool)
    y[3, 2:28] = True
    blob = np.zeros_like(y)
    blob[12:19, 8:22] = True
    prob = np.where(y | blob, 0.9, 0.05).astype(np.float32)
    pos, neg = shpm(_t(prob), _t(y), method="zhang", backend="skimage")
    np.testing.assert_array_equal(_np(neg), _sk(blob))
    assert _np(neg).sum() > 3 and not _np(pos).any()


def test_shpm_3d_hand_cases():
    y = np.zeros((6, 9, 15), bool)
    y[2:5, 3:6, 1:14] = True  # thick rod along the last axis
    prob = np.where(y, 0.9, 0.1).astype(np.float32)
    prob[..., 7] = 0.1  # break
    prob[0, 0:2, 0:3] = 0.8  # spurious blob outside the rod
    pos, neg = shpm(_t(prob), _t(y), method="lee", backend="skimage")
    sy = _sk(y)
    np.testing.assert_array_equal(_np(pos), sy & (np.arange(15) == 7))
    assert _np(pos).sum() >= 1
    blob = np.zeros_like(y)
    blob[0, 0:2, 0:3] = True
    np.testing.assert_array_equal(_np(neg), _sk(blob))


@pytest.mark.parametrize("shape, seed", [((24, 31), 0), ((31, 24), 1), ((8, 12, 10), 2)])
def test_shpm_matches_skimage_reference(shape, seed):
    prob, y = _random_case(shape, seed)
    rule = "zhang" if len(shape) == 2 else "lee"
    pos, neg = shpm(_t(prob), _t(y), threshold=0.6, method=rule, backend="skimage")
    rp, rn = _ref_shpm(prob, y, 0.6)
    np.testing.assert_array_equal(_np(pos), rp)
    np.testing.assert_array_equal(_np(neg), rn)


def test_shpm_precomputed_target_skeleton_and_batch():
    cases = [_random_case((20, 26), s) for s in range(3)]
    prob = torch.stack([torch.from_numpy(p)[None] for p, _ in cases])
    y = torch.stack([torch.from_numpy(t)[None] for _, t in cases])
    skel = torch.stack([torch.from_numpy(_sk(t))[None] for _, t in cases])
    a = shpm(prob, y, method="zhang", backend="skimage")
    b = shpm(prob, y, method="zhang", backend="skimage", target_skeleton=skel)
    for i, (p, t) in enumerate(cases):
        rp, rn = _ref_shpm(p, t, DEFAULT_MINING_THRESHOLD)
        np.testing.assert_array_equal(a[0][i, 0].numpy(), rp)
        np.testing.assert_array_equal(a[1][i, 0].numpy(), rn)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# ---------------------------------------------------------------- PHPM

def test_phpm_broken_line_2d_non_square_regression():
    # the original code scrambled the grid for non-square inputs: the defect must stay at (5, 17)
    y = np.zeros((20, 37), bool)
    y[5, 3:30] = True
    prob = np.where(y, 0.9, 0.05).astype(np.float32)
    prob[5, 17] = 0.3
    pos, neg = phpm(_t(prob), _t(y), dims=(0,))
    assert np.argwhere(_np(pos)).tolist() == [[5, 17]]
    assert not _np(neg).any()
    pos_t, _ = phpm(_t(prob.T.copy()), _t(y.T.copy()), dims=(0,))
    assert np.argwhere(_np(pos_t)).tolist() == [[17, 5]]


def test_phpm_broken_line_3d_non_cubic_regression():
    y = np.zeros((5, 7, 11), bool)
    y[1, 4, 1:10] = True
    prob = np.where(y, 0.9, 0.05).astype(np.float32)
    prob[1, 4, 6] = 0.2
    pos, neg = phpm(_t(prob), _t(y), dims=(0,))
    assert np.argwhere(_np(pos)).tolist() == [[1, 4, 6]]
    assert not _np(neg).any()


def test_phpm_spurious_blob_neg_at_its_birth_pixel():
    y = np.zeros((12, 19), bool)
    y[2, 1:18] = True
    prob = np.where(y, 0.95, 0.05).astype(np.float32)
    prob[7:10, 8:12] = 0.7
    prob[8, 10] = 0.8  # the blob's top: where its component is born
    pos, neg = phpm(_t(prob), _t(y), dims=(0, 1))
    assert np.argwhere(_np(neg)).tolist() == [[8, 10]]
    assert not _np(pos).any()


def test_phpm_loop_closing_bridge_dim1():
    # prediction closes a loop the GT does not have: the bridge pixel is the birth of a 1-cycle
    y = np.zeros((9, 9), bool)
    y[2, 2:7] = y[6, 2:7] = y[2:7, 2] = True  # a "C"
    prob = np.where(y, 0.9, 0.05).astype(np.float32)
    prob[3:6, 6] = 0.75  # spurious bridge closing the C into an O
    prob[4, 6] = 0.7  # ... closing last at (4, 6)
    _, neg1 = phpm(_t(prob), _t(y), dims=(1,))
    assert np.argwhere(_np(neg1)).tolist() == [[4, 6]]


@pytest.mark.parametrize("shape, seed, dims", [((24, 31), 0, (0, 1)), ((31, 20), 1, (1,)), ((7, 9, 10), 2, (0,)),
                                               ((6, 8, 9), 3, (0, 1, 2))])
def test_phpm_matches_gudhi_reference(shape, seed, dims):
    prob, y = _random_case(shape, seed)
    pos, neg = phpm(_t(prob), _t(y), threshold=0.6, dims=dims)
    rp, rn = _ref_phpm(prob, y, 0.6, dims)
    assert rp.sum() + rn.sum() > 0
    np.testing.assert_array_equal(_np(pos), rp)
    np.testing.assert_array_equal(_np(neg), rn)


def test_phpm_batch_and_threads_are_independent():
    cases = [_random_case((18, 25), s) for s in range(4)]
    prob = torch.stack([torch.from_numpy(np.stack([p, 1 - p])) for p, _ in cases])
    y = torch.stack([torch.from_numpy(np.stack([t, ~t])) for _, t in cases])
    a = phpm(prob, y, workers=1)
    b = phpm(prob, y, workers=3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    for i in range(4):
        for c in range(2):
            s = phpm(prob[i:i + 1, c:c + 1], y[i:i + 1, c:c + 1])
            assert torch.equal(a[0][i, c], s[0][0, 0]) and torch.equal(a[1][i, c], s[1][0, 0])


def test_hard_pixels_are_misclassified_and_perfect_prediction_is_empty():
    prob, y = _random_case((20, 22), 5)
    for name in MINERS:
        pos, neg = mine(name, _t(prob), _t(y))
        pt = prob > DEFAULT_MINING_THRESHOLD
        assert not (_np(pos) & pt).any() and not (_np(pos) & ~y).any()
        assert not (_np(neg) & ~pt).any() and not (_np(neg) & y).any()
        assert pos.dtype == torch.bool and pos.shape == (1, 1, 20, 22)
        pp, nn_ = mine(name, _t(np.where(y, 0.9, 0.1).astype(np.float32)), _t(y))
        assert not pp.any() and not nn_.any()


def test_phpm_half_precision_input_matches_float32():
    prob, y = _random_case((16, 21), 7)
    prob = torch.from_numpy(prob).half().float().numpy()  # representable in float16
    a = phpm(_t(prob), _t(y))
    b = phpm(_t(prob).half(), _t(y))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_miners_do_not_modify_inputs_and_keep_device():
    prob, y = _random_case((10, 12), 6)
    p, t = _t(prob).clone(), _t(y).clone()
    for name in MINERS:
        mine(name, p, t)
    assert torch.equal(p, _t(prob)) and torch.equal(t, _t(y))


@pytest.mark.parametrize("name", sorted(MINERS))
@pytest.mark.parametrize(
    "prob, target, kwargs, exc, match",
    [
        (np.zeros((1, 1, 4, 4)), torch.zeros(1, 1, 4, 4), {}, TypeError, r"prob must be a torch.Tensor"),
        (torch.zeros(4, 4), torch.zeros(4, 4), {}, ValueError, r"\(N, C, H, W\).*got 2 dims"),
        (torch.zeros(1, 1, 4, 4, dtype=torch.long), torch.zeros(1, 1, 4, 4), {}, TypeError, "floating-point.*int64"),
        (torch.full((1, 1, 4, 4), 2.0), torch.zeros(1, 1, 4, 4), {}, ValueError, r"probabilities in \[0, 1\].*\[2, 2\]"),
        (torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5), {}, ValueError, r"same shape.*\(1, 1, 4, 4\) and \(1, 1, 4, 5\)"),
        (torch.zeros(1, 1, 4, 4), np.zeros((1, 1, 4, 4)), {}, TypeError, "target must be a torch.Tensor"),
        (torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 2.0), {}, ValueError, r"binary.*\[2\]"),
        (torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), {"threshold": 1.5}, ValueError, r"threshold.*\(0, 1\).*1.5"),
    ],
)
def test_bad_inputs(name, prob, target, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mine(name, prob, target, **kwargs)


def test_bad_options():
    p, y = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    with pytest.raises(KeyError, match=r"unknown miner 'xhpm'; valid: \['phpm', 'shpm', 'thpm'\]"):
        mine("xhpm", p, y)
    with pytest.raises(ValueError, match=r"dims must be a non-empty subset of \(0, 1\).*\(2,\)"):
        phpm(p, y, dims=(2,))
    with pytest.raises(ValueError, match="workers must be a positive integer or None, got 0"):
        phpm(p, y, workers=0)
    with pytest.raises(ValueError, match=r"target_skeleton and target must have the same shape"):
        shpm(p, y, target_skeleton=torch.zeros(1, 1, 3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"target_skeleton must be binary"):
        shpm(p, y, target_skeleton=torch.full((1, 1, 4, 4), 0.5))
    with pytest.raises(TypeError, match="target_skeleton must be a bool torch.Tensor .*got ndarray"):
        shpm(p, y, target_skeleton=np.zeros((1, 1, 4, 4), bool))
    with pytest.raises(KeyError, match="unknown skeleton backend 'nope'"):
        shpm(p, y, backend="nope")


# ---------------------------------------------------------------- one mining threshold (the paper's 0.6)

def test_default_mining_threshold_is_the_papers_and_every_miner_uses_it():
    assert DEFAULT_MINING_THRESHOLD == 0.6
    for fn in (thpm, phpm, shpm):
        assert inspect.signature(fn).parameters["threshold"].default == 0.6, fn.__name__


@pytest.mark.parametrize("name", sorted(MINERS))
def test_default_threshold_behaviour_pixel_at_055(name):
    # a 1-px line predicted at 0.9 except one pixel at 0.55: missed at t = 0.6, not at t = 0.5
    y = np.zeros((12, 30), bool)
    y[5, 3:27] = True
    prob = np.where(y, 0.9, 0.05).astype(np.float32)
    prob[5, 14] = 0.55
    opts = {"dims": (0,)} if name == "phpm" else {}
    pos, neg = mine(name, _t(prob), _t(y), **opts)
    assert np.argwhere(_np(pos)).tolist() == [[5, 14]] and not _np(neg).any()
    pos5, neg5 = mine(name, _t(prob), _t(y), threshold=0.5, **opts)
    assert not pos5.any() and not neg5.any()


# ---------------------------------------------------------------- skeleton rule (method) and 3D regression

def test_shpm_3d_even_bar_with_missed_slices_mines_the_gap():
    # regression (issue 11): scikit-image's Lee thinning deletes a 4x4 bar entirely, so SHPM mined
    # nothing on 4 missed slices. The skeleton of the bar is a curve inside it from one end to the
    # other, so it crosses every missed slice: H_pos must be non-empty in each of them, inside the
    # bar and only there; the prediction adds nothing, so H_neg is empty.
    y = np.zeros((44, 8, 8), bool)
    y[2:42, 2:6, 2:6] = True  # 4x4 bar, 40 voxels long along axis 0
    prob = np.where(y, 0.9, 0.05).astype(np.float32)
    gap = np.zeros(44, bool)
    gap[20:24] = True
    prob[gap] = 0.05  # 4 missed slices
    pos, neg = shpm(_t(prob), _t(y))
    p = _np(pos)
    assert p.any()
    assert not (p & ~y).any()  # subset of the bar
    assert set(np.nonzero(p)[0].tolist()) == {20, 21, 22, 23}  # inside the missed slices, each of them
    assert not _np(neg).any()
    # H_pos is exactly the ground-truth skeleton in the gap (eq. 6)
    sy = skeletonize(y)
    np.testing.assert_array_equal(p, sy & gap[:, None, None])


@pytest.mark.parametrize("shape, seed", [((24, 31), 0), ((8, 12, 10), 2)])
def test_shpm_method_is_passed_to_the_skeleton(shape, seed):
    prob, y = _random_case(shape, seed)
    rules = ["thin", "zhang"] if len(shape) == 2 else ["thin"]
    for rule in rules:
        pos, neg = shpm(_t(prob), _t(y), method=rule)
        pt = prob > DEFAULT_MINING_THRESHOLD
        sy, sp = skeletonize(y, method=rule), skeletonize(pt, method=rule)
        np.testing.assert_array_equal(_np(pos), (pt & sy) ^ sy)
        np.testing.assert_array_equal(_np(neg), (sp & y) ^ sp)
    assert "method" in inspect.signature(shpm).parameters
    assert inspect.signature(shpm).parameters["method"].default == "thin"
    assert inspect.signature(shpm).parameters["backend"].default == "auto"


# ---------------------------------------------------------------- multi-class class-index targets

@pytest.mark.parametrize("name", sorted(MINERS))
def test_class_index_target_error_says_one_hot_and_how(name):
    prob = torch.full((2, 3, 5, 6), 1 / 3)
    labels = torch.randint(0, 3, (2, 5, 6))
    with pytest.raises(ValueError) as e:
        mine(name, prob, labels)
    msg = str(e.value)
    assert "target has shape (2, 5, 6), which looks like a class-index map (N, *S)" in msg
    assert "shaped like prob (2, 3, 5, 6)" in msg and "one-hot" in msg
    assert "torch.nn.functional.one_hot(target.long(), 3).movedim(-1, 1)" in msg
    onehot = torch.nn.functional.one_hot(labels, 3).movedim(-1, 1)  # the advice works
    mine(name, prob, onehot)
    with pytest.raises(ValueError, match=r"target has 1 channel\(s\) but prob has 3 .*"
                                         r"one_hot\(target\[:, 0\]\.long\(\), 3\)\.movedim\(-1, 1\)"):
        mine(name, prob, labels[:, None])
    with pytest.raises(ValueError, match=r"target has shape \(2, 5, 6\) without a channel axis.*target\.unsqueeze\(1\)"):
        mine(name, prob[:, :1], labels.clamp(max=1))

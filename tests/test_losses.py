"""Losses: eq. 1 structure, gradients, batch independence, multi-class rule, masks, clDice, Skeleton Recall."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.morphology import skeletonize as sk_skeletonize

from toposeg import mining
from toposeg.losses import (
    LOSSES, bce_dice_loss, build_loss, cldice_loss, hard_pixel_mse, hpm_loss, phpm_loss, shpm_loss,
    skeleton_recall_loss, soft_cldice, soft_skeleton, thpm_loss, topology_precision_sensitivity, tubed_skeleton,
)

HPM = ("thpm", "phpm", "shpm")
FUNCTIONAL = {
    "bce_dice": bce_dice_loss, "cldice": cldice_loss, "thpm": thpm_loss, "phpm": phpm_loss, "shpm": shpm_loss,
    "skeleton_recall": skeleton_recall_loss,
}


def _case(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(shape, generator=g) > 0.6)
    logits = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    logits = torch.where(logits.abs() < 0.3, logits.sign() * 0.3 + (logits == 0) * 0.3, logits)  # away from t=0.5
    return logits, y


# ---------------------------------------------------------------- registry / module == functional

def test_registry_names():
    assert set(LOSSES) == {"bce_dice", "cldice", "thpm", "phpm", "shpm", "skeleton_recall"}
    with pytest.raises(KeyError, match=r"unknown loss 'dice'; valid: \['bce_dice', 'cldice', 'phpm'"):
        build_loss("dice")
    with pytest.raises(TypeError, match="lamda"):
        build_loss("shpm", lamda=0.5)


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
@pytest.mark.parametrize("shape", [(2, 1, 12, 17), (2, 1, 5, 6, 7)])
def test_module_equals_functional(name, shape):
    x, y = _case(shape)
    mod = build_loss(name, reduction="none")
    torch.testing.assert_close(mod(x, y), FUNCTIONAL[name](x, y, reduction="none"))


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_batch_independence_and_input_untouched(name):
    x, y = _case((3, 1, 14, 19), seed=1)
    x0, y0 = x.clone(), y.clone()
    per = FUNCTIONAL[name](x, y, reduction="none")
    assert per.shape == (3,)
    for i in range(3):
        torch.testing.assert_close(per[i:i + 1], FUNCTIONAL[name](x[i:i + 1], y[i:i + 1], reduction="none"))
    assert torch.equal(x, x0) and torch.equal(y, y0)


@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_gradcheck_float64(name):
    x, y = _case((2, 1, 6, 7), seed=2, dtype=torch.float64)
    x.requires_grad_(True)
    kwargs = {"reduction": "mean"}
    if name == "cldice":
        kwargs["iters"] = 1
    assert torch.autograd.gradcheck(lambda inp: FUNCTIONAL[name](inp, y, **kwargs), (x,), eps=1e-6, atol=1e-5)


# ---------------------------------------------------------------- HPM: eq. 1 structure

@pytest.mark.parametrize("miner", HPM)
def test_hpm_is_bce_dice_plus_lam_mse_over_hard_set(miner):
    x, y = _case((2, 1, 16, 21), seed=3, dtype=torch.float64)
    p = torch.sigmoid(x)
    pos, neg = mining.MINERS[miner](p, y, threshold=0.6)
    hard = (pos | neg).double()
    yd = y.double()
    ref_mean = ((p - yd) ** 2 * hard).sum() / hard.sum()
    ref_none = ((p - yd) ** 2 * hard).sum((1, 2, 3)) / hard.sum((1, 2, 3)).clamp(min=1)
    got = hpm_loss(x, y, miner=miner, lam=0.7, threshold=0.6)
    torch.testing.assert_close(got, bce_dice_loss(x, y) + 0.7 * ref_mean)
    got_none = hpm_loss(x, y, miner=miner, lam=0.7, threshold=0.6, reduction="none")
    torch.testing.assert_close(got_none, bce_dice_loss(x, y, reduction="none") + 0.7 * ref_none)


@pytest.mark.parametrize("miner", HPM)
@pytest.mark.parametrize("shape", [(2, 1, 10, 13), (1, 1, 4, 6, 7)])
def test_perfect_prediction_hpm_term_is_zero_with_valid_graph(miner, shape):
    _, y = _case(shape, seed=4)
    x = torch.where(y, 4.0, -4.0).requires_grad_(True)
    loss = hpm_loss(x, y, miner=miner)
    base = bce_dice_loss(x, y)
    assert loss.requires_grad and float((loss - base).detach()) == 0.0
    (g,) = torch.autograd.grad(loss, x)
    (gb,) = torch.autograd.grad(base, x)
    assert torch.equal(g, gb)


@pytest.mark.parametrize("miner", HPM)
def test_gradient_of_hpm_term_only_at_hard_pixels(miner):
    x, y = _case((2, 1, 16, 21), seed=5, dtype=torch.float64)
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(hpm_loss(x, y, miner=miner), x)
    (gb,) = torch.autograd.grad(bce_dice_loss(x, y), x)
    pos, neg = mining.MINERS[miner](torch.sigmoid(x.detach()), y)
    diff = (g - gb).abs() > 1e-12
    assert (pos | neg).any()
    assert torch.equal(diff, pos | neg)


def test_hard_pixel_mse_hand_case():
    p = torch.tensor([[[[0.2, 0.9], [0.4, 0.1]]]])
    y = torch.tensor([[[[1, 0], [1, 0]]]]).bool()
    hard = torch.tensor([[[[True, True], [False, False]]]])
    torch.testing.assert_close(hard_pixel_mse(p, y, hard, "mean"), torch.tensor((0.64 + 0.81) / 2))
    empty = hard_pixel_mse(p.requires_grad_(True), y, torch.zeros_like(hard), "mean")
    assert float(empty.detach()) == 0.0 and empty.requires_grad


def test_shpm_precomputed_skeleton_equals_computed():
    x, y = _case((2, 1, 15, 18), seed=6)
    skel = torch.stack([torch.from_numpy(sk_skeletonize(t[0].numpy(), method="zhang"))[None] for t in y])
    torch.testing.assert_close(shpm_loss(x, y, target_skeleton=skel), shpm_loss(x, y))
    torch.testing.assert_close(build_loss("shpm")(x, y, target_skeleton=skel), shpm_loss(x, y))


# ---------------------------------------------------------------- multi-class and masks

@pytest.mark.parametrize("miner", HPM)
def test_softmax_mines_foreground_classes_one_vs_rest(miner):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 12, 14, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, 3, (2, 12, 14), generator=g)
    y = F.one_hot(labels, 3).movedim(-1, 1).bool()
    p = torch.softmax(x, 1)
    terms = []
    for c in (1, 2):  # background (0) is not mined
        pos, neg = mining.MINERS[miner](p[:, c:c + 1], y[:, c:c + 1])
        h = (pos | neg).double()
        terms.append(((p[:, c:c + 1] - y[:, c:c + 1].double()) ** 2 * h).sum() / h.sum().clamp(min=1))
    ref = bce_dice_loss(x, y, activation="softmax") + 0.5 * torch.stack(terms).mean()
    torch.testing.assert_close(hpm_loss(x, y, miner=miner, activation="softmax"), ref)


def test_sigmoid_multilabel_mines_every_channel():
    x, y = _case((2, 2, 10, 12), seed=8, dtype=torch.float64)
    p = torch.sigmoid(x)
    pos, neg = mining.thpm(p, y)
    h = (pos | neg).double()
    per_c = ((p - y.double()) ** 2 * h).sum((0, 2, 3)) / h.sum((0, 2, 3))
    torch.testing.assert_close(thpm_loss(x, y), bce_dice_loss(x, y) + 0.5 * per_c.mean())


@pytest.mark.parametrize("name", ["bce_dice", "thpm", "skeleton_recall"])
def test_masked_pixels_are_ignored(name):
    x, y = _case((2, 1, 12, 16), seed=9)
    mask = torch.ones(2, 1, 12, 16, dtype=torch.bool)
    mask[:, :, :, 10:] = False
    x2 = x.clone()
    x2[..., 10:] = torch.randn(2, 1, 12, 6) * 5
    kwargs = {"target_skeleton": tubed_skeleton(y)} if name == "skeleton_recall" else {}
    a = FUNCTIONAL[name](x, y, mask=mask, **kwargs)
    b = FUNCTIONAL[name](x2, y, mask=mask, **kwargs)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(FUNCTIONAL[name](x, y, **kwargs), FUNCTIONAL[name](x2, y, **kwargs))


def test_mask_bce_dice_equals_loss_on_kept_crop():
    x, y = _case((1, 1, 8, 12), seed=10)
    mask = torch.zeros(1, 1, 8, 12, dtype=torch.bool)
    mask[..., :5] = True
    torch.testing.assert_close(bce_dice_loss(x, y, mask=mask), bce_dice_loss(x[..., :5], y[..., :5]))


# ---------------------------------------------------------------- clDice

def _ref_soft_skeleton(x: np.ndarray, iters: int) -> np.ndarray:
    cross = ndimage.generate_binary_structure(x.ndim, 1)
    full = np.ones((3,) * x.ndim, bool)

    def erode(a):
        return ndimage.minimum_filter(a, footprint=cross, mode="constant", cval=np.inf)

    def dilate(a):
        return ndimage.maximum_filter(a, footprint=full, mode="constant", cval=-np.inf)

    skel = np.maximum(x - dilate(erode(x)), 0)
    for _ in range(iters):
        x = erode(x)
        delta = np.maximum(x - dilate(erode(x)), 0)
        skel = skel + np.maximum(delta - skel * delta, 0)
    return skel


@pytest.mark.parametrize("shape", [(11, 17), (6, 7, 9)])
def test_soft_skeleton_matches_scipy_reference(shape):
    rng = np.random.default_rng(11)
    x = ndimage.gaussian_filter(rng.random(shape), 1.0)
    got = soft_skeleton(torch.from_numpy(x)[None, None], iters=3)[0, 0].numpy()
    np.testing.assert_allclose(got, _ref_soft_skeleton(x, 3), atol=1e-12)


def test_cldice_single_channel_sigmoid_is_not_zero():
    # regression: implementations slicing channels [1:] return exactly 0 for one sigmoid channel
    y = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    y[0, 0, 7:9, 2:14] = True
    x = torch.where(y, 3.0, -3.0)
    x[..., 7:9, 8] = -3.0  # a break
    term = soft_cldice(torch.sigmoid(x), y)
    assert float(term) > 0.01
    full = cldice_loss(x, y, alpha=1.0)
    torch.testing.assert_close(full, term.mean())
    assert float(cldice_loss(torch.where(y, 9.0, -9.0), y, alpha=1.0)) < float(full)


def test_cldice_softmax_uses_foreground_channels():
    x, y1 = _case((2, 1, 12, 12), seed=12, dtype=torch.float64)
    x2 = torch.cat([torch.zeros_like(x), x], 1)  # softmax channel 1 == sigmoid(x)
    y2 = torch.cat([~y1, y1], 1)
    torch.testing.assert_close(
        soft_cldice(torch.softmax(x2, 1)[:, 1:], y2[:, 1:]), soft_cldice(torch.sigmoid(x), y1))
    a = cldice_loss(x2, y2, activation="softmax", alpha=1.0)
    torch.testing.assert_close(a, soft_cldice(torch.sigmoid(x), y1).mean())


def test_cldice_precision_sensitivity_asymmetry():
    y = torch.zeros(1, 1, 20, 20)
    y[0, 0, 9:11, 2:18] = 1  # horizontal bar
    y[0, 0, 2:9, 9:11] = 1  # branch going up
    missing = y.clone()
    missing[0, 0, 2:9, 9:11] = 0  # prediction misses the branch
    spurious = y.clone()
    spurious[0, 0, 11:18, 9:11] = 1  # prediction adds a branch going down
    tp, ts = topology_precision_sensitivity(missing, y, iters=5, smooth=0)
    assert float(tp) == pytest.approx(1.0) and float(ts) < 0.9
    tp, ts = topology_precision_sensitivity(spurious, y, iters=5, smooth=0)
    assert float(ts) == pytest.approx(1.0) and float(tp) < 0.9


# ---------------------------------------------------------------- Skeleton Recall

@pytest.mark.parametrize("shape, radius", [((18, 23), 2), ((7, 9, 11), 1), ((18, 23), 0)])
def test_tubed_skeleton_matches_skimage_scipy(shape, radius):
    rng = np.random.default_rng(13)
    y = ndimage.gaussian_filter(rng.random(shape), 1.5) > 0.5
    skel = sk_skeletonize(y, method="zhang") if y.ndim == 2 else sk_skeletonize(y, method="lee").astype(bool)
    ref = ndimage.binary_dilation(skel, ndimage.generate_binary_structure(y.ndim, 1), iterations=radius) \
        if radius else skel
    got = tubed_skeleton(torch.from_numpy(y)[None, None], tube_radius=radius, backend="skimage")
    np.testing.assert_array_equal(got[0, 0].numpy(), ref)


def test_skeleton_recall_term_hand_computed():
    x, y = _case((2, 1, 14, 16), seed=14, dtype=torch.float64)
    tube = tubed_skeleton(y)
    p = torch.sigmoid(x)
    t = tube.double()
    recall = ((p * t).sum((2, 3)) + 1.0) / (t.sum((2, 3)) + 1.0)
    ref = bce_dice_loss(x, y, reduction="none") + 2.0 * (1 - recall[:, 0])
    torch.testing.assert_close(skeleton_recall_loss(x, y, weight=2.0, reduction="none"), ref)
    torch.testing.assert_close(skeleton_recall_loss(x, y, weight=2.0, target_skeleton=tube, reduction="none"), ref)


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("name", sorted(FUNCTIONAL))
def test_bad_inputs_every_loss(name):
    fn = FUNCTIONAL[name]
    x, y = _case((1, 1, 6, 6))
    with pytest.raises(ValueError, match=r"activation must be one of .*got 'relu'"):
        fn(x, y, activation="relu")
    with pytest.raises(ValueError, match=r"reduction must be one of .*got 'sum'"):
        fn(x, y, reduction="sum")
    with pytest.raises(TypeError, match=r"input must be a torch.Tensor .*got ndarray"):
        fn(x.numpy(), y)
    with pytest.raises(TypeError, match="floating-point tensor .*got dtype torch.int64"):
        fn(x.long(), y)
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        fn(x, y.numpy())
    with pytest.raises(ValueError, match=r"target has 1 channel\(s\) but input has 2 .*one-hot"):
        fn(torch.cat([x, x], 1), y, activation="softmax")
    with pytest.raises(ValueError, match=r"same shape, got \(1, 1, 6, 6\) and \(1, 1, 6, 5\)"):
        fn(x, y[..., :5])
    with pytest.raises(ValueError, match=r"softmax' needs at least 2 channels, got input of shape \(1, 1, 6, 6\)"):
        fn(x, y, activation="softmax")
    with pytest.raises(ValueError, match=r"activation=None expects probabilities in \[0, 1\]"):
        fn(x, y, activation=None)
    with pytest.raises(ValueError, match="binary .*found values"):
        fn(x, y.float() * 3)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fn(torch.full_like(x, float("nan")), y)
    with pytest.raises(ValueError, match=r"mask must have shape \(N, 1, \*S\).*got \(1, 1, 5, 6\)"):
        fn(x, y, mask=torch.ones(1, 1, 5, 6))
    with pytest.raises(ValueError, match="mask must be binary"):
        fn(x, y, mask=torch.full((1, 1, 6, 6), 0.5))
    with pytest.raises(TypeError, match="mask must be a torch.Tensor"):
        fn(x, y, mask=np.ones((1, 1, 6, 6)))
    with pytest.warns(UserWarning, match=r"all input values lie in \[0, 1\] although activation='sigmoid'"):
        fn(torch.sigmoid(x), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn(torch.sigmoid(x), y, activation=None)  # probabilities declared: no warning


def test_bad_options():
    x, y = _case((1, 1, 6, 6))
    with pytest.raises(ValueError, match="lam must be a non-negative number, got -1"):
        thpm_loss(x, y, lam=-1)
    with pytest.raises(ValueError, match=r"threshold must be a number in \(0, 1\), got 0"):
        build_loss("phpm", threshold=0)
    with pytest.raises(KeyError, match=r"unknown miner 'x'; valid"):
        hpm_loss(x, y, miner="x")
    with pytest.raises(ValueError, match="target_skeleton is only used by the 'shpm' miner"):
        hpm_loss(x, y, miner="thpm", target_skeleton=y)
    with pytest.raises(ValueError, match=r"target_skeleton and target must have the same shape"):
        shpm_loss(x, y, target_skeleton=y[..., :3])
    with pytest.raises(TypeError, match="unexpected keyword argument 'dimz'"):
        hpm_loss(x, y, miner="phpm", miner_options={"dimz": (0,)})
    with pytest.raises(ValueError, match=r"dims must be a non-empty subset of \(0, 1\)"):
        phpm_loss(x, y, dims=(0, 3))
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        build_loss("cldice", alpha=1.5)
    with pytest.raises(ValueError, match="iters must be a non-negative integer, got 2.5"):
        build_loss("cldice", iters=2.5)
    with pytest.raises(ValueError, match="tube_radius must be a non-negative integer, got -1"):
        build_loss("skeleton_recall", tube_radius=-1)
    with pytest.raises(ValueError, match="weight must be a non-negative number"):
        skeleton_recall_loss(x, y, weight=float("nan"))
    with pytest.raises(ValueError, match=r"activation must be one of .*got 'soft'"):
        build_loss("bce_dice", activation="soft")
    with pytest.raises(ValueError, match=r"target_skeleton and target must have the same shape"):
        skeleton_recall_loss(x, y, target_skeleton=y[..., :3])
    with pytest.raises(TypeError, match="target_skeleton must be a torch.Tensor"):
        cldice_loss(x, y, target_skeleton=np.zeros((1, 1, 6, 6)))


def test_skeleton_recall_softmax_uses_foreground_tubes():
    g = torch.Generator().manual_seed(15)
    x = torch.randn(2, 3, 14, 16, generator=g, dtype=torch.float64)
    y = F.one_hot(torch.randint(0, 3, (2, 14, 16), generator=g), 3).movedim(-1, 1).bool()
    tube = tubed_skeleton(y)
    p = torch.softmax(x, 1)[:, 1:]
    t = tube[:, 1:].double()
    recall = ((p * t).sum((2, 3)) + 1.0) / (t.sum((2, 3)) + 1.0)
    ref = bce_dice_loss(x, y, activation="softmax") + (1 - recall).mean()
    torch.testing.assert_close(skeleton_recall_loss(x, y, activation="softmax"), ref)
    torch.testing.assert_close(skeleton_recall_loss(x, y, activation="softmax", target_skeleton=tube), ref)

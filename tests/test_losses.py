"""Losses: eq. 1 structure, gradients, batch independence, multi-class rule, masks, clDice, Skeleton Recall."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.morphology import skeletonize as sk_skeletonize

import inspect

from toposeg import mining
from toposeg.losses import (
    LOSSES, HPMLoss, HPMTerm, PHPMLoss, SHPMLoss, SkeletonRecallLoss, THPMLoss, bce_dice_loss, build_loss,
    cldice_loss, hard_pixel_mse, hpm_loss, hpm_term, phpm_loss, shpm_loss, skeleton_recall_loss, soft_cldice,
    soft_skeleton, thpm_loss, topology_precision_sensitivity, tubed_skeleton,
)
from toposeg.losses.hpm import shpm_plus_loss
from toposeg.skeleton import skeletonize

HPM = ("thpm", "phpm", "shpm")
FUNCTIONAL = {
    "bce_dice": bce_dice_loss, "cldice": cldice_loss, "thpm": thpm_loss, "phpm": phpm_loss, "shpm": shpm_loss,
    "skeleton_recall": skeleton_recall_loss, "shpm_plus": shpm_plus_loss,
}


def _case(shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(shape, generator=g) > 0.6)
    logits = (torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype)
    logits = torch.where(logits.abs() < 0.3, logits.sign() * 0.3 + (logits == 0) * 0.3, logits)  # away from t=0.5
    return logits, y


# ---------------------------------------------------------------- registry / module == functional

def test_registry_names():
    assert set(LOSSES) == {"bce_dice", "cldice", "thpm", "phpm", "shpm", "shpm_plus", "skeleton_recall"}
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
    zhang = {"method": "zhang", "backend": "skimage"}
    torch.testing.assert_close(shpm_loss(x, y, target_skeleton=skel, **zhang), shpm_loss(x, y, **zhang))
    torch.testing.assert_close(build_loss("shpm", **zhang)(x, y, target_skeleton=skel), shpm_loss(x, y, **zhang))
    thin = skeletonize(y)  # the default rule
    torch.testing.assert_close(build_loss("shpm")(x, y, target_skeleton=thin), shpm_loss(x, y))


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
    full = cldice_loss(x, y)
    torch.testing.assert_close(full, bce_dice_loss(x, y) + term.mean())
    assert float(soft_cldice(torch.sigmoid(torch.where(y, 9.0, -9.0)), y)) < float(term)


def test_cldice_softmax_uses_foreground_channels():
    x, y1 = _case((2, 1, 12, 12), seed=12, dtype=torch.float64)
    x2 = torch.cat([torch.zeros_like(x), x], 1)  # softmax channel 1 == sigmoid(x)
    y2 = torch.cat([~y1, y1], 1)
    torch.testing.assert_close(
        soft_cldice(torch.softmax(x2, 1)[:, 1:], y2[:, 1:]), soft_cldice(torch.sigmoid(x), y1))
    a = cldice_loss(x2, y2, activation="softmax", weight=2.0)
    torch.testing.assert_close(a, bce_dice_loss(x2, y2, activation="softmax") + 2.0 * soft_cldice(torch.sigmoid(x), y1).mean())


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
    rule = "zhang" if y.ndim == 2 else "lee"
    skel = sk_skeletonize(y, method=rule).astype(bool)
    ref = ndimage.binary_dilation(skel, ndimage.generate_binary_structure(y.ndim, 1), iterations=radius) \
        if radius else skel
    ref = ref & y  # the authors multiply the dilated skeleton by the label
    assert skel.any() and ref.sum() > skel.sum() or radius == 0
    got = tubed_skeleton(torch.from_numpy(y)[None, None], tube_radius=radius, method=rule, backend="skimage")
    np.testing.assert_array_equal(got[0, 0].numpy(), ref)


def test_skeleton_recall_term_hand_computed():
    x, y = _case((2, 1, 14, 16), seed=14, dtype=torch.float64)
    tube = tubed_skeleton(y)
    p = torch.sigmoid(x)
    t = tube.double()
    recall = ((p * t).sum((2, 3)) + 1e-5) / (t.sum((2, 3)) + 1e-5)  # the authors' smooth
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
    with pytest.raises(ValueError, match=r"target has shape \(1, 6, 6\), which looks like a class-index map .*"
                                         r"torch\.nn\.functional\.one_hot\(target\.long\(\), 2\)\.movedim\(-1, 1\)"):
        fn(torch.cat([x, x], 1), y[:, 0].long(), activation="softmax")
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
    with pytest.raises(ValueError, match="weight must be a non-negative number, got -1"):
        build_loss("cldice", weight=-1)
    with pytest.raises(TypeError, match="alpha"):  # the (1 - alpha)(BCE + Dice) mix is gone
        build_loss("cldice", alpha=0.5)
    with pytest.raises(ValueError, match="recall_smooth must be a non-negative number, got -1"):
        build_loss("skeleton_recall", recall_smooth=-1)
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
    labels = torch.randint(0, 3, (2, 14, 16), generator=g)
    y = F.one_hot(labels, 3).movedim(-1, 1).bool()
    # reference, the authors' recipe with scikit-image + scipy: skeleton of (labels > 0), two cross
    # dilations, multiplied by the label map -> class c keeps its own pixels of the tube
    cross = ndimage.generate_binary_structure(2, 1)
    t = torch.zeros(2, 2, 14, 16, dtype=torch.float64)
    for i in range(2):
        lab = labels[i].numpy()
        tube_i = ndimage.binary_dilation(sk_skeletonize(lab > 0, method="zhang"), cross, iterations=2) * lab
        for c in (1, 2):
            t[i, c - 1] = torch.from_numpy((tube_i == c).astype(np.float64))
    p = torch.softmax(x, 1)[:, 1:]
    recall = ((p * t).sum((2, 3)) + 1e-5) / (t.sum((2, 3)) + 1e-5)
    ref = bce_dice_loss(x, y, activation="softmax") + (1 - recall).mean()
    zhang = {"method": "zhang", "backend": "skimage"}
    torch.testing.assert_close(skeleton_recall_loss(x, y, activation="softmax", **zhang), ref)
    tube = tubed_skeleton(y, activation="softmax", **zhang)
    assert not tube[:, 0].any() and torch.equal(tube[:, 1:].double(), t)
    torch.testing.assert_close(skeleton_recall_loss(x, y, activation="softmax", target_skeleton=tube), ref)


# ---------------------------------------------------------------- one mining threshold (the paper's 0.6)

def test_every_hpm_entry_point_defaults_to_the_papers_threshold():
    assert mining.DEFAULT_MINING_THRESHOLD == 0.6
    for fn in (hpm_loss, hpm_term, thpm_loss, phpm_loss, shpm_loss, HPMLoss, HPMTerm, THPMLoss, PHPMLoss, SHPMLoss):
        assert inspect.signature(fn).parameters["threshold"].default == 0.6, fn.__name__
    for name in HPM:
        assert build_loss(name).threshold == 0.6


def _gap_line():
    """1-px line predicted at 0.9 with one pixel at 0.55 (missed at t = 0.6, not at t = 0.5)."""
    y = torch.zeros(1, 1, 12, 30, dtype=torch.bool)
    y[0, 0, 5, 3:27] = True
    p = torch.where(y, 0.9, 0.05).double()
    p[0, 0, 5, 14] = 0.55
    return p, y


@pytest.mark.parametrize("name", HPM)
def test_default_threshold_behaviour_on_a_pixel_at_055(name):
    p, y = _gap_line()
    extra = {"dims": (0,)} if name == "phpm" else {}
    base = bce_dice_loss(p, y, activation=None)
    # H = {(5, 14)} at t = 0.6: L_HPM = (0.55 - 1)^2 = 0.2025 (hand), lam = 0.5
    got = build_loss(name, activation=None, **extra)(p, y)
    torch.testing.assert_close(got, base + 0.5 * 0.2025, rtol=0, atol=1e-12)
    got5 = build_loss(name, activation=None, threshold=0.5, **extra)(p, y)
    torch.testing.assert_close(got5, base, rtol=0, atol=0)
    torch.testing.assert_close(hpm_term(p, y, miner=name, activation=None, miner_options=extra or None),
                               torch.tensor(0.2025, dtype=torch.float64), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- the HPM term alone (eq. 2)

@pytest.mark.parametrize("miner", HPM)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_hpm_term_module_equals_functional_and_full_loss_reuses_it(miner, reduction):
    x, y = _case((2, 1, 14, 17), seed=21, dtype=torch.float64)
    term = hpm_term(x, y, miner=miner, reduction=reduction)
    torch.testing.assert_close(HPMTerm(miner=miner, reduction=reduction)(x, y), term)
    full = hpm_loss(x, y, miner=miner, lam=0.7, reduction=reduction)
    torch.testing.assert_close(full, bce_dice_loss(x, y, reduction=reduction) + 0.7 * term)
    # independent: eq. 2 from the miner's hard set
    p = torch.sigmoid(x)
    pos, neg = mining.MINERS[miner](p, y)
    h = (pos | neg).double()
    assert h.sum() > 0
    if reduction == "mean":
        ref = ((p - y.double()) ** 2 * h).sum() / h.sum()
    else:
        ref = ((p - y.double()) ** 2 * h).sum((1, 2, 3)) / h.sum((1, 2, 3)).clamp(min=1)
    torch.testing.assert_close(term, ref)


@pytest.mark.parametrize("miner", HPM)
def test_hpm_term_gradcheck_float64(miner):
    x, y = _case((2, 1, 6, 7), seed=22, dtype=torch.float64)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda inp: hpm_term(inp, y, miner=miner), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 1, 10, 13), (1, 1, 4, 6, 7)])
def test_hpm_term_zero_on_perfect_prediction_nonzero_on_gap(shape):
    _, y = _case(shape, seed=23)
    x = torch.where(y, 4.0, -4.0).requires_grad_(True)
    for miner in HPM:
        t = hpm_term(x, y, miner=miner)
        assert float(t.detach()) == 0.0 and t.requires_grad
        (g,) = torch.autograd.grad(t, x)
        assert not g.any()
    # a gap: a 3-px bar with one missed column; SHPM mines its skeleton pixel there
    y2 = torch.zeros(1, 1, 9, 20, dtype=torch.bool)
    y2[0, 0, 3:6, 2:18] = True
    x2 = torch.where(y2, 4.0, -4.0).double()
    x2[..., 10] = -4.0
    # hard set = the missed skeleton pixel(s) at column 10, all with p = sigmoid(-4), y = 1
    expected = (torch.sigmoid(torch.tensor(-4.0, dtype=torch.float64)) - 1) ** 2
    torch.testing.assert_close(hpm_term(x2, y2), expected)
    torch.testing.assert_close(hpm_term(x2, y2, miner="thpm"), expected)  # 3 missed pixels, same value


def test_hpm_term_with_given_hard_set_and_mask():
    x, y = _case((2, 1, 10, 12), seed=24, dtype=torch.float64)
    p = torch.sigmoid(x)
    hard = torch.zeros_like(y)
    hard[0, 0, 2, 3] = hard[1, 0, 5, 5] = True
    ref = ((p - y.double()) ** 2)[hard].mean()
    torch.testing.assert_close(hpm_term(x, y, hard=hard), ref)
    torch.testing.assert_close(HPMTerm()(x, y, hard=hard), ref)
    mask = torch.ones(2, 1, 10, 12, dtype=torch.bool)
    mask[1, 0, 5, 5] = False  # e.g. an ignore label
    torch.testing.assert_close(hpm_term(x, y, hard=hard, mask=mask), ((p - y.double()) ** 2)[0, 0, 2, 3])
    mined = mining.thpm(p, y)
    torch.testing.assert_close(hpm_term(x, y, hard=mined[0] | mined[1]), hpm_term(x, y, miner="thpm"))
    with pytest.raises(ValueError, match=r"hard must have shape \(2, 1, 10, 12\) to match input, got \(2, 1, 10, 11\)"):
        hpm_term(x, y, hard=hard[..., :11])
    with pytest.raises(TypeError, match="hard must be a bool torch.Tensor .*got ndarray"):
        hpm_term(x, y, hard=hard.numpy())
    with pytest.raises(ValueError, match="hard= replaces mining"):
        hpm_term(x, y, hard=hard, target_skeleton=y)
    with pytest.raises(KeyError, match=r"unknown miner 'x'"):
        HPMTerm(miner="x")


def test_hpm_term_softmax_foreground_and_hard_shapes():
    g = torch.Generator().manual_seed(25)
    x = torch.randn(2, 3, 9, 11, generator=g, dtype=torch.float64)
    y = F.one_hot(torch.randint(0, 3, (2, 9, 11), generator=g), 3).movedim(-1, 1).bool()
    p = torch.softmax(x, 1)
    terms = []
    for c in (1, 2):
        pos, neg = mining.thpm(p[:, c:c + 1], y[:, c:c + 1])
        h = (pos | neg).double()
        terms.append(((p[:, c:c + 1] - y[:, c:c + 1].double()) ** 2 * h).sum() / h.sum().clamp(min=1))
    ref = torch.stack(terms).mean()
    torch.testing.assert_close(hpm_term(x, y, miner="thpm", activation="softmax"), ref)
    pos, neg = mining.thpm(p[:, 1:], y[:, 1:])
    fg_hard = pos | neg  # (N, C - 1, ...) foreground channels
    full_hard = torch.cat([torch.ones_like(fg_hard[:, :1]), fg_hard], 1)  # channel 0 ignored
    torch.testing.assert_close(hpm_term(x, y, hard=fg_hard, activation="softmax"), ref)
    torch.testing.assert_close(hpm_term(x, y, hard=full_hard, activation="softmax"), ref)


# ---------------------------------------------------------------- SHPM skeleton rule

def test_shpm_loss_method_and_backend_parameters():
    for fn in (shpm_loss, SHPMLoss):
        params = inspect.signature(fn).parameters
        assert params["method"].default == "thin" and params["backend"].default == "auto"
    x, y = _case((1, 1, 16, 19), seed=26, dtype=torch.float64)
    p = torch.sigmoid(x)
    for rule in ("thin", "zhang"):
        pos, neg = mining.shpm(p, y, method=rule)
        h = (pos | neg).double()
        ref = bce_dice_loss(x, y) + 0.5 * ((p - y.double()) ** 2 * h).sum() / h.sum()
        torch.testing.assert_close(shpm_loss(x, y, method=rule), ref)
        torch.testing.assert_close(build_loss("shpm", method=rule)(x, y), ref)
    with pytest.raises((KeyError, ValueError), match="nope"):
        shpm_loss(x, y, method="nope")


# ---------------------------------------------------------------- clDice: iterations and weights

def test_cldice_default_iterations_reach_wide_structures():
    # the soft skeleton needs about width/2 iterations: a full-width bar 11 px wide (rows 3..13)
    # has its skeleton on the centre row 8 (hand) with the default 10, none with the authors' 3
    x = torch.zeros(1, 1, 31, 40, dtype=torch.float64)
    x[..., 3:14, :] = 1.0
    expected = torch.zeros_like(x)
    expected[..., 8, :] = 1.0
    torch.testing.assert_close(soft_skeleton(x), expected)
    torch.testing.assert_close(soft_skeleton(x, iters=10), expected)
    assert float(soft_skeleton(x, iters=3).sum()) == 0.0
    nine = torch.zeros(1, 1, 31, 40, dtype=torch.float64)
    nine[..., 3:12, :] = 1.0  # 9 px wide: empty with 3 iterations, centre row 7 with 4 or more
    assert float(soft_skeleton(nine, iters=3).sum()) == 0.0
    assert torch.nonzero(soft_skeleton(nine))[:, 2].unique().tolist() == [7]
    assert inspect.signature(cldice_loss).parameters["iters"].default == 10
    assert build_loss("cldice").iters == 10 and build_loss("cldice").weight == 1.0


@pytest.mark.parametrize("shape", [(2, 1, 16, 19), (1, 1, 6, 9, 10)])
def test_cldice_loss_is_bce_plus_dice_plus_one_minus_cldice_published_formula(shape):
    x, y = _case(shape, seed=27, dtype=torch.float64)
    xn, yn = x.numpy(), y.numpy().astype(np.float64)
    p = 1 / (1 + np.exp(-xn))
    ax = tuple(range(2, xn.ndim))
    bce = (np.maximum(xn, 0) - xn * yn + np.log1p(np.exp(-np.abs(xn)))).reshape(len(xn), -1).mean(1)
    dice = 1 - (2 * (p * yn).sum(ax) + 1) / (p.sum(ax) + yn.sum(ax) + 1)
    # Shit et al.: Tprec = (|S_P . Y| + 1)/(|S_P| + 1), Tsens = (|S_Y . P| + 1)/(|S_Y| + 1),
    # clDice = 2 Tprec Tsens / (Tprec + Tsens); soft skeleton with 10 iterations (scipy reference)
    cl = np.zeros(len(xn))
    for i in range(len(xn)):
        sp, sy = _ref_soft_skeleton(p[i, 0], 10), _ref_soft_skeleton(yn[i, 0], 10)
        tprec = ((sp * yn[i, 0]).sum() + 1) / (sp.sum() + 1)
        tsens = ((sy * p[i, 0]).sum() + 1) / (sy.sum() + 1)
        cl[i] = 2 * tprec * tsens / (tprec + tsens)
    ref = bce + dice[:, 0] + 1.0 * (1 - cl)
    torch.testing.assert_close(cldice_loss(x, y, reduction="none"), torch.from_numpy(ref))
    torch.testing.assert_close(build_loss("cldice")(x, y), torch.from_numpy(ref).mean())
    ref3 = bce + dice[:, 0] + 3.0 * (1 - cl)
    torch.testing.assert_close(cldice_loss(x, y, weight=3.0, reduction="none"), torch.from_numpy(ref3))


# ---------------------------------------------------------------- Skeleton Recall: tube inside the class

def test_skeleton_recall_perfect_one_px_vessel_term_is_zero():
    # regression: the tube (skeleton dilated by 2) was not intersected with the label, so a
    # perfect prediction of a 1-px vessel had a recall term of about 0.8. Tube = the 24 vessel pixels.
    y = torch.zeros(1, 1, 15, 30, dtype=torch.bool)
    y[0, 0, 7, 3:27] = True
    tube = tubed_skeleton(y)
    assert torch.equal(tube, y)
    x = torch.where(y, 10.0, -10.0).double()
    s = torch.sigmoid(torch.tensor(10.0, dtype=torch.float64))
    expected_term = 1 - (24 * s + 1e-5) / (24 + 1e-5)  # hand: every tube pixel predicted at sigmoid(10)
    got = skeleton_recall_loss(x, y) - bce_dice_loss(x, y)
    torch.testing.assert_close(got, expected_term, rtol=0, atol=1e-12)
    assert float(got) < 1e-4


def test_skeleton_recall_touching_classes_do_not_leak():
    # class 1: a horizontal 1-px line, class 2: a vertical 1-px line touching it from below (a T).
    # Union skeleton = the T itself; the tube of each class is exactly its own pixels (hand).
    labels = torch.zeros(1, 16, 21, dtype=torch.long)
    labels[0, 4, 2:19] = 1
    labels[0, 5:14, 10] = 2
    y = F.one_hot(labels, 3).movedim(-1, 1).bool()
    for per_class in (False, True):
        tube = tubed_skeleton(y, activation="softmax", per_class=per_class)
        assert not tube[:, 0].any()
        assert torch.equal(tube[:, 1:], y[:, 1:]), per_class
    # two thick touching bands: the union's tube is split by the label map, no pixel crosses over
    labels = torch.zeros(1, 20, 30, dtype=torch.long)
    labels[0, 4:9, 2:28] = 1
    labels[0, 9:14, 2:28] = 2
    y = F.one_hot(labels, 3).movedim(-1, 1).bool()
    for per_class in (False, True):
        tube = tubed_skeleton(y, activation="softmax", per_class=per_class)
        for c in (1, 2):
            assert tube[:, c].any() and not (tube[:, c] & ~y[:, c]).any()


def test_skeleton_recall_3d_perfect_class_no_voxel_outside():
    y = torch.zeros(1, 1, 12, 14, 30, dtype=torch.bool)
    y[0, 0, 6, 7, 3:27] = True  # a 1-voxel line: its own skeleton, so tube = the line (hand)
    assert torch.equal(tubed_skeleton(y), y)
    y = torch.zeros(1, 1, 12, 14, 30, dtype=torch.bool)
    y[0, 0, 4:8, 5:9, 3:27] = True  # a 4x4 bar (even cross-section)
    tube = tubed_skeleton(y)
    assert tube.any() and int((tube & ~y).sum()) == 0
    x = torch.where(y, 10.0, -10.0).double()
    assert float(skeleton_recall_loss(x, y) - bce_dice_loss(x, y)) < 1e-4


def test_skeleton_recall_parameters():
    for fn in (skeleton_recall_loss, SkeletonRecallLoss, tubed_skeleton):
        params = inspect.signature(fn).parameters
        assert params["method"].default == "thin" and params["backend"].default == "auto"
        assert params["tube_radius"].default == 2
    assert inspect.signature(skeleton_recall_loss).parameters["recall_smooth"].default == 1e-5
    assert inspect.signature(skeleton_recall_loss).parameters["weight"].default == 1.0


def test_build_loss_unknown_parameter_lists_the_valid_ones():
    from toposeg.losses import build_loss

    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['lamda'\] for loss 'shpm'; valid: \[.*'lam'.*'threshold'"):
        build_loss("shpm", lamda=0.5)

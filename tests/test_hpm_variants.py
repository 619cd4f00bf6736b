"""SHPM candidate options (hard_loss, normalize, pos_filter, neg_filter), shpm_plus, and HPM telemetry.

Expected values come from formulas written out here (math.log, hand sums), scikit-image's
labelling / Euler number, or hand counts -- never from the code under test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from skimage.measure import euler_number, label

from toposeg import mining
from toposeg.losses import HPMLoss, HPMTerm, SHPMLoss, bce_dice_loss, build_loss, hpm_loss, hpm_term, shpm_loss
from toposeg.losses.hpm import (
    SHPM_PLUS_DEFAULTS, SHPMPlusLoss, gradient_share, hard_pixel_term, hpm_stats, shpm_plus_loss,
)
from toposeg.mining import gap_filter, spurious_whole

OPTIONS = [(h, n) for h in ("mse", "bce") for n in ("batch", "sample", "pos_neg")]


def _case(shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(shape, generator=g) > 0.6
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 2
    x = torch.where(x.abs() < 0.3, torch.full_like(x, 0.3) * torch.where(x < 0, -1.0, 1.0), x)  # away from t
    return x.to(dtype), y


# ---------------------------------------------------------------- hand values of hard_loss x normalize

# two samples of 1 x 3 pixels, activation=None, a given hard set
P = torch.tensor([[[[0.2, 0.9, 0.7]]], [[[0.4, 0.3, 0.8]]]], dtype=torch.float64)
Y = torch.tensor([[[[1, 1, 0]]], [[[1, 0, 0]]]], dtype=torch.bool)
H = torch.tensor([[[[1, 0, 1]]], [[[1, 1, 1]]]], dtype=torch.bool)
# per-pixel losses on H, written out: (sample, pixel) -> value
MSE = {(0, 0): 0.8 ** 2, (0, 2): 0.7 ** 2, (1, 0): 0.6 ** 2, (1, 1): 0.3 ** 2, (1, 2): 0.8 ** 2}
BCE = {(0, 0): -math.log(0.2), (0, 2): -math.log(0.3), (1, 0): -math.log(0.4), (1, 1): -math.log(0.7),
       (1, 2): -math.log(0.2)}
POS = {(0, 0), (1, 0)}  # hard pixels with y = 1


def _hand(l, normalize, reduction):
    def mean(keys):
        return sum(l[k] for k in keys) / len(keys) if keys else 0.0
    per_sample = [[k for k in l if k[0] == i] for i in (0, 1)]
    if normalize == "batch":
        return mean(list(l)) if reduction == "mean" else [mean(s) for s in per_sample]
    if normalize == "sample":
        vals = [mean(s) for s in per_sample]
        return sum(vals) / 2 if reduction == "mean" else vals
    # pos_neg: each set averaged over its own size, then summed
    if reduction == "mean":
        return mean([k for k in l if k in POS]) + mean([k for k in l if k not in POS])
    return [mean([k for k in s if k in POS]) + mean([k for k in s if k not in POS]) for s in per_sample]


@pytest.mark.parametrize("hard_loss,normalize", OPTIONS)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_hard_term_hand_values(hard_loss, normalize, reduction):
    l = MSE if hard_loss == "mse" else BCE
    expected = torch.tensor(_hand(l, normalize, reduction), dtype=torch.float64)
    got = hpm_term(P, Y, hard=H, activation=None, reduction=reduction, hard_loss=hard_loss, normalize=normalize)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # the same from logits (sigmoid): BCE from the logits, MSE from sigmoid
    x = torch.logit(P)
    got_logits = hpm_term(x, Y, hard=H, reduction=reduction, hard_loss=hard_loss, normalize=normalize)
    torch.testing.assert_close(got_logits, expected, rtol=0, atol=1e-12)


def test_hand_numbers_spelled_out():
    # guards the dictionary above: the paper's eq. 2 over the batch = 2.22 / 5
    assert _hand(MSE, "batch", "mean") == pytest.approx(2.22 / 5)
    assert _hand(MSE, "sample", "mean") == pytest.approx(((0.64 + 0.49) / 2 + (0.36 + 0.09 + 0.64) / 3) / 2)
    assert _hand(MSE, "pos_neg", "mean") == pytest.approx((0.64 + 0.36) / 2 + (0.49 + 0.09 + 0.64) / 3)


def test_pos_neg_equals_batch_when_one_set_is_empty():
    h = H & Y  # only missed pixels
    for red in ("mean", "none"):
        torch.testing.assert_close(hpm_term(P, Y, hard=h, activation=None, normalize="pos_neg", reduction=red),
                                   hpm_term(P, Y, hard=h, activation=None, normalize="batch", reduction=red))


def test_bce_has_no_vanishing_gradient_on_confidently_wrong_pixels():
    # one missed pixel predicted at logit -8 (p = 3.4e-4): d/dx of (p - 1)^2 = 2 (p - 1) p (1 - p) ~ -6.7e-4,
    # d/dx of -log p = p - 1 ~ -1
    y = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    y[0, 0, 1, 1] = True
    x = torch.full((1, 1, 3, 3), -8.0, dtype=torch.float64, requires_grad=True)
    h = y.clone()
    p = torch.sigmoid(torch.tensor(-8.0, dtype=torch.float64))
    (g_mse,) = torch.autograd.grad(hpm_term(x, y, hard=h, hard_loss="mse"), x)
    (g_bce,) = torch.autograd.grad(hpm_term(x, y, hard=h, hard_loss="bce"), x)
    torch.testing.assert_close(g_mse[0, 0, 1, 1], 2 * (p - 1) * p * (1 - p))
    torch.testing.assert_close(g_bce[0, 0, 1, 1], p - 1)
    assert float(g_bce[0, 0, 1, 1]) < -0.999 and abs(float(g_mse[0, 0, 1, 1])) < 1e-3
    assert int((g_bce != 0).sum()) == 1  # the gradient flows at the hard pixel only


@pytest.mark.parametrize("hard_loss,normalize", OPTIONS)
def test_full_loss_is_base_plus_lam_term(hard_loss, normalize):
    x, y = _case((2, 1, 14, 17), seed=1)
    for red in ("mean", "none"):
        term = hpm_term(x, y, reduction=red, hard_loss=hard_loss, normalize=normalize)
        full = shpm_loss(x, y, lam=0.7, reduction=red, hard_loss=hard_loss, normalize=normalize)
        torch.testing.assert_close(full, bce_dice_loss(x, y, reduction=red) + 0.7 * term)
    # "sample" with "mean" is the mean of the per-sample values
    if normalize == "sample":
        torch.testing.assert_close(hpm_term(x, y, hard_loss=hard_loss, normalize="sample"),
                                   hpm_term(x, y, hard_loss=hard_loss, reduction="none").mean())


def test_default_shpm_is_unchanged_eq2():
    x, y = _case((2, 1, 16, 21), seed=3)
    p = torch.sigmoid(x)
    pos, neg = mining.shpm(p, y)
    h = (pos | neg).double()
    ref = ((p - y.double()) ** 2 * h).sum() / h.sum()
    loss = build_loss("shpm")
    assert (loss.hard_loss, loss.normalize, loss.pos_filter, loss.neg_filter, loss.threshold) == \
        ("mse", "batch", "none", "none", 0.6)
    torch.testing.assert_close(loss(x, y), bce_dice_loss(x, y) + 0.5 * ref)


# ---------------------------------------------------------------- gradcheck / zero / module == functional

@pytest.mark.parametrize("hard_loss,normalize", OPTIONS)
def test_gradcheck_float64_options(hard_loss, normalize):
    x, y = _case((2, 1, 6, 7), seed=2)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda inp: shpm_loss(inp, y, hard_loss=hard_loss, normalize=normalize, reduction="none"), (x,),
        eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("pos_filter,neg_filter", [("gap", "none"), ("none", "spurious_whole"), ("gap", "spurious_whole")])
def test_gradcheck_float64_filters_and_plus(pos_filter, neg_filter):
    x, y = _case((2, 1, 7, 8), seed=4)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda inp: shpm_loss(inp, y, pos_filter=pos_filter, neg_filter=neg_filter),
                                    (x,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradcheck(lambda inp: shpm_plus_loss(inp, y), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 1, 10, 13), (1, 1, 4, 6, 7)])
def test_zero_on_perfect_prediction_every_option(shape):
    _, y = _case(shape, seed=5)
    x = torch.where(y, 4.0, -4.0).double().requires_grad_(True)
    for (hl, nm), pf, nf in itertools.product(OPTIONS, ("none", "gap"), ("none", "spurious_whole")):
        loss = shpm_loss(x, y, hard_loss=hl, normalize=nm, pos_filter=pf, neg_filter=nf)
        base = bce_dice_loss(x, y)
        assert float((loss - base).detach()) == 0.0 and loss.requires_grad
    assert float((shpm_plus_loss(x, y) - bce_dice_loss(x, y)).detach()) == 0.0


def test_module_equals_functional_every_option():
    x, y = _case((2, 1, 14, 17), seed=6)
    for (hl, nm), pf, nf in itertools.product(OPTIONS, ("none", "gap"), ("none", "spurious_whole")):
        kw = dict(hard_loss=hl, normalize=nm, pos_filter=pf, neg_filter=nf, reduction="none")
        torch.testing.assert_close(SHPMLoss(**kw)(x, y), shpm_loss(x, y, **kw))
        torch.testing.assert_close(build_loss("shpm", **kw)(x, y), shpm_loss(x, y, **kw))
    for hl, nm in OPTIONS:
        torch.testing.assert_close(HPMTerm(hard_loss=hl, normalize=nm)(x, y), hpm_term(x, y, hard_loss=hl, normalize=nm))
        torch.testing.assert_close(HPMLoss(miner="thpm", hard_loss=hl, normalize=nm)(x, y),
                                   hpm_loss(x, y, miner="thpm", hard_loss=hl, normalize=nm))
    torch.testing.assert_close(build_loss("shpm_plus")(x, y), shpm_plus_loss(x, y))
    torch.testing.assert_close(SHPMPlusLoss()(x, y), shpm_loss(x, y, **SHPM_PLUS_DEFAULTS))
    torch.testing.assert_close(shpm_plus_loss(x, y, reduction="none"),
                               shpm_loss(x, y, reduction="none", **SHPM_PLUS_DEFAULTS))


def test_bad_option_values_list_the_valid_ones():
    x, y = _case((1, 1, 6, 6), seed=7)
    cases = [
        ("hard_loss", "l1", r"hard_loss must be one of \['mse', 'bce'\], got 'l1'"),
        ("normalize", "pixel", r"normalize must be one of \['batch', 'sample', 'pos_neg'\], got 'pixel'"),
        ("pos_filter", "gaps", r"pos_filter must be one of \['none', 'gap'\], got 'gaps'"),
        ("neg_filter", None, r"neg_filter must be one of \['none', 'spurious_whole'\], got None"),
    ]
    for key, value, msg in cases:
        for make in (lambda: shpm_loss(x, y, **{key: value}), lambda: SHPMLoss(**{key: value}),
                     lambda: build_loss("shpm", **{key: value}), lambda: build_loss("shpm_plus", **{key: value})):
            with pytest.raises(ValueError, match=msg):
                make()
    for key, value, msg in cases[:2]:
        for make in (lambda: hpm_term(x, y, **{key: value}), lambda: hpm_loss(x, y, **{key: value}),
                     lambda: HPMTerm(**{key: value}), lambda: HPMLoss(**{key: value}),
                     lambda: hpm_stats(x, y, **{key: value}),
                     lambda: hard_pixel_term(torch.sigmoid(x), y, y, "mean", **{key: value})):
            with pytest.raises(ValueError, match=msg):
                make()
    with pytest.raises(ValueError, match=r"pos_filter must be one of \['none', 'gap'\], got 1"):
        mining.shpm(torch.sigmoid(x), y, pos_filter=1)


# ---------------------------------------------------------------- pos_filter="gap": hand cases

def _line(h=11, w=20, row=5, c0=2, c1=18):
    m = np.zeros((h, w), bool)
    m[row, c0:c1] = True
    return m


def _gap(pos: np.ndarray, pred: np.ndarray) -> np.ndarray:
    t = lambda a: torch.from_numpy(a)[None, None]
    return gap_filter(t(pos), t(pred))[0, 0].numpy()


def test_gap_filter_keeps_a_one_pixel_break():
    y = _line()
    pred = y.copy()
    pred[5, 10] = False
    pos = y & ~pred
    assert _gap(pos, pred).sum() == 1  # k_fg = 2 (the two halves): kept


def test_gap_filter_keeps_a_five_pixel_break():
    y = _line()
    pred = y.copy()
    pred[5, 8:13] = False
    pos = y & ~pred
    np.testing.assert_array_equal(_gap(pos, pred), pos)  # one run of 5, k_fg = 2


def test_gap_filter_keeps_a_wholly_missed_structure():
    y = _line()
    pred = np.zeros_like(y)
    np.testing.assert_array_equal(_gap(y, pred), y)  # k_fg = 0


def test_gap_filter_drops_a_shifted_prediction():
    # GT skeleton along row 5, the prediction is a connected bar on rows 6-8 next to it
    y = _line()
    pred = np.zeros_like(y)
    pred[6:9, 1:19] = True
    pos = y & ~pred
    assert pos.sum() == 16
    assert _gap(pos, pred).sum() == 0  # k_fg = 1, k_bg = 1: already connected across


def test_gap_filter_drops_a_missed_tip():
    y = _line()
    pred = y.copy()
    pred[5, 16:18] = False  # the last two pixels of an open end
    assert _gap(y & ~pred, pred).sum() == 0


def test_gap_filter_keeps_a_pinhole_on_the_skeleton():
    pred = np.zeros((11, 20), bool)
    pred[4:7, 2:18] = True
    pred[5, 10] = False  # a hole of the prediction on the GT skeleton
    pos = np.zeros_like(pred)
    pos[5, 10] = True
    assert _gap(pos, pred).sum() == 1  # k_fg = 1 but k_bg = 0: filling closes a hole


def test_gap_filter_keeps_the_break_of_a_ring():
    # a 1-px square ring, broken at one pixel: the two ends belong to the same component globally,
    # but not locally: filling the pixel closes the loop
    pred = np.zeros((12, 12), bool)
    pred[2, 2:10] = pred[9, 2:10] = pred[2:10, 2] = pred[2:10, 9] = True
    pred[2, 5] = False
    pos = np.zeros_like(pred)
    pos[2, 5] = True
    assert label(pred, connectivity=2).max() == 1  # one component globally (skimage)
    assert _gap(pos, pred).sum() == 1


def test_gap_filter_3d_break_kept_shift_dropped():
    y = np.zeros((7, 7, 16), bool)
    y[3, 3, 2:14] = True
    pred = y.copy()
    pred[3, 3, 7] = False
    assert _gap(y & ~pred, pred).sum() == 1
    pred2 = np.zeros_like(y)
    pred2[3, 4:6, 1:15] = True  # the neighbouring rows, one connected slab
    assert _gap(y & ~pred2, pred2).sum() == 0


def test_gap_filter_single_pixel_is_the_simple_point_test_all_256_configurations():
    """Independent reference: q is non-simple iff adding it changes β0 or χ (skimage, 8/4)."""
    for bits in range(256):
        nb = [(bits >> k) & 1 for k in range(8)]
        win = np.zeros((3, 3), bool)
        win[[0, 0, 0, 1, 1, 2, 2, 2], [0, 1, 2, 0, 2, 0, 1, 2]] = nb
        pred = np.pad(win, 2)
        q = pred.copy()
        q[3, 3] = True
        pos = np.zeros_like(pred)
        pos[3, 3] = True
        changes = (label(pred, connectivity=2).max() != label(q, connectivity=2).max()
                   or euler_number(pred, connectivity=2) != euler_number(q, connectivity=2))
        assert bool(_gap(pos, pred).any()) == changes, win.astype(int)


def test_shpm_miner_with_gap_filter_end_to_end():
    y = torch.zeros(1, 1, 11, 20, dtype=torch.bool)
    y[0, 0, 4:7, 2:18] = True  # a 3-px bar; its skeleton is row 5, columns 2..17
    p = torch.where(y, 0.9, 0.05).double()
    p[0, 0, :, 10] = 0.1         # a real break at column 10: kept
    p[0, 0, 5, 14] = 0.3         # a pinhole on the skeleton at (5, 14): kept
    p[0, 0, 4:7, 2] = 0.05       # the predicted bar starts at column 3 ...
    p[0, 0, 5, 3] = 0.3          # ... and misses (5, 3): (5, 2..3) is a missed tip: dropped
    pos, _ = mining.shpm(p, y)
    pos_g, _ = mining.shpm(p, y, pos_filter="gap")
    got = {tuple(i) for i in pos[0, 0].nonzero().tolist()}
    got_g = {tuple(i) for i in pos_g[0, 0].nonzero().tolist()}
    assert {(5, 10), (5, 14)} <= got and (5, 2) in got
    assert got_g == {(5, 10), (5, 14)}


# ---------------------------------------------------------------- neg_filter="spurious_whole"

def test_spurious_whole_adds_whole_spurious_blobs_only():
    y = torch.zeros(1, 1, 16, 24, dtype=torch.bool)
    y[0, 0, 3, 2:22] = True
    p = torch.where(y, 0.9, 0.05).double()
    p[0, 0, 9:12, 4:9] = 0.8        # a 3 x 5 blob touching no GT: spurious
    p[0, 0, 4:6, 12:16] = 0.8       # a thickening attached to the GT line: not spurious
    _, neg = mining.shpm(p, y)
    _, neg_w = mining.shpm(p, y, neg_filter="spurious_whole")
    blob = torch.zeros_like(y)
    blob[0, 0, 9:12, 4:9] = True
    assert int(blob.sum()) == 15
    assert torch.equal(neg_w, neg | blob)
    assert int((neg & blob).sum()) < 15  # without the filter only the blob's skeleton is mined
    direct = spurious_whole(p > 0.6, y)
    assert torch.equal(direct, blob)


# ---------------------------------------------------------------- telemetry

def test_hpm_stats_hand_case():
    y = torch.zeros(1, 1, 12, 30, dtype=torch.bool)
    y[0, 0, 5, 3:27] = True
    p = torch.where(y, 0.9, 0.05).double()
    p[0, 0, 5, 14] = 0.55   # missed at t = 0.6
    p[0, 0, 10, 25] = 0.8   # a spurious speck
    s = hpm_stats(p, y, activation=None)
    assert s["hard_pos"] == 1 and s["hard_neg"] == 1 and s["hard"] == 2
    assert s["hard_fraction"] == pytest.approx(2 / 360)
    assert s["hpm_term"] == pytest.approx(((0.55 - 1) ** 2 + 0.8 ** 2) / 2)
    s2 = hpm_stats(p, y, activation=None, normalize="pos_neg", hard_loss="bce")
    assert s2["hpm_term"] == pytest.approx(-math.log(0.55) - math.log(0.2))
    with torch.enable_grad():
        x = torch.logit(p).requires_grad_(True)
        assert hpm_stats(x, y)["hard"] == 2  # no graph is built, no error


def _tiny():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1))
    model.double()
    g = torch.Generator().manual_seed(1)
    img = torch.rand(2, 1, 12, 14, generator=g, dtype=torch.float64)
    y = torch.rand(2, 1, 12, 14, generator=g) > 0.6
    return model, img, y


def test_gradient_share_hand_check_and_scaling():
    model, img, y = _tiny()
    out = model(img)
    base = bce_dice_loss(out, y)
    term = hpm_term(out, y, miner="thpm")
    share = gradient_share(model, base, term)
    assert share > 0
    assert gradient_share(model, base, 2 * term) == pytest.approx(2 * share, rel=1e-12)
    assert gradient_share(model, 3 * base, term) == pytest.approx(share / 3, rel=1e-12)
    assert all(p.grad is None for p in model.parameters())  # .grad untouched
    # independent: norms from backward() on fresh graphs
    def norm_of(make):
        model.zero_grad()
        make(model(img)).backward()
        return math.sqrt(sum(float(p.grad.square().sum()) for p in model.parameters()))
    ref = norm_of(lambda o: hpm_term(o, y, miner="thpm")) / norm_of(lambda o: bce_dice_loss(o, y))
    assert share == pytest.approx(ref, rel=1e-10)
    # the graph is retained: the full loss can still be back-propagated
    (base + 0.5 * term).backward()


def test_gradient_share_empty_hard_set_and_bad_inputs():
    model, img, y = _tiny()
    out = model(img)
    perfect = torch.zeros_like(out, dtype=torch.bool)
    term = hpm_term(out.detach() * 0 - 4 + out * 0, perfect, miner="thpm")  # H empty: term 0, attached
    assert gradient_share(model, bce_dice_loss(out, y), term) == 0.0
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got"):
        gradient_share(lambda x: x, out.sum(), out.sum())
    with pytest.raises(TypeError, match="hpm_term_value must be a scalar torch.Tensor, got float"):
        gradient_share(model, out.sum(), 0.5)
    with pytest.raises(ValueError, match=r"base_loss_value must be a scalar tensor, got shape \(2,\)"):
        gradient_share(model, out.sum((1, 2, 3)), out.sum())
    frozen = torch.nn.Conv2d(1, 1, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="has no trainable parameters"):
        gradient_share(frozen, out.sum(), out.sum())


def test_gap_filter_2d_table_path_equals_the_per_run_rule():
    """The 2D single-pixel lookup table and the per-run rule agree on random masks."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        pred = rng.random((20, 23)) < 0.5
        missed = (rng.random((20, 23)) < 0.3) & ~pred
        got = _gap(missed, pred)
        runs = label(np.pad(missed, 1), connectivity=2)
        pp = np.pad(pred, 1)
        ref = np.zeros_like(pp)
        for k in range(1, runs.max() + 1):
            r = runs == k
            if mining._run_is_gap(r, pp, 8, 4):
                ref |= r
        np.testing.assert_array_equal(got, ref[1:-1, 1:-1])


def test_bce_with_softmax_uses_the_foreground_probability():
    # two channels, softmax: p1 = e^x1 / (e^x0 + e^x1); hard set on channel 1 only
    x = torch.tensor([[[[0.0, 2.0]], [[1.0, -1.0]]]], dtype=torch.float64)  # (1, 2, 1, 2)
    y = torch.tensor([[[[0, 1]], [[1, 0]]]], dtype=torch.bool)
    hard = torch.tensor([[[[1, 1]]]], dtype=torch.bool)  # foreground channel only
    p1 = [math.exp(1) / (1 + math.exp(1)), math.exp(-1) / (math.exp(2) + math.exp(-1))]
    expected = (-math.log(p1[0]) - math.log(1 - p1[1])) / 2
    got = hpm_term(x, y, hard=hard, activation="softmax", hard_loss="bce")
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-12)

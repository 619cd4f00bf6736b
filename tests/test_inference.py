"""Sliding-window inference: exactness, seams, flips, batching, errors."""

import numpy as np
import pytest
import torch
from torch import nn

from toposeg.inference import importance_map, sliding_window_predict, window_starts
from toposeg.models import UNet


class Identity(nn.Module):
    def forward(self, x):
        return x.clone()


def conv_model(nd: int, seed: int = 0, kernel: int = 3) -> nn.Module:
    """Translation-equivariant model (two zero-padded convs, receptive radius 2·(k//2))."""
    torch.manual_seed(seed)
    conv = {2: nn.Conv2d, 3: nn.Conv3d}[nd]
    m = nn.Sequential(conv(1, 3, kernel, padding=kernel // 2), nn.Tanh(), conv(3, 1, kernel, padding=kernel // 2))
    return m.eval()


@pytest.mark.parametrize(
    "shape,window,overlap",
    [
        ((1, 37, 50), 16, 0.25),
        ((2, 3, 41, 29), (16, 8), 0.5),
        ((1, 5, 7), 16, 0.25),  # smaller than the window
        ((1, 64, 32), 32, 0.0),  # exact multiple, no overlap
        ((1, 9, 20, 13), (4, 8, 8), 0.5),  # 3D
        ((2, 1, 7, 5, 30), (16, 16, 16), 0.25),  # 3D, smaller in two axes
    ],
)
def test_identity_model_reproduces_input(shape, window, overlap):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    y = sliding_window_predict(Identity(), x, window=window, overlap=overlap, batch_size=3, activation=None)
    assert y.shape == x.shape and y.dtype == torch.float32
    torch.testing.assert_close(y, x, rtol=1e-6, atol=1e-6)
    y += 1  # an ordinary tensor (not an inference-mode tensor): users may modify it


def test_identity_numpy_in_numpy_out_with_flips():
    x = np.random.default_rng(1).random((2, 33, 21)).astype(np.float64)
    y = sliding_window_predict(Identity(), x, window=(8, 8), flips=True, activation=None)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("nd,shape,window", [(2, (1, 1, 90, 77), (32, 32)), (3, (1, 1, 30, 40, 37), (20, 24, 24))])
def test_no_seams_against_whole_image_prediction(nd, shape, window):
    model = conv_model(nd)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = model(x)  # zero padding only at the image border, like the clipped windows
    scale = float(whole.abs().max())
    blended = sliding_window_predict(model, x, window=window, overlap=0.5, activation=None)
    err = float((blended - whole).abs().max()) / scale
    # windows whose border is within the receptive field of a pixel get Gaussian weight <= ~2e-3
    assert err < 5e-3
    # the test can see seams: plain tiling makes large errors at tile borders
    tiled = sliding_window_predict(model, x, window=window, overlap=0.0, blend="constant", activation=None)
    assert float((tiled - whole).abs().max()) / scale > 20 * err


def test_pointwise_model_is_exact_with_any_blend():
    torch.manual_seed(0)
    model = nn.Conv2d(2, 3, 1).eval()  # receptive field of one pixel: every window agrees
    x = torch.rand(1, 2, 50, 45)
    for blend in ("gaussian", "constant"):
        y = sliding_window_predict(model, x, window=16, overlap=0.3, blend=blend)
        torch.testing.assert_close(y, torch.sigmoid(model(x)).detach(), rtol=1e-5, atol=1e-6)


def test_flip_tta_matches_reference_average():
    torch.manual_seed(3)
    model = nn.Conv2d(1, 1, (3, 5), padding=(1, 2)).eval()  # not flip-equivariant
    x = torch.rand(1, 1, 20, 24)
    ref = []
    with torch.no_grad():
        for dims in [(), (2,), (3,), (2, 3)]:
            xi = torch.flip(x, dims) if dims else x
            yi = torch.sigmoid(model(xi))
            ref.append(torch.flip(yi, dims) if dims else yi)
    ref = torch.stack(ref).mean(0)
    y = sliding_window_predict(model, x, window=64, flips=True)  # one window = whole image
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-6)
    y1 = sliding_window_predict(model, x, window=64, flips=[(1,)])
    with torch.no_grad():
        ref1 = (torch.sigmoid(model(x)) + torch.flip(torch.sigmoid(model(torch.flip(x, (3,)))), (3,))) / 2
    torch.testing.assert_close(y1, ref1, rtol=1e-5, atol=1e-6)


def test_batch_size_does_not_change_result_and_softmax():
    model = nn.Conv2d(1, 3, 3, padding=1).eval()
    x = torch.rand(2, 1, 40, 33)
    a = sliding_window_predict(model, x, window=16, batch_size=1, activation="softmax")
    b = sliding_window_predict(model, x, window=16, batch_size=7, activation="softmax")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a.sum(1), torch.ones(2, 40, 33), rtol=1e-5, atol=1e-5)


def test_unet_any_size_and_mode_unchanged():
    model = UNet(spatial_dims=2, features=(4, 8, 16)).eval()
    y = sliding_window_predict(model, torch.rand(1, 70, 45), window=32, overlap=0.25, batch_size=2)
    assert y.shape == (1, 70, 45) and float(y.min()) >= 0 and float(y.max()) <= 1
    assert not model.training


def test_int_window_follows_the_model_dims():
    model = conv_model(3)
    x = torch.rand(1, 12, 20, 18)  # (C, D, H, W) for a 3D model, not a 2D batch
    y = sliding_window_predict(model, x, window=32, activation=None)  # one window: exact
    with torch.no_grad():
        torch.testing.assert_close(y, model(x[None])[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"window \(8, 8\) is 2D but the model's convolutions are 3D"):
        sliding_window_predict(model, x, window=(8, 8))


def test_window_starts_and_importance_map():
    assert window_starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert window_starts(10, 4, 0.25) == [0, 3, 6]
    assert window_starts(10, 4, 0.0) == [0, 3, 6]  # evenly spread, last flush with the end
    assert window_starts(37, 24, 0.5) == [0, 6, 13]
    assert window_starts(8, 4, 0.0) == [0, 4]
    assert window_starts(3, 5, 0.25) == [0]
    w = importance_map((9, 8))
    assert w.shape == (9, 8) and float(w.max()) == pytest.approx(1.0, abs=0.02) and float(w.min()) >= 1e-6
    torch.testing.assert_close(w, w.flip(0).flip(1))
    assert torch.equal(importance_map((3, 4), "constant"), torch.ones(3, 4))


# ---------------------------------------------------------------- parity with MONAI
#
# toposeg keeps its own sliding window (MONAI >= 1.6 needs torch >= 2.8, toposeg supports
# torch >= 2.1) and checks it against monai.inferers.sliding_window_inference where the two are
# defined alike: image sizes where both place the windows at the same starts (MONAI: fixed
# stride int(window * (1 - overlap)), last window flush with the end; toposeg: windows spread
# evenly, which coincides when the stride divides size - window), the activation applied to each
# window before blending (toposeg's default sigmoid), and the same weights.

PARITY = [
    (2, (2, 1, 80, 52), (32, 16), 0.25),  # starts 0/24/48 and 0/12/24/36
    (3, (1, 1, 20, 28, 40), (8, 16, 16), 0.25),
]


def _monai(model, x, window, overlap, **kw):
    monai_inferers = pytest.importorskip("monai.inferers")
    with torch.no_grad():
        return monai_inferers.sliding_window_inference(x, window, 3, lambda w: torch.sigmoid(model(w)),
                                                       overlap=overlap, **kw)


@pytest.mark.parametrize("nd, shape, window, overlap", PARITY)
def test_window_starts_coincide_with_monai_on_aligned_sizes(nd, shape, window, overlap):
    utils = pytest.importorskip("monai.inferers.utils")
    from monai.data.utils import dense_patch_slices

    for size, w in zip(shape[2:], window):
        interval = utils._get_scan_interval((size,), (w,), 1, (overlap,))  # MONAI's stride
        monai_starts = [sl[0].start for sl in dense_patch_slices((size,), (w,), interval)]
        assert window_starts(size, w, overlap) == monai_starts
    # a size where they differ: MONAI keeps the stride and moves only the last window
    interval = utils._get_scan_interval((50,), (16,), 1, (0.25,))
    assert [sl[0].start for sl in dense_patch_slices((50,), (16,), interval)] == [0, 12, 24, 34]
    assert window_starts(50, 16, 0.25) == [0, 11, 23, 34]  # evenly spread


@pytest.mark.parametrize("nd, shape, window, overlap", PARITY)
def test_constant_blend_equals_monai(nd, shape, window, overlap):
    model = conv_model(nd, seed=1)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    ours = sliding_window_predict(model, x, window=window, overlap=overlap, blend="constant", batch_size=2)
    torch.testing.assert_close(ours, _monai(model, x, window, overlap, mode="constant"), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("nd, shape, window, overlap", PARITY)
def test_gaussian_blend_equals_monai_where_no_floor_applies(nd, shape, window, overlap):
    # Both use exp(-x^2 / (2 (sigma_scale * window)^2)) centred at (window - 1) / 2 (a constant
    # factor cancels in the blend). They differ only in the floor that keeps weights positive:
    # MONAI clamps the product at 1e-3, toposeg each axis at 1e-3 (so that along an image border
    # the other axes still decide the blend). With sigma_scale = 0.25 no weight is below 1e-3.
    model = conv_model(nd, seed=3)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(4))
    ours = sliding_window_predict(model, x, window=window, overlap=overlap, blend="gaussian", sigma_scale=0.25)
    assert float(importance_map(window, "gaussian", 0.25).min()) > 1e-3
    torch.testing.assert_close(ours, _monai(model, x, window, overlap, mode="gaussian", sigma_scale=0.25),
                               rtol=1e-5, atol=1e-6)
    # the default sigma_scale = 0.125 puts the window edges below the floors, so the blends
    # differ in the overlap bands; MONAI given toposeg's weights (roi_weight_map) reproduces
    # toposeg exactly, and the two weight maps are proportional wherever no floor applies
    ours = sliding_window_predict(model, x, window=window, overlap=overlap)
    same = _monai(model, x, window, overlap, roi_weight_map=importance_map(window, "gaussian", 0.125))
    torch.testing.assert_close(ours, same, rtol=1e-5, atol=1e-6)
    from monai.data.utils import compute_importance_map

    theirs_w = compute_importance_map(window, "gaussian", 0.125).double()
    ours_w = importance_map(window, "gaussian", 0.125).double()
    free = theirs_w > 1e-3 * 1.0001  # not clamped by MONAI (toposeg's axis floors are lower still)
    ratio = ours_w[free] / theirs_w[free]
    assert (~free).any() and torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-5)
    assert not torch.allclose(ours_w / ours_w.max(), theirs_w / theirs_w.max(), atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.gpu
def test_cuda_matches_cpu():
    model = conv_model(2)
    x = torch.rand(1, 1, 70, 50)
    cpu = sliding_window_predict(model, x, window=32)
    gpu = sliding_window_predict(model.cuda(), x, window=32)
    assert gpu.device.type == "cpu"
    torch.testing.assert_close(cpu, gpu, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        ({"image": torch.rand(8, 8)}, ValueError, r"\(C, \*S\) or \(N, C, \*S\) with 2 spatial dims.*\(8, 8\)"),
        ({"image": [[0.0]]}, TypeError, "torch.Tensor or numpy.ndarray, got list"),
        ({"image": torch.zeros(1, 8, 8, dtype=torch.bool)}, TypeError, "real-valued.*torch.bool"),
        ({"window": (4, 4, 4, 4)}, ValueError, "2 or 3 sizes"),
        ({"window": "big"}, TypeError, "window must be an int or a sequence of ints, got 'big'"),
        ({"window": (0, 4)}, ValueError, r"positive sizes.*\(0, 4\)"),
        ({"overlap": 1.0}, ValueError, r"overlap must be a number in \[0, 1\), got 1.0"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
        ({"blend": "cosine"}, KeyError, "unknown blend 'cosine'"),
        ({"activation": "relu"}, KeyError, "unknown activation 'relu'"),
        ({"flips": [(2,)]}, ValueError, r"spatial axes 0..1, got \(2,\)"),
        ({"model": lambda x: x[:, :, :2]}, ValueError, "model must map windows"),
        ({"model": "unet"}, TypeError, "model must be callable, got str"),
    ],
)
def test_bad_input(kw, exc, match):
    args = {"model": Identity(), "image": torch.rand(1, 8, 8), "window": 4}
    args.update(kw)
    model, image = args.pop("model"), args.pop("image")
    with pytest.raises(exc, match=match):
        sliding_window_predict(model, image, **args)

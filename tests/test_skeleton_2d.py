"""2D skeletonization, method="zhang": every backend must equal scikit-image's Zhang-Suen bit for bit.

The default rule ("thin") is tested in tests/test_skeleton_thin2d.py; the API in
tests/test_skeleton_api.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from skimage.draw import disk, line
from skimage.morphology import skeletonize as sk_skeletonize

from toposeg.skeleton import skeletonize


def reference(batch: np.ndarray) -> np.ndarray:
    """scikit-image, one image at a time: the independent reference."""
    return np.stack([sk_skeletonize(im, method="zhang") for im in batch]).astype(bool)


def torch_batch(batch: np.ndarray) -> np.ndarray:
    out = skeletonize(torch.from_numpy(batch)[:, None], method="zhang", backend="torch")
    return out[:, 0].numpy()


def assert_same(batch: np.ndarray) -> None:
    got, ref = torch_batch(batch), reference(batch)
    bad = np.flatnonzero((got != ref).any(axis=(1, 2)))
    assert bad.size == 0, f"{bad.size}/{len(batch)} images differ, first:\n{batch[bad[0]].astype(int)}"


# --------------------------------------------------------------------------- generators


def noise(rng, n, h, w):
    return rng.random((n, h, w)) < rng.uniform(0.05, 0.95, (n, 1, 1))


def blobs(rng, n, h, w, sigma=2.0):
    field = ndi.gaussian_filter(rng.random((n, h, w)), (0, sigma, sigma))
    lo, hi = field.min(axis=(1, 2), keepdims=True), field.max(axis=(1, 2), keepdims=True)
    return (field - lo) / (hi - lo + 1e-12) > rng.uniform(0.3, 0.7, (n, 1, 1))


def rings(rng, n, h, w):
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, h, w), bool)
    for i in range(n):
        cy, cx = rng.uniform(-2, h + 2), rng.uniform(-2, w + 2)  # may touch/cross the border
        r = rng.uniform(2, max(h, w) / 2)
        t = rng.uniform(1, 5)
        d = np.hypot(yy - cy, xx - cx)
        out[i] = (d < r + t) & (d >= r)
    return out


def lines(rng, n, h, w):
    out = np.zeros((n, h, w), bool)
    for i in range(n):
        for _ in range(rng.integers(1, 5)):
            r0, r1 = rng.integers(0, h, 2)
            c0, c1 = rng.integers(0, w, 2)
            rr, cc = line(r0, c0, r1, c1)
            out[i, rr, cc] = True
        width = rng.integers(0, 4)  # 1-pixel lines up to thick tubes
        if width:
            out[i] = ndi.binary_dilation(out[i], iterations=int(width))
    return out


def discs(rng, n, h, w):
    out = np.zeros((n, h, w), bool)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            rr, cc = disk((rng.uniform(0, h), rng.uniform(0, w)), rng.uniform(1, max(h, w) / 3), shape=(h, w))
            out[i, rr, cc] = True
    return out


GENERATORS = [noise, blobs, rings, lines, discs]


# --------------------------------------------------------------------------- equality with skimage


@pytest.mark.parametrize("shape", [(3, 3), (4, 4)])
def test_exhaustive_tiny_images(shape):
    """Every binary image of the given size (2**9 and 2**16 images) in one batch."""
    n = shape[0] * shape[1]
    codes = np.arange(2**n)
    batch = ((codes[:, None] >> np.arange(n)) & 1).astype(bool).reshape(-1, *shape)
    assert_same(batch)


@pytest.mark.parametrize("gen", GENERATORS, ids=lambda g: g.__name__)
def test_random_small_images(gen):
    rng = np.random.default_rng(abs(hash(gen.__name__)) % 2**32)
    for h, w in [(1, 7), (5, 1), (6, 6), (7, 11), (16, 16), (24, 19), (32, 32)]:
        assert_same(gen(rng, 300, h, w))


def test_special_images():
    h, w = 20, 17
    batch = np.zeros((10, h, w), bool)
    batch[1] = True  # full image (touches every border)
    batch[2, 5, :] = True  # 1-pixel line touching both borders
    batch[3, :, 0:3] = True  # thick bar along the left border
    batch[4, ::2, ::2] = True  # isolated pixels
    batch[5] = (np.indices((h, w)).sum(0) % 2) == 0  # checkerboard (diagonal connections)
    batch[6, np.arange(h), np.arange(h) % w] = True  # diagonal line
    batch[7, 2:4, 2:4] = True  # 2x2 square
    batch[8, 3:5, :] = True  # 2-pixel-thick line
    batch[9] = np.eye(h, w, dtype=bool) | np.eye(h, w, k=1, dtype=bool)  # 2-thick diagonal
    assert_same(batch)


def _large_batches(seed: int, per_generator: int):
    rng = np.random.default_rng(seed)
    for gen in GENERATORS:
        for _ in range(per_generator):
            yield gen(rng, 8, 256, 256) if gen is not blobs else blobs(rng, 8, 256, 256, sigma=6.0)


def test_large_images():
    """120 images of 256x256 of every kind, thinned 8 at a time like a training batch."""
    for batch in _large_batches(256, 3):
        assert_same(batch)


@pytest.mark.slow
def test_many_large_images():
    """200 more 256x256 images."""
    for batch in _large_batches(257, 5):
        assert_same(batch)


def test_non_square_large_image():
    rng = np.random.default_rng(3)
    assert_same(blobs(rng, 2, 300, 173, sigma=4.0) | lines(rng, 2, 300, 173))


# --------------------------------------------------------------------------- API behaviour


@pytest.mark.parametrize("backend", ["auto", "torch", "skimage"])
def test_every_backend_gives_zhang(backend):
    rng = np.random.default_rng(5)
    batch = blobs(rng, 6, 40, 50)
    got = skeletonize(torch.from_numpy(batch)[:, None], method="zhang", backend=backend)
    assert got.dtype == torch.bool and got.shape == (6, 1, 40, 50) and got.device.type == "cpu"
    np.testing.assert_array_equal(got[:, 0].numpy(), reference(batch))


def test_numpy_in_numpy_out():
    rng = np.random.default_rng(6)
    img = blobs(rng, 1, 30, 40)[0]
    for backend in ("torch", "skimage", "auto"):
        out = skeletonize(img.astype(np.uint8), method="zhang", backend=backend)
        assert isinstance(out, np.ndarray) and out.dtype == bool and out.shape == img.shape
        np.testing.assert_array_equal(out, sk_skeletonize(img, method="zhang"))


def test_input_not_modified_and_value_types():
    rng = np.random.default_rng(7)
    batch = torch.from_numpy(blobs(rng, 3, 30, 30))[:, None]
    expected = torch.from_numpy(reference(batch[:, 0].numpy()))[:, None]
    for x in (batch.clone(), batch.float(), batch.to(torch.uint8), batch.double()):
        before = x.clone()
        out = skeletonize(x, method="zhang", backend="torch")
        assert torch.equal(x, before)
        assert out.dtype == torch.bool
        assert torch.equal(out, expected)
    # non-contiguous input
    wide = torch.zeros(3, 1, 30, 60, dtype=torch.bool)
    wide[..., ::2] = batch
    assert torch.equal(skeletonize(wide[..., ::2], method="zhang", backend="torch"), expected)


def test_channels_are_independent():
    rng = np.random.default_rng(8)
    a, b = blobs(rng, 2, 25, 25)
    x = torch.from_numpy(np.stack([a, b]))[None]  # (1, 2, H, W)
    out = skeletonize(x, method="zhang", backend="torch")
    np.testing.assert_array_equal(out[0].numpy(), reference(np.stack([a, b])))


def test_empty_batch_and_empty_images():
    x = torch.zeros(0, 1, 8, 8, dtype=torch.bool)
    assert skeletonize(x, method="zhang", backend="torch").shape == (0, 1, 8, 8)
    z = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    assert not skeletonize(z, method="zhang", backend="torch").any()
    assert not skeletonize(z, method="zhang", backend="skimage").any()


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("shape", [(4, 4), (1, 4, 4), (1, 1, 1, 4, 4, 4)])
def test_wrong_tensor_ndim(shape):
    with pytest.raises(ValueError, match=rf"\(N, 1, H, W\).*got {len(shape)} dims \({', '.join(map(str, shape))},?\)"):
        skeletonize(torch.zeros(shape, dtype=torch.bool))


@pytest.mark.parametrize("shape", [(4,), (1, 2, 4, 4)])
def test_wrong_array_ndim(shape):
    with pytest.raises(ValueError, match=r"single 2D .* or 3D .*got shape \(" + ", ".join(map(str, shape))):
        skeletonize(np.zeros(shape, dtype=bool))


def test_non_binary_values():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 2.0
    x[0, 0, 2, 2] = 0.5
    with pytest.raises(ValueError, match=r"binary.*found values \[0, 0\.5, 2\]"):
        skeletonize(x)
    with pytest.raises(ValueError, match=r"binary.*found values \[0, 3\]"):
        skeletonize(np.array([[0, 3], [0, 0]]))


def test_nan_values():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN.*shape \(1, 1, 4, 4\)"):
        skeletonize(x)
    with pytest.raises(ValueError, match=r"NaN.*shape \(3, 3\)"):
        skeletonize(np.full((3, 3), np.nan))


def test_wrong_type():
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray, got list"):
        skeletonize([[0, 1], [1, 0]])


# --------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu_2d():
    rng = np.random.default_rng(9)
    batch = torch.from_numpy(np.concatenate([blobs(rng, 4, 256, 256, 5.0), lines(rng, 4, 256, 256)]))[:, None]
    out = skeletonize(batch.cuda(), method="zhang", backend="torch")
    assert out.device.type == "cuda" and out.dtype == torch.bool
    assert torch.equal(out.cpu(), torch.from_numpy(reference(batch[:, 0].numpy()))[:, None])
    auto = skeletonize(batch.cuda(), method="zhang")
    assert auto.device.type == "cuda" and torch.equal(auto.cpu(), out.cpu())

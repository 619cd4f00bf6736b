"""skeletonize's API: rule (method) vs implementation (backend), 'auto', errors, cache keys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.morphology import skeletonize as sk_skeletonize

from toposeg.skeleton import (
    AUTO_RULE,
    BACKENDS,
    DEFAULT_METHOD,
    METHODS,
    SKELETON_VERSION,
    resolve_backend,
    skeleton_cache_key,
    skeletonize,
)
from toposeg.skeleton._thin2d import thin2d_torch
from toposeg.skeleton._thin3d import thin3d_torch

VALID = r"valid combinations: 'thin' \(2D torch, 3D torch\); 'zhang' \(2D torch/skimage\); 'lee' \(3D skimage\)"


def test_names():
    assert DEFAULT_METHOD == "thin"
    assert list(METHODS) == ["thin", "zhang", "lee"]
    assert BACKENDS == ("torch", "skimage")


# the table of docs/skeleton.md, written out by hand
AUTO_TABLE = [
    ("thin", "cpu", 2, "torch"), ("thin", "cpu", 3, "torch"),
    ("thin", "cuda", 2, "torch"), ("thin", "cuda", 3, "torch"),
    ("zhang", "cpu", 2, "skimage"), ("zhang", "cuda", 2, "torch"), ("zhang", "mps", 2, "torch"),
    ("lee", "cpu", 3, "skimage"), ("lee", "cuda", 3, "skimage"),
]


@pytest.mark.parametrize("method,device,dims,expected", AUTO_TABLE)
def test_auto_table(method, device, dims, expected):
    assert resolve_backend(method, "auto", device, dims) == expected


def test_auto_rule_covers_every_method():
    assert {m for m, _ in AUTO_RULE} == set(METHODS)


def test_explicit_backends_pass_through():
    assert resolve_backend("zhang", "torch", "cpu", 2) == "torch"
    assert resolve_backend("zhang", "skimage", "cuda", 2) == "skimage"
    assert resolve_backend("thin", "torch", "cpu", 3) == "torch"
    assert resolve_backend("lee", "skimage", torch.device("cpu"), 3) == "skimage"


@pytest.mark.parametrize(
    "method,backend,dims,what",
    [
        ("lee", "torch", 3, r"skeleton method 'lee' has no 'torch' backend for 3D masks"),
        ("thin", "skimage", 2, r"skeleton method 'thin' has no 'skimage' backend for 2D masks"),
        ("thin", "skimage", 3, r"skeleton method 'thin' has no 'skimage' backend for 3D masks"),
        ("zhang", "auto", 3, r"skeleton method 'zhang' is not defined for 3D masks"),
        ("zhang", "torch", 3, r"skeleton method 'zhang' is not defined for 3D masks"),
        ("lee", "auto", 2, r"skeleton method 'lee' is not defined for 2D masks"),
    ],
)
def test_unsupported_combinations(method, backend, dims, what):
    with pytest.raises(ValueError, match=what + ".*" + VALID):
        resolve_backend(method, backend, "cpu", dims)
    shape = (1, 1) + (6,) * dims
    with pytest.raises(ValueError, match=what):
        skeletonize(torch.zeros(shape, dtype=torch.bool), method=method, backend=backend)
    with pytest.raises(ValueError, match=what):
        skeletonize(np.zeros(shape[2:], dtype=bool), method=method, backend=backend)


def test_unknown_names():
    m = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    with pytest.raises(KeyError, match=r"unknown skeleton method 'medial'; valid: \['thin', 'zhang', 'lee'\]"):
        skeletonize(m, method="medial")
    with pytest.raises(KeyError, match=r"unknown skeleton backend 'gpu'; valid: \['auto', 'torch', 'skimage'\]"):
        skeletonize(m, backend="gpu")
    with pytest.raises(KeyError, match=r"unknown skeleton method 'Thin'"):
        resolve_backend("Thin", "auto", "cpu", 2)
    with pytest.raises(KeyError, match=r"unknown skeleton backend 'cupy'"):
        resolve_backend("thin", "cupy", "cpu", 2)
    with pytest.raises(KeyError, match=r"unknown skeleton method 'x'"):
        skeleton_cache_key("x")
    with pytest.raises(KeyError, match=r"unknown skeleton backend 'y'"):
        skeleton_cache_key("thin", "y")


def test_cache_keys():
    assert skeleton_cache_key() == SKELETON_VERSION == skeleton_cache_key("thin")
    keys = {m: skeleton_cache_key(m) for m in METHODS}
    assert len(set(keys.values())) == len(METHODS)  # different rules never share a key
    for m, k in keys.items():
        assert k.startswith(m + "-v") and len(k) <= 16
    # bit-identical backends share the key
    assert skeleton_cache_key("zhang", "torch") == skeleton_cache_key("zhang", "skimage") == keys["zhang"]


def _bar2d():
    m = np.zeros((12, 20), bool)
    m[3:9, 2:18] = True
    return m


def _bar3d():
    m = np.zeros((10, 10, 50), bool)
    m[3:7, 3:7, 5:45] = True  # 4x4 bar, 40 voxels long
    return m


def test_default_is_thin_on_cpu_2d_and_3d():
    """The default is the "thin" rule on the CPU too (3D used to go to scikit-image's Lee)."""
    m2 = _bar2d()
    np.testing.assert_array_equal(skeletonize(m2), thin2d_torch(torch.from_numpy(m2)[None, None])[0, 0].numpy())
    m3 = _bar3d()
    out = skeletonize(m3)
    np.testing.assert_array_equal(out, thin3d_torch(torch.from_numpy(m3)[None, None])[0, 0].numpy())
    assert out.sum() > 0
    # keyword backend= alone (how other modules call it) still works and gives the default rule
    np.testing.assert_array_equal(skeletonize(m3, backend="auto"), out)
    np.testing.assert_array_equal(skeletonize(m3, backend="torch"), out)
    t = torch.from_numpy(m3)[None, None]
    assert torch.equal(skeletonize(t, backend="auto"), torch.from_numpy(out)[None, None])


def test_named_rules_match_scikit_image():
    m2 = _bar2d()
    for backend in ("auto", "torch", "skimage"):
        np.testing.assert_array_equal(skeletonize(m2, method="zhang", backend=backend), sk_skeletonize(m2, method="zhang"))
    m3 = np.zeros((12, 12, 30), bool)
    m3[3:8, 3:8, 4:26] = True  # odd cross-section: Lee keeps it
    lee = sk_skeletonize(m3, method="lee").astype(bool)
    assert lee.any()
    np.testing.assert_array_equal(skeletonize(m3, method="lee"), lee)
    np.testing.assert_array_equal(skeletonize(m3, method="lee", backend="skimage"), lee)


def test_numpy_and_tensor_types():
    m = _bar2d()
    for method in ("thin", "zhang"):
        out = skeletonize(m.astype(np.float32), method=method)
        assert isinstance(out, np.ndarray) and out.dtype == bool and out.shape == m.shape
        t = skeletonize(torch.from_numpy(m)[None, None].to(torch.uint8), method=method)
        assert t.dtype == torch.bool and t.shape == (1, 1, *m.shape)
        np.testing.assert_array_equal(t[0, 0].numpy(), out)

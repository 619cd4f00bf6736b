"""Patch pipeline: shapes, padding, foreground oversampling, augmentation, normalisation,
skeleton caching, DataLoader workers and DistributedSampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from toposeg.data import Augment, Case, PatchDataset, make_synthetic, normalize
from toposeg.data.patches import cached_skeleton
from toposeg.data.transforms import pad_to


def _case(shape, seed=0, cid="c", channels=1):
    rng = np.random.default_rng(seed)
    label = rng.random(shape) < 0.05
    image = rng.normal(5.0, 3.0, (channels,) + tuple(shape)).astype(np.float32)
    return Case(id=cid, image=image, label=label)


def test_default_patch_sizes_and_sample_format():
    ds2 = PatchDataset([_case((300, 280))], seed=0)
    s = ds2[0]
    assert s["image"].shape == (1, 256, 256) and s["image"].dtype == torch.float32
    assert s["label"].shape == (1, 256, 256) and s["label"].dtype == torch.float32
    assert set(torch.unique(s["label"]).tolist()) <= {0.0, 1.0} and s["id"] == "c" and "skeleton" not in s
    ds3 = PatchDataset([_case((80, 130, 140))], seed=0, augment=False)
    assert ds3[0]["image"].shape == (1, 72, 128, 128)


def test_small_images_are_padded_not_crashed():
    case = _case((20, 30), channels=2)
    for mode in ("reflect", "constant"):
        s = PatchDataset([case], 64, pad_mode=mode, augment=False, seed=0)[0]
        assert s["image"].shape == (2, 64, 64)
        lab = s["label"][0].numpy()
        assert lab[:22].sum() + lab[52:].sum() == 0 and lab.sum() == case.label.sum()  # label padded with 0, centred
    s = PatchDataset([case], 64, pad_mode="constant", augment=False, seed=0, normalization="none")[0]
    assert float(s["image"][:, :17].abs().max()) == 0.0
    one = Case(id="thin", image=np.ones((1, 1, 5), np.float32), label=np.ones((1, 5), bool))
    assert PatchDataset([one], 8, augment=False, seed=0)[0]["image"].shape == (1, 8, 8)


def test_pad_to_reflect_matches_numpy():
    img = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    lab = np.ones((3, 4), bool)
    out, olab, _ = pad_to(img, lab, (5, 4))
    np.testing.assert_array_equal(out, np.pad(img, [(0, 0), (1, 1), (0, 0)], mode="reflect"))
    assert olab.sum() == 12 and not olab[0].any()
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        pad_to(img, lab, (5, 4), mode="wrap")


def test_foreground_oversampling():
    label = np.zeros((200, 200), bool)
    label[150:153, 20:23] = True  # one small blob
    case = Case(id="b", image=np.zeros((1, 200, 200), np.float32), label=label)
    always = PatchDataset([case], 32, fg_prob=1.0, augment=False, seed=0, samples_per_epoch=40)
    assert all(always[i]["label"].sum() > 0 for i in range(40))
    centre_hits = [bool(always[i]["label"][0, 16, 16]) for i in range(40)]
    assert all(centre_hits)  # centred on a foreground pixel (far from the border, no clamping)
    never = PatchDataset([case], 32, fg_prob=0.0, augment=False, seed=0, samples_per_epoch=200)
    hits = np.mean([never[i]["label"].sum() > 0 for i in range(200)])
    assert hits < 0.15  # uniform sampling rarely sees a 3x3 blob in 200x200


def test_geometric_augmentation_is_shared_by_image_label_skeleton():
    label = np.zeros((40, 40, 40), bool)
    label[5:30, 10, 12] = True
    label[5, 10:35, 12] = True
    case = Case(id="L", image=label[None].astype(np.float32), label=label)
    aug = Augment(flip=0.5, rot90=1.0, intensity=0.0, noise=0.0)
    ds = PatchDataset([case], 40, augment=aug, normalization="none", skeleton=True, seed=3, samples_per_epoch=12)
    seen = set()
    for i in range(12):
        s = ds[i]
        np.testing.assert_array_equal(s["image"][0].numpy() > 0.5, s["label"][0].numpy() > 0.5)
        assert s["skeleton"].dtype == torch.bool
        assert not (s["skeleton"] & ~(s["label"] > 0.5)).any()  # skeleton inside the label
        seen.add(s["label"].numpy().tobytes())
    assert len(seen) > 3  # the transforms actually vary


def test_rot90_only_in_planes_with_equal_sides():
    label = np.zeros((8, 16, 16), bool)
    label[2, 3:9, 4] = True
    case = Case(id="r", image=label[None].astype(np.float32), label=label)
    ds = PatchDataset([case], (8, 16, 16), augment=Augment(flip=0.0, rot90=1.0, intensity=0.0, noise=0.0),
                      normalization="none", seed=0, samples_per_epoch=10)
    for i in range(10):
        lab = ds[i]["label"][0].numpy()
        assert lab.shape == (8, 16, 16) and lab[2].sum() == 6  # the depth axis is never rotated


def test_intensity_augmentation_changes_image_only():
    case = _case((64, 64), seed=1)
    ds = PatchDataset([case], 64, augment=Augment(flip=0, rot90=0, intensity=1.0, noise=1.0, noise_std=(0.5, 0.5)),
                      seed=0, fg_prob=0)
    plain = PatchDataset([case], 64, augment=False, seed=0, fg_prob=0)
    assert not torch.allclose(ds[0]["image"], plain[0]["image"])
    assert torch.equal(ds[0]["label"], plain[0]["label"])
    with pytest.raises(ValueError, match=r"Augment.flip is a probability in \[0, 1\], got 2"):
        Augment(flip=2)
    with pytest.raises(ValueError, match="Augment.scale must be"):
        Augment(scale=(1.2, 0.8))


def test_zscore_and_hu_clipping_against_numpy():
    img = np.random.default_rng(0).normal(100, 400, (2, 10, 10)).astype(np.float32)
    z = normalize(img)
    ref = (img - img.mean(axis=(1, 2), keepdims=True)) / img.std(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(z, ref, rtol=1e-4, atol=1e-4)
    clipped = normalize(img, "none", hu_window=(-100, 300))
    np.testing.assert_array_equal(clipped, np.clip(img, -100, 300))
    assert normalize(np.full((1, 3, 3), 7.0), "zscore").max() == 0.0  # constant image -> zeros, no NaN
    mm = normalize(img, "minmax")
    assert mm.min() == 0.0 and mm.max() == 1.0
    with pytest.raises(ValueError, match=r"normalization must be one of .*got 'robust'"):
        normalize(img, "robust")
    with pytest.raises(ValueError, match="hu_window must be"):
        normalize(img, hu_window=(3, 1))
    ds = PatchDataset([Case(id="ct", image=img[:1], label=np.zeros((10, 10), bool))], 10, augment=False,
                      hu_window=(-100, 300), seed=0)
    np.testing.assert_allclose(ds[0]["image"].numpy(), normalize(img[:1], hu_window=(-100, 300)), atol=1e-5)


def test_skeleton_matches_skimage_and_disk_cache(tmp_path):
    from skimage.morphology import skeletonize

    from toposeg.skeleton import skeleton_cache_key

    case = make_synthetic("vessels2d", 1, size=64, seed=2)[0]
    ref = skeletonize(case.label, method="zhang")  # independent reference for the "zhang" rule
    np.testing.assert_array_equal(cached_skeleton(case.label, case.id, skeleton_method="zhang"), ref)
    first = cached_skeleton(case.label, case.id, tmp_path, skeleton_method="zhang")
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name == f"vessels2d_0000.{skeleton_cache_key('zhang')}.skeleton.npz"
    np.testing.assert_array_equal(cached_skeleton(case.label, case.id, tmp_path, skeleton_method="zhang"), first)
    changed = case.label.copy()
    changed[:, :20] = False  # stale cache: recomputed, not reused
    np.testing.assert_array_equal(cached_skeleton(changed, case.id, tmp_path, skeleton_method="zhang"),
                                  skeletonize(changed, method="zhang"))
    ds = PatchDataset([case], 64, augment=False, skeleton=True, cache_dir=tmp_path, seed=0, skeleton_method="zhang")
    np.testing.assert_array_equal(ds[0]["skeleton"][0].numpy(), ref)
    # the default rule is cached under its own key, next to the zhang file
    thin = cached_skeleton(case.label, case.id, tmp_path)
    assert (tmp_path / f"vessels2d_0000.{skeleton_cache_key('thin')}.skeleton.npz").is_file()
    assert thin.any() and not (thin & ~case.label).any()


def test_skeleton_cache_is_keyed_by_rule_and_version(tmp_path, monkeypatch):
    """A changed rule (new version) never returns the skeleton cached under the old one."""
    import toposeg.skeleton as sk

    label = np.zeros((20, 30), bool)
    label[8:12, 3:27] = True
    calls = []
    real = sk.skeletonize

    def counting(mask, **kw):
        calls.append(kw)
        return real(mask, **kw)

    monkeypatch.setattr(sk, "skeletonize", counting)
    cached_skeleton(label, "bar", tmp_path)
    cached_skeleton(label, "bar", tmp_path)
    assert len(calls) == 1  # second call read the file
    path, = tmp_path.iterdir()
    # the rule changes: same name, new version -> a new key; the old file must not be used
    monkeypatch.setattr(sk, "skeleton_cache_key", lambda method="thin", backend="auto": f"{method}-v999")
    fresh = cached_skeleton(label, "bar", tmp_path)
    assert len(calls) == 2 and np.array_equal(fresh, real(label))
    # a file carrying the right name but another key inside is not trusted either
    with np.load(path) as f:
        bits, digest = f["bits"], f["digest"]
    forged = tmp_path / "bar.thin-v999.skeleton.npz"
    np.savez_compressed(forged, bits=np.packbits(np.ones_like(label)), digest=digest, key=np.array("thin-v1"))
    out = cached_skeleton(label, "bar", tmp_path)
    assert len(calls) == 3 and np.array_equal(out, real(label)) and not out.all()
    assert bits.size  # the old file was a real cache


def test_patch_skeleton_of_3d_bar_of_even_width_is_not_empty(tmp_path):
    # issue 11: Lee thinning (the old CPU default in 3D) cached an empty skeleton for a 4x4 bar
    label = np.zeros((48, 12, 12), bool)
    label[4:44, 4:8, 4:8] = True
    case = Case(id="bar", image=label[None].astype(np.float32), label=label)
    ds = PatchDataset([case], (48, 12, 12), augment=False, skeleton=True, cache_dir=tmp_path, seed=0)
    skel = ds[0]["skeleton"][0].numpy()
    assert skel.any() and not (skel & ~label).any()
    from scipy import ndimage

    assert ndimage.label(skel, structure=np.ones((3, 3, 3)))[1] == 1  # one object, one skeleton piece
    lee = PatchDataset([case], (48, 12, 12), augment=False, skeleton=True, seed=0, skeleton_method="lee")
    assert not lee[0]["skeleton"].any()  # the parameter is passed on: Lee by name reproduces the defect


def test_skeleton_parameters_are_checked_at_construction():
    case = _case((40, 40))
    with pytest.raises(ValueError, match=r"'lee' is not defined for 2D"):
        PatchDataset([case], 32, skeleton=True, skeleton_method="lee")
    with pytest.raises(KeyError, match=r"unknown skeleton method 'medial'"):
        PatchDataset([case], 32, skeleton=True, skeleton_method="medial")


def test_seeded_reproducible_and_epochs_differ():
    cases = [_case((100, 100), seed=i, cid=f"c{i}") for i in range(2)]
    a = PatchDataset(cases, 32, seed=5)
    b = PatchDataset(cases, 32, seed=5)
    assert torch.equal(a[1]["image"], b[1]["image"])
    before = a[1]["image"].clone()
    a.set_epoch(1)
    assert not torch.equal(a[1]["image"], before)


def test_unseeded_draws_from_torch_rng():
    cases = [_case((100, 100))]
    ds = PatchDataset(cases, 32)
    torch.manual_seed(0)
    x = ds[0]["image"]
    torch.manual_seed(0)
    assert torch.equal(ds[0]["image"], x)
    assert not torch.equal(ds[0]["image"], x)  # next draw differs


def test_dataloader_workers_and_epochs_differ():
    cases = make_synthetic("vessels2d", 2, size=64, seed=0)
    ds = PatchDataset(cases, 32, samples_per_epoch=8, skeleton=True).precompute()
    loader = DataLoader(ds, batch_size=4, num_workers=2, generator=torch.Generator().manual_seed(0))
    epochs = [torch.cat([b["image"] for b in loader]) for _ in range(2)]
    assert epochs[0].shape == (8, 1, 32, 32)
    assert not torch.equal(epochs[0], epochs[1])
    batch = next(iter(loader))
    assert batch["skeleton"].shape == (4, 1, 32, 32) and batch["id"][:2] == ["vessels2d_0000", "vessels2d_0001"]


def test_distributed_sampler_partitions_samples():
    ds = PatchDataset([_case((64, 64))], 16, samples_per_epoch=10, seed=0)
    idx = [list(DistributedSampler(ds, num_replicas=2, rank=r, shuffle=True, seed=1)) for r in range(2)]
    assert sorted(idx[0] + idx[1]) == list(range(10))
    loader = DataLoader(ds, batch_size=5, sampler=DistributedSampler(ds, num_replicas=2, rank=0, seed=1))
    assert [b["image"].shape[0] for b in loader] == [5]


def test_bad_arguments():
    case = _case((32, 32))
    with pytest.raises(ValueError, match="at least one case"):
        PatchDataset([], 16)
    with pytest.raises(ValueError, match=r"patch_size must give 2 positive sizes for 2D cases, got \(16, 16, 16\)"):
        PatchDataset([case], (16, 16, 16))
    with pytest.raises(ValueError, match=r"fg_prob must be in \[0, 1\], got 1.5"):
        PatchDataset([case], 16, fg_prob=1.5)
    with pytest.raises(TypeError, match="augment must be an Augment"):
        PatchDataset([case], 16, augment="yes")
    with pytest.raises(ValueError, match="samples_per_epoch must be >= 1"):
        PatchDataset([case], 16, samples_per_epoch=0)
    with pytest.raises(IndexError, match="out of range"):
        PatchDataset([case], 16)[1]
    mixed = PatchDataset([case, Case(id="v", image=np.zeros((1, 4, 4, 4), np.float32), label=np.zeros((4, 4, 4), bool))], 16)
    with pytest.raises(ValueError, match="case 'v' is 3D but the dataset is 2D"):
        mixed[1]


def _coordinate_case():
    """A case whose image holds each pixel's flat index: a patch's image says where each of its
    pixels came from, whatever crop, flip or rotation was drawn."""
    label = np.zeros((48, 48), bool)
    label[8:16, 2:46] = True      # a thick bar crossing most of the image
    label[4:44, 20:27] = True
    label[30:34, 0:48] = True     # touches the image border
    index = np.arange(label.size, dtype=np.float32).reshape(1, *label.shape)
    return Case(id="coords", image=index, label=label)


@pytest.mark.parametrize("method", ["thin", "zhang"])
def test_target_skeleton_crop_follows_crop_and_augmentation(method):
    """train.target_skeleton 'crop': the batch's skeleton is the crop of skeletonize(whole label),
    flipped / rotated like the label; the sample's image and label are those of skeleton=False."""
    from toposeg.engine.batches import StepBatches, skeleton_dataset_options
    from toposeg.losses import build_loss
    from toposeg.skeleton import skeletonize

    case = _coordinate_case()
    whole = np.asarray(skeletonize(case.label, method=method), dtype=bool)
    aug = Augment(flip=0.5, rot90=0.5, intensity=0.0, noise=0.0)
    opts = skeleton_dataset_options("crop", build_loss("shpm", method=method))
    assert opts == {"skeleton": True, "skeleton_method": method, "skeleton_backend": "auto"}
    kw = dict(samples_per_epoch=24, seed=5, augment=aug, normalization="none", fg_prob=0.5)
    crop = StepBatches(PatchDataset([case], 24, **kw, **opts), 4)
    plain = StepBatches(PatchDataset([case], 24, **kw), 4)
    seen = set()
    for step in range(6):
        b, p = crop(step), plain(step)
        assert set(p) == {"image", "label"} and set(b) == {"image", "label", "target_skeleton"}
        assert torch.equal(b["image"], p["image"]) and torch.equal(b["label"], p["label"])
        assert b["target_skeleton"].dtype == torch.bool and b["target_skeleton"].shape == b["label"].shape
        idx = b["image"][:, 0].numpy().astype(np.int64)           # (B, 24, 24) flat whole-image indices
        np.testing.assert_array_equal(b["label"][:, 0].numpy() > 0, case.label.ravel()[idx])
        np.testing.assert_array_equal(b["target_skeleton"][:, 0].numpy(), whole.ravel()[idx])
        for i in range(idx.shape[0]):   # which transform was drawn: identity, a flip, a rotation
            rows = idx[i] // 48
            seen.add((bool(rows[0, 0] > rows[-1, 0]), bool(rows[0, 0] == rows[0, -1])))
    assert len(seen) >= 3  # the check covered flipped and rotated patches, not only the identity


def test_patch_skeleton_differs_from_the_crop_at_the_patch_border():
    """The hypothesis behind 'crop': the skeleton of a patch that cuts a thick bar stops short
    of the patch edge, the crop of the whole-image skeleton runs to it."""
    from toposeg.skeleton import skeletonize

    label = np.zeros((40, 40), bool)
    label[15:24, :] = True         # a 9-px bar across the whole image
    whole = np.asarray(skeletonize(label), dtype=bool)
    patch = label[:, 10:30]
    own = np.asarray(skeletonize(patch), dtype=bool)
    crop = whole[:, 10:30]
    # by hand: the bar's centre line (row 19) crosses the whole patch, columns 0..19
    np.testing.assert_array_equal(np.flatnonzero(crop.any(1)), [19])
    assert crop[19].all()
    # the patch's own skeleton is the same line but stops short of both patch edges
    np.testing.assert_array_equal(np.flatnonzero(own.any(1)), [19])
    assert own[19].sum() < 20 and not own[19, 0] and not own[19, -1]

"""Real-format loaders: files written here in each format, read back through open_dataset."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from toposeg.data import DATASETS, open_dataset
from toposeg.data.labels import binarize, foreground_fraction_warning, membranes_from_ids
from toposeg.io import write_array

ISBI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "isbi2012"


def _pair_folder(root: Path, ext: str, n: int = 3, shape=(20, 24), rng=None):
    rng = rng or np.random.default_rng(0)
    images, labels = {}, {}
    for i in range(n):
        img = rng.integers(0, 255, shape).astype(np.uint8)
        lab = rng.random(shape) < 0.3
        write_array(root / "image" / f"c{i}{ext}", img)
        write_array(root / "label" / f"c{i}{ext}", lab.astype(np.uint8) * (255 if ext == ".png" else 1))
        images[f"c{i}"], labels[f"c{i}"] = img, lab
    return images, labels


# ------------------------------------------------------------------ registry


def test_unknown_kind_lists_valid():
    with pytest.raises(KeyError, match=r"unknown dataset kind 'nope'.*'cremi'.*'folder'.*'imagecas'.*'isbi2012'"):
        open_dataset("nope", "x")


def test_unknown_option_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['colour'\]; valid: \['foreground'"):
        open_dataset("folder", tmp_path, colour=1)


def test_all_required_kinds_registered():
    assert {"folder", "isbi2012", "cremi", "roads", "imagecas", "vessels2d", "membranes2d", "roads2d",
            "vessels3d"} <= set(DATASETS)


def test_real_kinds_need_a_root():
    with pytest.raises(ValueError, match="needs a data root"):
        open_dataset("folder")


def test_synthetic_kinds_refuse_a_root(tmp_path):
    with pytest.raises(ValueError, match="root must be None"):
        open_dataset("vessels2d", tmp_path, n=1)


# ------------------------------------------------------------------ folder


@pytest.mark.parametrize("ext", [".png", ".tif", ".npy", ".nii.gz"])
def test_folder_roundtrip(tmp_path, ext):
    images, labels = _pair_folder(tmp_path, ext)
    ds = open_dataset("folder", tmp_path)
    assert len(ds) == 3 and ds.ids == ["c0", "c1", "c2"]
    for case in ds:
        assert case.image.dtype == np.float32 and case.image.shape == (1, 20, 24)
        assert case.label.dtype == bool
        np.testing.assert_array_equal(case.image[0], images[case.id].astype(np.float32))
        np.testing.assert_array_equal(case.label, labels[case.id])


def test_folder_3d_nifti_and_negative_index(tmp_path):
    vol = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    lab = vol % 7 == 0
    write_array(tmp_path / "image" / "v.nii.gz", vol)
    write_array(tmp_path / "label" / "v.nii.gz", lab)
    case = open_dataset("folder", tmp_path)[-1]
    assert case.image.shape == (1, 4, 5, 6)
    np.testing.assert_array_equal(case.label, lab)


def test_folder_rgb_png_channels_first(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (10, 12, 3)).astype(np.uint8)
    write_array(tmp_path / "image" / "a.png", rgb)
    write_array(tmp_path / "label" / "a.png", np.eye(10, 12, dtype=bool))
    case = open_dataset("folder", tmp_path)[0]
    assert case.image.shape == (3, 10, 12)
    np.testing.assert_array_equal(case.image[1], rgb[..., 1])


def test_folder_foreground_rules(tmp_path):
    # a two-level 0/255 label: bright = 255, dark = 0, nonzero = 255
    lab = np.array([[0, 255, 0, 255]] * 4, np.uint8)
    write_array(tmp_path / "image" / "a.npy", np.zeros((4, 4), np.float32))
    write_array(tmp_path / "label" / "a.npy", lab)
    assert open_dataset("folder", tmp_path)[0].label[0].tolist() == [False, True, False, True]
    assert open_dataset("folder", tmp_path, foreground="dark")[0].label[0].tolist() == [True, False, True, False]
    assert open_dataset("folder", tmp_path, foreground="bright")[0].label[0].tolist() == [False, True, False, True]
    with pytest.raises(ValueError, match=r"foreground must be one of .*got 'black'"):
        open_dataset("folder", tmp_path, foreground="black")


# the structure drawn by hand: a 2-px road across a 12 x 12 tile, the rest background
_ROAD = np.zeros((12, 12), bool)
_ROAD[5:7, :] = True


@pytest.mark.parametrize("ext,encoded", [
    (".png", _ROAD.astype(np.uint8)),                     # 0/1 PNG: used to become all background
    (".png", _ROAD.astype(np.uint8) * 255),               # 0/255 PNG
    (".png", _ROAD.astype(np.uint16) * 65535),            # 0/65535 16-bit PNG
    (".tif", _ROAD.astype(np.uint8)),                     # 0/1 TIFF
    (".npy", _ROAD.copy()),                               # bool
    (".npy", _ROAD.astype(np.float32)),                   # float 0.0/1.0
    (".npy", np.where(_ROAD, 7, 3).astype(np.int16)),     # any other two levels: 3/7
])
def test_two_level_encodings_are_detected(tmp_path, ext, encoded):
    write_array(tmp_path / "image" / f"t{ext}", np.zeros((12, 12), np.uint8))
    write_array(tmp_path / "label" / f"t{ext}", encoded)
    bright = open_dataset("folder", tmp_path, foreground="bright")[0].label
    dark = open_dataset("folder", tmp_path, foreground="dark")[0].label
    np.testing.assert_array_equal(bright, _ROAD)
    np.testing.assert_array_equal(dark, ~_ROAD)


def test_roads_01_mask_png(tmp_path):
    rgb = np.random.default_rng(7).integers(0, 200, (12, 12, 3)).astype(np.uint8)
    write_array(tmp_path / "image" / "r.png", rgb)
    write_array(tmp_path / "label" / "r.png", _ROAD.astype(np.uint8))  # stored as 0/1
    case = open_dataset("roads", tmp_path)[0]
    assert case.label.sum() == 24  # the 2 x 12 road, not 0 pixels
    np.testing.assert_array_equal(case.label, _ROAD)


def test_isbi_dark_01_label_png(tmp_path):
    membrane = np.zeros((12, 12), bool)
    membrane[:, 4] = True
    membrane[8, :] = True  # 23 membrane pixels, stored as 0 (dark) in a 0/1 file
    write_array(tmp_path / "image" / "00.png", np.full((12, 12), 9, np.uint8))
    write_array(tmp_path / "label" / "00.png", (~membrane).astype(np.uint8))
    case = open_dataset("isbi2012", tmp_path)[0]
    assert case.label.sum() == 23  # not all 144 pixels
    np.testing.assert_array_equal(case.label, membrane)


def test_single_valued_labels(tmp_path):
    write_array(tmp_path / "image" / "a.png", np.zeros((6, 6), np.uint8))
    write_array(tmp_path / "label" / "a.png", np.zeros((6, 6), np.uint8))  # a tile without any road
    assert not open_dataset("folder", tmp_path, foreground="bright")[0].label.any()
    assert open_dataset("folder", tmp_path, foreground="dark")[0].label.all()
    write_array(tmp_path / "label" / "a.png", np.full((6, 6), 255, np.uint8))  # the top level of uint8
    assert open_dataset("folder", tmp_path, foreground="bright")[0].label.all()
    assert not open_dataset("folder", tmp_path, foreground="dark")[0].label.any()
    write_array(tmp_path / "label" / "a.png", np.ones((6, 6), np.uint8))  # 0/1 says fg, 0/255 says neither
    with pytest.raises(ValueError, match=r"a\.png: label holds the single value 1, which could be the foreground "
                                         r"or the background level .*use foreground 'nonzero'"):
        open_dataset("folder", tmp_path, foreground="bright")[0]
    assert open_dataset("folder", tmp_path)[0].label.all()  # nonzero: 1 != 0


def test_more_than_two_values_refused_unless_nonzero(tmp_path):
    lab = np.array([[0, 100, 128, 255]] * 4, np.uint8)
    write_array(tmp_path / "image" / "a.png", np.zeros((4, 4), np.uint8))
    write_array(tmp_path / "label" / "a.png", lab)
    for rule in ("bright", "dark"):
        with pytest.raises(ValueError, match=r"a\.png: 'bright'/'dark' need a label with exactly two values "
                                             r"\(e\.g\. 0/1 or 0/255\), found 0, 100, 128, 255; use foreground 'nonzero'"):
            open_dataset("folder", tmp_path, foreground=rule)[0]
    assert open_dataset("folder", tmp_path)[0].label[0].tolist() == [False, True, True, True]


def test_binarize_float_and_bool():
    assert binarize(np.array([0.0, 1.0]), "bright").tolist() == [False, True]
    assert binarize(np.array([0.2, 0.7]), "bright").tolist() == [False, True]  # two levels: 0.7 is the high one
    assert binarize(np.array([True, False]), "dark").tolist() == [False, True]
    with pytest.raises(ValueError, match=r"x: label holds non-finite values"):
        binarize(np.array([0.0, np.nan]), "bright", name="x")
    with pytest.raises(TypeError, match=r"x: cannot binarize a label of dtype <U1"):
        binarize(np.array(["a"]), "bright", name="x")


def test_foreground_fraction_warning():
    text = foreground_fraction_warning(0.7, "bright")
    assert text is not None and "70.0%" in text and "--label-foreground dark" in text
    assert foreground_fraction_warning(0.7, "dark", what="ground truth 07").count("--label-foreground bright") == 1
    assert "ground truth 07" in foreground_fraction_warning(0.7, "dark", what="ground truth 07")
    assert foreground_fraction_warning(0.5, "nonzero") is None  # exactly half: not above 50 %
    mask = np.zeros((10, 10), bool)
    mask[:6] = True  # 60 of 100
    assert "60.0%" in foreground_fraction_warning(mask, "nonzero", "foreground=")
    assert "use foreground=dark" in foreground_fraction_warning(mask, "nonzero", "foreground=")
    assert foreground_fraction_warning(~mask, "nonzero") is None
    with pytest.raises(ValueError, match=r"mask_or_fraction must be in \[0, 1\], got 1\.5"):
        foreground_fraction_warning(1.5, "bright")
    with pytest.raises(ValueError, match=r"rule must be one of .*got 'white'"):
        foreground_fraction_warning(0.1, "white")
    with pytest.raises(TypeError, match=r"bool mask or a number, got an array of dtype uint8"):
        foreground_fraction_warning(mask.astype(np.uint8), "bright")


def test_datasets_know_their_polarity(tmp_path):
    write_array(tmp_path / "image" / "00.png", np.zeros((8, 8), np.uint8))
    write_array(tmp_path / "label" / "00.png", np.eye(8, dtype=bool))
    assert open_dataset("isbi2012", tmp_path).label_foreground == "dark"
    assert open_dataset("folder", tmp_path).label_foreground == "nonzero"
    assert open_dataset("folder", tmp_path, foreground="bright").label_foreground == "bright"
    rgb = tmp_path / "rgb"
    write_array(rgb / "image" / "r.png", np.zeros((8, 8, 3), np.uint8))
    write_array(rgb / "label" / "r.png", np.eye(8, dtype=bool))
    assert open_dataset("roads", rgb).label_foreground == "bright"
    assert open_dataset("roads", rgb, foreground="nonzero").label_foreground == "nonzero"
    assert open_dataset("vessels2d", n=1).label_foreground == "nonzero"
    assert "label_foreground='dark'" in repr(open_dataset("isbi2012", tmp_path))


def test_empty_files_refused_when_opened(tmp_path):
    _pair_folder(tmp_path, ".png", n=2)
    (tmp_path / "label" / "c1.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty \(0-byte\) file\(s\).*label/c1\.png"):
        open_dataset("folder", tmp_path)
    with pytest.raises(ValueError, match=r"empty \(0-byte\) file\(s\).*label/c1\.png"):
        open_dataset("isbi2012", tmp_path)
    tif = tmp_path / "tif"
    tif.mkdir()
    (tif / "train-volume.tif").write_bytes(b"")
    (tif / "train-labels.tif").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty \(0-byte\) file\(s\).*train-volume\.tif, .*train-labels\.tif"):
        open_dataset("isbi2012", tif)


def test_folder_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="data root not found"):
        open_dataset("folder", tmp_path / "nowhere")
    (tmp_path / "image").mkdir()
    with pytest.raises(FileNotFoundError, match=r"label folder not found: .*label"):
        open_dataset("folder", tmp_path)


def test_folder_empty_image_folder(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "label").mkdir()
    (tmp_path / "image" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="no image files found"):
        open_dataset("folder", tmp_path)


def test_folder_unpaired_files_are_listed(tmp_path):
    _pair_folder(tmp_path, ".npy", n=2)
    write_array(tmp_path / "image" / "extra.npy", np.zeros((20, 24)))
    write_array(tmp_path / "label" / "orphan.npy", np.zeros((20, 24)))
    with pytest.raises(ValueError, match=r"unpaired files; images without a label: extra\.npy; labels without an image: orphan\.npy"):
        open_dataset("folder", tmp_path)


def test_folder_duplicate_stems(tmp_path):
    _pair_folder(tmp_path, ".npy", n=1)
    write_array(tmp_path / "image" / "c0.tif", np.zeros((20, 24), np.uint8))
    with pytest.raises(ValueError, match=r"several files share a name: c0\.npy / c0\.tif"):
        open_dataset("folder", tmp_path)


def test_folder_unreadable_file_named(tmp_path):
    _pair_folder(tmp_path, ".png", n=1)
    (tmp_path / "image" / "c0.png").write_bytes(b"not a png")
    ds = open_dataset("folder", tmp_path)
    with pytest.raises(ValueError, match=r"c0\.png: could not read file"):
        ds[0]


def test_folder_shape_mismatch_named(tmp_path):
    write_array(tmp_path / "image" / "a.npy", np.zeros((8, 8)))
    write_array(tmp_path / "label" / "a.npy", np.zeros((8, 9)))
    with pytest.raises(ValueError, match=r"a\.npy: image shape \(8, 8\) does not match label a\.npy shape \(8, 9\)"):
        open_dataset("folder", tmp_path)[0]


def test_index_errors(tmp_path):
    _pair_folder(tmp_path, ".npy", n=2)
    ds = open_dataset("folder", tmp_path)
    with pytest.raises(IndexError, match="out of range for 2 cases"):
        ds[2]
    with pytest.raises(TypeError, match="int or slice"):
        ds["c0"]
    assert [c.id for c in ds[0:2]] == ["c0", "c1"]


# ------------------------------------------------------------------ ISBI 2012


def test_isbi_tiff_stacks(tmp_path):
    import tifffile

    rng = np.random.default_rng(2)
    vol = rng.integers(0, 255, (4, 16, 16)).astype(np.uint8)
    lab = np.where(rng.random((4, 16, 16)) < 0.25, 0, 255).astype(np.uint8)  # 0 = membrane
    tifffile.imwrite(tmp_path / "train-volume.tif", vol, photometric="minisblack")  # 4 pages
    tifffile.imwrite(tmp_path / "train-labels.tif", lab)  # tifffile's default layout, read all the same
    ds = open_dataset("isbi2012", tmp_path)
    assert ds.ids == ["00", "01", "02", "03"]
    case = ds[2]
    np.testing.assert_array_equal(case.image[0], vol[2])
    np.testing.assert_array_equal(case.label, lab[2] == 0)


def test_isbi_tiff_mismatch_and_missing(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "train-volume.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(FileNotFoundError, match="train-labels.tif not found"):
        open_dataset("isbi2012", tmp_path)
    tifffile.imwrite(tmp_path / "train-labels.tif", np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(ValueError, match=r"train-labels\.tif: label stack shape \(2, 8, 8\) does not match"):
        open_dataset("isbi2012", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="has neither train-volume.tif nor an image/ folder"):
        open_dataset("isbi2012", empty)
    with pytest.raises(ValueError, match="layout must be"):
        open_dataset("isbi2012", tmp_path, layout="zip")


def test_isbi_png_folder(tmp_path):
    lab = np.full((12, 12), 255, np.uint8)
    lab[5:7] = 0
    write_array(tmp_path / "image" / "00.png", np.full((12, 12), 9, np.uint8))
    write_array(tmp_path / "label" / "00.png", lab)
    case = open_dataset("isbi2012", tmp_path)[0]
    assert case.label.sum() == 24 and case.label[5:7].all()


def test_isbi_shared_data_as_shipped():
    if not ISBI.is_dir():
        pytest.skip(f"shared ISBI 2012 data not found at {ISBI}")
    from skimage.io import imread

    ds = open_dataset("isbi2012", ISBI)
    assert len(ds) == 20 and ds.ids[0] == "00" and ds.ids[-1] == "19"
    case = ds[7]
    assert case.image.shape == (1, 512, 512) and case.label.shape == (512, 512)
    raw = imread(ISBI / "label" / "07.png")
    np.testing.assert_array_equal(case.label, raw < 128)
    assert 0.1 < case.label.mean() < 0.4  # membranes are a minority, not the cell interiors


# ------------------------------------------------------------------ CREMI


def _write_cremi(path: Path, raw: np.ndarray, ids: np.ndarray) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("volumes/raw", data=raw)
        f.create_dataset("volumes/labels/neuron_ids", data=ids)


def test_membranes_from_ids_exact_width():
    ids = np.zeros((6, 20), np.uint64)
    ids[:, 10:] = 7
    for w in (1, 2, 3, 5):
        band = membranes_from_ids(ids, w)
        assert band.sum(axis=1).tolist() == [w] * 6, w
        cols = np.nonzero(band[0])[0]
        assert cols.max() - cols.min() + 1 == w  # one contiguous band
        assert (cols.min() <= 9 and cols.max() >= 10) if w >= 2 else cols[0] in (9, 10)  # on the boundary


def test_membranes_from_ids_background_and_errors():
    ids = np.full((5, 5), 3, np.int64)
    ids[2, 2] = 0
    out = membranes_from_ids(ids, 2, background_ids=(0,))
    assert out[2, 2] and out.sum() == 9  # the background pixel and the band around it
    with pytest.raises(ValueError, match="width must be a positive integer"):
        membranes_from_ids(ids, 0)


def test_cremi_sections(tmp_path):
    raw = np.random.default_rng(3).integers(0, 255, (3, 30, 30)).astype(np.uint8)
    ids = np.ones((3, 30, 30), np.uint64)
    ids[:, :, 15:] = 2
    ids[1, 0:3, 0:3] = np.uint64(2**64 - 1)  # "no label"
    _write_cremi(tmp_path / "sample_A.hdf", raw, ids)
    ds = open_dataset("cremi", tmp_path)
    assert ds.ids == ["sample_A_000", "sample_A_001", "sample_A_002"]
    c0 = ds[0]
    np.testing.assert_array_equal(c0.image[0], raw[0])
    assert c0.label.sum(axis=1).tolist() == [5] * 30  # default width 5
    c1 = open_dataset("cremi", tmp_path / "sample_A.hdf", width=3)[1]
    assert c1.label[0:3, 0:3].all() and c1.meta["background_fraction"] == pytest.approx(9 / 900)
    c1_none = open_dataset("cremi", tmp_path, width=3, background_ids=())[1]
    assert c1_none.label[1, 1] == False  # noqa: E712 - id treated as a neuron when no background ids


@pytest.mark.parametrize("first", [2**60 + 1, 2**64 - 4, 2**53])
def test_membranes_between_huge_ids(first):
    # two neurons whose ids differ by 1 but coincide as float64: the band must still be 5 px per row
    ids = np.full((6, 20), first, np.uint64)
    ids[:, 10:] = np.uint64(first + 1)
    band = membranes_from_ids(ids, 5)
    assert band.sum(axis=1).tolist() == [5] * 6
    # hand count: a 6-wide window (offsets -3..+2) at column c sees both ids when c - 3 <= 9 and
    # c + 2 >= 10, i.e. columns 8..12
    assert band[:, 8:13].all()


def test_membranes_between_huge_int64_ids():
    ids = np.full((4, 12), 2**62 + 1, np.int64)
    ids[:, 6:] = 2**62 + 2
    assert membranes_from_ids(ids, 3).sum(axis=1).tolist() == [3] * 4


def test_background_ids_match_exactly():
    # 2**64 - 3 is a neuron; the background ids 2**64 - 1 and 2**64 - 2 round to the same float64
    ids = np.full((5, 5), 2**64 - 3, np.uint64)
    ids[0, 0] = np.uint64(2**64 - 2)
    out = membranes_from_ids(ids, 1, background_ids=(0, 2**64 - 1, 2**64 - 2))
    assert out[0, 0]
    band = np.zeros((5, 5), bool)  # a 2 x 2 window sees two ids only next to (0, 0)
    band[0:2, 0:2] = True
    np.testing.assert_array_equal(out, band)
    # a background id that the dtype cannot hold matches nothing (and does not overflow)
    small = np.full((3, 3), 5, np.int64)
    assert not membranes_from_ids(small, 1, background_ids=(2**64 - 1, -1)).any()


def test_cremi_huge_ids_end_to_end(tmp_path):
    raw = np.zeros((2, 8, 20), np.uint8)
    ids = np.full((2, 8, 20), 2**64 - 4, np.uint64)
    ids[:, :, 10:] = np.uint64(2**64 - 3)
    _write_cremi(tmp_path / "big.hdf", raw, ids)
    case = open_dataset("cremi", tmp_path)[1]
    assert case.label.sum(axis=1).tolist() == [5] * 8
    assert case.meta["background_fraction"] == 0.0


def _write_padded(path: Path, raw: np.ndarray, ids: np.ndarray, offset_nm, resolution=(40.0, 4.0, 4.0),
                  label_resolution=True) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        r = f.create_dataset("volumes/raw", data=raw)
        if resolution is not None:
            r.attrs["resolution"] = np.asarray(resolution, np.float64)
        lab = f.create_dataset("volumes/labels/neuron_ids", data=ids)
        if resolution is not None and label_resolution:
            lab.attrs["resolution"] = np.asarray(resolution, np.float64)
        if offset_nm is not None:
            lab.attrs["offset"] = np.asarray(offset_nm, np.float64)


def test_cremi_padded_file_reads_like_its_cropped_twin(tmp_path):
    rng = np.random.default_rng(11)
    raw = rng.integers(0, 255, (10, 40, 44)).astype(np.uint8)
    ids = np.ones((4, 20, 22), np.uint64)
    ids[:, :, 11:] = 2
    # offset (120, 40, 60) nm at (40, 4, 4) nm per voxel = (3, 10, 15) voxels (worked out by hand)
    _write_padded(tmp_path / "sample_A_padded.hdf", raw, ids, (120.0, 40.0, 60.0))
    cropped = tmp_path / "cropped"
    cropped.mkdir()
    _write_cremi(cropped / "sample_A.hdf", raw[3:7, 10:30, 15:37], ids)
    padded_ds = open_dataset("cremi", tmp_path / "sample_A_padded.hdf")
    twin = open_dataset("cremi", cropped)
    assert len(padded_ds) == 4 and padded_ds.ids[0] == "sample_A_padded_000"
    for z in range(4):
        a, b = padded_ds[z], twin[z]
        np.testing.assert_array_equal(a.image[0], raw[3 + z, 10:30, 15:37])
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.label, b.label)
        assert a.label.sum(axis=1).tolist() == [5] * 20
    assert padded_ds[0].meta["raw_offset"] == (3, 10, 15)
    # a cropped file that kept the padded file's offset attribute: same block, read as cropped
    _write_padded(cropped / "kept_offset.hdf", raw[3:7, 10:30, 15:37], ids, (120.0, 40.0, 60.0))
    kept = open_dataset("cremi", cropped / "kept_offset.hdf")[2]
    np.testing.assert_array_equal(kept.image[0], raw[5, 10:30, 15:37])
    assert "raw_offset" not in kept.meta


def test_cremi_padded_errors(tmp_path):
    raw = np.zeros((6, 20, 20), np.uint8)
    ids = np.ones((2, 10, 10), np.uint64)
    cases = {
        "nooffset.hdf": (dict(offset_nm=None), r"does not match volumes/labels/neuron_ids shape \(2, 10, 10\) and "
                                               r"volumes/labels/neuron_ids has no 'offset' attribute"),
        "half.hdf": (dict(offset_nm=(40.0, 6.0, 0.0)), r"label offset \[40\.0, 6\.0, 0\.0\] nm is not a whole number "
                                                       r"of voxels"),
        "outside.hdf": (dict(offset_nm=(40.0, 48.0, 0.0)), r"the label offset \[1, 12, 0\] voxels puts the labels "
                                                           r"outside the raw volume"),
        "nores.hdf": (dict(offset_nm=(0.0, 0.0, 0.0), resolution=None), r"has an 'offset' attribute \[0\.0, 0\.0, "
                                                                         r"0\.0\] \(nm\) but no volume has a 'resolution'"),
    }
    for name, (kw, message) in cases.items():
        _write_padded(tmp_path / name, raw, ids, **kw)
        with pytest.raises(ValueError, match=re.escape(name) + ".*" + message):
            open_dataset("cremi", tmp_path / name)
    # the raw resolution alone is enough (labels without their own resolution attribute)
    _write_padded(tmp_path / "rawres.hdf", raw, ids, (80.0, 20.0, 40.0), label_resolution=False)
    assert open_dataset("cremi", tmp_path / "rawres.hdf")[0].meta["raw_offset"] == (2, 5, 10)
    (tmp_path / "zero.hdf").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty \(0-byte\) file\(s\).*zero\.hdf"):
        open_dataset("cremi", tmp_path / "zero.hdf")


def test_cremi_errors(tmp_path):
    import h5py

    with pytest.raises(ValueError, match="no HDF5 files"):
        open_dataset("cremi", tmp_path)
    _write_cremi(tmp_path / "pad.hdf", np.zeros((2, 12, 12), np.uint8), np.zeros((2, 10, 10), np.uint64))
    with pytest.raises(ValueError, match=r"pad\.hdf: volumes/raw shape \(2, 12, 12\) does not match .*no 'offset'"):
        open_dataset("cremi", tmp_path)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("volumes/raw", data=np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match=r"other\.h5: not a CREMI file, missing dataset"):
        open_dataset("cremi", tmp_path / "other.h5")
    (tmp_path / "broken.hdf5").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"broken\.hdf5: could not read HDF5"):
        open_dataset("cremi", tmp_path / "broken.hdf5")
    with pytest.raises(ValueError, match="width must be a positive int"):
        open_dataset("cremi", tmp_path / "pad.hdf", width=0)


# ------------------------------------------------------------------ roads


def test_roads_massachusetts_layout_and_blank_skip(tmp_path):
    import tifffile

    base = tmp_path / "tiff"
    rgb = np.random.default_rng(4).integers(0, 200, (16, 16, 3)).astype(np.uint8)
    blank = rgb.copy()
    blank[:12] = 255  # 75 % white no-data
    mask = np.zeros((16, 16), np.uint8)
    mask[7:9] = 255
    for name, img in (("a", rgb), ("b", blank)):
        (base / "train").mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(base / "train" / f"{name}.tiff", img, photometric="rgb")
        write_array(base / "train_labels" / f"{name}.tif", mask)
    ds = open_dataset("roads", tmp_path)
    assert ds.ids == ["a", "b"]
    case = ds[0]
    assert case.image.shape == (3, 16, 16)
    np.testing.assert_array_equal(case.image[2], rgb[..., 2])
    np.testing.assert_array_equal(case.label, mask > 0)
    assert open_dataset("roads", tmp_path, max_blank=0.5).ids == ["a"]
    assert open_dataset("roads", tmp_path, max_blank=0.8).ids == ["a", "b"]
    for name in ("a", "b"):
        tifffile.imwrite(base / "train" / f"{name}.tiff", blank, photometric="rgb")
    with pytest.raises(ValueError, match="every tile in .* is more than 50% blank"):
        open_dataset("roads", tmp_path, max_blank=0.5)


def test_roads_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="found neither"):
        open_dataset("roads", tmp_path)
    write_array(tmp_path / "image" / "g.png", np.zeros((8, 8), np.uint8))
    write_array(tmp_path / "label" / "g.png", np.zeros((8, 8), bool))
    with pytest.raises(ValueError, match=r"g\.png: expected a 2D RGB image"):
        open_dataset("roads", tmp_path)[0]
    with pytest.raises(ValueError, match=r"max_blank must be in \[0, 1\]"):
        open_dataset("roads", tmp_path, max_blank=2)


# ------------------------------------------------------------------ ImageCAS


def _write_cas(root: Path, name: str, vol_xyz: np.ndarray, lab_xyz: np.ndarray) -> None:
    import nibabel as nib

    root.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(vol_xyz, np.eye(4)), str(root / f"{name}.img.nii.gz"))
    nib.save(nib.Nifti1Image(lab_xyz, np.eye(4)), str(root / f"{name}.label.nii.gz"))


def test_imagecas_axes_and_hu(tmp_path):
    rng = np.random.default_rng(5)
    vol = rng.uniform(-1500, 2000, (10, 8, 6)).astype(np.float32)  # NIfTI x, y, z
    lab = (rng.random((10, 8, 6)) < 0.1).astype(np.uint8)
    _write_cas(tmp_path / "sub", "2", vol, lab)
    _write_cas(tmp_path, "10", vol, lab)
    ds = open_dataset("imagecas", tmp_path)
    assert ds.ids == ["2", "10"]
    case = ds[0]
    assert case.image.shape == (1, 6, 8, 10)  # (D, H, W) = (z, y, x)
    np.testing.assert_array_equal(case.image[0], np.clip(vol, -200, 800).transpose(2, 1, 0))
    np.testing.assert_array_equal(case.label, lab.transpose(2, 1, 0) > 0)
    raw = open_dataset("imagecas", tmp_path, hu_window=None)[0]
    assert raw.image.min() < -1000


def test_imagecas_resample(tmp_path):
    vol = np.linspace(0, 100, 16 * 16 * 8, dtype=np.float32).reshape(16, 16, 8)
    lab = np.zeros((16, 16, 8), np.uint8)
    lab[4:12, 4:12, 2:6] = 1  # a block aligned with the 2x grid
    lab[0, 0, 0] = 1  # a single voxel: kept by nearest at a sampled position? area drops it
    _write_cas(tmp_path, "1", vol, lab)
    near = open_dataset("imagecas", tmp_path, resample=(4, 8, 8), hu_window=None, label_resample="nearest")[0]
    area = open_dataset("imagecas", tmp_path, resample=(4, 8, 8), hu_window=None, label_resample="area")[0]
    assert near.image.shape == (1, 4, 8, 8) and near.label.shape == (4, 8, 8)
    block = np.zeros((4, 8, 8), bool)
    block[1:3, 2:6, 2:6] = True
    np.testing.assert_array_equal(area.label, block)
    # independent reference for the linear image: the mean of each 2x2x2 block of a linear ramp
    ref = vol.transpose(2, 1, 0).reshape(4, 2, 8, 2, 8, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(near.image[0], ref, rtol=1e-5, atol=1e-4)
    assert open_dataset("imagecas", tmp_path, resample="icas-d")[0].image.shape == (1, 72, 128, 128)


def test_resample_label_modes_on_a_thin_line():
    # a 1-voxel line along x at (z, y) = (4, 4) in 16^3, downsampled 2x: every 2x2x2 block on it
    # holds 2 of 8 label voxels (a quarter), and nearest-exact samples only odd indices.
    from toposeg.data.imagecas import resample_label

    line = np.zeros((16, 16, 16), bool)
    line[4, 4, :] = True
    coarse = np.zeros((8, 8, 8), bool)
    coarse[2, 2, :] = True  # by hand: the blocks containing the line
    assert not resample_label(line, (8, 8, 8), "nearest").any()   # the paper's: the vessel vanishes
    assert not resample_label(line, (8, 8, 8), "area").any()      # 0.25 < 0.5
    assert not resample_label(line, (8, 8, 8), "linear").any()
    np.testing.assert_array_equal(resample_label(line, (8, 8, 8), "any"), coarse)
    np.testing.assert_array_equal(resample_label(line, (8, 8, 8), "skeleton"), coarse)
    np.testing.assert_array_equal(resample_label(line, (8, 8, 8)), coarse)  # the default
    with pytest.raises(ValueError, match=r"label_resample must be one of \['skeleton', 'nearest', 'linear', "
                                         r"'area', 'any'\], got 'cubic'"):
        resample_label(line, (8, 8, 8), "cubic")
    with pytest.raises(ValueError, match=r"resample shape \(8, 8\) must be 3 positive sizes"):
        resample_label(line, (8, 8), "area")


def test_resample_label_keeps_a_broken_diagonal_connected():
    # a 26-connected staircase of single voxels (1 component) stays one component at 2x
    from toposeg.data.imagecas import resample_label

    stair = np.zeros((20, 20, 20), bool)
    for k in range(20):
        stair[k, k, 10] = True
    s26 = np.ones((3, 3, 3), bool)
    assert ndimage.label(stair, s26)[1] == 1
    skel = resample_label(stair, (10, 10, 10), "skeleton")
    assert ndimage.label(skel, s26)[1] == 1
    # the coarse voxels (k//2, k//2, 5) by hand
    expected = np.zeros((10, 10, 10), bool)
    for k in range(10):
        expected[k, k, 5] = True
    np.testing.assert_array_equal(skel, expected)


def test_resample_label_skeleton_never_drops_a_component(monkeypatch):
    # even if the thinning returned nothing, every component keeps a voxel (two 2x2x2 cubes,
    # each covering 1/8 of a coarse voxel at 4x: area drops both)
    import toposeg.skeleton
    from toposeg.data.imagecas import resample_label

    monkeypatch.setattr(toposeg.skeleton, "skeletonize", lambda m, **kw: np.zeros_like(m, dtype=bool))
    cubes = np.zeros((16, 16, 16), bool)
    cubes[0:2, 0:2, 0:2] = True
    cubes[9:11, 9:11, 13:15] = True
    out = resample_label(cubes, (4, 4, 4), "skeleton")
    expected = np.zeros((4, 4, 4), bool)
    expected[0, 0, 0] = expected[2, 2, 3] = True  # by hand: the coarse voxels holding each cube's first voxel
    np.testing.assert_array_equal(out, expected)


def test_imagecas_polarity_dupes_and_empty(tmp_path):
    _write_cas(tmp_path, "1", np.zeros((4, 4, 4), np.float32), np.eye(4, dtype=np.uint8)[:, :, None].repeat(4, 2))
    assert open_dataset("imagecas", tmp_path).label_foreground == "nonzero"
    _write_cas(tmp_path / "sub", "1", np.zeros((4, 4, 4), np.float32), np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"imagecas: two files give the id '1'"):
        open_dataset("imagecas", tmp_path)
    (tmp_path / "sub" / "1.img.nii.gz").unlink()
    (tmp_path / "sub" / "1.label.nii.gz").unlink()
    (tmp_path / "2.img.nii.gz").write_bytes(b"")
    (tmp_path / "2.label.nii.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty \(0-byte\) file\(s\).*2\.img\.nii\.gz, .*2\.label\.nii\.gz"):
        open_dataset("imagecas", tmp_path)


def test_imagecas_errors(tmp_path):
    with pytest.raises(ValueError, match=r"no '\*\.img\.nii\.gz'"):
        open_dataset("imagecas", tmp_path)
    _write_cas(tmp_path, "1", np.zeros((4, 4, 4), np.float32), np.zeros((4, 4, 4), np.uint8))
    (tmp_path / "1.label.nii.gz").rename(tmp_path / "x.label.nii.gz")
    with pytest.raises(ValueError, match=r"images without a label: \[1\.img\.nii\.gz\]; labels without an image: \[x\.label\.nii\.gz\]"):
        open_dataset("imagecas", tmp_path)
    with pytest.raises(ValueError, match="resample must be None, 'icas-d'"):
        open_dataset("imagecas", tmp_path, resample="small")
    with pytest.raises(ValueError, match="label_resample must be one of"):
        open_dataset("imagecas", tmp_path, label_resample="cubic")
    with pytest.raises(ValueError, match="hu_window must be"):
        open_dataset("imagecas", tmp_path, hu_window=(5, 1))

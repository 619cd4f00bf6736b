import numpy as np
import pytest

from toposeg.io import read_array, stem, write_array


@pytest.mark.parametrize("name", ["a.png", "a.tif", "a.nii.gz", "a.npy"])
def test_round_trip(tmp_path, name):
    arr = (np.arange(48).reshape(6, 8) % 7).astype(np.uint8)
    assert np.array_equal(read_array(write_array(tmp_path / name, arr)), arr)


def test_bool_png_is_0_255(tmp_path):
    mask = np.eye(5, dtype=bool)
    assert set(np.unique(read_array(write_array(tmp_path / "m.png", mask)))) == {0, 255}


def test_stem_handles_double_extension():
    assert stem("dir/case_01.nii.gz") == "case_01" and stem("x.png") == "x"


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="unsupported file type '.bmp'"):
        read_array(tmp_path / "a.bmp")
    with pytest.raises(FileNotFoundError, match="a.png: no such file"):
        read_array(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.png: could not read file"):
        read_array(tmp_path / "bad.png")


# ---------------------------------------------------------------- files and folders


def test_empty_file_says_so(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"e\.png: file is empty \(0 bytes\)"):
        read_array(tmp_path / "e.png")


def test_folder_given_for_a_file(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(IsADirectoryError, match=r"d\.png: is a folder, expected a file"):
        read_array(tmp_path / "d.png")


def test_grey_mask_accepts_equal_channels_and_refuses_colour(tmp_path):
    from toposeg.io import grey_mask

    grey = np.array([[0, 255], [255, 0]], np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    np.testing.assert_array_equal(grey_mask(rgb, "m.png"), grey)
    colour = rgb.copy()
    colour[0, 0, 1] = 9
    with pytest.raises(ValueError, match=r"m\.png: a label must be grayscale, got a colour image of shape \(2, 2, 3\)"):
        grey_mask(colour, "m.png", "label")
    assert grey_mask(rgb, "m.npy").shape == (2, 2, 3)  # only raster files are squeezed


def test_list_images_by_stem(tmp_path):
    from toposeg.io import list_images

    for name in ("b.png", "a.nii.gz", "c.npy", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    found = list_images(tmp_path, "image")
    assert list(found) == ["a", "b", "c"] and found["a"].name == "a.nii.gz"
    assert list(list_images(tmp_path, "pred", suffix="b")) == ["a", "", "c"]  # suffix stripped from stems


def test_list_images_errors(tmp_path):
    from toposeg.io import list_images

    with pytest.raises(FileNotFoundError, match=r"--gt folder not found: .*nowhere"):
        list_images(tmp_path / "nowhere", "--gt")
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match=r"--gt .*f\.png: is a file, expected a folder"):
        list_images(tmp_path / "f.png", "--gt")
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match=r"image folder .*d: no image files found"):
        list_images(tmp_path / "d")
    (tmp_path / "d" / "x.png").write_bytes(b"x")
    (tmp_path / "d" / "x.tif").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"several files share a name: x\.png / x\.tif"):
        list_images(tmp_path / "d")


def test_pair_by_stem():
    from pathlib import Path

    from toposeg.io import pair_by_stem

    a = {k: Path(f"{k}.png") for k in ("1", "2", "3")}
    b = {k: Path(f"{k}.tif") for k in ("2", "3", "4")}
    with pytest.raises(ValueError, match=r"root: unpaired files; images without a label: 1\.png; "
                                         r"labels without an image: 4\.tif"):
        pair_by_stem(a, b, "root")
    assert pair_by_stem(a, b, "root", subset=True) == [("2", a["2"], b["2"]), ("3", a["3"], b["3"])]
    with pytest.raises(ValueError, match=r"root: no matching pairs between 1\.png and 9\.tif"):
        pair_by_stem({"1": a["1"]}, {"9": Path("9.tif")}, "root", subset=True)
    assert pair_by_stem({"x": a["1"]}, {"x": b["2"]}, "r") == [("x", a["1"], b["2"])]


def test_prediction_files_one_rule(tmp_path):
    """evaluate, graph, render and mine read predictions by the same rule."""
    from toposeg.io import binary_mask, prediction_probabilities, read_prediction_mask

    assert binary_mask(np.array([0, 1], np.uint16)).tolist() == [False, True]  # 0/1 is binary, not 1/65535
    assert binary_mask(np.array([0, 255], np.uint8)).tolist() == [False, True]
    assert binary_mask(np.array([0, 128], np.uint8)) is None
    np.testing.assert_allclose(prediction_probabilities(np.array([0, 51, 255], np.uint8), "p"), [0, 0.2, 1], atol=1e-7)
    np.testing.assert_allclose(prediction_probabilities(np.array([0, 65535], np.uint16), "p"), [0, 1])
    with pytest.raises(ValueError, match=r"p: integer prediction of dtype int64 is neither binary nor 8/16-bit"):
        prediction_probabilities(np.array([0, 7]), "p")
    with pytest.raises(ValueError, match=r"p: prediction must hold probabilities in \[0, 1\], got values in \[-1, 2\]"):
        prediction_probabilities(np.array([-1.0, 2.0]), "p")
    write_array(tmp_path / "prob.png", np.array([[0, 127, 128, 255]], np.uint8))
    assert read_prediction_mask(tmp_path / "prob.png", 0.5).tolist() == [[False, False, True, True]]  # 127/255 < 0.5
    with pytest.raises(ValueError, match=r"prob\.png: prediction is not a binary mask .*pass --threshold T"):
        read_prediction_mask(tmp_path / "prob.png")


def test_folder_without_an_extension_is_a_folder_not_an_unsupported_type(tmp_path):
    (tmp_path / "labels").mkdir()
    with pytest.raises(IsADirectoryError) as exc:
        read_array(tmp_path / "labels")
    assert str(exc.value) == (f"{tmp_path / 'labels'}: is a folder, expected a file "
                              "(.png, .jpg, .jpeg, .tif, .tiff, .nii, .nii.gz, .npy)")
    assert "unsupported" not in str(exc.value)


def test_nan_and_inf_in_a_probability_map_are_named_and_counted(tmp_path):
    from toposeg.io import check_finite, prediction_probabilities, read_prediction_mask

    prob = np.full((4, 5), 0.25, np.float32)
    prob[0, 0] = prob[2, 3] = prob[3, 4] = np.nan  # 3 NaN pixels, counted by hand
    with pytest.raises(ValueError, match=r"^p: prediction contains non-finite values \(3 NaN of 20 pixels\); expected probabilities"):
        prediction_probabilities(prob, "p")
    np.save(tmp_path / "prob.npy", prob)
    for threshold in (None, 0.5):  # with or without --threshold: the same message, not "not a binary mask"
        with pytest.raises(ValueError, match=r"prob\.npy: prediction contains non-finite values \(3 NaN of 20 pixels\)"):
            read_prediction_mask(tmp_path / "prob.npy", threshold)
    vol = np.zeros((2, 3, 3))
    vol[1, 1, 1] = -np.inf
    with pytest.raises(ValueError, match=r"^v: prediction contains non-finite values \(1 infinite of 18 voxels\)"):
        check_finite(vol, "v")
    assert check_finite(np.array([0, 1], np.uint8), "i").tolist() == [0, 1]  # integers: nothing to check


@pytest.mark.parametrize("name, content", [
    ("bad.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20),  # PNG magic, broken body (SimpleITK/PIL fail)
    ("bad.png", b"not an image at all"),
    ("bad.tif", b"II*\x00garbage"),  # tifffile returns an empty array here, no error
    ("bad.nii.gz", b"not gzip"),
    ("bad.npy", b"\x93NUMPY garbage"),
])
def test_unreadable_image_is_one_short_line_without_reader_internals(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError) as exc:
        read_array(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: could not read file as an image: ")
    assert "\n" not in msg and len(msg) < len(str(path)) * 2 + 200
    for internal in ("sitk", ".cxx", "Exception thrown", "Traceback", "RuntimeError"):
        assert internal not in msg

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

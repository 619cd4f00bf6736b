"""`toposeg predict` end to end with a tiny U-Net checkpoint."""

import numpy as np
import pytest
import torch

from toposeg.cli import main
from toposeg.data.transforms import normalize
from toposeg.engine.checkpoint import save_checkpoint
from toposeg.inference import sliding_window_predict
from toposeg.io import read_array, write_array
from toposeg.models import UNet


def make_checkpoint(path, spatial_dims=2, in_channels=1):
    torch.manual_seed(0)
    params = dict(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=1, features=(4, 8, 16))
    model = UNet(**params).eval()
    save_checkpoint(path, model, name="unet", params=params)
    return model


def test_predict_png_folder_matches_library_and_evaluate_reads_it(tmp_path, capsys):
    model = make_checkpoint(tmp_path / "m.pt")
    rng = np.random.default_rng(0)
    images = {"x1": (rng.random((70, 45)) * 255).astype(np.uint8), "x2": (rng.random((33, 50)) * 255).astype(np.uint8)}
    for k, v in images.items():
        write_array(tmp_path / "in" / f"{k}.png", v)
    out = tmp_path / "out"
    rc = main(["predict", "--checkpoint", str(tmp_path / "m.pt"), "--input", str(tmp_path / "in"), "--out", str(out),
               "--window", "32", "--overlap", "0.5", "--device", "cpu", "--no-progress"])
    assert rc == 0
    for k, v in images.items():
        prob_png = read_array(out / f"{k}_prob.png")
        mask = read_array(out / f"{k}_mask.png")
        assert prob_png.shape == v.shape and prob_png.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        ref = sliding_window_predict(model, torch.from_numpy(normalize(v[None].astype(np.float32))), window=32,
                                     overlap=0.5)[0].numpy()
        np.testing.assert_allclose(prob_png, np.round(ref * 255), atol=1)
        np.testing.assert_array_equal(mask > 0, ref > 0.5)
    # the predict layout feeds straight into evaluate (*_mask files, *_prob ignored)
    gt = tmp_path / "gt"
    for k, v in images.items():
        write_array(gt / f"{k}.png", v > 128)
    assert main(["evaluate", "--pred", str(out), "--gt", str(gt), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0


def test_predict_single_nifti_volume_keeps_affine(tmp_path):
    nib = pytest.importorskip("nibabel")
    make_checkpoint(tmp_path / "m3.pt", spatial_dims=3)
    vol = np.random.default_rng(1).random((10, 21, 18)).astype(np.float32)
    affine = np.diag([0.5, 0.7, 2.0, 1.0])
    nib.save(nib.Nifti1Image(vol, affine), str(tmp_path / "v.nii.gz"))
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tmp_path / "m3.pt"), "--input", str(tmp_path / "v.nii.gz"),
                 "--out", str(out), "--window", "8", "16", "16", "--flips", "--no-progress"]) == 0
    prob = nib.load(str(out / "v_prob.nii.gz"))
    mask = read_array(out / "v_mask.nii.gz")
    assert prob.shape == vol.shape and np.allclose(prob.affine, affine)
    p = np.asarray(prob.dataobj)
    assert p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
    np.testing.assert_array_equal(mask.astype(bool), p > 0.5)


def test_predict_errors(tmp_path, capsys):
    make_checkpoint(tmp_path / "m.pt")
    write_array(tmp_path / "rgb.png", np.zeros((8, 8, 3), np.uint8))
    ck = ["--checkpoint", str(tmp_path / "m.pt")]
    assert main(["predict", *ck, "--input", str(tmp_path / "rgb.png"), "--out", str(tmp_path / "o")]) == 2
    assert "expects 1 channel(s), the file has shape (8, 8, 3)" in capsys.readouterr().err
    write_array(tmp_path / "ok.png", np.zeros((8, 8), np.uint8))
    assert main(["predict", *ck, "--input", str(tmp_path / "ok.png"), "--window", "8", "8", "8"]) == 2
    assert "--window takes 1 or 2 sizes for a 2D model, got [8, 8, 8]" in capsys.readouterr().err
    assert main(["predict", *ck, "--input", str(tmp_path / "nothing")]) == 2
    assert "nothing: no such file or folder" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert main(["predict", "--checkpoint", str(tmp_path / "bad.pt"), "--input", str(tmp_path / "ok.png")]) == 2
    assert "bad.pt: not a readable toposeg checkpoint" in capsys.readouterr().err
    assert main(["predict", *ck, "--input", str(tmp_path / "ok.png"), "--threshold", "0"]) == 2
    assert "threshold must be a number in (0, 1), got 0" in capsys.readouterr().err
    (tmp_path / "broken.tif").write_bytes(b"this is not a tiff")
    assert main(["predict", *ck, "--input", str(tmp_path / "broken.tif"), "--out", str(tmp_path / "o")]) == 2
    assert "broken.tif: could not read file" in capsys.readouterr().err

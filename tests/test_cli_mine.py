"""`toposeg mine` and toposeg.reports.hard_pixels (the paper's Fig. 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.io import imread

from toposeg import mining
from toposeg.cli import main
from toposeg.commands.mine import _as_probabilities, _binarize_label
from toposeg.io import write_array
from toposeg.reports.hard_pixels import hard_pixel_figure, mine_hard_pixels


def _case2d():
    y = np.zeros((30, 44), bool)
    y[14:16, 2:42] = True
    prob = np.where(y, 0.9, 0.05).astype(np.float32)
    prob[:, 20] = 0.1  # break
    prob[3:6, 5:9] = 0.8  # spurious blob
    image = np.random.default_rng(0).random(y.shape).astype(np.float32)
    return image, y, prob


def _is_png(path):
    rgb = imread(path)
    assert rgb.ndim == 3 and rgb.shape[0] > 50 and rgb.shape[1] > 200
    return rgb


def test_mine_hard_pixels_equals_miners():
    _, y, prob = _case2d()
    got = mine_hard_pixels(prob, y, threshold=0.6)
    p, t = torch.from_numpy(prob)[None, None], torch.from_numpy(y)[None, None]
    for name, kwargs in (("thpm", {}), ("phpm", {"dims": (0, 1)}), ("shpm", {})):
        pos, neg = mining.MINERS[name](p, t, threshold=0.6, **kwargs)
        np.testing.assert_array_equal(got[name][0], pos[0, 0].numpy())
        np.testing.assert_array_equal(got[name][1], neg[0, 0].numpy())
    assert got["shpm"][0].any() and got["shpm"][1].any()


def test_figure_2d_and_3d(tmp_path):
    image, y, prob = _case2d()
    out = hard_pixel_figure(image, y, prob, tmp_path / "a" / "fig.png", grow=1)
    _is_png(out)
    y3 = np.zeros((6, 20, 26), bool)
    y3[3, 9:11, 2:24] = True
    p3 = np.where(y3, 0.9, 0.05).astype(np.float32)
    p3[..., 12] = 0.1
    out3 = hard_pixel_figure(np.stack([y3, y3]).astype(np.float32), y3, p3, tmp_path / "fig3.png")
    _is_png(out3)


def test_figure_bad_inputs(tmp_path):
    image, y, prob = _case2d()
    with pytest.raises(ValueError, match=r"prob and label must have the same shape, got \(30, 43\) and \(30, 44\)"):
        hard_pixel_figure(image, y, prob[:, :-1], tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"image must have shape \(30, 44\) or \(C, \*\(30, 44\)\), got \(3, 3\)"):
        hard_pixel_figure(np.zeros((3, 3)), y, prob, tmp_path / "f.png")
    with pytest.raises(ValueError, match=r"prob must be probabilities in \[0, 1\], got values in \[-0.95, -0.1\]"):
        hard_pixel_figure(image, y, prob - 1, tmp_path / "f.png")
    with pytest.raises(ValueError, match="label must be binary"):
        hard_pixel_figure(image, y * 3, prob, tmp_path / "f.png")
    with pytest.raises(TypeError, match="label must be a numpy.ndarray"):
        hard_pixel_figure(image, y.tolist(), prob, tmp_path / "f.png")
    with pytest.raises(ValueError, match="grow must be a non-negative integer, got -1"):
        hard_pixel_figure(image, y, prob, tmp_path / "f.png", grow=-1)


def test_cli_with_prediction_2d(tmp_path):
    image, y, prob = _case2d()
    write_array(tmp_path / "img.png", (image * 255).astype(np.uint8))
    write_array(tmp_path / "lab.png", y)
    write_array(tmp_path / "pred.png", (prob * 255).astype(np.uint8))
    rc = main(["mine", "--image", str(tmp_path / "img.png"), "--label", str(tmp_path / "lab.png"),
               "--prediction", str(tmp_path / "pred.png"), "--out", str(tmp_path / "fig.png"), "--threshold", "0.6"])
    assert rc == 0
    _is_png(tmp_path / "fig.png")


def test_cli_with_checkpoint_3d(tmp_path):
    from toposeg.engine.checkpoint import save_checkpoint
    from toposeg.models import build_model

    torch.manual_seed(0)
    params = {"spatial_dims": 3, "in_channels": 1, "out_channels": 1, "features": (4, 4, 4)}
    save_checkpoint(tmp_path / "m.pt", build_model("unet", **params), name="unet", params=params)
    y3 = np.zeros((5, 12, 14), np.uint8)
    y3[2, 5:7, 1:13] = 1
    np.save(tmp_path / "img.npy", np.random.default_rng(1).random(y3.shape).astype(np.float32))
    np.save(tmp_path / "lab.npy", y3)
    rc = main(["mine", "--image", str(tmp_path / "img.npy"), "--label", str(tmp_path / "lab.npy"),
               "--checkpoint", str(tmp_path / "m.pt"), "--out", str(tmp_path / "fig.png"), "--device", "cpu"])
    assert rc == 0
    _is_png(tmp_path / "fig.png")


def test_cli_errors(tmp_path, capsys):
    image, y, prob = _case2d()
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "lab.npy", y)
    np.save(tmp_path / "bad.npy", prob[:, :10])
    np.save(tmp_path / "logits.npy", prob * 10 - 5)
    base = ["mine", "--image", str(tmp_path / "img.npy"), "--label", str(tmp_path / "lab.npy")]
    assert main(base + ["--prediction", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "f.png")]) == 2
    assert "prediction shape (30, 10) does not match the label shape (30, 44)" in capsys.readouterr().err
    assert main(base + ["--prediction", str(tmp_path / "logits.npy"), "--out", str(tmp_path / "f.png")]) == 2
    assert "prediction must hold probabilities in [0, 1]" in capsys.readouterr().err
    assert main(base + ["--prediction", str(tmp_path / "logits.npy"), "--out", str(tmp_path / "f.jpg")]) == 2
    assert "--out must be a .png file" in capsys.readouterr().err
    assert main(base + ["--prediction", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "f.png")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--prediction", "a.npy", "--checkpoint", "b.pt", "--out", str(tmp_path / "f.png")])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--out", str(tmp_path / "f.png")])
    assert "one of the arguments --prediction --checkpoint is required" in capsys.readouterr().err


def test_label_rules_and_prediction_scaling():
    lab = np.array([[0, 255], [255, 0]], np.uint8)
    np.testing.assert_array_equal(_binarize_label(lab, "nonzero", "l.npy"), lab > 0)
    np.testing.assert_array_equal(_binarize_label(lab, "dark", "l.npy"), lab == 0)  # ISBI: membranes dark
    np.testing.assert_array_equal(_as_probabilities(np.array([0, 255], np.uint8), "p"), [0.0, 1.0])
    np.testing.assert_array_equal(_as_probabilities(np.array([0, 1], np.uint8), "p"), [0.0, 1.0])
    with pytest.raises(ValueError, match="neither binary nor 8/16-bit"):
        _as_probabilities(np.array([0, 7], np.int32), "p")

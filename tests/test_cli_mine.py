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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png", "img.npy", "lab.npy", "m.pt"]  # no temp files


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


def test_cli_refuses_colour_label_and_existing_output(tmp_path, capsys):
    image, y, prob = _case2d()
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "p.npy", prob)
    colour = np.zeros(y.shape + (3,), np.uint8)
    colour[..., 0] = y * 255
    colour[..., 1] = 7
    write_array(tmp_path / "lab.png", colour)
    base = ["mine", "--image", str(tmp_path / "img.npy"), "--prediction", str(tmp_path / "p.npy")]
    assert main(base + ["--label", str(tmp_path / "lab.png"), "--out", str(tmp_path / "f.png")]) == 2
    assert "lab.png: a label must be grayscale, got a colour image of shape (30, 44, 3)" in capsys.readouterr().err
    assert not (tmp_path / "f.png").exists()
    np.save(tmp_path / "lab.npy", y)
    base += ["--label", str(tmp_path / "lab.npy"), "--out", str(tmp_path / "f.png")]
    assert main(base) == 0
    assert main(base) == 2
    assert "f.png already exists; choose another name or pass --overwrite" in capsys.readouterr().err
    assert main(base + ["--overwrite"]) == 0


def test_cli_checkpoint_polarity_is_the_default(tmp_path, capsys):
    from toposeg.engine.checkpoint import inference_settings, save_checkpoint
    from toposeg.models import build_model

    torch.manual_seed(0)
    params = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "features": (4, 4, 4)}
    inference = inference_settings(spatial_dims=2, in_channels=1, window=(16, 16), label_foreground="dark")
    save_checkpoint(tmp_path / "m.pt", build_model("unet", **params), name="unet", params=params, inference=inference)
    image, y, _ = _case2d()
    np.save(tmp_path / "img.npy", image)
    write_array(tmp_path / "lab.png", (~y).astype(np.uint8) * 255)  # the structure is dark
    base = ["mine", "--image", str(tmp_path / "img.npy"), "--label", str(tmp_path / "lab.png"),
            "--checkpoint", str(tmp_path / "m.pt"), "--device", "cpu"]
    assert main(base + ["--out", str(tmp_path / "a.png")]) == 0
    err = capsys.readouterr().err
    assert f"label foreground dark from {tmp_path / 'm.pt'}" in err and "threshold 0.6" in err and "warning" not in err
    assert main(base + ["--out", str(tmp_path / "b.png"), "--label-foreground", "bright"]) == 0
    err = capsys.readouterr().err
    assert "label foreground bright from --label-foreground" in err
    assert f"covers {(~y).mean():.1%} of the pixels" in err and "--label-foreground dark" in err


def test_mining_threshold_default_is_the_papers():
    from toposeg.cli import build_parser
    from toposeg.mining import DEFAULT_MINING_THRESHOLD

    parser = build_parser()
    mine = parser.parse_args(["mine", "--image", "i", "--label", "l", "--prediction", "p", "--out", "o.png"])
    bench = parser.parse_args(["bench"])
    assert mine.threshold == bench.threshold == DEFAULT_MINING_THRESHOLD == 0.6
    predict = parser.parse_args(["predict", "--checkpoint", "c", "--input", "i"])
    assert predict.threshold is None  # binarisation: the checkpoint's (0.5 by default), not the mining t


def _green(rgb):
    return (rgb[..., 1] > 200) & (rgb[..., 0] < 90) & (rgb[..., 2] < 90)


def _red(rgb):
    return (rgb[..., 0] > 200) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)


def test_default_grow_shows_a_single_hard_pixel_on_512_images(tmp_path):
    from toposeg.commands.mine import default_grow

    # (2 g + 1) * 450 / side >= 2  <=>  g = 0 up to 225 px, 1 up to 675, 2 up to 1125, 3 up to 1575
    assert [default_grow((s, s)) for s in (128, 225, 226, 512, 675, 676, 1125, 1250)] == [0, 0, 1, 1, 1, 2, 2, 3]
    assert default_grow((40, 512, 300)) == 1  # 3D: the in-plane side
    y = np.zeros((512, 512), bool)
    y[256, 40:470] = True  # a 1-px line ...
    prob = np.where(y, 0.95, 0.02).astype(np.float32)
    prob[256, 255] = 0.1  # ... predicted with a 1-px gap: one SHPM positive hard pixel
    pos, _ = mining.shpm(torch.from_numpy(prob)[None, None], torch.from_numpy(y)[None, None], threshold=0.6)
    assert int(pos.sum()) == 1
    image = np.full(y.shape, 0.5, np.float32)
    out = hard_pixel_figure(image, y, prob, tmp_path / "g.png", grow=default_grow(y.shape))
    rgb = imread(out)[..., :3]
    h, w = rgb.shape[:2]
    shpm_panel = rgb[: int(h * 0.75), int(w * 5 / 6):]  # the last of six panels, above the legend
    assert _green(shpm_panel).sum() >= 4  # at least 2 x 2 display pixels


def test_figure_has_a_colour_legend(tmp_path):
    """A perfect prediction has no hard pixels; green and red then appear only in the legend."""
    from toposeg.reports.hard_pixels import legend_handles

    y = np.zeros((40, 40), bool)
    y[20, 5:35] = True
    rgb = imread(hard_pixel_figure(np.zeros(y.shape, np.float32), y, y.astype(np.float32), tmp_path / "l.png"))[..., :3]
    assert _green(rgb).sum() > 20 and _red(rgb).sum() > 20
    labels = [h.get_label() for h in legend_handles()]
    assert labels[0].startswith("positive hard pixels") and labels[1].startswith("negative hard pixels")


def test_label_rules_and_prediction_scaling():
    lab = np.array([[0, 255], [255, 0]], np.uint8)
    np.testing.assert_array_equal(_binarize_label(lab, "nonzero", "l.npy"), lab > 0)
    np.testing.assert_array_equal(_binarize_label(lab, "dark", "l.npy"), lab == 0)  # ISBI: membranes dark
    np.testing.assert_array_equal(_as_probabilities(np.array([0, 255], np.uint8), "p"), [0.0, 1.0])
    np.testing.assert_array_equal(_as_probabilities(np.array([0, 1], np.uint8), "p"), [0.0, 1.0])
    with pytest.raises(ValueError, match="neither binary nor 8/16-bit"):
        _as_probabilities(np.array([0, 7], np.int32), "p")

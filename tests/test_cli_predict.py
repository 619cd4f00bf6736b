"""`toposeg predict` end to end with a tiny U-Net checkpoint."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from toposeg.cli import main
from toposeg.data.labels import binarize
from toposeg.data.transforms import normalize
from toposeg.engine.checkpoint import inference_settings, save_checkpoint
from toposeg.inference import sliding_window_predict
from toposeg.io import read_array, write_array
from toposeg.metrics import evaluate_case
from toposeg.models import UNet

SCRIPT = Path(sys.executable).parent / "toposeg"


def run_cli(*args):
    env = {**os.environ, "TOPOSEG_THREADS": "1"}
    p = subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)
    return p.returncode, p.stdout, p.stderr


def make_checkpoint(path, spatial_dims=2, in_channels=1, **inference):
    torch.manual_seed(0)
    params = dict(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=1, features=(4, 8, 16))
    model = UNet(**params).eval()
    settings = inference_settings(spatial_dims=spatial_dims, in_channels=in_channels, **inference) if inference else None
    save_checkpoint(path, model, name="unet", params=params, inference=settings)
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
    record = json.loads((out / "predict.json").read_text())
    assert record["settings"]["window"] == [32, 32] and record["settings_from"]["window"] == "--window"
    assert record["settings_from"]["overlap"] == "--overlap" and record["settings_from"]["threshold"] == "checkpoint"
    assert sorted(record["outputs"]) == ["x1_mask.png", "x1_prob.png", "x2_mask.png", "x2_prob.png"]
    assert record["threads"]["torch_threads"] == torch.get_num_threads()
    # the predict layout feeds straight into evaluate (*_mask files, *_prob ignored)
    gt = tmp_path / "gt"
    for k, v in images.items():
        write_array(gt / f"{k}.png", v > 128)
    assert main(["evaluate", "--pred", str(out), "--gt", str(gt), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0


def test_predict_uses_the_checkpoint_settings_and_evaluate_reproduces_in_process_scores(tmp_path):
    """predict + evaluate (the console script) == sliding_window_predict + evaluate_case with the
    settings training recorded in the checkpoint (window, overlap, normalisation, threshold, polarity)."""
    model = make_checkpoint(tmp_path / "m.pt", window=(24, 16), overlap=0.5, normalization="minmax",
                            threshold=0.45, label_foreground="dark")
    rng = np.random.default_rng(3)
    cases = {}
    for k in ("c1", "c2", "c3"):
        image = (rng.random((40, 52)) * 255).astype(np.uint8)
        label = np.full(image.shape, 255, np.uint8)  # ISBI style: the structure is the dark level
        label[10:13, :] = 0
        label[:, 20:22] = 0
        write_array(tmp_path / "img" / f"{k}.png", image)
        write_array(tmp_path / "gt" / f"{k}.png", label)
        cases[k] = (image, label)
    rc, out, err = run_cli("predict", "--checkpoint", tmp_path / "m.pt", "--input", tmp_path / "img",
                           "--out", tmp_path / "pred", "--no-progress", "--threads", "1")
    assert rc == 0, err
    record = json.loads((tmp_path / "pred" / "predict.json").read_text())
    assert record["settings"]["window"] == [24, 16] and record["settings_from"]["window"] == "checkpoint"
    assert record["settings"]["hu_window"] is None and record["settings_from"]["hu_window"] == "checkpoint"
    assert record["threshold"] == 0.45 and record["label_foreground"] == "dark"
    assert record["threads"] == {"torch_threads": 1, "chosen_by": "--threads", "cpu_cores": record["threads"]["cpu_cores"]}
    rc, out, err = run_cli("evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", tmp_path / "ev",
                           "--no-progress", "--threads", "1")
    assert rc == 0, err
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    assert summary["label_foreground"] == "dark" and summary["label_foreground_from"].endswith("predict.json")
    rows = {r["case_id"]: r for r in csv.DictReader(open(tmp_path / "ev" / "per_case.csv"))}
    torch.set_num_threads(1)
    for k, (image, label) in cases.items():
        x = normalize(image[None].astype(np.float32), "minmax")
        prob = sliding_window_predict(model, x, window=(24, 16), overlap=0.5)[0]
        pred = prob > 0.45
        np.testing.assert_array_equal(read_array(tmp_path / "pred" / f"{k}_mask.png") > 0, pred)
        ref = evaluate_case(pred, label == 0)  # the dark level, by hand
        assert np.array_equal(binarize(label, "dark"), label == 0)
        for metric in ("dice", "iou", "cldice", "voi", "are", "betti0_error", "betti1_error"):
            assert float(rows[k][metric]) == pytest.approx(ref[metric], rel=1e-9, abs=1e-12), (k, metric)


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


def test_output_is_whole_or_absent(tmp_path):
    """A corrupt image in the folder, or an RGB image for a grey model: nothing is written."""
    make_checkpoint(tmp_path / "m.pt")
    for k in ("a", "b", "c"):
        write_array(tmp_path / "in" / f"{k}.png", np.zeros((16, 16), np.uint8))
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG broken")
    rc, _, err = run_cli("predict", "--checkpoint", tmp_path / "m.pt", "--input", tmp_path / "in",
                         "--out", tmp_path / "deep" / "out", "--no-progress")
    assert rc == 2 and "b.png: could not read file" in err and "Traceback" not in err
    assert not (tmp_path / "deep").exists()  # not even the parent folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "m.pt"]  # no temporary leftovers

    write_array(tmp_path / "rgb.png", np.zeros((8, 8, 3), np.uint8))
    rc, _, err = run_cli("predict", "--checkpoint", tmp_path / "m.pt", "--input", tmp_path / "rgb.png",
                         "--out", tmp_path / "o")
    assert rc == 2 and "the model expects 1 channel(s), the file has shape (8, 8, 3)" in err
    assert not (tmp_path / "o").exists()


def test_existing_output_needs_overwrite(tmp_path, capsys):
    make_checkpoint(tmp_path / "m.pt")
    write_array(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    base = ["predict", "--checkpoint", str(tmp_path / "m.pt"), "--input", str(tmp_path / "in"), "--out", str(out),
            "--no-progress"]
    assert main(base) == 2
    assert "already holds files; choose another folder or pass --overwrite" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert main(base + ["--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_mask.png", "a_prob.png", "keep.txt", "predict.json"]


def test_predict_errors(tmp_path, capsys):
    make_checkpoint(tmp_path / "m.pt")
    write_array(tmp_path / "rgb.png", np.zeros((8, 8, 3), np.uint8))
    ck = ["--checkpoint", str(tmp_path / "m.pt")]
    assert main(["predict", *ck, "--input", str(tmp_path / "rgb.png"), "--out", str(tmp_path / "o")]) == 2
    assert "expects 1 channel(s), the file has shape (8, 8, 3)" in capsys.readouterr().err
    write_array(tmp_path / "ok.png", np.zeros((8, 8), np.uint8))
    o = ["--out", str(tmp_path / "o")]
    assert main(["predict", *ck, *o, "--input", str(tmp_path / "ok.png"), "--window", "8", "8", "8"]) == 2
    assert "--window takes 1 or 2 sizes for a 2D model, got [8, 8, 8]" in capsys.readouterr().err
    assert main(["predict", *ck, *o, "--input", str(tmp_path / "nothing")]) == 2
    assert "nothing: no such file or folder" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"PK\x03\x04junk")
    assert main(["predict", "--checkpoint", str(tmp_path / "bad.pt"), *o, "--input", str(tmp_path / "ok.png")]) == 2
    assert "bad.pt: not a readable toposeg checkpoint" in capsys.readouterr().err
    assert main(["predict", *ck, *o, "--input", str(tmp_path / "ok.png"), "--threshold", "0"]) == 2
    assert "threshold must be a number in (0, 1), got 0" in capsys.readouterr().err
    assert main(["predict", *ck, *o, "--input", str(tmp_path / "ok.png"), "--overlap", "1"]) == 2
    assert "overlap must be in [0, 1), got 1.0 (--overlap)" in capsys.readouterr().err
    (tmp_path / "broken.tif").write_bytes(b"this is not a tiff")
    assert main(["predict", *ck, *o, "--input", str(tmp_path / "broken.tif")]) == 2
    assert "broken.tif: could not read file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_predict_refuses_out_in_its_input_and_non_finite_images(tmp_path, capsys):
    make_checkpoint(tmp_path / "m.pt")
    write_array(tmp_path / "in" / "a.tif", np.zeros((16, 16), np.float32))
    ck = ["predict", "--checkpoint", str(tmp_path / "m.pt"), "--no-progress"]
    # outputs inside the input folder would be read as inputs by the next run
    assert main([*ck, "--input", str(tmp_path / "in"), "--out", str(tmp_path / "in"), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "--input" in err and "in" in err
    assert main([*ck, "--input", str(tmp_path / "in"), "--out", str(tmp_path / "in" / "pred")]) == 2
    assert "--input" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.tif"]
    nan = np.zeros((16, 16), np.float32)
    nan[2, 3] = np.nan  # through the network one NaN pixel would make the whole map NaN
    write_array(tmp_path / "bad" / "n.tif", nan)
    assert main([*ck, "--input", str(tmp_path / "bad"), "--out", str(tmp_path / "o")]) == 2
    assert "n.tif: image contains non-finite values (1 NaN of 256 pixels)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()

"""`toposeg graph` end to end on small files written in real formats (PNG 0/255, NPY)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("networkx")
pytest.importorskip("skan")

from toposeg.cli import main  # noqa: E402
from toposeg.io import write_array  # noqa: E402


def roads():
    m = np.zeros((64, 64), bool)
    for k in (10, 30, 50):
        m[k - 1 : k + 2, 6:58] = True
        m[6:58, k - 1 : k + 2] = True
    cut = m.copy()
    cut[29:32, 38:43] = False
    cut[6:12, 48:53] = False
    return m, cut


def test_graph_command_writes_routes_and_figure(tmp_path, capsys):
    gt, cut = roads()
    write_array(tmp_path / "gt.png", gt)  # 0/255 8-bit PNG
    write_array(tmp_path / "unet.npy", cut.astype(np.uint8))
    write_array(tmp_path / "shpm.npy", gt.astype(np.float32))  # probabilities (exactly 0/1)
    write_array(tmp_path / "image.png", (np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    rc = main(["graph", "--gt", str(tmp_path / "gt.png"), "--pred", str(tmp_path / "unet.npy"),
               "--pred2", str(tmp_path / "shpm.npy"), "--name2", "SHPM", "--image", str(tmp_path / "image.png"),
               "--pairs", "12", "--seed", "3", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "unet: APLS" in text and "SHPM: APLS 1.0000" in text
    report = json.loads((out / "routes.json").read_text())
    assert set(report["predictions"]) == {"unet", "SHPM"}
    shpm, unet = report["predictions"]["SHPM"], report["predictions"]["unet"]
    assert shpm["apls"]["apls"] == pytest.approx(1.0) and shpm["routes"]["unreachable_fraction"] == 0
    assert unet["apls"]["apls"] < 1.0 and unet["routes"]["n_unreachable"] >= 1
    assert len(unet["pairs"]) == 12 == unet["routes"]["n_pairs"]
    with open(out / "routes.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24 and {r["prediction"] for r in rows} == {"unet", "SHPM"}
    n_bad = sum(r["status"] == "unreachable" for r in rows if r["prediction"] == "unet")
    assert n_bad == unet["routes"]["n_unreachable"]
    assert all(math.isinf(float(r["pred_length"])) for r in rows if r["status"] == "unreachable")
    assert (out / "routes.png").is_file()
    # JSON is strict: unreachable lengths are null, not Infinity
    assert all(p["pred_length"] is None for p in unet["pairs"] if p["status"] == "unreachable")
    assert "Infinity" not in (out / "routes.json").read_text()


def test_graph_command_3d_without_figure(tmp_path, capsys):
    v = np.zeros((12, 20, 20), np.uint8)
    v[6, 3:17, 10] = 1
    v[6, 10, 3:17] = 1
    np.save(tmp_path / "v.npy", v)
    rc = main(["graph", "--gt", str(tmp_path / "v.npy"), "--pred", str(tmp_path / "v.npy"),
               "--backend", "pixel", "--out", str(tmp_path / "o")])
    assert rc == 0
    assert "figure skipped" in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "routes.json").read_text())["predictions"]["v"]["apls"]["apls"] == 1.0


def test_graph_command_errors(tmp_path, capsys):
    gt, _ = roads()
    np.save(tmp_path / "gt.npy", gt)
    np.save(tmp_path / "small.npy", gt[:30])
    np.save(tmp_path / "labels.npy", np.arange(64 * 64).reshape(64, 64) % 7)
    rc = main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "small.npy"),
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "has shape (30, 64), --gt has (64, 64)" in capsys.readouterr().err
    rc = main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "labels.npy"),
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "expected a binary mask" in capsys.readouterr().err
    rc = main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "missing.npy"),
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "no such file" in capsys.readouterr().err
    rc = main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "gt.npy"), "--pairs", "0",
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "--pairs must be >= 1, got 0" in capsys.readouterr().err


def test_graph_command_empty_prediction(tmp_path, capsys):
    gt, _ = roads()
    np.save(tmp_path / "gt.npy", gt)
    np.save(tmp_path / "empty.npy", np.zeros_like(gt))
    rc = main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "empty.npy"), "--no-figure",
               "--pairs", "5", "--out", str(tmp_path / "o")])
    assert rc == 0
    rep = json.loads((tmp_path / "o" / "routes.json").read_text())["predictions"]["empty"]
    assert rep["apls"]["apls"] == 0.0 and rep["routes"]["unreachable_fraction"] == 1.0


def test_graph_ground_truth_polarity_and_warning(tmp_path, capsys):
    """ISBI-style ground truth (the structure is the dark level): --label-foreground dark scores the
    roads; the default (nonzero) scores the background, and the user is warned."""
    gt, _ = roads()
    write_array(tmp_path / "gt_dark.png", (~gt).astype(np.uint8) * 255)
    np.save(tmp_path / "pred.npy", gt)
    base = ["graph", "--gt", str(tmp_path / "gt_dark.png"), "--pred", str(tmp_path / "pred.npy"), "--no-figure",
            "--pairs", "10", "--backend", "pixel"]
    assert main(base + ["--label-foreground", "dark", "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert "pred: APLS 1.0000" in captured.out and "warning" not in captured.err
    report = json.loads((tmp_path / "a" / "routes.json").read_text())
    assert report["label_foreground"] == "dark" and report["gt_graph"]["nodes"] > 0
    assert main(base + ["--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert f"covers {(~gt).mean():.1%} of the pixels" in err and "--label-foreground dark" in err


def test_graph_output_is_whole_or_absent(tmp_path, capsys):
    gt, cut = roads()
    np.save(tmp_path / "gt.npy", gt)
    np.save(tmp_path / "cut.npy", cut)
    write_array(tmp_path / "small.png", np.zeros((32, 32), np.uint8))
    base = ["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "cut.npy"), "--pairs", "4",
            "--backend", "pixel"]
    p = subprocess.run([str(Path(sys.executable).parent / "toposeg"), *base, "--image", str(tmp_path / "small.png"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TOPOSEG_THREADS": "1"})  # the console script, as a user runs it
    rc, err = p.returncode, p.stderr
    assert rc == 2 and "--image" in err and "has shape (32, 32); expected (64, 64) or (64, 64, 3) like --gt" in err
    assert not (tmp_path / "o").exists()  # routes.json is not written before the image is checked
    assert main(base + ["--no-figure", "--out", str(tmp_path / "o")]) == 0
    assert main(base + ["--no-figure", "--out", str(tmp_path / "o")]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert main(base + ["--no-figure", "--out", str(tmp_path / "o"), "--overwrite"]) == 0

"""toposeg.benchmark / `toposeg bench`: structure of the Table-2 record (tiny, fast settings)."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from toposeg.benchmark import (
    METHODS, imperfect_prediction, run_benchmark, time_mining, time_training, to_markdown, tubular_patch,
)
from toposeg.cli import main

TINY = {"features": (4, 4, 4), "iters": 2, "warmup": 0}


def test_tubular_patch_deterministic_and_thin():
    from skimage.morphology import skeletonize

    a_img, a_lab = tubular_patch((40, 50), seed=3)
    b_img, b_lab = tubular_patch((40, 50), seed=3)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_lab, b_lab)
    assert a_lab.dtype == bool and 0.01 < a_lab.mean() < 0.5
    assert skeletonize(a_lab).sum() > 20
    img3, lab3 = tubular_patch((10, 20, 24), seed=1)
    assert img3.shape == lab3.shape == (10, 20, 24) and lab3.any()
    p = imperfect_prediction(a_lab)
    assert p.min() >= 0 and p.max() <= 1 and 0 < ((p > 0.5) != a_lab).mean() < 0.3


@pytest.mark.parametrize("dims, patch", [(2, (32, 40)), (3, (8, 16, 16))])
def test_time_training_record(dims, patch):
    rec = time_training(dims, patch=patch, **TINY)
    assert [r["method"] for r in rec["rows"]] == list(METHODS)
    for r in rec["rows"]:
        assert len(r["times_s"]) == 2
        assert r["median_s_per_iter"] == pytest.approx(float(np.median(r["times_s"])))
        assert r["s_per_100_iters"] == pytest.approx(100 * r["median_s_per_iter"])
    unet = rec["rows"][0]
    assert unet["ratio_to_unet"] == 1.0 and unet["ratio_of_medians"] == 1.0
    for r in rec["rows"]:
        assert r["ratio_of_medians"] == pytest.approx(r["median_s_per_iter"] / unet["median_s_per_iter"])
        paired = np.asarray(r["times_s"]) / np.asarray(unet["times_s"])
        assert r["ratio_to_unet"] == pytest.approx(float(np.median(paired)))


def test_time_training_subset_always_includes_unet():
    rec = time_training(2, patch=(16, 16), methods=["+SHPM"], **TINY)
    assert [r["method"] for r in rec["rows"]] == ["U-Net", "+SHPM"]


def test_time_mining_record():
    rec = time_mining(2, patch=(48, 48), repeats=2)
    assert set(rec["miners"]) == {"thpm", "phpm", "shpm (GT skeleton precomputed)", "shpm (both skeletons)"}
    m = rec["miners"]
    assert m["thpm"]["hard_pixels"] >= m["phpm"]["hard_pixels"]  # PHPM/SHPM pick a subset of THPM
    assert m["thpm"]["hard_pixels"] >= m["shpm (both skeletons)"]["hard_pixels"] > 0


def test_bad_arguments():
    with pytest.raises(KeyError, match=r"unknown method\(s\) \['\+FOO'\]; valid: \['U-Net'"):
        time_training(2, patch=(16, 16), methods=["+FOO"])
    with pytest.raises(ValueError, match="iters must be a positive integer, got 0"):
        time_training(2, patch=(16, 16), iters=0)
    with pytest.raises(ValueError, match=r"patch must have 2 sizes >= 8, got \(16, 16, 16\)"):
        time_training(2, patch=(16, 16, 16))
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 4"):
        time_training(4)
    with pytest.raises(ValueError, match="warmup must be a non-negative integer, got -1"):
        time_training(2, patch=(16, 16), warmup=-1)


def test_bench_cli_writes_json_and_markdown(tmp_path, capsys):
    rc = main(["bench", "--dims", "2", "--patch2d", "24", "32", "--features", "4", "4", "4", "--iters", "1",
               "--warmup", "0", "--mining-repeats", "1", "--device", "cpu", "--out", str(tmp_path)])
    assert rc == 0
    rec = json.loads((tmp_path / "losses.json").read_text())
    assert {"commit", "torch", "numpy", "skimage", "device", "torch_threads"} <= set(rec["metadata"])
    assert rec["training"][0]["patch"] == [24, 32]
    md = (tmp_path / "losses.md").read_text()
    assert md == to_markdown(rec) + "\n"
    assert "| +SHPM |" in md and "| +Skeleton Recall |" in md and "ratio to U-Net" in md
    assert main(["bench", "--dims", "2", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err


def test_table2_mines_at_the_papers_threshold_with_the_thin_rule():
    for fn in (time_training, time_mining, run_benchmark):
        params = inspect.signature(fn).parameters
        assert params["threshold"].default == 0.6, fn.__name__
        assert params["method"].default == "thin" and params["backend"].default == "auto", fn.__name__
    rec = time_training(2, patch=(16, 16), methods=["+SHPM"], **TINY)
    assert rec["threshold"] == 0.6 and rec["method"] == "thin"
    rec = time_mining(2, patch=(24, 24), repeats=1, method="zhang")
    assert rec["threshold"] == 0.6 and rec["method"] == "zhang"

"""`toposeg evaluate --nnunet` through the installed console script, on a tiny 2-class
nnU-Net raw layout (``nnUNet_raw/Dataset001_T/{dataset.json, labelsTs/}`` + a prediction folder).

References are independent of toposeg: Dice from counts of the hand-drawn arrays, Betti-0 from
scipy.ndimage.label with 8-connectivity (toposeg's 2D default), files written with skimage.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

SCRIPT = Path(sys.executable).parent / "toposeg"
EIGHT = np.ones((3, 3), int)


def _toposeg(*args):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300)


def _png(path, arr):
    from skimage.io import imsave

    path.parent.mkdir(parents=True, exist_ok=True)
    imsave(path, arr.astype(np.uint8), check_contrast=False)


def _dice(p, g):
    return 2 * np.logical_and(p, g).sum() / (p.sum() + g.sum())


def _n_components(mask):
    return ndimage.label(mask, structure=EIGHT)[1]


@pytest.fixture
def raw(tmp_path):
    """Case ``a``: class 1 ("line") broken in two by the prediction; class 2 ("ring") with one
    extra isolated predicted pixel. Case ``b``: a perfect prediction, with an ignore patch (3)
    on background. dataset.json sits above labelsTs, where nnUNet_raw keeps it."""
    gt_a = np.zeros((16, 24), np.uint8)
    gt_a[2, 2:22] = 1  # a line, 20 px
    gt_a[8:14, 4:12] = 2
    gt_a[9:13, 5:11] = 0  # a ring (one loop)
    pred_a = gt_a.copy()
    pred_a[2, 10] = 0  # gap: class 1 -> 2 components
    pred_a[14, 20] = 2  # class 2 speck, isolated
    gt_b = np.zeros((16, 24), np.uint8)
    gt_b[4:12, 6] = 1
    gt_b[4:12, 15] = 2
    pred_b = gt_b.copy()
    gt_b[0:2, 0:3] = 3  # ignored, prediction background there
    dataset = tmp_path / "nnUNet_raw" / "Dataset001_T"
    _png(dataset / "labelsTs" / "a.png", gt_a)
    _png(dataset / "labelsTs" / "b.png", gt_b)
    _png(tmp_path / "pred" / "a.png", pred_a)
    _png(tmp_path / "pred" / "b.png", pred_b)
    (dataset / "dataset.json").write_text(json.dumps({
        "labels": {"background": 0, "line": 1, "ring": 2, "ignore": 3}, "file_ending": ".png",
        "channel_names": {"0": "x"}, "numTraining": 0}))
    return tmp_path, dataset, {"a": (pred_a, gt_a), "b": (pred_b, gt_b)}


def test_evaluate_nnunet_per_class_tables_match_hand_counts(raw):
    root, dataset, cases = raw
    out = root / "eval"
    done = _toposeg("evaluate", "--nnunet", "--pred", root / "pred", "--gt", dataset / "labelsTs", "--out", out)
    assert done.returncode == 0, done.stderr
    pred_a, gt_a = cases["a"]
    # hand references: class 1 = 19 of 20 line pixels; class 2 = ring + 1 false positive
    dice_line = 2 * 19 / (19 + 20)
    ring_px = int((gt_a == 2).sum())
    assert ring_px == 6 * 8 - 4 * 6
    dice_ring = 2 * ring_px / (2 * ring_px + 1)
    assert _dice(pred_a == 1, gt_a == 1) == pytest.approx(dice_line)
    b0_line = abs(_n_components(pred_a == 1) - _n_components(gt_a == 1))
    b0_ring = abs(_n_components(pred_a == 2) - _n_components(gt_a == 2))
    assert (b0_line, b0_ring) == (1, 1)

    rows = list(csv.DictReader((out / "per_case.csv").open()))
    assert [(r["case"], r["class"], r["label"]) for r in rows] == [
        ("a", "line", "1"), ("a", "ring", "2"), ("b", "line", "1"), ("b", "ring", "2")]
    by = {(r["case"], r["class"]): r for r in rows}
    assert float(by["a", "line"]["dice"]) == pytest.approx(dice_line, rel=1e-9)
    assert float(by["a", "ring"]["dice"]) == pytest.approx(dice_ring, rel=1e-9)
    assert float(by["a", "line"]["betti0_error"]) == b0_line
    assert float(by["a", "ring"]["betti0_error"]) == b0_ring
    assert float(by["a", "ring"]["betti1_error"]) == 0  # the ring's loop is kept
    assert float(by["b", "line"]["dice"]) == 1.0 and float(by["b", "ring"]["betti0_error"]) == 0
    assert int(by["b", "line"]["ignored_voxels"]) == 6 and int(by["a", "line"]["ignored_voxels"]) == 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cases"] == 2 and summary["connectivity"] == {"foreground": 8, "background": 4}
    line = summary["results"]["line"]
    assert line["label"] == 1 and line["n_cases"] == 2 and line["ignored_voxels"] == 6
    assert line["metrics"]["dice"]["mean"] == pytest.approx((dice_line + 1) / 2)
    assert line["metrics"]["dice"]["std"] == pytest.approx(abs(1 - dice_line) / 2)  # population std of 2 values
    assert summary["results"]["ring"]["metrics"]["betti0_error"]["mean"] == pytest.approx(b0_ring / 2)
    assert [c["class"] for c in summary["per_class"]] == ["line", "ring"]
    assert summary["per_class"][0]["dice"] == pytest.approx((dice_line + 1) / 2)

    md = (out / "summary.md").read_text()
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(table) == 4  # header, rule, one row per class
    assert table[2].startswith(f"| line (label 1) | {(dice_line + 1) / 2:.3f} ± {abs(1 - dice_line) / 2:.3f} |")
    assert table[3].startswith("| ring (label 2) |")
    assert "**" not in md  # classes are not competitors: nothing marked best
    assert table[0] in done.stdout and table[2] in done.stdout
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # staged: no partial folder left

    # same metric columns as the binary evaluate of the same masks
    for case, (p, g) in cases.items():
        _png(root / "bin_pred" / f"{case}.png", (p == 1) * 255)
        _png(root / "bin_gt" / f"{case}.png", (g == 1) * 255)
    binary = _toposeg("evaluate", "--pred", root / "bin_pred", "--gt", root / "bin_gt", "--out", root / "bin_eval",
                      "--no-progress")
    assert binary.returncode == 0, binary.stderr
    bin_header = [ln for ln in (root / "bin_eval" / "summary.md").read_text().splitlines() if ln.startswith("|")][0]
    assert bin_header.split("|")[2:] == table[0].split("|")[2:]
    assert table[0].startswith("| Class | Dice ↑ | mIoU ↑ | VOI ↓ | ARE ↓ | β0 error ↓ | β1 error ↓ | clDice ↑ |")


def test_evaluate_nnunet_overwrite_rule_dataset_json_flag_and_alias(raw):
    root, dataset, _ = raw
    out = root / "eval"
    base = ("--pred", root / "pred", "--gt", dataset / "labelsTs", "--out", out)
    assert _toposeg("evaluate", "--nnunet", *base).returncode == 0
    again = _toposeg("evaluate", "--nnunet", *base)
    assert again.returncode == 2 and "already holds files" in again.stderr and "--overwrite" in again.stderr
    assert _toposeg("evaluate", "--nnunet", *base, "--overwrite").returncode == 0

    # an explicit --dataset-json (moved away from its default place) gives the same table
    moved = root / "meta.json"
    (dataset / "dataset.json").rename(moved)
    out2 = root / "eval2"
    done = _toposeg("evaluate", "--nnunet", "--pred", root / "pred", "--gt", dataset / "labelsTs", "--out", out2,
                    "--dataset-json", moved)
    assert done.returncode == 0, done.stderr
    assert (out2 / "per_case.csv").read_text() == (out / "per_case.csv").read_text()
    missing = _toposeg("evaluate", "--nnunet", "--pred", root / "pred", "--gt", dataset / "labelsTs",
                       "--out", root / "eval3", "--dataset-json", root / "nope.json")
    assert missing.returncode == 2 and f"--dataset-json {root / 'nope.json'}: no such file" in missing.stderr
    assert not (root / "eval3").exists()

    # toposeg nnunet evaluate: the same code path, the same files
    out4 = root / "eval4"
    alias = _toposeg("nnunet", "evaluate", "--pred", root / "pred", "--gt", dataset / "labelsTs", "--out", out4,
                     "--dataset-json", moved)
    assert alias.returncode == 0, alias.stderr
    for name in ("per_case.csv", "summary.md"):
        assert (out4 / name).read_text() == (out2 / name).read_text()


def test_evaluate_nnunet_refuses_threshold_in_one_error_line(raw):
    root, dataset, _ = raw
    done = _toposeg("evaluate", "--nnunet", "--pred", root / "pred", "--gt", dataset / "labelsTs",
                    "--out", root / "eval", "--threshold", "0.5")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "toposeg evaluate: error: --threshold cannot be combined with --nnunet: nnU-Net label maps (0..K) are "
        "scored per class as they are (no threshold, polarity, suffix, post-processing, subset or graph "
        "scoring); drop it"]
    assert not (root / "eval").exists()


@pytest.mark.parametrize("flags,named", [
    (["--label-foreground", "dark"], "--label-foreground"),
    (["--pred-suffix", "_mask"], "--pred-suffix"),
    (["--pred-suffix", "auto"], "--pred-suffix"),
    (["--postprocess", "3"], "--postprocess"),
    (["--subset"], "--subset"),
    (["--graph"], "--graph"),
    (["--snap", "2"], "--snap"),
    (["--threshold", "0.5", "--graph"], "--threshold, --graph"),
])
def test_evaluate_nnunet_refuses_binary_only_flags(raw, capsys, flags, named):
    from toposeg.cli import main

    root, dataset, _ = raw
    rc = main(["evaluate", "--nnunet", "--pred", str(root / "pred"), "--gt", str(dataset / "labelsTs"),
               "--out", str(root / "eval"), *flags])
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"toposeg evaluate: error: {named} cannot be combined with --nnunet")
    assert not (root / "eval").exists()


def test_evaluate_refuses_dataset_json_without_nnunet(raw):
    root, dataset, _ = raw
    done = _toposeg("evaluate", "--pred", root / "pred", "--gt", dataset / "labelsTs", "--out", root / "eval",
                    "--dataset-json", dataset / "dataset.json")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"toposeg evaluate: error: --dataset-json {dataset / 'dataset.json'} only applies with --nnunet "
        "(nnU-Net label-map folders)"]

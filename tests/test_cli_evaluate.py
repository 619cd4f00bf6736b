"""`toposeg evaluate` end to end on small files in real formats."""

import csv
import json
import math

import numpy as np
import pytest
from skimage.metrics import variation_of_information

from toposeg.cli import main
from toposeg.io import write_array
from toposeg.metrics import evaluate_case


def ring(n=24, r_out=8, r_in=5, shift=0):
    y, x = np.indices((n, n)) - (n - 1) / 2
    r = np.hypot(y, x - shift)
    return (r <= r_out) & (r >= r_in)


@pytest.fixture
def folders(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    g1, g2 = ring(), ring(shift=2)
    p1 = g1.copy()
    p1[11:13, :] = False  # break the ring: β1 error 1, β0 error 1
    p2 = g2.copy()
    p2[2, 2] = True  # a one-pixel speck
    write_array(gt / "a.png", g1)  # 0/255 PNG
    write_array(gt / "b.tif", g2.astype(np.uint8))  # 0/1 TIFF
    write_array(pred / "a.png", p1)
    write_array(pred / "b.npy", p2)
    return tmp_path, {"a": (p1, g1), "b": (p2, g2)}


def test_evaluate_writes_tables_equal_to_evaluate_case(folders, capsys):
    root, cases = folders
    out = root / "out"
    rc = main(["evaluate", "--pred", str(root / "pred"), "--gt", str(root / "gt"), "--out", str(out),
               "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| Method |" in printed and "β1 error" in printed
    assert "**" not in printed  # one row: nothing to mark as best
    rows = list(csv.DictReader(open(out / "per_case.csv")))
    assert [r["case_id"] for r in rows] == ["a", "b"]
    for r in rows:
        ref = evaluate_case(*cases[r["case_id"]])
        for k in ("dice", "cldice", "voi", "are", "betti0_error", "betti1_error"):
            assert float(r[k]) == pytest.approx(ref[k], rel=1e-9)
    assert float(rows[0]["betti1_error"]) == 1.0
    s = json.loads((out / "summary.json").read_text())
    m = s["results"]["raw"]["metrics"]
    assert m["dice"]["n_valid"] == 2 and m["dice"]["mean"] == pytest.approx(np.mean([float(r["dice"]) for r in rows]))
    assert s["connectivity"] == {"foreground": 8, "background": 4}
    assert "betti2_error" not in m
    md = (out / "summary.md").read_text()
    assert "| Method | Dice ↑ | mIoU ↑ | VOI ↓ | ARE ↓ | β0 error ↓ | β1 error ↓ | clDice ↑ |" in md


def test_postprocess_is_a_separate_row_and_gt_untouched(folders):
    root, cases = folders
    gt_before = (root / "gt" / "a.png").read_bytes()
    out = root / "out"
    assert main(["evaluate", "--pred", str(root / "pred"), "--gt", str(root / "gt"), "--out", str(out),
                 "--postprocess", "3", "--name", "unet", "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    raw = s["results"]["raw"]["metrics"]
    pp = s["results"]["postprocessed"]
    assert pp["label"].startswith("unet + small-object removal (< 3 px, prediction only)")
    assert raw["betti0_error"]["mean"] == 1.0  # a: broken ring (2 vs 1); b: speck (2 vs 1)
    assert pp["metrics"]["betti0_error"]["mean"] == 0.5  # the speck is gone, the break remains
    rows = list(csv.DictReader(open(out / "per_case_postprocessed.csv")))
    assert float(rows[1]["betti0_error"]) == 0.0
    md = (out / "summary.md").read_text()
    assert "| unet |" in md and "| unet + small-object removal" in md and "prediction only" in md
    assert (root / "gt" / "a.png").read_bytes() == gt_before


def test_predict_output_layout_threshold_and_dark_gt(tmp_path):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    g = ring()
    write_array(gt_dir / "s1.png", (~g).astype(np.uint8) * 255)  # ISBI style: structure is dark
    prob = np.where(g, 0.8, 0.1).astype(np.float32)
    prob[0, 0] = 0.7
    write_array(pred_dir / "s1_prob.tif", prob)
    write_array(pred_dir / "s1_mask.tif", (prob > 0.5).astype(np.uint8))
    out = tmp_path / "out"
    assert main(["evaluate", "--pred", str(pred_dir), "--gt", str(gt_dir), "--out", str(out),
                 "--label-foreground", "dark", "--no-progress"]) == 0
    row = next(csv.DictReader(open(out / "per_case.csv")))
    assert row["case_id"] == "s1" and float(row["betti0_error"]) == 1.0 and float(row["dice"]) < 1
    # probability maps thresholded on request (only the *_prob file here: 'auto' pairs it)
    (pred_dir / "s1_mask.tif").unlink()
    assert main(["evaluate", "--pred", str(pred_dir), "--gt", str(gt_dir), "--out", str(out), "--label-foreground",
                 "dark", "--threshold", "0.75", "--no-progress", "--overwrite"]) == 0
    row = next(csv.DictReader(open(out / "per_case.csv")))
    assert float(row["dice"]) == 1.0 and float(row["voi"]) == 0.0


def test_3d_nifti_and_empty_gt_nan(tmp_path):
    z, y, x = np.indices((9, 20, 20), dtype=float)
    torus = (np.hypot(y - 9.5, x - 9.5) - 6) ** 2 + (z - 4) ** 2 <= 2.2**2
    filled = torus | ((np.hypot(y - 9.5, x - 9.5) <= 6) & (np.abs(z - 4) <= 1))
    write_array(tmp_path / "gt" / "v1.nii.gz", torus.astype(np.uint8))
    write_array(tmp_path / "pred" / "v1.nii.gz", filled.astype(np.uint8))
    write_array(tmp_path / "gt" / "v2.nii.gz", np.zeros((9, 20, 20), np.uint8))
    write_array(tmp_path / "pred" / "v2.nii.gz", np.zeros((9, 20, 20), np.uint8))
    out = tmp_path / "out"
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out),
                 "--no-progress"]) == 0
    s = json.loads((out / "summary.json").read_text())
    m = s["results"]["raw"]["metrics"]
    assert m["betti1_error"]["mean"] == 0.5  # v1: the disc fills the torus hole; v2: 0
    assert m["betti2_error"]["n"] == 2
    assert m["dice"]["n_valid"] == 1 and m["dice"]["n"] == 2  # empty vs empty: undefined, not 0
    assert s["connectivity"] == {"foreground": 26, "background": 6}
    rows = list(csv.DictReader(open(out / "per_case.csv")))
    assert math.isnan(float(rows[1]["dice"]))
    assert "dice: 1" in (out / "summary.md").read_text()  # undefined cases are reported


def test_opposite_connectivity_is_used(tmp_path):
    g = np.zeros((6, 6), bool)
    g[1, 1] = g[2, 2] = True
    write_array(tmp_path / "gt" / "c.png", g)
    write_array(tmp_path / "pred" / "c.png", np.zeros_like(g))
    out = tmp_path / "out"
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out),
                 "--connectivity", "4", "--no-progress"]) == 0
    row = next(csv.DictReader(open(out / "per_case.csv")))
    assert float(row["betti0_error"]) == 2.0
    lt = np.zeros((6, 6), int)
    assert float(row["voi"]) == pytest.approx(sum(variation_of_information(lt + 1 - g, lt + 1)))


def _err(capsys):
    return capsys.readouterr().err


def test_errors(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    write_array(gt / "a.png", ring())
    write_array(gt / "b.png", ring())
    write_array(pred / "a.png", ring())
    write_array(pred / "c.png", ring())
    base = ["evaluate", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(base) == 2
    err = _err(capsys)
    assert "ground truth without a prediction: b.png" in err and "predictions without ground truth: c.png" in err

    (pred / "c.png").unlink()
    write_array(pred / "b.png", ring()[:20])
    assert main(base) == 2
    assert "prediction b.png has shape (20, 24) but ground truth b.png has shape (24, 24)" in _err(capsys)

    write_array(pred / "b.png", (ring() * 128).astype(np.uint8))
    assert main(base) == 2
    assert "b.png: prediction is not a binary mask (0/1 or 0/255), found values [0, 128]" in _err(capsys)

    write_array(pred / "b.png", ring())
    write_array(gt / "b.png", np.arange(24 * 24).reshape(24, 24).astype(np.uint16))
    assert main(base + ["--label-foreground", "bright"]) == 2
    assert "b.png: 'bright'/'dark' need a label with exactly two values (e.g. 0/1 or 0/255), found 0, 1, 2" in _err(capsys)
    colour = np.zeros((24, 24, 3), np.uint8)
    colour[..., 0] = 255 * ring()
    write_array(gt / "b.png", colour)
    assert main(base) == 2
    assert "b.png: a mask must be grayscale, got a colour image of shape (24, 24, 3)" in _err(capsys)

    (gt / "b.png").write_bytes(b"not a png")
    assert main(base) == 2
    assert "b.png: could not read file" in _err(capsys)

    other = tmp_path / "other"
    write_array(other / "zzz.png", ring())
    assert main(["evaluate", "--pred", str(other), "--gt", str(gt), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "no matching pairs" in _err(capsys)

    assert main(["evaluate", "--pred", str(tmp_path / "missing"), "--gt", str(gt), "--out", str(tmp_path / "o")]) == 2
    assert "--pred folder not found: " in _err(capsys)

    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--pred", str(tmp_path / "empty"), "--gt", str(gt), "--out", str(tmp_path / "o")]) == 2
    assert "no image files" in _err(capsys)

    write_array(pred / "a.tif", ring())
    assert main(base) == 2
    assert "several files share a name: a.png / a.tif" in _err(capsys)
    (pred / "a.tif").unlink()

    assert main(base + ["--threshold", "1.5"]) == 2
    assert "threshold must be a number in (0, 1), got 1.5" in _err(capsys)
    assert main(base + ["--postprocess", "0"]) == 2
    assert "--postprocess MIN_SIZE must be a positive number of pixels, got 0" in _err(capsys)


def test_graph_adds_apls(folders):
    from toposeg.graph import apls

    root, cases = folders
    out = root / "out_graph"
    assert main(["evaluate", "--pred", str(root / "pred"), "--gt", str(root / "gt"), "--out", str(out),
                 "--graph", "--no-progress"]) == 0
    rows = {r["case_id"]: r for r in csv.DictReader(open(out / "per_case.csv"))}
    for case_id, (pred, gt) in cases.items():
        assert float(rows[case_id]["apls"]) == pytest.approx(apls(pred, gt, snap=5.0))
    assert float(rows["a"]["apls"]) < 1.0  # the broken ring loses routes
    assert "APLS ↑" in (out / "summary.md").read_text()


def test_polarity_threshold_from_predict_json_and_warning(tmp_path, capsys):
    """predict.json (toposeg predict output) sets the polarity and the threshold of *_prob maps;
    flags override it; a ground truth whose foreground is the majority earns a warning naming the option."""
    g = ring()
    write_array(tmp_path / "gt" / "s1.png", (~g).astype(np.uint8) * 255)  # the structure is dark
    prob = np.where(g, 0.8, 0.1).astype(np.float32)
    prob[0, 0] = 0.7
    write_array(tmp_path / "pred" / "s1_prob.tif", prob)
    (tmp_path / "pred" / "predict.json").write_text(json.dumps({"threshold": 0.75, "label_foreground": "dark"}))
    base = ["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "a")]) == 0
    assert "warning" not in capsys.readouterr().err
    row = next(csv.DictReader(open(tmp_path / "a" / "per_case.csv")))
    assert float(row["dice"]) == 1.0  # prob > 0.75 is exactly the dark ring
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["threshold"] == 0.75 and s["label_foreground"] == "dark"
    assert s["threshold_from"].endswith("predict.json") and s["label_foreground_from"].endswith("predict.json")
    # the other polarity, asked for explicitly: the cells are scored, and the user is warned
    assert main(base + ["--out", str(tmp_path / "b"), "--label-foreground", "bright", "--threshold", "0.5"]) == 0
    err = capsys.readouterr().err
    frac = (~g).mean()
    assert f"covers {frac:.1%} of the pixels" in err and "--label-foreground dark" in err
    row = next(csv.DictReader(open(tmp_path / "b" / "per_case.csv")))
    ref = evaluate_case(prob > 0.5, ~g)
    assert float(row["dice"]) == pytest.approx(ref["dice"], rel=1e-9)


def test_subset_scores_only_existing_pairs(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for k in ("a", "b", "c"):
        write_array(gt / f"{k}.png", ring())
    write_array(pred / "a.png", ring())
    write_array(pred / "z.png", ring())
    base = ["evaluate", "--pred", str(pred), "--gt", str(gt), "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "o")]) == 2
    assert "ground truth without a prediction: b.png, c.png" in _err(capsys)
    assert not (tmp_path / "o").exists()
    assert main(base + ["--out", str(tmp_path / "o"), "--subset"]) == 0
    assert "skipped unpaired files: b.png, c.png, z.png" in _err(capsys)
    rows = list(csv.DictReader(open(tmp_path / "o" / "per_case.csv")))
    assert [r["case_id"] for r in rows] == ["a"]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["skipped_unpaired"] == ["b.png", "c.png", "z.png"]


def test_existing_output_is_refused_without_overwrite(folders, capsys):
    root, _ = folders
    out = root / "out"
    base = ["evaluate", "--pred", str(root / "pred"), "--gt", str(root / "gt"), "--out", str(out), "--no-progress"]
    assert main(base) == 0
    before = (out / "per_case.csv").read_bytes()
    assert main(base + ["--postprocess", "3"]) == 2
    assert "already holds files; choose another folder or pass --overwrite" in _err(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["per_case.csv", "summary.json", "summary.md"]
    assert main(base + ["--postprocess", "3", "--overwrite"]) == 0
    assert (out / "per_case_postprocessed.csv").is_file() and (out / "per_case.csv").read_bytes() == before

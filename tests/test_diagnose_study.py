"""benchmarks/diagnose_study.py on a hand-made study folder: every count is known by construction.

Ground truth (40 x 60): bar A rows 5-11 x cols 5-54, bar B rows 25-31 x cols 5-54, a small bar C
rows 34-36 x cols 5-14. Predictions:

* ``unet`` (baseline): the GT with bar A cut at cols 29-30 (one gap in A's skeleton, A in 2 pieces);
* ``shpm``: the GT (gap closed) plus a 3-px speck away from the GT and a 2x2 pinhole inside bar A,
  off A's skeleton (seed 1: the GT exactly, to check the averaging over seeds);
* ``cutter``: the baseline with bar B also cut at col 20, bar C missing, a 1-px pinhole on B's
  skeleton (a *bridged* gap) and a spurious square ring (7 x 11 outline, 32 px) around a 45-px hole
  on GT background.

Expected values are hand counts; the skeleton is scikit-image's (the script's stated reference).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from skimage.morphology import skeletonize

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("diagnose_study", ROOT / "benchmarks" / "diagnose_study.py")
ds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ds)

H, W = 40, 60


def _gt():
    g = np.zeros((H, W), bool)
    g[5:12, 5:55] = True   # A
    g[25:32, 5:55] = True  # B
    g[34:37, 5:15] = True  # C
    return g


def _baseline():
    p = _gt()
    p[5:12, 29:31] = False
    return p


def _shpm():
    p = _gt()
    p[18, 10:13] = True       # 3-px speck, 6+ px from any GT pixel
    p[6:8, 40:42] = False     # 4-px pinhole in bar A (skeleton is row 8 there)
    return p


def _cutter():
    p = _baseline()
    p[25:32, 20] = False      # B cut
    p[34:37, 5:15] = False    # C missed
    p[14:21, 40:51] = True    # ring: outline of a 7 x 11 box ...
    p[15:20, 41:50] = False   # ... around a 5 x 9 = 45 px hole
    p[28, 40] = False         # 1-px pinhole on B's skeleton: a gap the prediction connects around
    return p


def _write_run(root: Path, seed: int, fold: int, method: str, preds: dict, summary=None, log=None, config=None):
    d = root / f"seed{seed}" / f"fold{fold}" / method
    d.mkdir(parents=True)
    if config is not None:
        (d / "config.yaml").write_text(config)
    np.savez_compressed(d / "test_predictions.npz", **preds)
    (d / "test_summary.json").write_text(json.dumps(summary or {"per_case": []}))
    if log is not None:
        (d / "log.jsonl").write_text("\n".join(json.dumps(e) for e in log) + "\n")
    return d


def _tele(step, hard_pos, grad_share):
    return {"step": step, "loss": 0.5, "val": {"dice": 0.8},
            "hpm": {"hard_pos": hard_pos, "hard_neg": 2 * hard_pos, "hard": 3 * hard_pos,
                    "hard_fraction": 0.01, "hpm_term": 0.4, "lam": 0.5, "grad_share": grad_share}}


@pytest.fixture()
def study(tmp_path):
    root = tmp_path / "study"
    for seed in (0, 1):
        _write_run(root, seed, 0, "unet", {"c0": _baseline()},
                   summary={"per_case": [{"case_id": "c0", "betti0_pred": 4.0, "betti1_pred": 0.0,
                                          "spurious_components": 0.0, "missing_components": 0.0,
                                          "split_components": 1.0}]})
        _write_run(root, seed, 0, "shpm", {"c0": _shpm() if seed == 0 else _gt()},
                   log=[{"step": 1, "loss": 1.0}, _tele(50, 10 + 20 * seed, 0.5 + seed), _tele(100, 5, 0.2),
                        _tele(100, 7 + 2 * seed, 0.4)])  # step 100 logged twice (resumed run): the last one counts
        _write_run(root, seed, 0, "cutter", {"c0": _cutter()})
    # an unfinished run and the shared pre-training are not runs to read
    (root / "seed0" / "fold0" / "pretrain").mkdir()
    (root / "seed0" / "fold1" / "unet").mkdir(parents=True)
    (root / "seed0" / "fold1" / "unet" / "config.yaml").write_text("name: unet\n")
    return root


def _row(result, method, seed):
    (r,) = [r for r in result["per_case"] if r["method"] == method and r["seed"] == seed]
    return r


def test_preconditions_of_the_hand_construction():
    sk = skeletonize(_gt())
    assert not (sk & ~_shpm()).any()                 # the pinhole is off the skeleton
    assert sk[8, 29] and sk[8, 30] and sk[28, 20]    # the cuts cross the skeleton
    assert sk[34:37].sum() > 0


def test_dual_connectivity_diamond():
    """An 8-connected diamond of 4 pixels is one component enclosing a 1-px hole (background
    4-connected), as toposeg's Betti numbers count it (docs/evaluation.md: foreground 8 / background 4)."""
    p = np.zeros((5, 5), bool)
    p[1, 2] = p[2, 1] = p[2, 3] = p[3, 2] = True
    gt = np.zeros((5, 5), bool)
    gt[2, 2] = True
    assert ds.component_stats(p, gt)["pred_components"] == 1
    assert ds.component_stats(p, gt)["spurious"] == 1
    one = gt.copy()
    one[2, 3] = True                  # a 2-px component sharing one pixel with the GT is on-GT
    assert (ds.component_stats(one, gt)["spurious"], ds.component_stats(one, gt)["on_gt_1_9"]) == (0, 1)
    h = ds.hole_stats(p, gt)
    assert (h["holes"], h["pinholes"], h["pinholes_on_fg"], h["pinholes_in_spurious"]) == (1, 1, 1, 1)
    border = np.zeros((5, 5), bool)
    border[0:3, 0:3] = True
    border[1, 1] = False              # enclosed 1-px hole
    border[4, 2:5] = True             # a bar on the border row: the background beside it is the outside
    assert ds.hole_stats(border, gt)["holes"] == 1
    assert ds.hole_stats(border, gt)["pinholes_in_spurious"] == 0   # the enclosing block covers the GT pixel


def test_skeleton_island_and_near_speck():
    """One bar (rows 5-11, cols 5-64) with a gap at cols 25-34 holding a 2x2 island on the skeleton
    (row 8), a 1-px speck 3 px above the bar (near) and one 9 px below it (far)."""
    gt = np.zeros((30, 70), bool)
    gt[5:12, 5:65] = True
    assert skeletonize(gt)[8, 25:35].all()
    p = gt.copy()
    p[5:12, 25:35] = False    # pieces of 140 and 210 px
    p[8:10, 29:31] = True     # island: 4 px, on GT, on the skeleton
    p[2, 40] = True           # 3 rows above row 5: distance 3 -> near
    p[20, 40] = True          # 9 rows below row 11 -> far
    c = ds.component_stats(p, gt)
    assert (c["pred_components"], c["on_gt"], c["split_pieces"], c["skeleton_islands"]) == (5, 3, 2, 1)
    assert (c["spurious"], c["spurious_near"], c["spurious_far"]) == (2, 1, 1)
    p[8:10, 29:31] = False
    p[6, 30] = True           # an island off the skeleton is an extra piece, not a skeleton island
    c = ds.component_stats(p, gt)
    assert (c["split_pieces"], c["skeleton_islands"]) == (2, 0)
    p[6, 30] = False
    p[5:12, 15:25] = False    # the left piece shrinks to 70 px (< 100, on the skeleton): a fragment
    c = ds.component_stats(p, gt)
    assert (c["split_pieces"], c["skeleton_islands"]) == (1, 1)


def test_hand_counts_per_case(study):
    res = ds.diagnose(study, {"c0": _gt()}, baseline="unet", log=lambda s: None)
    n_c = int(skeletonize(_gt())[34:37].sum())  # skeleton pixels of bar C

    b = _row(res, "unet", 0)
    assert (b["pred_components"], b["spurious"], b["on_gt"], b["on_gt_100_999"], b["on_gt_10_99"]) == (4, 0, 4, 3, 1)
    assert (b["gt_components"], b["gt_split"], b["split_pieces"], b["gt_missed"], b["merged"]) == (3, 1, 1, 0, 0)
    assert b["skeleton_islands"] == 0        # C is small and on its skeleton, but a whole structure, not a piece
    assert (b["holes"], b["pinholes"]) == (0, 0)
    assert (b["missed_skeleton_px"], b["gaps"], b["gaps_breaking"], b["gaps_bridged"], b["gaps_isolated"]) == (2, 1, 1, 0, 0)
    assert all(math.isnan(b[k]) for k in ("closed", "opened", "net_closed", "closed_breaking", "opened_breaking"))

    s = _row(res, "shpm", 0)
    assert (s["pred_components"], s["spurious"], s["spurious_1_9"], s["spurious_10_99"], s["spurious_px"]) == (4, 1, 1, 0, 3)
    assert (s["spurious_near"], s["spurious_far"], s["skeleton_islands"]) == (0, 1, 0)  # speck 7 px from A and B
    assert (s["on_gt"], s["gt_split"], s["split_pieces"], s["gt_missed"]) == (3, 0, 0, 0)
    assert (s["holes"], s["pinholes"], s["pinholes_on_fg"], s["pinholes_on_bg"], s["holes_10_99"]) == (1, 1, 1, 0, 0)
    assert s["pinholes_in_spurious"] == 0    # the pinhole is inside bar A, an on-GT component
    assert (s["missed_skeleton_px"], s["gaps"]) == (0, 0)
    assert (s["closed"], s["opened"], s["net_closed"]) == (1, 0, 1)
    assert (s["closed_breaking"], s["opened_breaking"]) == (1, 0)   # the baseline's A cut was breaking
    s1 = _row(res, "shpm", 1)
    assert (s1["spurious"], s1["pinholes"], s1["closed"], s1["opened"]) == (0, 0, 1, 0)

    c = _row(res, "cutter", 0)
    assert (c["pred_components"], c["spurious"], c["spurious_10_99"], c["spurious_px"], c["on_gt"]) == (5, 1, 1, 32, 4)
    assert (c["on_gt_100_999"], c["gt_split"], c["split_pieces"], c["gt_missed"], c["merged"]) == (4, 2, 2, 1, 0)
    assert (c["spurious_near"], c["spurious_far"], c["skeleton_islands"]) == (1, 0, 0)  # ring 3 px below A
    assert (c["holes"], c["holes_10_99"], c["holes_10_99_on_bg"], c["holes_on_fg"]) == (2, 1, 1, 1)
    assert (c["pinholes"], c["pinholes_on_fg"], c["holes_ge100"], c["pinholes_in_spurious"]) == (1, 1, 0, 0)
    assert (c["missed_skeleton_px"], c["gaps"]) == (2 + 1 + n_c + 1, 4)
    assert (c["gaps_breaking"], c["gaps_bridged"], c["gaps_isolated"]) == (2, 1, 1)
    assert (c["closed"], c["opened"], c["net_closed"]) == (0, 3, -3)
    assert (c["closed_breaking"], c["opened_breaking"]) == (0, 1)   # B cut; C isolated, pinhole bridged


def test_aggregates_average_seeds_then_cases(study):
    res = ds.diagnose(study, {"c0": _gt()}, baseline="unet", log=lambda s: None)
    assert res["methods"] == ["unet", "cutter", "shpm"]
    assert res["n_cases"] == {"unet": 1, "cutter": 1, "shpm": 1}
    assert res["means"]["shpm"]["spurious_1_9"] == 0.5          # 1 speck in seed 0, none in seed 1
    assert res["means"]["shpm"]["pinholes_on_fg"] == 0.5
    assert res["paired"]["shpm"]["spurious"]["mean_diff"] == 0.5
    assert res["paired"]["cutter"]["gt_missed"]["mean_diff"] == 1.0
    g = res["gaps_vs_baseline"]
    assert (g["shpm"]["closed"]["mean"], g["shpm"]["opened"]["mean"], g["shpm"]["net_closed"]["mean"]) == (1.0, 0.0, 1.0)
    assert (g["cutter"]["opened"]["mean"], g["cutter"]["net_closed"]["mean"]) == (3.0, -3.0)
    assert g["shpm"]["closed"]["n"] == 1
    used = {(u["method"], u["seed"], u["fold"]) for u in res["runs_used"]}
    assert used == {(m, s, 0) for m in ("unet", "shpm", "cutter") for s in (0, 1)}
    assert res["runs_unfinished_skipped"] == ["seed0/fold1/unet"]
    # the hand-written toposeg scores of the baseline agree with the script's counts
    assert res["consistency_with_test_summary"]["n_mismatches"] == 0


def test_consistency_check_reports_a_disagreeing_stored_score(tmp_path):
    root = tmp_path / "s"
    _write_run(root, 0, 0, "unet", {"c0": _baseline()}, summary={"per_case": [{"case_id": "c0", "betti0_pred": 3.0}]})
    res = ds.diagnose(root, {"c0": _gt()}, baseline="unet", log=lambda s: None)
    c = res["consistency_with_test_summary"]
    assert c["n_mismatches"] == 1
    assert c["mismatches"][0]["ours_vs_toposeg"] == {"pred_components": (4, 3.0)}


def test_telemetry_median_over_runs_last_entry_wins(study):
    res = ds.diagnose(study, {"c0": _gt()}, baseline="unet", log=lambda s: None)
    tele = res["telemetry"]
    assert list(tele) == ["shpm"]                       # only runs whose log has "hpm"
    assert sorted(tele["shpm"]) == [50, 100]
    assert tele["shpm"][50]["hard_pos"] == 20.0         # median of 10 and 30
    assert tele["shpm"][50]["hard_neg"] == 40.0
    assert tele["shpm"][50]["grad_share"] == 1.0        # median of 0.5 and 1.5
    assert tele["shpm"][100]["hard_pos"] == 8.0         # median of 7 and 9 (not the first entry, 5)
    assert tele["shpm"][100]["n_runs"] == 2


def test_only_seed_folds_where_every_method_finished(study):
    _write_run(study, 0, 2, "shpm", {"c9": _shpm()})  # fold 2: only shpm finished
    lines = []
    res = ds.diagnose(study, {"c0": _gt(), "c9": _gt()}, baseline="unet", log=lines.append)
    assert res["runs_finished_excluded_incomplete_seed_fold"] == ["seed0/fold2/shpm"]
    assert res["n_cases"] == {"unet": 1, "cutter": 1, "shpm": 1} and res["folds"] == [0]
    assert res["means"]["shpm"]["spurious_1_9"] == 0.5
    assert "skip seed0/fold2/shpm: not every method of its seed and fold has finished" in lines


def test_no_seed_fold_with_every_method_is_a_clear_error(tmp_path):
    root = tmp_path / "ragged"
    _write_run(root, 0, 0, "unet", {"c0": _baseline()})
    _write_run(root, 0, 1, "shpm", {"c0": _shpm()})
    with pytest.raises(ValueError, match=r"no seed/fold in .*ragged.* has finished runs of every method \['unet', 'shpm'\]"):
        ds.diagnose(root, {"c0": _gt()}, baseline="unet", log=lambda s: None)


def test_methods_filter_and_progress_lines(study):
    lines = []
    res = ds.diagnose(study, {"c0": _gt()}, baseline="unet", methods=["unet", "shpm"], log=lines.append)
    assert res["methods"] == ["unet", "shpm"]
    assert len(lines) == 4 and all(line.startswith("read seed") for line in lines)


def test_outputs_are_written(study, tmp_path):
    labels = {"c0": _gt()}
    res = ds.diagnose(study, labels, baseline="unet", log=lambda s: None)
    files = ds.write_outputs(res, tmp_path / "out", runs=study, labels=labels)
    for name in ("diagnosis.json", "diagnosis.md", "components.png", "telemetry.png", "example.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0, name
    data = json.loads(files["json"].read_text())
    assert data["example"]["method"] == "shpm" and data["example"]["added_components"] == 0
    assert data["gaps_vs_baseline"]["shpm"]["closed"]["mean"] == 1.0
    assert "| shpm |" in files["md"].read_text()


def test_no_finished_runs_is_a_clear_error(tmp_path):
    root = tmp_path / "empty_study"
    (root / "seed0" / "fold0" / "unet").mkdir(parents=True)  # started, never finished
    with pytest.raises(ValueError, match="no finished runs.*empty_study"):
        ds.diagnose(root, {}, baseline="unet", log=lambda s: None)


def test_baseline_not_among_methods(study):
    with pytest.raises(ValueError, match=r"--baseline 'bce' is not among the methods \['unet', 'shpm'\]"):
        ds.diagnose(study, {"c0": _gt()}, baseline="bce", methods=["unet", "shpm"], log=lambda s: None)
    with pytest.raises(ValueError, match=r"--baseline 'bce' is not among the methods .* found in"):
        ds.diagnose(study, {"c0": _gt()}, baseline="bce", log=lambda s: None)


def test_requested_method_without_runs(study):
    with pytest.raises(ValueError, match=r"no finished run of method\(s\) \['thpm'\]"):
        ds.diagnose(study, {"c0": _gt()}, baseline="unet", methods=["unet", "thpm"], log=lambda s: None)


def test_missing_label_and_shape_mismatch(study):
    with pytest.raises(KeyError, match="'c0'"):
        ds.diagnose(study, {"other": _gt()}, baseline="unet", log=lambda s: None)
    with pytest.raises(ValueError, match=r"prediction shape \(40, 60\) != label shape \(40, 61\)"):
        ds.diagnose(study, {"c0": np.zeros((40, 61), bool)}, baseline="unet", log=lambda s: None)


def test_case_ids_must_match_splits_json(study):
    (study / "splits.json").write_text(json.dumps({"folds": [{"train": [], "val": [], "test": ["c1"]}]}))
    with pytest.raises(ValueError, match=r"case ids \['c0'\] differ from fold 0's test ids \['c1'\]"):
        ds.diagnose(study, {"c0": _gt()}, baseline="unet", log=lambda s: None)


def test_cli_reads_labels_from_open_dataset(tmp_path, capsys):
    """The CLI path: labels (and images for example.png) from toposeg.data.open_dataset."""
    from scipy import ndimage

    from toposeg.data import open_dataset

    label = open_dataset("vessels2d")[0].label
    far = np.argwhere(ndimage.distance_transform_edt(~label) > 6)[0]
    speck = label.copy()
    speck[far[0], far[1]] = True
    root = tmp_path / "study"
    cfg = "data:\n  kind: vessels2d\n"   # default options
    _write_run(root, 0, 0, "unet", {"vessels2d_0000": label}, config=cfg)
    _write_run(root, 0, 0, "shpm", {"vessels2d_0000": speck}, config=cfg)
    assert ds.main(["--runs", str(root), "--data-kind", "vessels2d", "--baseline", "unet",
                    "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "read seed0/fold0/shpm: 1 test cases" in out
    data = json.loads((tmp_path / "out" / "diagnosis.json").read_text())
    assert data["methods"] == ["unet", "shpm"]
    assert data["paired"]["shpm"]["spurious"]["mean_diff"] == 1.0
    assert data["paired"]["shpm"]["spurious_far"]["mean_diff"] == 1.0
    assert data["means"]["unet"]["spurious"] == 0 and data["means"]["unet"]["gt_missed"] == 0
    assert data["meta"]["data_kind"] == "vessels2d"
    assert (tmp_path / "out" / "example.png").stat().st_size > 0


# ------------------------------------------------------------------ labels from the study's own data options
OPTS_CFG = "data:\n  kind: vessels2d\n  options:\n    n: 4\n    size: 128\n    seed: 3\n"


def _options_study(root: Path):
    """A study trained on vessels2d with n=4, seed=3 (non-default; default n=16, seed=0) whose
    predictions are exactly the ground truth of those options, generated independently here."""
    from toposeg.data import make_synthetic

    truth = {c.id: c.label for c in make_synthetic("vessels2d", 4, size=128, seed=3)[:2]}
    for m in ("unet", "shpm"):
        _write_run(root, 0, 0, m, truth, config=OPTS_CFG)
    return truth


ERROR_COUNTS = ("spurious", "gt_missed", "split_pieces", "merged", "missed_skeleton_px", "gaps")


def test_cli_labels_use_the_study_data_options(tmp_path, capsys):
    from toposeg.data import open_dataset

    root = tmp_path / "study"
    truth = _options_study(root)
    # precondition: the default-options labels are different images of the same ids and shape
    default = {cid: open_dataset("vessels2d")[i].label for i, cid in enumerate(sorted(truth))}
    assert all(default[c].shape == truth[c].shape and (default[c] != truth[c]).any() for c in truth)
    # with --data-kind omitted (read from config.yaml): predictions == labels -> every error count 0
    assert ds.main(["--runs", str(root), "--out", str(tmp_path / "out")]) == 0
    data = json.loads((tmp_path / "out" / "diagnosis.json").read_text())
    for m in ("unet", "shpm"):
        assert {k: data["means"][m][k] for k in ERROR_COUNTS} == {k: 0 for k in ERROR_COUNTS}, m
    assert data["meta"]["data_kind"] == "vessels2d"
    assert data["meta"]["data_options"] == {"n": 4, "size": 128, "seed": 3}
    # the old behaviour (labels of the default options) would have reported errors
    wrong = ds.diagnose(root, default, baseline="unet", log=lambda s: None)
    assert wrong["means"]["unet"]["missed_skeleton_px"] > 100 and wrong["means"]["unet"]["gaps"] > 1


def _err(capsys, argv) -> str:
    assert ds.main(argv) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith("diagnose_study: error: ") and cap.err.count("\n") == 1, cap.err
    assert "Traceback" not in cap.err
    return cap.err


def test_cli_data_kind_must_agree_with_config(tmp_path, capsys):
    root = tmp_path / "study"
    _options_study(root)
    err = _err(capsys, ["--runs", str(root), "--data-kind", "membranes2d", "--out", str(tmp_path / "o")])
    assert "--data-kind 'membranes2d' disagrees with data.kind 'vessels2d'" in err and "config.yaml" in err
    err = _err(capsys, ["--runs", str(root), "--data-kind", "nosuch", "--out", str(tmp_path / "o")])
    assert "unknown dataset kind 'nosuch'; valid: [" in err
    assert not (tmp_path / "o").exists()


def test_cli_runs_disagreeing_on_data_options(tmp_path, capsys):
    root = tmp_path / "study"
    _options_study(root)
    shpm = root / "seed0" / "fold0" / "shpm"
    (shpm / "config.yaml").write_text(OPTS_CFG.replace("seed: 3", "seed: 4"))
    err = _err(capsys, ["--runs", str(root), "--out", str(tmp_path / "o")])
    assert "the runs of the study disagree on their data" in err
    assert f"{root / 'seed0' / 'fold0' / 'unet' / 'config.yaml'} has data.kind 'vessels2d', data.options " \
           "{'n': 4, 'size': 128, 'seed': 3}" in err
    assert f"{shpm / 'config.yaml'} has data.kind 'vessels2d', data.options {{'n': 4, 'size': 128, 'seed': 4}}" in err
    (shpm / "config.yaml").unlink()
    err = _err(capsys, ["--runs", str(root), "--out", str(tmp_path / "o")])
    assert f"{shpm / 'config.yaml'} not found" in err


def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    root = tmp_path / "study"
    _options_study(root)
    out = str(tmp_path / "o")
    assert "--runs '" + str(tmp_path / "nope") + "' is not a folder" in _err(
        capsys, ["--runs", str(tmp_path / "nope"), "--out", out])
    (tmp_path / "empty").mkdir()
    assert f"no finished runs (seed*/fold*/<method>/ with test_predictions.npz and test_summary.json) in " \
           f"'{tmp_path / 'empty'}'" in _err(capsys, ["--runs", str(tmp_path / "empty"), "--out", out])
    assert "--baseline 'bce' is not among the methods ['shpm', 'unet'] found in" in _err(
        capsys, ["--runs", str(root), "--baseline", "bce", "--out", out])
    assert "no finished run of method(s) ['nosuch'] in " in (e := _err(
        capsys, ["--runs", str(root), "--methods", "unet,nosuch", "--out", out]))
    assert "(methods found: ['unet', 'shpm'])" in e           # all found, not only the requested ones
    assert "--example-method 'nosuch' is not among the methods read ['unet', 'shpm']" in _err(
        capsys, ["--runs", str(root), "--example-method", "nosuch", "--out", out])
    (tmp_path / "afile").write_text("x")
    assert f"--out '{tmp_path / 'afile'}' is a file, not a folder" in _err(
        capsys, ["--runs", str(root), "--out", str(tmp_path / "afile")])
    assert f"--out '{root / 'diag'}' lies inside --runs '{root}'" in _err(
        capsys, ["--runs", str(root), "--out", str(root / "diag")])
    assert not (root / "diag").exists()
    assert not Path(out).exists()                             # every refusal came before any work
    Path(out).mkdir()
    (Path(out) / "old.txt").write_text("keep")
    assert f"--out '{out}' exists and is not empty (pass --overwrite to write into it)" in _err(
        capsys, ["--runs", str(root), "--out", out])
    assert ds.main(["--runs", str(root), "--out", out, "--overwrite"]) == 0
    assert (Path(out) / "diagnosis.json").is_file()


def test_cli_real_kind_needs_data_root(tmp_path, capsys):
    root = tmp_path / "study"
    _write_run(root, 0, 0, "unet", {"c0": _gt()}, config="data:\n  kind: isbi2012\n")
    assert "data kind 'isbi2012' needs --data-root (the dataset folder)" in _err(
        capsys, ["--runs", str(root), "--out", str(tmp_path / "o")])


def test_shape_mismatch_names_the_run_and_case_that_mismatch(study):
    """cldice sorts before the baseline unet; a wrong-shape *baseline* prediction must be named by
    the baseline's own npz, and a wrong-shape cldice prediction by cldice's."""
    for seed in (0, 1):
        _write_run(study, seed, 0, "cldice", {"c0": _gt()})
    unet0 = study / "seed0" / "fold0" / "unet" / "test_predictions.npz"
    np.savez_compressed(unet0, c0=np.zeros((40, 61), bool))
    with pytest.raises(ValueError) as e:
        ds.diagnose(study, {"c0": _gt()}, baseline="unet", log=lambda s: None)
    assert str(e.value) == f"{unet0}, case 'c0': prediction shape (40, 61) != label shape (40, 60)"
    np.savez_compressed(unet0, c0=_baseline())
    cl1 = study / "seed1" / "fold0" / "cldice" / "test_predictions.npz"
    np.savez_compressed(cl1, c0=np.zeros((41, 60), bool))
    with pytest.raises(ValueError) as e:
        ds.diagnose(study, {"c0": _gt()}, baseline="unet", log=lambda s: None)
    assert str(e.value) == f"{cl1}, case 'c0': prediction shape (41, 60) != label shape (40, 60)"

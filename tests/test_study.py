"""Multi-seed cross-validation study: seeds × folds layout and reuse, both checkpoints, raw and
paper-protocol scores, error decomposition, paired differences to the baseline.

Expected values come from independent references: the per-case CSV files re-aggregated with
NumPy, scipy.stats.wilcoxon, scipy.ndimage labelling for the paper clean-up and for spurious
components, Dice counted with NumPy on the stored predictions.
"""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.stats import wilcoxon

from toposeg.cli import main
from toposeg.config import load_config
from toposeg.data import open_dataset
from toposeg.engine.experiments import find_baseline, run_cv, table1, write_table1
from toposeg.engine.protocol import (SPLIT_SEED, check_layout, finetune_identity, parse_seeds, pretrain_identity,
                                     score_predictions)
from toposeg.data import Case
from toposeg.reports.tables import METRICS

ROOT = Path(__file__).resolve().parents[1]

TINY = """base: {base}
name: {name}
model: {{params: {{features: [2, 4, 8]}}}}
data: {{kind: vessels2d, options: {{n: 6, size: 48}}, patch: [32, 32], batch_size: 2, folds: 2}}
train: {{pretrain: {{steps: 2}}, finetune: {{steps: 4}}, val_every: 2, checkpoint_every: 2}}
method: {{loss: {loss}, params: {params}}}
inference: {{window: [32, 32]}}
"""
PAPER = "paper protocol (objects < 100 px and holes < 10 px removed from prediction and ground truth"


def _configs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, loss, params in (("unet", "bce_dice", "{}"), ("shpm", "shpm", "{lam: 0.5, threshold: 0.6}")):
        (folder / f"{name}.yaml").write_text(TINY.format(base=ROOT / "configs" / "base.yaml", name=name, loss=loss,
                                                         params=params))
    return folder


def _rows(path: Path) -> list[dict]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _reference_paper_clean(mask: np.ndarray) -> np.ndarray:
    """Objects < 100 px removed, then background components < 10 px filled, both 4-connected
    (scipy labelling, written from the paper's rule, not toposeg's code)."""
    four = ndimage.generate_binary_structure(2, 1)
    lab, n = ndimage.label(mask, four)
    sizes = ndimage.sum(np.ones_like(lab), lab, range(1, n + 1))
    keep = np.isin(lab, [i + 1 for i, s in enumerate(sizes) if s >= 100])
    lab, n = ndimage.label(~keep, four)
    sizes = ndimage.sum(np.ones_like(lab), lab, range(1, n + 1))
    return keep | np.isin(lab, [i + 1 for i, s in enumerate(sizes) if s < 10])


def _dice(p: np.ndarray, t: np.ndarray) -> float:
    return 2.0 * np.logical_and(p, t).sum() / (p.sum() + t.sum())


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("study")
    configs = _configs(tmp / "configs")
    out = tmp / "runs"
    args = ["cv", str(configs / "*.yaml"), "--out", str(out), "--folds", "0-1", "--seed", "0-1", "--no-progress"]
    assert main(args) == 0
    return configs, out, args


def test_layout_one_pretraining_per_seed_and_fold_and_reuse(study, capsys):
    configs, out, args = study
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["seed0", "seed1"]
    for s in (0, 1):
        assert sorted(p.name for p in (out / f"seed{s}").iterdir()) == ["fold0", "fold1"]
        for k in (0, 1):
            assert sorted(p.name for p in (out / f"seed{s}" / f"fold{k}").iterdir()) == ["pretrain", "shpm", "unet"]
            run = json.loads((out / f"seed{s}" / f"fold{k}" / "shpm" / "run.json").read_text())
            assert run["seed"] == s and run["fold"] == k and run["split_seed"] == SPLIT_SEED == 0
    # one split for every seed, made with the split seed
    assert json.loads((out / "splits.json").read_text())["seed"] == 0
    # the seed changes the initialisation: the two pre-trainings of fold 0 differ
    w0, w1 = (torch.load(out / f"seed{s}" / "fold0" / "pretrain" / "final.pt", weights_only=True)["state_dict"]
              for s in (0, 1))
    assert any(not torch.equal(w0[k], w1[k]) for k in w0)
    capsys.readouterr()
    assert main(args) == 0  # everything finished: 2 seeds × 2 folds × 2 methods reused
    assert capsys.readouterr().out.count("already evaluated") == 8
    # train takes the same seed lists: both seeds of fold 1 found finished
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--fold", "1", "--seed", "0,1",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "shpm seed 0 fold 1: already evaluated" in printed and "shpm seed 1 fold 1: already evaluated" in printed


def test_table1_has_n_seeds_times_folds_and_all_blocks(study):
    _, out, _ = study
    data = json.loads((out / "table1.json").read_text())
    assert data["seeds"] == [0, 1] and data["folds"] == [0, 1] and data["headline"] == "final/raw"
    assert data["baseline"] == "unet"
    for key in ("final/raw", "selected/raw", "final/paper", "selected/paper"):
        block = data["blocks"][key]
        for name in ("unet", "shpm"):
            assert block["summary"][name]["dice"]["n"] == 4  # 2 seeds × 2 folds
            assert set(block["summary"][name]) >= {"betti_matching_error", "local_betti_error"}
    assert data["summary"] == data["blocks"]["final/raw"]["summary"]
    # Table 1 = mean over the 4 (seed, fold) runs of the per-run test means (re-aggregated from the CSVs)
    means = [np.mean([float(r["betti1_error"]) for r in _rows(out / f"seed{s}" / f"fold{k}" / "shpm" / "test_per_case.csv")])
             for s in (0, 1) for k in (0, 1)]
    assert data["blocks"]["final/raw"]["summary"]["shpm"]["betti1_error"]["mean"] == pytest.approx(np.mean(means))
    assert data["blocks"]["final/raw"]["summary"]["shpm"]["betti1_error"]["std"] == pytest.approx(np.std(means))
    md = (out / "table1.md").read_text()
    assert "## final checkpoint (equal budget), raw" in md and "## checkpoint selected on validation, raw" in md
    assert md.index("## final checkpoint (equal budget), raw") < md.index("## checkpoint selected on validation, raw")
    assert f"## final checkpoint (equal budget), {PAPER}" in md
    assert "Paired per-case difference to unet" in md and "| Method − unet |" in md
    rows = _rows(out / "table1.csv")
    assert {(r["checkpoint"], r["scoring"]) for r in rows} == {("final", "raw"), ("selected", "raw"),
                                                              ("final", "paper"), ("selected", "paper")}
    assert all(r["n_runs"] == "4" for r in rows)


def test_final_and_selected_checkpoints_both_tested(study):
    _, out, _ = study
    for s in (0, 1):
        for k in (0, 1):
            folder = out / f"seed{s}" / f"fold{k}" / "shpm"
            summary = json.loads((folder / "test_summary.json").read_text())
            ck = summary["checkpoints"]
            assert ck["final"]["step"] == 4 and ck["selected"]["step"] == summary["finetune"]["best_step"]
            assert ck["selected"]["step"] in (2, 4) and summary["select_metric"] == "betti1_error"
            assert summary["mean"] == ck["final"]["raw"]["mean"]  # the headline is the final checkpoint
            for name in ("test_per_case.csv", "test_per_case_selected.csv", "test_per_case_paper.csv",
                         "test_per_case_selected_paper.csv", "test_predictions.npz", "test_predictions_selected.npz"):
                assert (folder / name).is_file(), name


def test_per_case_scores_against_independent_references(study):
    _, out, _ = study
    cases = {c.id: c for c in open_dataset("vessels2d", n=6, size=48)}
    folder = out / "seed1" / "fold0" / "unet"
    raw, paper = _rows(folder / "test_per_case.csv"), _rows(folder / "test_per_case_paper.csv")
    keys = ("spurious_components", "missing_components", "split_components", "merged_components",
            "spurious_holes", "missing_holes", "split_holes", "merged_holes")
    eight = ndimage.generate_binary_structure(2, 2)
    with np.load(folder / "test_predictions.npz") as preds:
        for r, rp in zip(raw, paper):
            pred, label = preds[r["case_id"]], cases[r["case_id"]].label.astype(bool)
            assert float(r["dice"]) == pytest.approx(_dice(pred, label))
            assert float(rp["dice"]) == pytest.approx(_dice(_reference_paper_clean(pred), _reference_paper_clean(label)))
            assert set(keys) <= set(r) and set(keys) <= set(rp)
            # spurious components: 8-connected predicted components touching no label pixel
            lab, n = ndimage.label(pred, eight)
            spurious = sum(not label[lab == i].any() for i in range(1, n + 1))
            assert float(r["spurious_components"]) == spurious


def test_paired_differences_against_numpy_and_scipy(study):
    _, out, _ = study
    paired = json.loads((out / "paired.json").read_text())
    assert paired["baseline"] == "unet" and (out / "paired.png").is_file() and (out / "paired.md").is_file()
    # reference: each case's value averaged over seeds first, then shpm − unet over all cases of all folds
    per = {}
    for name in ("unet", "shpm"):
        for s in (0, 1):
            for k in (0, 1):
                for r in _rows(out / f"seed{s}" / f"fold{k}" / name / "test_per_case.csv"):
                    per.setdefault((name, f"fold{k}/{r['case_id']}"), []).append(float(r["betti0_error"]))
    cases = sorted({c for _, c in per})
    assert len(cases) == 6  # every case is tested once over the 2 folds
    d = np.array([np.mean(per[("shpm", c)]) - np.mean(per[("unet", c)]) for c in cases])
    for key in ("final/raw", "final/paper", "selected/raw", "selected/paper"):
        s = paired["blocks"][key]["paired"]["shpm"]["betti0_error"]
        assert s["n"] == 6 and s["ci_low"] <= s["mean_diff"] <= s["ci_high"]
    s = paired["blocks"]["final/raw"]["paired"]["shpm"]["betti0_error"]
    assert s["mean_diff"] == pytest.approx(d.mean())
    expected_p = 1.0 if not np.any(d != 0) else wilcoxon(d).pvalue
    assert s["p_wilcoxon"] == pytest.approx(expected_p)


def test_generator_version_is_part_of_the_run_identity(study, capsys, monkeypatch):
    configs, out, _ = study
    from toposeg.data import synthetic

    cfg = load_config(configs / "shpm.yaml")
    current = synthetic.GENERATOR_VERSION["vessels2d"]
    assert finetune_identity(cfg, seed=0, fold=0)["generator_version"] == current
    assert pretrain_identity(cfg, seed=0, fold=0)["generator_version"] == current
    isbi = load_config(ROOT / "configs" / "isbi2012_quick" / "shpm.yaml")
    assert "generator_version" not in finetune_identity(isbi, seed=0, fold=0)  # files on disk: no version
    monkeypatch.setitem(synthetic.GENERATOR_VERSION, "vessels2d", "999")
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and f"generator_version: {current!r} there, '999' now" in err


def test_parse_seeds():
    assert parse_seeds("3") == [3] and parse_seeds(3) == [3]
    assert parse_seeds("0,1,2") == [0, 1, 2] == parse_seeds("0-2") == parse_seeds("2,0-1")
    for bad in ("a", "2-0", "", "0-", "-1", 1.5):
        with pytest.raises(ValueError, match=r"--seed must look like '0', '0,1,2' or '0-2'.*got " + repr(bad).replace(".", r"\.")):
            parse_seeds(bad)


def test_old_layout_is_refused_with_the_move_command(tmp_path, capsys):
    configs = _configs(tmp_path / "configs")
    out = tmp_path / "runs"
    (out / "fold0" / "unet").mkdir(parents=True)
    (out / "fold0" / "unet" / "run.json").write_text(json.dumps({"seed": 0, "fold": 0}))
    assert main(["cv", str(configs / "*.yaml"), "--out", str(out), "--folds", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"mkdir {out}/seed0 && mv {out}/fold* {out}/seed0/" in err
    with pytest.raises(ValueError, match="layout before per-seed folders"):
        check_layout(out)


def test_baseline_and_selection_rule_checks(tmp_path, capsys):
    configs = _configs(tmp_path / "configs")
    cfgs = [load_config(p) for p in sorted(configs.glob("*.yaml"))]
    assert find_baseline(cfgs) == "unet" and find_baseline(cfgs, "shpm") == "shpm"
    with pytest.raises(ValueError, match=r"--baseline 'nope' is not one of the configs \['shpm', 'unet'\]"):
        find_baseline(cfgs, "nope")
    assert find_baseline([c for c in cfgs if c.name == "shpm"]) is None
    twice = [cfgs[1], load_config(configs / "unet.yaml", ["name=unet2"])]
    with pytest.raises(ValueError, match=r"several configs fine-tune with bce_dice \(\['unet', 'unet2'\]\)"):
        find_baseline(twice)
    mixed = [cfgs[0], load_config(configs / "unet.yaml", ["train.select_metric=dice"])]
    with pytest.raises(ValueError, match="train.select_metric differs between the configs .*shpm: betti1_error.*unet: dice"):
        run_cv(mixed, data_root=None, out=tmp_path / "r", folds=[0], seed=[0], log=lambda s: None)
    assert not (tmp_path / "r").exists()
    assert main(["cv", str(configs / "*.yaml"), "--out", str(tmp_path / "r"), "--folds", "0", "--baseline", "nope"]) == 2
    assert "--baseline 'nope'" in capsys.readouterr().err


def test_paper_protocol_skipped_in_3d_with_a_note(tmp_path):
    label = np.zeros((6, 8, 8), bool)
    label[1:5, 2:6, 2:6] = True
    pred = label.copy()
    pred[0, 0, 0] = True  # one spurious voxel
    scores = score_predictions([pred], [Case("c", label[None].astype(np.float32), label)])
    assert scores["paper"] is None
    assert scores["raw"]["per_case"][0]["spurious_components"] == 1.0  # hand count
    run = {"fold": 0, "seed": 0, "checkpoints": {"final": {"raw": scores["raw"], "paper": None},
                                                 "selected": {"raw": scores["raw"], "paper": None}}}
    found = {"unet": [run], "shpm": [json.loads(json.dumps(run))]}
    assert table1(found, checkpoint="final", scoring="paper") == {}
    write_table1(tmp_path, found, baseline="unet", figure=False)
    md = (tmp_path / "table1.md").read_text()
    assert "paper protocol: not computed (defined for 2D only" in md
    assert json.loads((tmp_path / "paired.json").read_text())["blocks"]["final/paper"]["paired"] is None


def test_new_metrics_have_column_titles_lower_is_better():
    for key in ("betti_matching_error", "local_betti_error", "spurious_components", "merged_holes"):
        assert key in METRICS and METRICS[key][1] is False


def test_a_summary_of_the_older_layout_is_re_evaluated_not_retrained(study, capsys):
    configs, out, _ = study
    folder = out / "seed0" / "fold0" / "unet"
    new = json.loads((folder / "test_summary.json").read_text())
    old = {k: v for k, v in new.items() if k not in ("test_format", "checkpoints")}  # as toposeg 0.2 wrote it
    (folder / "test_summary.json").write_text(json.dumps(old))
    mtime = (folder / "final.pt").stat().st_mtime
    capsys.readouterr()
    assert main(["train", str(configs / "unet.yaml"), "--out", str(out), "--fold", "0", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "re-evaluating final and selected checkpoints" in printed and "already done" in printed
    again = json.loads((folder / "test_summary.json").read_text())
    assert again["test_format"] == 2 and (folder / "final.pt").stat().st_mtime == mtime  # not retrained
    assert again["checkpoints"]["final"]["raw"]["mean"] == pytest.approx(new["checkpoints"]["final"]["raw"]["mean"],
                                                                        nan_ok=True)


def test_evaluate_summary_has_the_betti_matching_and_local_betti_columns(tmp_path):
    from toposeg.io import write_array

    gt = np.zeros((24, 24), np.uint8)
    gt[4:20, 4:20] = 1
    gt[8:16, 8:16] = 0  # one ring: β0 = β1 = 1
    pred = gt.copy()
    pred[8:16, 8] = 1  # the hole shrinks to 8×7 (still one hole, matched to the label's)
    pred[1, 1] = 1  # one spurious component
    for name, arr in (("pred", pred), ("gt", gt)):
        (tmp_path / name).mkdir()
        write_array(tmp_path / name / "c.png", arr * 255)
    out = tmp_path / "o"
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out),
                 "--no-progress"]) == 0
    md = (out / "summary.md").read_text()
    assert "| Betti matching error ↓ | local Betti error ↓ |" in md
    header = next(line for line in md.splitlines() if line.startswith("| Method |"))
    row = next(line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| Method |"))
    cells = dict(zip([c.strip() for c in header.split("|")[1:-1]], [c.strip() for c in row.split("|")[1:-1]]))
    # hand count: the spurious pixel is the one unmatched component, the holes match: total 1
    assert cells["Betti matching error ↓"] == "1.000 ± 0.000"


def test_parallel_jobs_give_the_same_runs_as_one_process(study, tmp_path, capsys):
    """``--jobs 2`` (spawned workers) writes the same test scores as the sequential study: batches
    are a function of seed and step, so where a run executes must not change it."""
    configs, out, args = study
    par = tmp_path / "par"
    capsys.readouterr()
    assert main([*args[:2], "--out", str(par), *args[4:], "--jobs", "2"]) == 0
    log = capsys.readouterr().out
    assert "cv: 8 runs (2 configs x 2 seed(s) x 2 fold(s)), up to 2 at a time in worker processes on cpu" in log
    assert log.count(" done in ") == 8 and "(8/8," in log
    done = [line.split(" done")[0] for line in log.splitlines() if " done in " in line]
    # the first config ("shpm": sorted names) writes each fold's pre-training, so it starts first everywhere
    assert set(done[:2]) == {"cv: shpm seed 0 fold 0", "cv: shpm seed 0 fold 1"} and len(set(done)) == 8
    for s in (0, 1):
        for k in (0, 1):
            for name in ("unet", "shpm"):
                a = json.loads((out / f"seed{s}" / f"fold{k}" / name / "test_summary.json").read_text())
                b = json.loads((par / f"seed{s}" / f"fold{k}" / name / "test_summary.json").read_text())
                assert a["checkpoints"] == b["checkpoints"], (s, k, name)
    assert (par / "table1.md").read_text() == (out / "table1.md").read_text()
    # validation.md/.json: final-checkpoint validation scores, the same however the runs were executed
    assert (par / "validation.json").read_text() == (out / "validation.json").read_text()
    val = json.loads((out / "validation.json").read_text())
    last = [[json.loads(line)["val"]["dice"] for line in (out / f"seed{s}" / f"fold{k}" / "unet" / "log.jsonl")
             .read_text().splitlines() if '"val"' in line][-1] for s in (0, 1) for k in (0, 1)]
    assert val["n_runs"] == {"unet": 4, "shpm": 4} and val["choice"]["method"] in ("unet", "shpm")
    assert val["summary"]["unet"]["dice"]["mean"] == pytest.approx(np.mean(last))
    assert main([*args[:2], "--out", str(par), *args[4:], "--jobs", "2"]) == 0  # all reused
    assert capsys.readouterr().out.count(" reused (finished earlier) ") == 8
    assert main([*args[:2], "--out", str(par), *args[4:], "--jobs", "0"]) == 2
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err


def test_report_only_from_copied_runs_without_checkpoints(study, tmp_path, capsys):
    """Runs copied from another machine without their checkpoints: ``--report-only`` writes the
    same Table 1 as the call that trained them, and names the runs that are missing."""
    import shutil

    configs, out, args = study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.pt", "table1*", "paired*", "per_case.csv", "fig5.png"))
    assert not list(copy.rglob("*.pt"))
    capsys.readouterr()
    assert main([*args[:2], "--out", str(copy), *args[4:], "--report-only"]) == 0
    assert (copy / "table1.md").read_text() == (out / "table1.md").read_text()
    assert "missing" not in capsys.readouterr().out
    (copy / "seed1" / "fold0" / "shpm" / "test_summary.json").unlink()
    assert main([*args[:2], "--out", str(copy), *args[4:], "--report-only"]) == 0
    assert "1 run(s) missing, the tables use the others: shpm seed 1 fold 0" in capsys.readouterr().out
    n = json.loads((copy / "table1.json").read_text())["blocks"]["final/raw"]["n_runs"]
    assert n == {"shpm": 3, "unet": 4}
    assert main([*args[:2], "--out", str(tmp_path / "empty"), *args[4:], "--report-only"]) == 2
    assert "no finished runs" in capsys.readouterr().err


def test_cv_output_folder_guards(study, tmp_path, capsys):
    """One cv at a time per folder (lock), runs of another configuration refused by --report-only,
    no table left from an earlier call with other configs, and configs that would share a
    pre-training folder but pre-train differently refused before any work."""
    import os
    import shutil
    import socket
    import subprocess
    import sys

    from toposeg.engine.experiments import LOCK, study_lock

    configs, out, args = study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    # a live holder (this test's own child process) blocks the folder; a dead one is taken over
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (copy / LOCK).write_text(f"{child.pid} {socket.gethostname()}\n")
        assert main([*args[:2], "--out", str(copy), *args[4:], "--report-only"]) == 2
        assert f"is in use by another toposeg cv (process {child.pid} on {socket.gethostname()})" in capsys.readouterr().err
    finally:
        child.kill()
        child.wait()
    assert main([*args[:2], "--out", str(copy), *args[4:], "--report-only"]) == 0  # stale lock taken over
    assert not (copy / LOCK).exists()  # released at the end
    with study_lock(copy):
        assert (copy / LOCK).read_text().split()[0] == str(os.getpid())
    # only shpm: the paired files of the earlier two-method call must not survive
    assert (copy / "paired.md").is_file()
    assert main([*args[:2], "--out", str(copy), *args[4:], "--report-only", "--methods", "shpm"]) == 0
    assert not (copy / "paired.md").exists() and not (copy / "paired.png").exists()
    assert "wrote table1.md, table1.csv, table1.json, per_case.csv, validation.md" in capsys.readouterr().out
    # runs written by another configuration are refused, naming the difference
    assert main([*args[:2], "--out", str(copy), *args[4:], "--report-only", "--set", "train.finetune.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "holds a run of a different configuration (train.finetune.lr: 0.001 there, 0.5 now)" in err
    # two configs that pre-train differently cannot share the pre-training folders of one --out
    other = tmp_path / "cfgs"
    other.mkdir()
    shutil.copy(configs / "unet.yaml", other / "unet.yaml")
    (other / "shpm.yaml").write_text((configs / "shpm.yaml").read_text().replace("pretrain: {steps: 2}",
                                                                                 "pretrain: {steps: 3}"))
    assert main(["cv", str(other / "*.yaml"), "--out", str(tmp_path / "new"), "--folds", "0"]) == 2
    assert "configs 'shpm' and 'unet' pre-train differently (train.pretrain.steps: 3 there, 2 now)" \
        in capsys.readouterr().err
    assert not (tmp_path / "new" / "seed0").exists()


@pytest.mark.parametrize("content", ["garbage{", "", "{}", "[]"])
def test_a_damaged_test_summary_is_named(study, tmp_path, capsys, content):
    import shutil

    configs, out, args = study
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("*.pt"))
    bad = copy / "seed0" / "fold1" / "shpm" / "test_summary.json"
    bad.write_text(content)
    capsys.readouterr()
    assert main([*args[:2], "--out", str(copy), *args[4:], "--report-only"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: not a" in err and "delete that run's folder" in err

"""Bad paths and inputs refused (or flagged) before any work: an output inside the read-only
dataset or on an input, a file for a run folder, NaN counted in labels, a prediction scored
against itself, a --methods list without the baseline. Each case stops before training or
inference: the work functions are replaced by stubs that fail when called."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from test_cli_bad_inputs import _error, _pred_and_gt
from toposeg.cli import main
from toposeg.io import write_array

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "vessels2d_quick"


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): (p.is_symlink(), p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture
def no_work(monkeypatch):
    """run_fold / run_cv stubs: a refused command must never reach them; ``calls`` records the
    runs of an accepted one (with its keyword arguments)."""
    import toposeg.engine.experiments as experiments
    import toposeg.engine.protocol as protocol

    calls = []
    monkeypatch.setattr(protocol, "run_fold", lambda cfg, **kw: calls.append(("train", cfg.name, kw)))
    monkeypatch.setattr(experiments, "run_cv", lambda configs, **kw: calls.append(("cv", [c.name for c in configs], kw)))
    return calls


@pytest.fixture
def data_root(tmp_path):
    """A stand-in for the read-only dataset folder (one image and one label)."""
    root = tmp_path / "data"
    write_array(root / "image" / "a.png", np.zeros((16, 16), np.uint8))
    write_array(root / "label" / "a.png", np.zeros((16, 16), np.uint8))
    return root


def _experiment(command: str) -> list:
    return ["train", str(CONFIGS / "unet.yaml")] if command == "train" else ["cv", str(CONFIGS / "*.yaml")]


# ---------------------------------------------------------------- 1. --out inside --data-root


@pytest.mark.parametrize("command", ["train", "cv"])
@pytest.mark.parametrize("where, how", [
    ("data", "is the --data-root folder; the results would be written among the inputs: choose an output folder "
             "outside --data-root {root}"),
    ("data/runs", "lies inside the --data-root folder {root}; the results would be written among the inputs: "
                  "choose an output folder outside it"),
    ("data/label/runs/x", "lies inside the --data-root folder {root}; the results would be written among the "
                          "inputs: choose an output folder outside it"),
])
def test_train_and_cv_refuse_out_inside_the_data_root(tmp_path, data_root, capsys, no_work, command, where, how):
    before = _snapshot(data_root)
    out = tmp_path / where
    assert main([*_experiment(command), "--data-root", str(data_root), "--out", str(out), "--no-progress"]) == 2
    assert _error(capsys, command) == f"toposeg {command}: error: --out {out} {how.format(root=data_root)}"
    assert no_work == [] and _snapshot(data_root) == before  # nothing ran, nothing written


@pytest.mark.parametrize("command", ["train", "cv"])
def test_train_and_cv_see_the_data_root_through_links_and_relative_paths(tmp_path, data_root, capsys, no_work,
                                                                         monkeypatch, command):
    os.symlink(data_root, tmp_path / "link")
    monkeypatch.chdir(data_root)
    assert main([*_experiment(command), "--data-root", str(tmp_path / "link"), "--out", "runs"]) == 2
    assert _error(capsys, command) == (f"toposeg {command}: error: --out runs lies inside the --data-root folder "
                                       f"{tmp_path / 'link'}; the results would be written among the inputs: "
                                       "choose an output folder outside it")
    assert no_work == [] and not (data_root / "runs").exists()


@pytest.mark.parametrize("command", ["train", "cv"])
def test_train_and_cv_accept_out_next_to_the_data_root(tmp_path, data_root, no_work, command):
    out = tmp_path / "runs"
    assert main([*_experiment(command), "--data-root", str(data_root), "--out", str(out), "--no-progress"]) == 0
    assert len(no_work) == 1 and no_work[0][0] == command and no_work[0][2]["out"] == out


# ---------------------------------------------------------------- 5. --out a file


@pytest.mark.parametrize("command", ["train", "cv"])
def test_train_and_cv_refuse_an_out_file(tmp_path, capsys, no_work, command):
    (tmp_path / "notes.txt").write_text("mine")
    out = tmp_path / "notes.txt"
    assert main([*_experiment(command), "--out", str(out)]) == 2
    assert _error(capsys, command) == (f"toposeg {command}: error: --out {out} is a file; give a folder (runs are "
                                       "written to --out FOLDER/seed{S}/fold{K}/<config name>/)")
    assert main([*_experiment(command), "--out", str(out / "runs")]) == 2
    assert _error(capsys, command) == (f"toposeg {command}: error: --out {out / 'runs'} lies under {out}, which is a "
                                       "file; give a folder")
    assert no_work == [] and out.read_text() == "mine"


# ---------------------------------------------------------------- 6. --methods without the baseline


def test_cv_methods_without_the_baseline_warns_and_runs(tmp_path, capsys, no_work):
    assert main(["cv", str(CONFIGS / "*.yaml"), "--out", str(tmp_path / "runs"), "--methods", "shpm,cldice"]) == 0
    err = capsys.readouterr().err.strip()
    assert err == ("warning: --methods 'shpm,cldice' leaves out the baseline 'unet' (the config that fine-tunes with "
                   "bce_dice): the paired differences to the baseline (table1.md, paired.md/.json/.png) and the "
                   "selection rule's choice (validation.md) need it and will be missing; add it: --methods "
                   "shpm,cldice,unet, or pass --baseline NAME for a kept config (['cldice', 'shpm'])")
    assert [(c, names, kw["baseline"]) for c, names, kw in no_work] == [("cv", ["cldice", "shpm"], None)]


@pytest.mark.parametrize("methods", ["unet,shpm", "bce_dice,shpm"])  # a config name or its loss
def test_cv_methods_with_the_baseline_says_nothing(tmp_path, capsys, no_work, methods):
    assert main(["cv", str(CONFIGS / "*.yaml"), "--out", str(tmp_path / "runs"), "--methods", methods]) == 0
    assert capsys.readouterr().err == ""
    assert [names for _, names, _ in no_work] == [["shpm", "unet"]]


def test_cv_baseline_left_out_by_methods_is_refused(tmp_path, capsys, no_work):
    assert main(["cv", str(CONFIGS / "*.yaml"), "--out", str(tmp_path / "runs"), "--methods", "shpm",
                 "--baseline", "cldice"]) == 2
    assert _error(capsys, "cv") == ("toposeg cv: error: --baseline 'cldice' is not among the configs kept by "
                                    "--methods 'shpm' (['shpm']); add it: --methods shpm,cldice")
    assert no_work == []


# ---------------------------------------------------------------- 2. render onto an input


@pytest.mark.parametrize("flag", ["--gt", "--pred"])
def test_render_refuses_out_that_is_an_input(tmp_path, capsys, flag):
    vol = np.zeros((4, 8, 8), np.uint8)
    vol[1:3, 2:6, 3:5] = 1
    write_array(tmp_path / "gt.npy", vol)
    write_array(tmp_path / "pred.npy", vol)
    before = _snapshot(tmp_path)
    target = tmp_path / ("gt.npy" if flag == "--gt" else "pred.npy")
    assert main(["render", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "pred.npy"),
                 "--out", str(target), "--overwrite"]) == 2
    assert _error(capsys, "render") == (f"toposeg render: error: --out {target} is the {flag} file; it would be "
                                        "overwritten: choose another name")
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- 7. predict onto an input


def _checkpoint(path: Path) -> None:
    from toposeg.engine.checkpoint import save_checkpoint
    from toposeg.models import UNet

    torch.manual_seed(0)
    params = dict(spatial_dims=2, in_channels=1, out_channels=1, features=(4, 8, 16))
    save_checkpoint(path, UNet(**params).eval(), name="unet", params=params)


def test_predict_refuses_an_output_that_is_an_input_behind_a_link(tmp_path, capsys, monkeypatch):
    import toposeg.inference

    monkeypatch.setattr(toposeg.inference, "sliding_window_predict", lambda *a, **k: pytest.fail("inference ran"))
    _checkpoint(tmp_path / "m.pt")
    write_array(tmp_path / "out" / "a_prob.png", np.full((16, 16), 7, np.uint8))  # a file kept in --out ...
    write_array(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    os.symlink(tmp_path / "out" / "a_prob.png", tmp_path / "in" / "b.png")  # ... and linked in as input b
    before = _snapshot(tmp_path)
    assert main(["predict", "--checkpoint", str(tmp_path / "m.pt"), "--input", str(tmp_path / "in"),
                 "--out", str(tmp_path / "out"), "--overwrite", "--no-progress"]) == 2
    assert _error(capsys, "predict") == (f"toposeg predict: error: --out {tmp_path / 'out'}: the output a_prob.png "
                                         f"(of a.png) is the --input file {tmp_path / 'in' / 'b.png'}; it would be "
                                         "overwritten: choose another --out folder")
    assert _snapshot(tmp_path) == before


def test_predict_output_names_never_equal_their_input():
    """Plain paths cannot collide: the outputs of x are x_prob / x_mask, never x itself."""
    from toposeg.commands.predict import output_names

    assert output_names(Path("d/a.png")) == ("a_prob.png", "a_mask.png")
    assert output_names(Path("d/a_prob.jpg")) == ("a_prob_prob.png", "a_prob_mask.png")
    assert output_names(Path("d/v.nii.gz")) == ("v_prob.nii.gz", "v_mask.nii.gz")


# ---------------------------------------------------------------- 3. NaN in a label: counted


def _nan_label() -> np.ndarray:
    label = np.zeros((24, 24), np.float32)
    label[4:20, 10:12] = 1.0
    label[0, :5] = np.nan  # 5 NaN pixels, counted by hand
    label[23, 23] = np.inf  # and 1 infinite
    return label


def test_evaluate_counts_nan_in_the_ground_truth(tmp_path, capsys):
    _pred_and_gt(tmp_path)
    (tmp_path / "gt" / "a.png").unlink()
    label = _nan_label()[:16, :16]  # the 16x16 case: 5 NaN, no inf
    np.save(tmp_path / "gt" / "a.npy", label)
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--out", str(tmp_path / "eval"), "--no-progress"]) == 2
    assert _error(capsys, "evaluate") == (f"toposeg evaluate: error: {tmp_path / 'gt' / 'a.npy'}: label holds "
                                          "non-finite values (5 NaN of 256 values); expected a finite mask (e.g. 0/1 "
                                          "or 0/255): re-save the label without NaN/inf")
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("rule", ["nonzero", "bright", "dark"])
def test_graph_counts_nan_and_inf_in_the_ground_truth(tmp_path, capsys, rule):
    np.save(tmp_path / "gt.npy", _nan_label())
    write_array(tmp_path / "pred.npy", np.zeros((24, 24), bool))
    assert main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "pred.npy"),
                 "--label-foreground", rule, "--out", str(tmp_path / "g")]) == 2
    assert f"--gt {tmp_path / 'gt.npy'}: label holds non-finite values (5 NaN and 1 infinite of 576 values)" in \
        _error(capsys, "graph")


def test_metrics_count_nan_in_a_prediction():
    from toposeg.metrics import evaluate_case

    pred = (_nan_label() == 1).astype(np.float32)
    pred[0, :3] = np.nan
    with pytest.raises(ValueError, match=r"^pred contains NaN or infinite values \(3 NaN of 576; ndarray"):
        evaluate_case(pred, np.zeros((24, 24), bool))
    with pytest.raises(ValueError, match=r"\(1 NaN and 1 infinite of 3; Tensor"):
        from toposeg._checks import check_finite

        check_finite(torch.tensor([np.nan, np.inf, 1.0], dtype=torch.bfloat16), "input")


# ---------------------------------------------------------------- 4. a prediction scored against itself


def test_evaluate_same_folder_for_pred_and_gt_warns_and_runs(tmp_path, capsys):
    _pred_and_gt(tmp_path)
    gt = str(tmp_path / "gt")
    assert main(["evaluate", "--pred", gt, "--gt", gt, "--out", str(tmp_path / "eval"), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert (f"warning: --pred and --gt ({gt}) are the same folder: the prediction is scored against itself, so "
            "perfect scores are expected; probably a mistake (give the predictions to --pred and the ground truth "
            "to --gt); running anyway") in err.splitlines()
    import json

    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["results"]["raw"]["metrics"]["dice"]["mean"] == 1.0  # a mask against itself


def test_evaluate_same_folder_through_a_link_warns_and_a_copy_does_not(tmp_path, capsys):
    _pred_and_gt(tmp_path)  # pred/ and gt/ hold the same mask: equal content, different folders
    os.symlink(tmp_path / "gt", tmp_path / "gt_link")
    assert main(["evaluate", "--pred", str(tmp_path / "gt_link"), "--gt", str(tmp_path / "gt"),
                 "--out", str(tmp_path / "e1"), "--no-progress"]) == 0
    assert f"warning: --pred {tmp_path / 'gt_link'} and --gt {tmp_path / 'gt'} are the same folder" in \
        capsys.readouterr().err
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--out", str(tmp_path / "e2"), "--no-progress"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_evaluate_nnunet_same_folder_warns(tmp_path, capsys):
    _pred_and_gt(tmp_path)
    gt = str(tmp_path / "gt")
    assert main(["evaluate", "--nnunet", "--pred", gt, "--gt", gt, "--out", str(tmp_path / "eval")]) == 0
    assert f"warning: --pred and --gt ({gt}) are the same folder" in capsys.readouterr().err


def test_graph_same_file_for_pred_and_gt_warns(tmp_path, capsys):
    mask = np.zeros((24, 24), bool)
    mask[4:20, 10:12] = True
    write_array(tmp_path / "gt.npy", mask)
    gt = str(tmp_path / "gt.npy")
    assert main(["graph", "--gt", gt, "--pred", gt, "--no-figure", "--out", str(tmp_path / "g")]) == 0
    assert f"warning: --pred and --gt ({gt}) are the same file" in capsys.readouterr().err


def test_nnunet_convert_refuses_out_inside_the_data_root(tmp_path, data_root, capsys):
    before = _snapshot(data_root)
    out = data_root / "nnUNet_raw" / "Dataset501_Isbi"
    assert main(["nnunet", "convert", "--kind", "isbi2012", "--data-root", str(data_root), "--out", str(out)]) == 2
    assert _error(capsys, "nnunet convert") == (
        f"toposeg nnunet convert: error: --out {out} lies inside the --data-root folder {data_root}; the results "
        "would be written among the inputs: choose an output folder outside it")
    assert _snapshot(data_root) == before

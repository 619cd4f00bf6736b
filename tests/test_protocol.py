"""End-to-end protocol on tiny synthetic data: train, cv, resume, errors, torchrun (gloo)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import glob
import re

import numpy as np
import pytest
import torch
import yaml

from toposeg.cli import main
from toposeg.config import load_config, to_dict
from toposeg.data import make_synthetic, open_dataset
from toposeg.data.patches import PatchDataset
from toposeg.engine.batches import StepBatches
from toposeg.engine.experiments import parse_folds
from toposeg.engine.protocol import pretrain_identity

ROOT = Path(__file__).resolve().parents[1]

TINY = """base: {base}
name: {name}
model: {{params: {{features: [2, 4, 8]}}}}
data: {{kind: vessels2d, options: {{n: 6, size: 48}}, patch: [32, 32], batch_size: 2, folds: 2}}
train: {{pretrain: {{steps: 3}}, finetune: {{steps: 4}}, val_every: 2, checkpoint_every: 2}}
method: {{loss: {loss}, params: {params}}}
inference: {{window: [32, 32]}}
"""


def _configs(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    for name, loss, params in (("unet", "bce_dice", "{}"), ("shpm", "shpm", "{lam: 0.5, threshold: 0.6}")):
        (folder / f"{name}.yaml").write_text(TINY.format(base=ROOT / "configs" / "base.yaml", name=name, loss=loss, params=params))
    return folder


def test_cv_end_to_end_and_resume(tmp_path, capsys):
    configs = _configs(tmp_path)
    out = tmp_path / "runs"
    args = ["cv", str(configs / "*.yaml"), "--out", str(out), "--folds", "0-1", "--no-progress"]
    assert main(args) == 0
    table = (out / "table1.md").read_text()
    assert ("| Method | Dice ↑ | mIoU ↑ | VOI ↓ | ARE ↓ | β0 error ↓ | β1 error ↓ | Betti matching error ↓ "
            "| local Betti error ↓ |") in table
    assert "| shpm |" in table and "| unet |" in table
    summary = json.loads((out / "table1.json").read_text())
    assert summary["folds"] == [0, 1] and summary["seeds"] == [0] and summary["summary"]["shpm"]["dice"]["n"] == 2
    assert (out / "fig5.png").is_file() and (out / "per_case.csv").is_file()
    splits = json.loads((out / "splits.json").read_text())
    for fold in splits["folds"]:  # validation never overlaps the test split
        assert not set(fold["val"]) & set(fold["test"])
    # one pre-training per fold, shared by both methods
    assert sorted(p.name for p in (out / "seed0" / "fold0").iterdir()) == ["pretrain", "shpm", "unet"]
    resolved = load_config(out / "seed0" / "fold0" / "shpm" / "config.yaml")
    assert resolved.method.loss == "shpm" and resolved.train.finetune.steps == 4
    capsys.readouterr()
    assert main(args) == 0  # everything finished: skipped
    assert capsys.readouterr().out.count("already evaluated") == 4


def test_train_single_fold_and_errors(tmp_path, capsys):
    configs = _configs(tmp_path)
    out = tmp_path / "runs"
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--fold", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    method_dir = out / "seed0" / "fold1" / "shpm"
    assert f"writing to {method_dir}" in printed  # says where it writes
    assert "step 2/4 validation betti1_error=" in printed and "step 4/4 validation" in printed  # scores as it goes
    assert (method_dir / "test_summary.json").is_file() and (method_dir / "curves.png").is_file()
    # every test case's prediction is kept, not only the first two
    splits = json.loads((out / "splits.json").read_text())
    with np.load(method_dir / "test_predictions.npz") as preds:
        assert sorted(preds.files) == sorted(splits["folds"][1]["test"])
        cases = open_dataset("vessels2d", n=6, size=48)
        case = next(c for c in cases if c.id == splits["folds"][1]["test"][0])
        assert preds[case.id].dtype == bool and preds[case.id].shape == case.label.shape
    # the shared pre-training folder documents itself like a method folder
    pre = out / "seed0" / "fold1" / "pretrain"
    assert json.loads((pre / "run.json").read_text())["format_version"] == 2
    assert yaml.safe_load((pre / "config.yaml").read_text())["train"]["pretrain"]["steps"] == 3
    assert json.loads((method_dir / "run.json").read_text())["format_version"] == 2

    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--fold", "2", "--no-progress"]) == 2
    assert "fold must be an int in [0, 1] (data.folds=2), got 2" in capsys.readouterr().err
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(tmp_path / "x"), "--set", "train.finetun.steps=1"]) == 2
    assert "--set train.finetun.steps=1: unknown key 'train.finetun'; did you mean train.finetune.steps" \
        in capsys.readouterr().err
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(tmp_path / "y"), "--set", "data.kind=folder"]) == 2
    assert "data.options: unknown option(s) ['n', 'size'] for data.kind 'folder'" in capsys.readouterr().err
    folder = tmp_path / "folder.yaml"
    folder.write_text(f"base: {ROOT / 'configs' / 'base.yaml'}\ndata: {{kind: folder}}\n")
    assert main(["train", str(folder), "--out", str(tmp_path / "z"), "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["cv", str(tmp_path / "none*.yaml")]) == 2
    assert "no config files match" in capsys.readouterr().err


def test_finished_run_of_another_config_is_refused(tmp_path, capsys):
    configs = _configs(tmp_path)
    out = tmp_path / "runs"
    assert main(["train", str(configs / "unet.yaml"), "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    # the same config again: reused
    assert main(["train", str(configs / "unet.yaml"), "--out", str(out), "--no-progress"]) == 0
    assert "already evaluated" in capsys.readouterr().out
    # a different fine-tuning: refused, naming the key, not "already evaluated, skipping"
    assert main(["train", str(configs / "unet.yaml"), "--out", str(out), "--no-progress",
                 "--set", "train.finetune.steps=5"]) == 2
    captured = capsys.readouterr()
    assert "already evaluated" not in captured.out
    assert "holds a finished run of a different configuration (train.finetune.steps: 4 there, 5 now)" in captured.err
    # a different pre-training setting (grad_clip) is refused by the shared pre-training
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--no-progress",
                 "--set", "train.grad_clip=1.0"]) == 2
    err = capsys.readouterr().err
    assert "pretrain" in err and "train.grad_clip: None there, 1.0 now" in err


def test_preflight_runs_before_any_training(tmp_path, capsys):
    configs = _configs(tmp_path)
    out = tmp_path / "runs"
    # misspelt loss parameter: refused when the config is read, listing the valid parameters
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--set", "method.params.lamda=0.5"]) == 2
    err = capsys.readouterr().err
    assert "method.params: unknown parameter(s) ['lamda'] for loss 'shpm'; valid: [" in err and "'lam'" in err
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--set", "method.loss=shpn"]) == 2
    assert "method.loss: unknown loss 'shpn'; valid: ['bce_dice', 'cldice'" in capsys.readouterr().err
    # a model that does not fit the data is found by the preflight's forward pass, before training
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--no-progress",
                 "--set", "model.params.in_channels=3"]) == 2
    err = capsys.readouterr().err
    assert "preflight: train case" in err and "the model takes 3 channel(s) of 2D images" in err
    assert not (out / "seed0" / "fold0" / "pretrain" / "log.jsonl").exists() and not list(out.rglob("*.pt"))


def test_cv_preflights_every_config_before_training_any(tmp_path, capsys):
    configs = _configs(tmp_path)
    # the second config (by name: unet after shpm) cannot run on this data: nothing may train first.
    # A model that differs from the other config's is refused before any preflight (the configs of one
    # call share each fold's pre-training); the same model in both is refused by the preflight.
    text = (configs / "unet.yaml").read_text().replace("features: [2, 4, 8]", "features: [2, 4, 8], in_channels: 3")
    (configs / "unet.yaml").write_text(text)
    out = tmp_path / "runs"
    assert main(["cv", str(configs / "*.yaml"), "--out", str(out), "--folds", "0-1", "--no-progress"]) == 2
    assert "configs 'shpm' and 'unet' pre-train differently (model.params.in_channels: 1 there, 3 now)" \
        in capsys.readouterr().err
    assert not list(out.rglob("*.pt")) and not list(out.rglob("log.jsonl"))
    text = (configs / "shpm.yaml").read_text().replace("features: [2, 4, 8]", "features: [2, 4, 8], in_channels: 3")
    (configs / "shpm.yaml").write_text(text)
    assert main(["cv", str(configs / "*.yaml"), "--out", str(out), "--folds", "0-1", "--no-progress"]) == 2
    assert "preflight: train case" in capsys.readouterr().err
    assert not list(out.rglob("*.pt")) and not list(out.rglob("log.jsonl"))


def test_cv_methods_typo_lists_valid_names(tmp_path, capsys):
    configs = _configs(tmp_path)
    assert main(["cv", str(configs / "*.yaml"), "--out", str(tmp_path / "r"), "--methods", "unet,shmp"]) == 2
    err = capsys.readouterr().err
    assert "--methods: 'shmp' match(es) none of the configs; valid names (config names and losses): " \
           "['bce_dice', 'shpm', 'unet']" in err
    assert not (tmp_path / "r").exists()


def test_cv_help_example_glob_matches_configs(capsys):
    with pytest.raises(SystemExit):
        main(["cv", "--help"])
    text = capsys.readouterr().out
    globs = set(re.findall(r"'(configs/[^']+)'", text.replace("\n", " ")))
    assert globs
    for pattern in globs:
        assert glob.glob(str(ROOT / pattern)), pattern


def test_print_config_shows_the_resolved_config(capsys):
    path = ROOT / "configs" / "isbi2012_quick" / "shpm.yaml"  # a real-data config: no data root needed to print
    assert main(["train", str(path), "--print-config", "--set", "train.finetune.steps=7"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == to_dict(load_config(path, ["train.finetune.steps=7"]))
    assert printed["train"]["pretrain"]["lr"] == 0.01 and printed["train"]["finetune"]["steps"] == 7


def test_old_run_folder_is_refused(tmp_path, capsys):
    configs = _configs(tmp_path)
    out = tmp_path / "runs"
    old = out / "seed0" / "fold0" / "shpm"
    old.mkdir(parents=True)
    (old / "run.json").write_text(json.dumps({"fold": 0, "seed": 0, "world_size": 1}))  # toposeg 0.1
    (old / "test_summary.json").write_text("{}")
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--no-progress"]) == 2
    assert "checkpoint format 1 (toposeg < 0.2): retrain into a new --out folder" in capsys.readouterr().err


def test_pretrain_identity_includes_every_field_that_changes_it():
    cfg = load_config(ROOT / "configs" / "vessels2d" / "shpm.yaml")
    base = pretrain_identity(cfg, seed=0, fold=0)

    def leaves(tree, prefix=""):
        for key, value in tree.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict) and value and key not in ("options", "params"):
                yield from leaves(value, path)
            else:
                yield path

    changed_by = {  # a valid different value for every leaf of the config
        "name": "other", "data.kind": "roads2d", "data.options": {"n": 7}, "data.patch": [128, 128],
        "data.batch_size": 2, "data.foreground_oversampling": 0.1, "data.normalization": "minmax",
        "data.hu_window": [0, 1], "data.folds": 3, "data.contiguous": True, "data.val_fraction": 0.1,
        "model.name": "unet", "model.params": {"features": [8, 16, 32]},
        "train.pretrain.steps": 7, "train.pretrain.lr": 0.5, "train.pretrain.optimizer": "adam",
        "train.finetune.steps": 7, "train.finetune.lr": 0.5, "train.finetune.optimizer": "adam",
        "train.val_every": 3, "train.select_metric": "dice", "train.plateau_patience": 9,
        "train.plateau_factor": 0.9, "train.checkpoint_every": 9, "train.grad_clip": 1.0, "train.amp": "bf16",
        "method.loss": "thpm", "method.params": {"lam": 0.1},
        "inference.window": [64, 64], "inference.overlap": 0.5, "inference.threshold": 0.3,
    }
    assert set(leaves(to_dict(cfg))) == set(changed_by)  # every key of the config is tried
    unchanged = set()
    for key, value in changed_by.items():
        if key == "model.name":  # only one model is registered
            continue
        override = f"{key}={json.dumps(value)}"
        other = load_config(ROOT / "configs" / "vessels2d" / "shpm.yaml", [override])
        if pretrain_identity(other, seed=0, fold=0) == base:
            unchanged.add(key)
    # exactly the settings the pre-training never reads
    assert unchanged == {"name", "method.loss", "method.params", "inference.window", "inference.overlap",
                         "inference.threshold", "train.finetune.steps", "train.finetune.lr",
                         "train.finetune.optimizer", "train.val_every", "train.select_metric",
                         "train.plateau_patience", "train.plateau_factor", "train.checkpoint_every"}
    assert pretrain_identity(cfg, seed=1, fold=0) != base and pretrain_identity(cfg, seed=0, fold=1) != base
    assert pretrain_identity(cfg, seed=0, fold=0, world_size=2) != base


def _documented_torchrun_commands():
    found = []
    for doc in ("training.md", "reproducing.md"):
        text = (ROOT / "docs" / doc).read_text().replace("\\\n", " ")
        for m in re.finditer(r"torchrun\s+--nproc_per_node=(\d+)\s+-m\s+toposeg\.cli\s+(train|cv)\s+'?([^\s']+)'?(.*)",
                             text):
            found.append((doc, int(m.group(1)), m.group(2), m.group(3), m.group(4)))
    return found


def test_documented_multi_gpu_commands_start():
    commands = _documented_torchrun_commands()
    assert any(world == 4 and "icas_d" in pattern for _, world, _, pattern, _ in commands)
    for doc, world, command, pattern, rest in commands:
        paths = sorted(glob.glob(str(ROOT / pattern)))
        assert paths, (doc, pattern)
        overrides = re.findall(r"--set\s+(\S+)", rest)
        for path in paths:
            cfg = load_config(path, overrides)
            # what the job's processes build at the start: every rank's batches for the same step
            # are disjoint parts of one global batch of world x data.batch_size samples
            dataset = PatchDataset(make_synthetic("vessels2d", 1, size=32, seed=0), 8, samples_per_epoch=64, seed=0)
            ranks = [StepBatches(dataset, cfg.data.batch_size, rank=r, world_size=world) for r in range(world)]
            seen = [i for b in ranks for i in b.indices(3)]
            assert len(seen) == len(set(seen)) == world * cfg.data.batch_size


def test_parse_folds():
    assert parse_folds("0-4") == [0, 1, 2, 3, 4] and parse_folds("3,1") == [1, 3]
    with pytest.raises(ValueError, match="folds must look like '0-4'"):
        parse_folds("a-b")


def _steps(log_file):
    return [json.loads(line)["step"] for line in log_file.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_torchrun_cv_two_configs_and_resume(tmp_path, monkeypatch):
    """Two gloo processes: the second method of a fold loads the shared pre-training into the DDP
    model, a crashed stage resumes into it, only rank 0 writes the tables."""
    configs = _configs(tmp_path)
    out = tmp_path / "ddp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "toposeg.cli", "cv", str(configs / "*.yaml"),
           "--out", str(out), "--folds", "0", "--device", "cpu", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("shpm", "unet"):
        folder = out / "seed0" / "fold0" / name
        assert json.loads((folder / "test_summary.json").read_text())["finetune"]["steps"] == 4
        run = json.loads((folder / "run.json").read_text())
        assert run["world_size"] == 2 and run["global_batch_size"] == 4 and run["format_version"] == 2
        assert _steps(folder / "log.jsonl") == [1, 2, 3, 4]  # only rank 0 writes
    assert (out / "table1.md").is_file()

    # a crash of the shpm fine-tuning after logging step 4, its last checkpoint at step 2
    folder = out / "seed0" / "fold0" / "shpm"
    payload = torch.load(folder / "last.pt", weights_only=True)
    payload["extra"]["state"]["step"] = 2
    payload["extra"]["state"]["history"] = payload["extra"]["state"]["history"][:2]
    torch.save(payload, folder / "last.pt")
    for stale in ("final.pt", "test_summary.json", "test_predictions.npz"):
        (folder / stale).unlink()
    for stale in ("table1.md", "table1.csv", "table1.json", "fig5.png"):
        (out / stale).unlink(missing_ok=True)
    proc = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming from step 2" in proc.stdout
    assert _steps(folder / "log.jsonl") == [1, 2, 3, 4]  # no step logged twice
    assert (folder / "test_summary.json").is_file() and (out / "table1.md").is_file()

    # the tables and the figure are written by rank 0 only (ranks simulated in this process)
    from toposeg.engine import protocol
    from toposeg.engine.experiments import run_cv

    cfgs = [load_config(p) for p in sorted(configs.glob("*.yaml"))]
    for stale in ("table1.md", "table1.csv", "table1.json", "fig5.png", "per_case.csv"):
        (out / stale).unlink(missing_ok=True)
    monkeypatch.setattr(protocol, "_distributed", lambda: (1, 2))
    run_cv(cfgs, data_root=None, out=out, folds=[0], seed=0, device="cpu", progress=False, log=lambda s: None)
    assert not any((out / f).exists() for f in ("table1.md", "table1.csv", "table1.json", "fig5.png"))
    monkeypatch.setattr(protocol, "_distributed", lambda: (0, 2))
    run_cv(cfgs, data_root=None, out=out, folds=[0], seed=0, device="cpu", progress=False, log=lambda s: None)
    assert all((out / f).exists() for f in ("table1.md", "table1.csv", "table1.json", "fig5.png"))

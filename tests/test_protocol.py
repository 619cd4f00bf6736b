"""End-to-end protocol on tiny synthetic data: train, cv, resume, errors, torchrun (gloo)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toposeg.cli import main
from toposeg.config import load_config
from toposeg.engine.experiments import parse_folds

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
    assert "| Method | Dice ↑ | mIoU ↑ | VOI ↓ | ARE ↓ | β0 error ↓ | β1 error ↓ |" in table
    assert "| shpm |" in table and "| unet |" in table
    summary = json.loads((out / "table1.json").read_text())
    assert summary["folds"] == [0, 1] and summary["summary"]["shpm"]["dice"]["n"] == 2
    assert (out / "fig5.png").is_file() and (out / "per_case.csv").is_file()
    splits = json.loads((out / "splits.json").read_text())
    for fold in splits["folds"]:  # validation never overlaps the test split
        assert not set(fold["val"]) & set(fold["test"])
    # one pre-training per fold, shared by both methods
    assert sorted(p.name for p in (out / "fold0").iterdir()) == ["pretrain", "shpm", "unet"]
    resolved = load_config(out / "fold0" / "shpm" / "config.yaml")
    assert resolved.method.loss == "shpm" and resolved.train.finetune.steps == 4
    capsys.readouterr()
    assert main(args) == 0  # everything finished: skipped
    assert capsys.readouterr().out.count("already evaluated") == 4


def test_train_single_fold_and_errors(tmp_path, capsys):
    configs = _configs(tmp_path)
    out = tmp_path / "runs"
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--fold", "1", "--no-progress"]) == 0
    assert (out / "fold1" / "shpm" / "test_summary.json").is_file()
    assert (out / "fold1" / "shpm" / "curves.png").is_file()
    capsys.readouterr()
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(out), "--fold", "2", "--no-progress"]) == 2
    assert "fold must be an int in [0, 1], got 2" in capsys.readouterr().err
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(tmp_path / "x"), "--set", "train.finetun.steps=1"]) == 2
    assert "unknown key(s) ['finetun']" in capsys.readouterr().err
    assert main(["train", str(configs / "shpm.yaml"), "--out", str(tmp_path / "y"), "--set", "data.kind=folder"]) == 2
    assert "open_dataset('folder'): unknown option(s) ['n', 'size']" in capsys.readouterr().err
    folder = tmp_path / "folder.yaml"
    folder.write_text(f"base: {ROOT / 'configs' / 'base.yaml'}\ndata: {{kind: folder}}\n")
    assert main(["train", str(folder), "--out", str(tmp_path / "z"), "--data-root", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["cv", str(tmp_path / "none*.yaml")]) == 2
    assert "no config files match" in capsys.readouterr().err


def test_parse_folds():
    assert parse_folds("0-4") == [0, 1, 2, 3, 4] and parse_folds("3,1") == [1, 3]
    with pytest.raises(ValueError, match="folds must look like '0-4'"):
        parse_folds("a-b")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_torchrun_two_processes_gloo(tmp_path):
    configs = _configs(tmp_path)
    out = tmp_path / "ddp"
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "toposeg.cli", "train", str(configs / "shpm.yaml"),
         "--out", str(out), "--device", "cpu", "--no-progress"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "fold0" / "shpm" / "test_summary.json").read_text())
    assert result["finetune"]["steps"] == 4
    run = json.loads((out / "fold0" / "shpm" / "run.json").read_text())
    assert run["world_size"] == 2
    log = (out / "fold0" / "shpm" / "log.jsonl").read_text().splitlines()
    assert len(log) == 4  # only rank 0 writes

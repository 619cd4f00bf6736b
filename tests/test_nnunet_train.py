"""nnU-Net v2 end to end: convert -> plan_and_preprocess -> nnUNetv2_train -> nnUNetv2_predict
-> toposeg nnunet evaluate, as real subprocesses with the environment a user sets; the other
trainers in-process for a few steps. Skipped when nnunetv2 is not installed.

nnU-Net's trainer lookup imports every trainer module of nnunetv2 before it searches
``nnUNet_extTrainer``, including its Primus trainers, which import timm and so torchvision.
Where torchvision cannot be imported -- e.g. the CPU-only torch wheel next to PyPI's CUDA
build of torchvision, the case of this project's offline CI -- that lookup fails for *every*
trainer other than ``nnUNetTrainer`` itself, toposeg's or not. The subprocess tests then put a
stub ``timm`` package on ``PYTHONPATH`` (names only, never used: the trainers train nnU-Net's
PlainConvUNet) and say so in a warning; with a working torchvision they run exactly as a user
would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("nnunetv2", reason="nnunetv2 not installed: pip install -e '.[nnunet]'")

from toposeg.data import open_dataset  # noqa: E402
from toposeg.nnunet import TRAINER_NAMES, trainer_dir  # noqa: E402
from toposeg.nnunet.convert import convert_dataset  # noqa: E402

DATASET_ID, DATASET = 901, "Dataset901_ToposegTest"
BIN = Path(sys.executable).parent
TIMEOUT = 600

TINY_TRAINER = '''
import torch
from toposeg.nnunet.trainers import nnUNetTrainerSHPM


class nnUNetTrainerSHPM_tiny(nnUNetTrainerSHPM):
    """A user's subclass: 1 epoch of 2 iterations, lambda 1."""

    topology_weight = 1.0

    def __init__(self, plans, configuration, fold, dataset_json, device=torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 1
        self.num_iterations_per_epoch = 2
        self.num_val_iterations_per_epoch = 1
'''

_STUB = '''"""Stub written by toposeg's tests: timm cannot be imported here (broken torchvision)."""


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return type(name, (), {})
'''


def _timm_stub(root: Path) -> str | None:
    """A folder for PYTHONPATH with a stub timm when timm cannot be imported, else None."""
    probe = subprocess.run([sys.executable, "-c", "import timm"], capture_output=True, text=True, timeout=TIMEOUT)
    if probe.returncode == 0:
        return None
    reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
    warnings.warn(f"timm cannot be imported ({reason}); nnU-Net's trainer lookup needs it, so the nnU-Net "
                  "subprocess tests use a stub timm package (install the torchvision build matching torch)")
    for rel in ("timm/__init__.py", "timm/layers/__init__.py", "timm/models/__init__.py", "timm/models/eva.py"):
        path = root / "shim" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_STUB)
    return str(root / "shim")


@pytest.fixture(scope="module")
def nnunet_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet")
    raw, pre, res = root / "nnUNet_raw", root / "nnUNet_preprocessed", root / "nnUNet_results"
    convert_dataset(open_dataset("vessels2d", n=6, size=64, seed=3), raw / DATASET, label_name="vessel")
    env = dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre), nnUNet_results=str(res),
               nnUNet_n_proc_DA="1", nnUNet_def_n_proc="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    stub = _timm_stub(root)
    if stub:
        env["PYTHONPATH"] = os.pathsep.join([stub, *filter(None, [env.get("PYTHONPATH")])])
    cmd = [str(BIN / "nnUNetv2_plan_and_preprocess"), "-d", str(DATASET_ID), "-c", "2d", "-np", "1",
           "--verify_dataset_integrity"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (pre / DATASET / "nnUNetPlans.json").is_file()
    env["nnUNet_n_proc_DA"] = "0"  # training: data augmentation in the main process
    return {"root": root, "raw": raw, "pre": pre, "res": res, "env": env}


def _run(cmd, env):
    done = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{cmd[0]} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.mark.slow
def test_trainers_are_found_from_trainer_dir_and_from_a_copy_outside_the_source_tree(nnunet_env, tmp_path):
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    shutil.copy(trainer_dir() / "toposeg_nnunet_trainers.py", copy)
    code = ("import sys\n"
            "from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as find\n"
            f"for name in {list(TRAINER_NAMES)!r}:\n"
            "    cls = find(name)\n"
            "    print('FOUND', name, cls.__module__, cls.topology_term, cls.topology_weight)\n")
    for folder in (trainer_dir(), copy):
        env = dict(nnunet_env["env"], nnUNet_extTrainer=str(folder))
        out = _run([sys.executable, "-c", code], env).stdout
        found = [ln.split()[1:] for ln in out.splitlines() if ln.startswith("FOUND")]
        assert found == [
            ["nnUNetTrainerSHPM", "toposeg.nnunet.trainers", "shpm", "0.5"],
            ["nnUNetTrainerTHPM", "toposeg.nnunet.trainers", "thpm", "0.5"],
            ["nnUNetTrainerPHPM", "toposeg.nnunet.trainers", "phpm", "0.5"],
            ["nnUNetTrainerClDice", "toposeg.nnunet.trainers", "cldice", "1.0"],
            ["nnUNetTrainerSkeletonRecall", "toposeg.nnunet.trainers", "skeleton_recall", "1.0"],
        ]
    assert str(copy.resolve()).find(str(Path(__file__).resolve().parents[1] / "src")) == -1


@pytest.mark.slow
def test_end_to_end_nnunetv2_train_predict_and_evaluate(nnunet_env, tmp_path):
    ext = tmp_path / "my_trainers"  # a user's folder, outside the source tree
    ext.mkdir()
    (ext / "my_tiny_trainers.py").write_text(TINY_TRAINER)
    env = dict(nnunet_env["env"], nnUNet_extTrainer=str(ext))
    _run([BIN / "nnUNetv2_train", DATASET_ID, "2d", "0", "-tr", "nnUNetTrainerSHPM_tiny", "-device", "cpu"], env)
    fold = nnunet_env["res"] / DATASET / "nnUNetTrainerSHPM_tiny__nnUNetPlans__2d" / "fold_0"
    assert (fold / "checkpoint_final.pth").is_file()
    val = sorted((fold / "validation").glob("*.tif"))
    assert val, f"no validation prediction in {fold / 'validation'}"
    log = "".join(p.read_text() for p in fold.glob("training_log_*.txt"))
    assert "topology term 'shpm', weight 1.0: on" in log and "train topology term (shpm):" in log

    # nnUNetv2_predict finds the trainer class again through nnUNet_extTrainer
    inp, pred = tmp_path / "in", tmp_path / "pred"
    inp.mkdir()
    first = sorted((nnunet_env["raw"] / DATASET / "imagesTr").glob("*_0000.tif"))[0]
    shutil.copy(first, inp)
    _run([BIN / "nnUNetv2_predict", "-i", inp, "-o", pred, "-d", DATASET_ID, "-c", "2d", "-f", "0",
          "-tr", "nnUNetTrainerSHPM_tiny", "-chk", "checkpoint_final.pth", "-device", "cpu", "--disable_tta",
          "-npp", "1", "-nps", "1"], env)
    case = first.name[: -len("_0000.tif")]
    assert (pred / f"{case}.tif").is_file()

    # toposeg nnunet evaluate on the validation folder; its Dice equals nnU-Net's own
    out = tmp_path / "eval"
    _run([BIN / "toposeg", "nnunet", "evaluate", "--pred", fold / "validation",
          "--gt", nnunet_env["raw"] / DATASET / "labelsTr", "--out", out], env)
    summary = json.loads((fold / "validation" / "summary.json").read_text())
    nnunet_dice = {Path(c["prediction_file"]).name[:-4]: c["metrics"]["1"]["Dice"] for c in summary["metric_per_case"]}
    import csv

    ours = {r["case"]: float(r["dice"]) for r in csv.DictReader((out / "per_case.csv").open())}
    assert set(ours) == set(nnunet_dice)
    for name, dice in nnunet_dice.items():
        assert ours[name] == pytest.approx(dice, abs=1e-9) or (np.isnan(dice) and np.isnan(ours[name]))


def _trainer(cls, env, monkeypatch):
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_n_proc_DA"):
        monkeypatch.setenv(key, env["env"][key])
    plans = json.loads((env["pre"] / DATASET / "nnUNetPlans.json").read_text())
    dataset_json = json.loads((env["pre"] / DATASET / "dataset.json").read_text())
    plans["continue_training"] = False
    t = cls(plans, "2d", 0, dataset_json, device=torch.device("cpu"))
    t.initialize()
    return t


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINER_NAMES)
def test_each_trainer_adds_its_term_to_nnunets_loss_in_process(nnunet_env, monkeypatch, name):
    from toposeg.nnunet.terms import TopologyCompoundLoss
    from toposeg.nnunet.trainers import TRAINERS

    torch.manual_seed(0)
    t = _trainer(TRAINERS[name], nnunet_env, monkeypatch)
    assert isinstance(t.loss, TopologyCompoundLoss) and t.loss.deep_supervision
    t.on_train_start()
    t.on_train_epoch_start()
    batch = next(t.dataloader_train)
    target = batch["target"]
    assert isinstance(target, list) and target[0].shape[1] == 1  # label maps at every scale
    with torch.no_grad():
        out = t.network(batch["data"])
        total = t.loss(out, target)
        base = t.loss.base(out, target)
        term = t.loss.term(out[0], target[0])
    assert float(term) > 0  # an untrained network: errors everywhere
    assert float(total) == pytest.approx(float(base) + t.topology_weight * float(term), rel=1e-5)
    losses = [float(t.train_step(next(t.dataloader_train))["loss"]) for _ in range(2)]
    assert all(np.isfinite(losses)) and len(t._topology_values) == 2


@pytest.mark.slow
def test_warmup_epochs_switch_the_term_off(nnunet_env, monkeypatch):
    from toposeg.nnunet.trainers import nnUNetTrainerTHPM

    class Warm(nnUNetTrainerTHPM):
        topology_warmup_epochs = 1

    t = _trainer(Warm, nnunet_env, monkeypatch)
    t.on_train_start()
    t.on_train_epoch_start()
    assert t.loss.active is False
    t.train_step(next(t.dataloader_train))
    assert t.loss.last_term is None
    t.current_epoch = 1
    t.on_train_epoch_start()
    assert t.loss.active is True
    t.train_step(next(t.dataloader_train))
    assert t.loss.last_term is not None and float(t.loss.last_term) > 0

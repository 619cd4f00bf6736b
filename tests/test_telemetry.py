"""HPM telemetry at validation steps (log.jsonl key "hpm", curves.png panels) and the
ground-truth skeleton of a training patch (train.target_skeleton "patch" | "crop")."""

import json

import numpy as np
import pytest
import torch

from toposeg.data.case import Case
from toposeg.data.patches import PatchDataset
from toposeg.engine.batches import StepBatches
from toposeg.engine.stage import StageSpec, hpm_telemetry, run_stage
from toposeg.engine.trainer import seed_everything
from toposeg.losses import build_loss
from toposeg.models import build_model

PARAMS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "features": [4, 8]}
KEYS = {"hard_pos", "hard_neg", "hard", "hard_fraction", "hpm_term", "lam", "grad_share"}


def _cases():
    rng = np.random.default_rng(0)
    cases = []
    for i in range(2):
        lab = np.zeros((48, 48), bool)
        lab[10:14, 5:40] = True
        lab[5:40, 20 + i:24 + i] = True
        lab[30:33, 2:46] = True
        img = (lab + rng.normal(0, 0.5, lab.shape)).astype(np.float32)[None]
        cases.append(Case(id=f"c{i}", image=img, label=lab))
    return cases


def _batches(skeleton=False, seed=3):
    return StepBatches(PatchDataset(_cases(), 32, samples_per_epoch=16, seed=seed, skeleton=skeleton), 2)


def _model():
    seed_everything(0)
    return build_model("unet", **PARAMS)


def _run(tmp_path, loss, steps=6, batches=None, **kw):
    model = _model()
    spec = StageSpec(name="s", steps=steps, lr=0.01, val_every=3, progress=False, **kw)
    run_stage(model, loss, batches or _batches(), spec, tmp_path, validate=lambda m: {"dice": 0.5},
              log=lambda s: None)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    return model, log


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values()])


def test_hpm_keys_at_validation_steps_only_and_curves_written(tmp_path):
    _, log = _run(tmp_path / "shpm", build_loss("shpm"))
    assert [e["step"] for e in log if "hpm" in e] == [3, 6] == [e["step"] for e in log if "val" in e]
    for e in log:
        if "hpm" in e:
            t = e["hpm"]
            assert set(t) == KEYS
            assert t["hard_pos"] + t["hard_neg"] == t["hard"]
            assert t["hard_fraction"] == pytest.approx(t["hard"] / (2 * 32 * 32))
            assert t["lam"] == 0.5 and t["grad_share"] >= 0.0
    assert (tmp_path / "shpm" / "curves.png").stat().st_size > 0
    _, log = _run(tmp_path / "bce", build_loss("bce_dice"))
    assert not any("hpm" in e for e in log)
    assert (tmp_path / "bce" / "curves.png").stat().st_size > 0


def test_curve_panels_gain_telemetry_only_when_present():
    from toposeg.reports.curves import curve_panels

    plain = [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.9, "val": {"dice": 0.5}}]
    assert not any(t.startswith("HPM") for t, _ in curve_panels(plain))
    tele = plain + [{"step": 3, "loss": 0.8, "val": {"dice": 0.6},
                     "hpm": {"hard_pos": 7.0, "hard_neg": 2.0, "grad_share": 0.25}}]
    panels = dict(curve_panels(tele))
    counts = {label: y.tolist() for label, _, y in panels["HPM: hard pixels per batch"]}
    assert counts == {"hard_pos": [7.0], "hard_neg": [2.0]}
    ((label, x, y),) = panels["HPM: gradient share λ·HPM / (BCE+Dice)"]
    assert (label, x.tolist(), y.tolist()) == ("grad_share", [3.0], [0.25])


def test_telemetry_matches_an_independent_computation(tmp_path):
    """THPM at step 3 (weights after 2 steps, batch of step index 2): counts by numpy from the
    definition H = (p > t) XOR y, gradient norms by two separate ``backward`` passes."""
    loss = build_loss("thpm", lam=0.7)
    _, log = _run(tmp_path / "a", loss, steps=3)
    logged = log[2]["hpm"]
    model2, _ = _run(tmp_path / "b", loss, steps=2)  # training is deterministic: weights before step 3
    batch = _batches()(2)
    model2.train()
    logits = model2(batch["image"])
    p = torch.sigmoid(logits).detach().numpy()
    y = batch["label"].numpy() > 0.5
    pred = p > 0.6
    assert logged["hard_pos"] == float((y & ~pred).sum())
    assert logged["hard_neg"] == float((pred & ~y).sum())
    hard = pred ^ y
    assert logged["hpm_term"] == pytest.approx(float(((p - y) ** 2)[hard].mean()), rel=1e-5)

    def grad_norm(value):
        model2.zero_grad()
        value.backward(retain_graph=True)
        return float(torch.sqrt(sum((q.grad.double() ** 2).sum() for q in model2.parameters() if q.grad is not None)))

    prob = torch.sigmoid(logits)
    yt = batch["label"]
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt)
    dice = 1 - ((2 * (prob * yt).sum((1, 2, 3)) + 1) / (prob.sum((1, 2, 3)) + yt.sum((1, 2, 3)) + 1)).mean()
    term = ((prob - yt) ** 2 * torch.from_numpy(hard)).sum() / hard.sum()
    expected = grad_norm(0.7 * term) / grad_norm(bce + dice)
    assert logged["grad_share"] == pytest.approx(expected, rel=1e-4)


def test_telemetry_does_not_change_training(tmp_path):
    a, log_a = _run(tmp_path / "on", build_loss("shpm"))
    b, log_b = _run(tmp_path / "off", build_loss("shpm"), telemetry=False)
    assert torch.equal(_weights(a), _weights(b))
    assert [e["loss"] for e in log_a] == [e["loss"] for e in log_b]
    assert not any("hpm" in e for e in log_b)


def test_hpm_telemetry_is_none_for_other_losses():
    model = _model()
    x = torch.randn(1, 1, 16, 16)
    y = (x > 0).float()
    assert hpm_telemetry(model, build_loss("bce_dice"), model(x), y) is None
    assert hpm_telemetry(model, build_loss("cldice"), model(x), y) is None


# ------------------------------------------------------------ train.target_skeleton: patch | crop

def _crop_batches(loss, seed=3):
    from toposeg.engine.batches import skeleton_dataset_options

    ds = PatchDataset(_cases(), 32, samples_per_epoch=16, seed=seed, **skeleton_dataset_options("crop", loss))
    return StepBatches(ds, 2)


def test_crop_skeleton_reaches_the_loss_and_patch_passes_none(tmp_path):
    from toposeg.losses.hpm import SHPMLoss

    class Spy(SHPMLoss):
        def __init__(self):
            super().__init__()
            self.seen = []

        def forward(self, input, target, mask=None, target_skeleton=None):
            self.seen.append(None if target_skeleton is None else target_skeleton.clone())
            return super().forward(input, target, mask=mask, target_skeleton=target_skeleton)

    spy = Spy()
    batches = _crop_batches(spy)
    _, log = _run(tmp_path / "crop", spy, steps=3, batches=batches)
    assert len(spy.seen) == 3 and all(torch.equal(s, batches(i)["target_skeleton"]) for i, s in enumerate(spy.seen))
    assert set(log[2]["hpm"]) == KEYS
    spy.seen.clear()
    _run(tmp_path / "patch", spy, steps=3)
    assert spy.seen == [None, None, None]


def test_patch_default_trains_exactly_as_before(tmp_path):
    """'patch' (the default) is the loss recomputing the skeleton of each patch: the same weights
    as a hand-written loop calling shpm_loss(logits, label) without target_skeleton."""
    from toposeg.losses import shpm_loss

    model, _ = _run(tmp_path, build_loss("shpm"), steps=3)
    ref = _model()
    opt = torch.optim.SGD(ref.parameters(), lr=0.01, momentum=0.9)  # toposeg's "sgd"
    batches = _batches()
    for step in range(3):
        b = batches(step)
        opt.zero_grad()
        shpm_loss(ref(b["image"]), b["label"]).backward()
        opt.step()
    assert torch.equal(_weights(model), _weights(ref))


def test_crop_option_errors(tmp_path):
    from toposeg.engine.batches import skeleton_dataset_options

    with pytest.raises(ValueError, match="'tube'"):
        skeleton_dataset_options("tube", build_loss("shpm"))
    with pytest.raises(ValueError, match="SkeletonRecallLoss"):
        skeleton_dataset_options("crop", build_loss("skeleton_recall"))
    assert skeleton_dataset_options("patch", build_loss("bce_dice")) == {}
    # a batch with a skeleton for a loss that does not take one
    with pytest.raises(ValueError, match="CLDiceLoss does not take a skeleton"):
        _run(tmp_path / "a", build_loss("cldice"), steps=1, batches=_crop_batches(build_loss("shpm")))
    # an identity saying 'crop' with batches that carry no skeleton: refused, never silently 'patch'
    with pytest.raises(ValueError, match="target_skeleton is 'crop' but the batches carry no"):
        _run(tmp_path / "b", build_loss("shpm"), steps=1, config={"train": {"target_skeleton": "crop"}})


def test_config_target_skeleton_validated_and_omitted_at_default():
    from toposeg.config import Config, TrainConfig, MethodConfig, to_dict, validate

    cfg = Config()
    assert cfg.train.target_skeleton == "patch" and "target_skeleton" not in to_dict(cfg)["train"]
    crop = Config(train=TrainConfig(target_skeleton="crop"))
    validate(crop)
    assert to_dict(crop)["train"]["target_skeleton"] == "crop"
    with pytest.raises(ValueError, match="train.target_skeleton: expected one of \\['patch', 'crop'\\], got 'whole'"):
        validate(Config(train=TrainConfig(target_skeleton="whole")))
    with pytest.raises(ValueError, match="got method.loss 'skeleton_recall'"):
        validate(Config(train=TrainConfig(target_skeleton="crop"), method=MethodConfig(loss="skeleton_recall")))
    validate(Config(train=TrainConfig(target_skeleton="crop"), method=MethodConfig(loss="shpm_plus")))


def test_cv_fold_with_target_skeleton_crop_runs_end_to_end(tmp_path):
    """train.target_skeleton=crop reaches the fine-tuning batches through the protocol and shares the pre-training."""
    from pathlib import Path

    from toposeg.config import load_config
    from toposeg.engine.protocol import pretrain_identity, run_fold

    path = Path(__file__).resolve().parents[1] / "configs" / "vessels2d_quick" / "shpm.yaml"
    small = ["data.patch=[32, 32]", "data.batch_size=2", "train.pretrain.steps=2", "train.finetune.steps=2",
             "train.val_every=2", "train.checkpoint_every=2", "data.options.n=6", "data.options.size=48",
             "model.params.features=[4, 8, 16]"]
    crop = load_config(path, small + ["train.target_skeleton=crop"])
    patch = load_config(path, small)
    assert pretrain_identity(crop, seed=0, fold=0) == pretrain_identity(patch, seed=0, fold=0)
    run_fold(crop, data_root=None, out=tmp_path, fold=0, seed=0, device="cpu", progress=False, log=lambda s: None)
    assert any((tmp_path).rglob("final.pt"))


def test_tensorboard_scalars_mirror_the_log(tmp_path):
    """train.tensorboard writes the log's scalars as TensorBoard events (read back with TensorBoard's own reader)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from toposeg.engine.tensorboard import ScalarLog

    log = ScalarLog(tmp_path, enabled=True)
    entries = [{"step": 1, "loss": 0.9, "lr": 0.01},
               {"step": 2, "loss": 0.7, "lr": 0.01, "val": {"dice": 0.5, "betti1_error": 3.0},
                "hpm": {"hard_pos": 4, "grad_share": 0.25}}]
    for e in entries:
        log.write(e)
    log.close()
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert {"loss", "lr", "val/dice", "val/betti1_error", "hpm/hard_pos", "hpm/grad_share"} <= set(acc.Tags()["scalars"])
    assert [(s.step, round(s.value, 6)) for s in acc.Scalars("loss")] == [(1, 0.9), (2, 0.7)]
    assert acc.Scalars("hpm/grad_share")[0].value == pytest.approx(0.25)
    off = ScalarLog(tmp_path / "off", enabled=False)
    off.write(entries[0])
    off.close()
    assert not (tmp_path / "off").exists()


def test_tensorboard_option_validated_and_not_in_run_identity():
    from pathlib import Path

    from toposeg.config import load_config
    from toposeg.engine.protocol import finetune_identity, pretrain_identity

    path = Path(__file__).resolve().parents[1] / "configs" / "vessels2d_quick" / "shpm.yaml"
    on, off = load_config(path, ["train.tensorboard=true"]), load_config(path)
    assert on.train.tensorboard is True
    assert finetune_identity(on, seed=0, fold=0) == finetune_identity(off, seed=0, fold=0)
    assert pretrain_identity(on, seed=0, fold=0) == pretrain_identity(off, seed=0, fold=0)
    with pytest.raises(ValueError, match="train.tensorboard"):
        load_config(path, ["train.tensorboard=3"])


def test_stage_writes_tensorboard_events_only_when_asked(tmp_path):
    pytest.importorskip("tensorboard")
    _run(tmp_path / "on", build_loss("shpm"), tensorboard=True)
    _run(tmp_path / "off", build_loss("shpm"))
    assert list((tmp_path / "on").rglob("events.out.tfevents.*"))
    assert not list((tmp_path / "off").rglob("events.out.tfevents.*"))

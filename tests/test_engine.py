import itertools
import json

import numpy as np
import pytest
import torch

from toposeg.engine import load_checkpoint, load_model, save_checkpoint
from toposeg.engine.stage import StageSpec, run_stage
from toposeg.engine.checkpoint import FORMAT_VERSION, INFERENCE_KEYS, inference_settings
from toposeg.engine.stage import config_diff
from toposeg.engine.trainer import build_optimizer, seed_everything
from toposeg.losses import build_loss
from toposeg.models import build_model

PARAMS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "features": [2, 4, 8]}


def _model():
    seed_everything(0)
    return build_model("unet", **PARAMS)


def _spec(**kw):
    base = dict(name="stage", steps=12, lr=0.01, optimizer="adam", checkpoint_every=4, progress=False,
                model_params=PARAMS, config={"run": 1})
    return StageSpec(**{**base, **kw})


def _sampler(step):
    g = torch.Generator().manual_seed(step)
    x = torch.randn(2, 1, 16, 16, generator=g)
    return {"image": x, "label": (x > 0.5).float()}


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.is_floating_point()])


def test_stage_trains_deterministically(tmp_path):
    runs = []
    for k in range(2):
        model = _model()
        summary = run_stage(model, build_loss("bce_dice"), _sampler, _spec(steps=30), tmp_path / str(k), log=lambda s: None)
        runs.append(_weights(model))
        assert summary["steps"] == 30
    assert torch.equal(runs[0], runs[1])
    losses = [json.loads(line)["loss"] for line in (tmp_path / "0" / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5])
    assert {p.name for p in (tmp_path / "0").iterdir()} >= {"last.pt", "best.pt", "final.pt", "log.jsonl", "curves.png"}


def test_killed_stage_resumes_to_the_same_result(tmp_path):
    full = _model()
    run_stage(full, build_loss("bce_dice"), _sampler, _spec(), tmp_path / "full", log=lambda s: None)

    def killed_at_6(step):
        if step == 6:
            raise KeyboardInterrupt
        return _sampler(step)

    model = _model()
    with pytest.raises(KeyboardInterrupt):
        run_stage(model, build_loss("bce_dice"), killed_at_6, _spec(), tmp_path / "resumed", log=lambda s: None)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["extra"]["state"]["step"] == 6
    with pytest.raises(ValueError, match="holds a run interrupted at step 6; pass --resume to continue it"):
        run_stage(_model(), build_loss("bce_dice"), _sampler, _spec(), tmp_path / "resumed", resume=False)
    messages = []
    fresh = _model()
    torch.manual_seed(123)  # RNG state must come from the checkpoint, not from here
    run_stage(fresh, build_loss("bce_dice"), _sampler, _spec(), tmp_path / "resumed", log=messages.append)
    assert any("resuming from step 6" in m for m in messages)
    assert torch.equal(_weights(fresh), _weights(full))
    # a finished stage is skipped and loads its final weights
    again = _model()
    run_stage(again, build_loss("bce_dice"), _sampler, _spec(), tmp_path / "resumed", log=messages.append)
    assert "already done" in messages[-1] and torch.equal(_weights(again), _weights(full))


def test_stage_refuses_a_folder_of_another_config(tmp_path):
    run_stage(_model(), build_loss("bce_dice"), _sampler, _spec(steps=2), tmp_path, log=lambda s: None)
    with pytest.raises(ValueError, match="was written by a different configuration"):
        run_stage(_model(), build_loss("bce_dice"), _sampler, _spec(steps=2, config={"run": 2}), tmp_path)


def test_stage_selects_best_by_validation_metric(tmp_path):
    scores = iter([0.2, 0.9, 0.5])
    summary = run_stage(_model(), build_loss("bce_dice"), _sampler, _spec(steps=6, val_every=2, plateau=True),
                        tmp_path, validate=lambda m: {"dice": next(scores)}, log=lambda s: None)
    assert summary["best"] == 0.9 and summary["best_step"] == 4
    assert load_checkpoint(tmp_path / "best.pt")["extra"]["state"]["best_step"] == 4


def test_stage_stops_on_non_finite_loss(tmp_path):
    calls = itertools.count()

    def loss(out, target):
        return out.mean() * (float("nan") if next(calls) == 5 else 1.0)

    with pytest.raises(FloatingPointError, match=r"loss became nan at step 6; stopping \(last good checkpoint: .*last.pt\)"):
        run_stage(_model(), loss, _sampler, _spec(), tmp_path, log=lambda s: None)
    assert load_checkpoint(tmp_path / "last.pt")["extra"]["state"]["step"] == 4


def test_stage_bad_amp(tmp_path):
    with pytest.raises(ValueError, match="amp must be one of"):
        run_stage(_model(), build_loss("bce_dice"), _sampler, _spec(amp="fp8"), tmp_path)


def test_build_optimizer_errors():
    with pytest.raises(KeyError, match="unknown optimizer 'rmsprop'"):
        build_optimizer("rmsprop", _model(), 0.1)
    with pytest.raises(ValueError, match="learning rate must be > 0, got 0"):
        build_optimizer("sgd", _model(), 0)


def test_checkpoint_round_trip(tmp_path):
    model = _model().eval()
    path = save_checkpoint(tmp_path / "ck" / "model.pt", model, name="unet", params=PARAMS, extra={"step": 3})
    assert load_checkpoint(path)["extra"] == {"step": 3}
    again = load_model(path)
    x = torch.randn(1, 1, 24, 24)
    assert torch.equal(model(x), again(x))
    assert not list(tmp_path.glob("ck/*.tmp"))


def test_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt: not a readable toposeg checkpoint"):
        load_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(ValueError, match="not a toposeg checkpoint"):
        load_model(other)
    mismatched = tmp_path / "mismatch.pt"
    save_checkpoint(mismatched, _model(), name="unet", params={**PARAMS, "features": [4, 8, 16]})
    with pytest.raises(ValueError, match="weights do not fit model 'unet'"):
        load_model(mismatched)


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    model = _model()
    path = save_checkpoint(tmp_path / "m.pt", model, name="unet", params=PARAMS, extra={"step": 1})

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model, name="unet", params=PARAMS, extra={"step": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["extra"] == {"step": 1}
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_carries_format_and_inference_settings(tmp_path):
    inference = inference_settings(spatial_dims=2, in_channels=1, window=(128, 128), overlap=0.25,
                                   normalization="zscore", hu_window=None, threshold=0.5, label_foreground="dark")
    path = save_checkpoint(tmp_path / "m.pt", _model(), name="unet", params=PARAMS, inference=inference)
    payload = load_checkpoint(path)
    assert payload["format_version"] == FORMAT_VERSION == 2
    assert payload["inference"] == {"window": [128, 128], "overlap": 0.25, "normalization": "zscore",
                                    "hu_window": None, "threshold": 0.5, "label_foreground": "dark",
                                    "spatial_dims": 2, "in_channels": 1}
    assert sorted(INFERENCE_KEYS) == sorted(payload["inference"])
    # without inference settings: spatial dims and channels from the model, the window unknown
    default = load_checkpoint(save_checkpoint(tmp_path / "d.pt", _model(), name="unet", params=PARAMS))["inference"]
    assert default["window"] is None and default["spatial_dims"] == 2 and default["in_channels"] == 1
    with pytest.raises(ValueError, match=r"inference overlap must be in \[0, 1\), got 1.5"):
        inference_settings(spatial_dims=2, in_channels=1, overlap=1.5)


def _format1_state():
    """The state-dict key names of the toposeg 0.1 U-Net (BatchNorm, transposed convolutions)."""
    return {"enc.0.0.weight": torch.zeros(2, 1, 3, 3), "enc.0.1.weight": torch.ones(2),
            "up.0.weight": torch.zeros(8, 8, 2, 2), "head.weight": torch.zeros(1, 2, 1, 1)}


def test_format1_checkpoint_fails_with_one_clear_message(tmp_path):
    old = tmp_path / "old.pt"
    torch.save({"model": "unet", "model_params": PARAMS, "state_dict": _format1_state(), "extra": {}}, old)
    for load in (load_checkpoint, load_model):
        with pytest.raises(ValueError) as info:
            load(old)
        message = str(info.value)
        assert message.startswith(f"{old}: checkpoint format 1 (toposeg < 0.2): retrain")
        assert "Missing key" not in message and "\n" not in message
    # a format-2 payload carrying the old network's weights gets the same message
    mixed = tmp_path / "mixed.pt"
    payload = {"format_version": 2, "model": "unet", "model_params": PARAMS, "state_dict": _format1_state(),
               "inference": inference_settings(spatial_dims=2, in_channels=1), "extra": {}}
    torch.save(payload, mixed)
    with pytest.raises(ValueError, match=r"checkpoint format 1 \(toposeg < 0.2\): retrain"):
        load_model(mixed)
    newer = tmp_path / "newer.pt"
    torch.save({**payload, "format_version": 3}, newer)
    with pytest.raises(ValueError, match="checkpoint format 3; this toposeg reads format 2 \\(a newer toposeg"):
        load_checkpoint(newer)


def test_stage_loads_checkpoints_into_a_ddp_wrapped_model(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        plain = _model()
        run_stage(plain, build_loss("bce_dice"), _sampler, _spec(steps=4), tmp_path / "s", log=lambda s: None)
        wrapped = torch.nn.parallel.DistributedDataParallel(_model())
        messages = []
        run_stage(wrapped, build_loss("bce_dice"), _sampler, _spec(steps=4), tmp_path / "s", log=messages.append)
        assert "already done" in messages[-1] and torch.equal(_weights(wrapped.module), _weights(plain))
        # resuming an interrupted stage into a wrapped model
        def killed_at_2(step):
            if step == 2:
                raise KeyboardInterrupt
            return _sampler(step)

        with pytest.raises(KeyboardInterrupt):
            run_stage(_model(), build_loss("bce_dice"), killed_at_2, _spec(steps=4, checkpoint_every=0),
                      tmp_path / "r", log=lambda s: None)
        resumed = torch.nn.parallel.DistributedDataParallel(_model())
        run_stage(resumed, build_loss("bce_dice"), _sampler, _spec(steps=4, checkpoint_every=0), tmp_path / "r",
                  log=messages.append)
        assert any("resuming from step 2" in m for m in messages)
        assert torch.equal(_weights(resumed.module), _weights(plain))
        saved = load_checkpoint(tmp_path / "r" / "final.pt")["state_dict"]
        assert not any(k.startswith("module.") for k in saved)
    finally:
        dist.destroy_process_group()


def test_log_has_no_duplicate_steps_after_crash_and_resume(tmp_path):
    def crash_at_6(step):
        if step == 6:
            raise RuntimeError("node lost")
        return _sampler(step)

    with pytest.raises(RuntimeError, match="node lost"):  # a crash, not Ctrl-C: last.pt is at step 4
        run_stage(_model(), build_loss("bce_dice"), crash_at_6, _spec(), tmp_path, log=lambda s: None)
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(tmp_path / "last.pt")["extra"]["state"]["step"] == 4
    run_stage(_model(), build_loss("bce_dice"), _sampler, _spec(), tmp_path, log=lambda s: None)
    steps = [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 13))


def test_refusal_names_the_differing_keys(tmp_path):
    run_stage(_model(), build_loss("bce_dice"), _sampler, _spec(steps=2, config={"train": {"steps": 2, "lr": 1}}),
              tmp_path, log=lambda s: None)
    with pytest.raises(ValueError, match=r"different configuration \(train.steps: 2 there, 3 now\)"):
        run_stage(_model(), build_loss("bce_dice"), _sampler,
                  _spec(steps=2, config={"train": {"steps": 3, "lr": 1}}), tmp_path)
    assert config_diff({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3, "d": 0}, "e": 1}) == ["a.c", "a.d", "e"]


def test_curves_one_panel_per_metric_family(tmp_path):
    from toposeg.reports.curves import curve_panels, training_curves

    val = {"dice": 0.8, "iou": 0.7, "miou": 0.75, "cldice": 0.8, "cldice_tprec": 0.9, "voi": 0.5, "voi_split": 0.2,
           "voi_merge": 0.3, "are": 0.1, "are_precision": 0.9, "betti0_error": 3.0, "betti1_error": 120.0,
           "betti0_pred": 4.0, "euler_error": 5.0}
    history = [{"step": s, "loss": 1.0 / s, **({"val": val} if s % 10 == 0 else {})} for s in range(1, 41)]
    panels = curve_panels(history)
    assert [title for title, _ in panels] == [
        "training loss", "validation: overlap (higher is better)", "validation: topology errors (lower is better)",
        "validation: partition (lower is better)"]
    assert [label for label, _, _ in panels[1][1]] == ["dice", "iou", "miou", "cldice"]
    assert [label for label, _, _ in panels[2][1]] == ["betti0_error", "betti1_error", "euler_error"]
    assert [label for label, _, _ in panels[3][1]] == ["voi", "voi_split", "voi_merge", "are"]
    assert list(panels[1][1][0][1]) == [10, 20, 30, 40]
    path = training_curves(history, tmp_path / "curves.png", title="fine-tune")
    assert path.stat().st_size > 1000
    assert [t for t, _ in curve_panels([{"step": 1, "loss": 0.5}])] == ["training loss"]


def test_demo_predicts_whole_images_by_the_one_sliding_window_path():
    # the demo's evaluation feeds the model z-scored windows of the training patch size (as
    # training did), not the raw whole image in one pass
    from toposeg.data import make_synthetic
    from toposeg.engine.demo import DemoConfig, _evaluate

    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _model()

        def forward(self, x):
            seen.append((tuple(x.shape), float(x.mean()), float(x.std())))
            return self.net(x)

    cases = make_synthetic("vessels2d", 1, size=96, seed=0)
    cases[0] = type(cases[0])(cases[0].id, cases[0].image * 50 + 7, cases[0].label)  # raw intensities far from z-scored
    probs, acc = _evaluate(Recorder(), cases, DemoConfig(size=96, patch=32))
    assert probs[0].shape == (96, 96) and acc.per_case()[0]["case_id"] == cases[0].id
    assert seen and all(shape[2:] == (32, 32) for shape, _, _ in seen)
    assert all(abs(mean) < 3 and std < 5 for _, mean, std in seen)

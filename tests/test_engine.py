import itertools
import json

import numpy as np
import pytest
import torch

from toposeg.engine import load_checkpoint, load_model, save_checkpoint
from toposeg.engine.stage import StageSpec, run_stage
from toposeg.engine.trainer import build_optimizer, predict_whole, seed_everything
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


def test_predict_whole_shape_and_range():
    prob = predict_whole(_model(), np.random.rand(1, 30, 21).astype(np.float32))
    assert prob.shape == (30, 21) and prob.min() >= 0 and prob.max() <= 1

import itertools

import numpy as np
import pytest
import torch

from toposeg.engine import load_checkpoint, load_model, save_checkpoint
from toposeg.engine.trainer import build_optimizer, fit, predict_whole, seed_everything
from toposeg.losses import build_loss
from toposeg.models import build_model

PARAMS = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "features": [2, 4, 8]}


def _batches():
    g = torch.Generator().manual_seed(0)
    while True:
        x = torch.randn(2, 1, 16, 16, generator=g)
        yield {"image": x, "label": (x > 0.5).float()}


def _model():
    seed_everything(0)
    return build_model("unet", **PARAMS)


def test_fit_reduces_loss_and_is_deterministic():
    runs = []
    for _ in range(2):
        model = _model()
        losses = fit(model, build_loss("bce_dice"), _batches(), steps=30,
                     optimizer=build_optimizer("adam", model, 0.01), progress=False)
        runs.append(losses)
    assert runs[0] == runs[1]
    assert np.mean(runs[0][-5:]) < np.mean(runs[0][:5])


def test_fit_stops_on_non_finite_loss():
    model = _model()
    calls = itertools.count()

    def loss(out, target):
        return out.mean() * (float("nan") if next(calls) == 2 else 1.0)

    with pytest.raises(FloatingPointError, match="loss became nan at step 3"):
        fit(model, loss, _batches(), steps=5, optimizer=build_optimizer("sgd", model, 0.01), progress=False)


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

"""`toposeg demo` (toposeg.engine.demo): the baseline, the paper's SHPM and the recommended method are
fine-tuned from the same pre-trained weights, on the same batches, for the same steps."""

import json
from pathlib import Path

import pytest
import torch

import toposeg.engine.stage as stage_module
import toposeg.recommend
from toposeg.engine.demo import DemoConfig, describe_loss, resolved_params, run_demo, same_loss
from toposeg.recommend import Recommendation

PRE, BASE, PAPER = "U-Net (pre-trained)", "U-Net, fine-tuned BCE+Dice", "U-Net + SHPM (paper)"
# seconds on one CPU thread: 32² images, one 32² patch, 2 + 3 steps
TINY = dict(size=32, n_train=2, n_test=1, patch=32, batch_size=2, pretrain_steps=2, finetune_steps=3, n_figure=1,
            progress=False)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture
def stages(monkeypatch):
    """Every run_stage call of the demo: its folder, loss, steps, lr, the model's weights when it
    starts and ends, the global torch RNG state when it starts, and every batch it drew."""
    real, calls = stage_module.run_stage, []

    def recording(model, loss_fn, batch_at, spec, stage_dir, **kwargs):
        call = {"folder": Path(stage_dir).name, "loss": loss_fn, "steps": spec.steps, "lr": spec.lr,
                "start": _state(model), "rng": torch.get_rng_state().clone(), "batches": []}

        def at(step):
            batch = batch_at(step)
            call["batches"].append((step, {k: v.clone() for k, v in batch.items()}))
            return batch

        summary = real(model, loss_fn, at, spec, stage_dir, **kwargs)
        call["end"] = _state(model)
        calls.append(call)
        return summary

    monkeypatch.setattr(stage_module, "run_stage", recording)  # run_demo imports it when it runs
    return calls


def _equal_states(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _equal_batches(a, b):
    return [s for s, _ in a] == [s for s, _ in b] and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for (_, x), (_, y) in zip(a, b))


def test_three_fine_tunings_start_from_the_same_weights_and_see_the_same_batches(tmp_path, monkeypatch, stages):
    from toposeg.losses import BCEDiceLoss, SHPMLoss, SkeletonRecallLoss

    monkeypatch.setitem(toposeg.recommend.RECOMMENDED, "vessels2d",
                        Recommendation("skeleton_recall", {}, "a test sentence."))
    payload = run_demo(DemoConfig(**TINY), tmp_path, log=lambda _: None)

    assert [c["folder"] for c in stages] == ["pretrain", "finetune_bce_dice", "finetune_shpm", "finetune_recommended"]
    pretrain, *tunes = stages
    assert not _equal_states(pretrain["start"], pretrain["end"])  # pre-training changed the weights
    for tune in tunes:
        assert _equal_states(tune["start"], pretrain["end"])    # each starts from the pre-trained weights
        assert (tune["steps"], tune["lr"]) == (3, 0.001)
        assert [s for s, _ in tune["batches"]] == [0, 1, 2]
        assert _equal_batches(tune["batches"], tunes[0]["batches"])
        assert torch.equal(tune["rng"], tunes[0]["rng"])
    assert not _equal_batches(tunes[0]["batches"], pretrain["batches"][: len(tunes[0]["batches"])])
    assert not _equal_states(tunes[0]["end"], tunes[1]["end"])  # the losses differ, so do the models
    assert type(tunes[0]["loss"]) is BCEDiceLoss
    assert type(tunes[1]["loss"]) is SHPMLoss and (tunes[1]["loss"].lam, tunes[1]["loss"].threshold) == (0.5, 0.6)
    assert type(tunes[2]["loss"]) is SkeletonRecallLoss

    row = "U-Net + skeleton_recall (recommended)"
    assert list(payload["summary"]) == [PRE, BASE, PAPER, row]
    assert list(payload["fine_tune_seconds"]) == [BASE, PAPER, row]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["recommended"] == {"loss": "skeleton_recall", "params": {}, "evidence": "a test sentence.",
                                      "source": "toposeg.recommend", "row": row, "same_as": None,
                                      "separate_fine_tuning": True}
    table = (tmp_path / "table.md").read_text()
    assert f"| {row} |" in table and f"| {PAPER} |" in table
    assert table.rstrip().splitlines()[-1] == (
        f"Recommended for vessels2d: `skeleton_recall`, the row “{row}”, fine-tuned from the same pre-trained "
        "weights on the same batches for the same 3 steps as the other fine-tunings. Evidence: a test sentence.")


@pytest.mark.parametrize("rec, same_as, marked", [
    (Recommendation("shpm", {"threshold": 0.6}, "same as the paper"), PAPER, "U-Net + SHPM (paper) — recommended"),
    (Recommendation("bce_dice", {}, "no topology term"), BASE, "U-Net, fine-tuned BCE+Dice — recommended"),
])
def test_a_recommendation_equal_to_the_baseline_or_the_paper_is_not_trained_twice(tmp_path, monkeypatch, stages,
                                                                                  rec, same_as, marked):
    monkeypatch.setitem(toposeg.recommend.RECOMMENDED, "vessels2d", rec)
    (tmp_path / "finetune_recommended").mkdir()
    (tmp_path / "finetune_recommended" / "stale.txt").write_text("from an earlier demo")
    payload = run_demo(DemoConfig(**TINY), tmp_path, log=lambda _: None)

    assert [c["folder"] for c in stages] == ["pretrain", "finetune_bce_dice", "finetune_shpm"]
    assert not (tmp_path / "finetune_recommended").exists()  # cleaned at the start like the others
    assert list(payload["summary"]) == [PRE, BASE, PAPER]
    assert payload["recommended"]["row"] == payload["recommended"]["same_as"] == same_as
    assert payload["recommended"]["separate_fine_tuning"] is False
    table = (tmp_path / "table.md").read_text()
    assert f"| {marked} |" in table and table.count("recommended |") == 1
    assert f"the same loss as the row “{same_as}”, so it is trained once. Evidence: {rec.evidence}." in table


def test_no_recommended_fine_tunes_only_baseline_and_paper(tmp_path, monkeypatch, stages):
    monkeypatch.setitem(toposeg.recommend.RECOMMENDED, "vessels2d", Recommendation("cldice", {}, "because."))
    payload = run_demo(DemoConfig(**TINY, compare_recommended=False), tmp_path, log=lambda _: None)
    assert [c["folder"] for c in stages] == ["pretrain", "finetune_bce_dice", "finetune_shpm"]
    assert list(payload["summary"]) == [PRE, BASE, PAPER]
    assert payload["recommended"]["loss"] == "cldice" and payload["recommended"]["row"] is None
    assert ("Recommended for vessels2d: `cldice`, not fine-tuned in this run (--no-recommended). Evidence: because."
            in (tmp_path / "table.md").read_text())


def test_an_override_uses_the_loss_defaults_and_says_who_chose_it(tmp_path, monkeypatch, stages):
    monkeypatch.setitem(toposeg.recommend.RECOMMENDED, "vessels2d", Recommendation("cldice", {}, "pilot."))
    payload = run_demo(DemoConfig(**TINY, recommended="shpm_plus"), tmp_path, log=lambda _: None)
    assert list(payload["summary"])[-1] == "U-Net + shpm_plus (recommended)"
    assert type(stages[-1]["loss"]).__name__ == "SHPMPlusLoss" and stages[-1]["loss"].threshold == 0.5
    assert payload["recommended"]["source"] == "--recommended"
    assert payload["recommended"]["evidence"].startswith("chosen by the user (--recommended shpm_plus")
    assert "toposeg recommends cldice for vessels2d (pilot.)" in payload["recommended"]["evidence"]


def test_same_loss_compares_name_and_parameters_with_defaults_filled_in():
    # the paper's SHPM: λ = 0.5, t = 0.6 (the paper's values, docs/losses.md); the registry defaults equal them
    assert same_loss(("shpm", {}), ("shpm", {"lam": 0.5, "threshold": 0.6}))
    assert not same_loss(("shpm", {"lam": 1.0}), ("shpm", {"lam": 0.5, "threshold": 0.6}))
    assert not same_loss(("shpm", {"threshold": 0.5}), ("shpm", {}))
    assert not same_loss(("shpm_plus", {}), ("shpm", {}))  # another registry name is another method
    assert same_loss(("bce_dice", {}), ("bce_dice", {}))
    assert not same_loss(("cldice", {}), ("bce_dice", {}))
    assert resolved_params("shpm", {"lam": 2.0})["threshold"] == 0.6
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['bogus'\] for loss 'cldice'"):
        resolved_params("cldice", {"bogus": 1})
    with pytest.raises(KeyError, match="unknown loss 'dice'"):
        resolved_params("dice", {})
    assert describe_loss("cldice", {}) == "cldice"
    assert describe_loss("shpm", {"threshold": 0.5, "lam": 1.0}) == "shpm(lam=1.0, threshold=0.5)"


def test_a_bad_recommendation_fails_before_any_training(tmp_path, monkeypatch, stages):
    with pytest.raises(ValueError, match=r"unknown loss 'dice' for the recommended method \(--recommended\); valid: "
                                         r"\['bce_dice', 'cldice', "):
        DemoConfig(**TINY, recommended="dice")
    monkeypatch.setitem(toposeg.recommend.RECOMMENDED, "vessels2d", Recommendation("cldice", {"lam": 1.0}, "."))
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['lam'\] for loss 'cldice'"):
        run_demo(DemoConfig(**TINY), tmp_path / "out", log=lambda _: None)
    assert stages == [] and not (tmp_path / "out").exists()

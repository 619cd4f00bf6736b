"""The rule that chooses the recommended method on validation splits (toposeg.reports.selection).
Expected values are hand-computed from the hand-written validation scores."""

import json
import math

import pytest

from toposeg.reports.selection import DICE_MARGIN, choose, final_validation, summarize, validation_runs, write_validation


def _log(path, entries):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(e) for e in entries) + "\n")


def _val(dice, b0, b1, are):
    return {"dice": dice, "betti0_error": b0, "betti1_error": b1, "are": are, "voi": 1.0, "cldice": 0.9}


def test_final_validation_reads_the_last_validation_entry(tmp_path):
    f = tmp_path / "log.jsonl"
    _log(f, [{"step": 1, "loss": 1.0}, {"step": 2, "val": _val(0.5, 9, 9, 0.9)}, {"step": 3, "loss": 0.5},
             {"step": 4, "val": _val(0.7, 3, 2, 0.4)}, {"step": 4, "loss": 0.4}])
    val = final_validation(f)
    assert val["dice"] == 0.7 and val["betti_sum"] == 5  # 3 + 2, by hand
    assert final_validation(f, steps=4)["dice"] == 0.7
    assert final_validation(f, steps=5) is None  # the final checkpoint (step 5) was not validated
    assert final_validation(tmp_path / "absent.jsonl") is None


def _summary(rows):
    return {name: {m: {"mean": v, "std": 0.0, "n": 1} for m, v in
                   zip(("dice", "betti_sum", "are"), vals)} for name, vals in rows.items()}


def test_rule_dice_floor_lowest_betti_sum_and_are_tie_break():
    table = _summary({"unet": (0.800, 20.0, 0.30),
                      "low_dice": (0.789, 5.0, 0.10),    # 0.789 < 0.800 - 0.01: excluded despite the best β
                      "b": (0.795, 10.0, 0.30),
                      "c": (0.810, 10.05, 0.20),          # within 1 % of b's 10.0: a tie, lower ARE wins
                      "d": (0.805, 12.0, 0.05)})
    out = choose(table, "unet")
    assert out["method"] == "c"
    assert out["eligible"] == ["b", "c", "d", "unet"]
    assert set(out["excluded"]) == {"low_dice"} and "0.7890" in out["excluded"]["low_dice"]
    assert DICE_MARGIN == 0.01
    table["c"]["betti_sum"]["mean"] = 10.2  # 2 % above b: no tie any more
    assert choose(table, "unet")["method"] == "b"
    only_base = _summary({"unet": (0.8, 20.0, 0.3), "worse": (0.8, 25.0, 0.1)})
    assert choose(only_base, "unet")["method"] == "unet"  # the baseline can be the recommendation
    with pytest.raises(ValueError, match=r"the baseline 'nope' has no validation scores; methods with scores: \['unet', 'worse'\]"):
        choose(only_base, "nope")


def test_validation_files_from_a_study_folder(tmp_path):
    runs = {("unet", 0, 0): _val(0.80, 10, 4, 0.3), ("unet", 0, 1): _val(0.82, 14, 6, 0.2),
            ("shpm", 0, 0): _val(0.79, 12, 9, 0.3), ("shpm", 0, 1): _val(0.80, 16, 9, 0.3),
            ("cldice", 0, 0): _val(0.80, 8, 4, 0.3), ("cldice", 0, 1): _val(0.81, 10, 4, 0.2)}
    for (name, s, k), val in runs.items():
        folder = tmp_path / f"seed{s}" / f"fold{k}" / name
        _log(folder / "log.jsonl", [{"step": 50, "val": _val(0, 99, 99, 1)}, {"step": 100, "val": val}])
        (folder / "test_summary.json").write_text("{}")
    # an unfinished run (no test_summary.json) is not used
    _log(tmp_path / "seed0" / "fold2" / "cldice" / "log.jsonl", [{"step": 100, "val": _val(0.9, 0, 0, 0)}])
    found = validation_runs(tmp_path, ["unet", "shpm", "cldice"], [0, 1, 2], [0], steps={"unet": 100, "shpm": 100, "cldice": 100})
    assert {k: len(v) for k, v in found.items()} == {"unet": 2, "shpm": 2, "cldice": 2}
    table = summarize(found)
    assert table["cldice"]["betti_sum"]["mean"] == pytest.approx((12 + 14) / 2)  # (8+4 + 10+4) / 2
    assert table["unet"]["dice"]["std"] == pytest.approx(0.01)  # ddof 0 of 0.80, 0.82
    path = write_validation(tmp_path, ["unet", "shpm", "cldice"], [0, 1, 2], [0], "unet",
                            steps={"unet": 100, "shpm": 100, "cldice": 100})
    data = json.loads((tmp_path / "validation.json").read_text())
    assert data["choice"]["method"] == "cldice" and data["n_runs"] == {"unet": 2, "shpm": 2, "cldice": 2}
    text = path.read_text()
    assert "**cldice**" in text and "β0 + β1 error" in text
    assert write_validation(tmp_path / "empty", ["unet"], [0], [0], "unet") is None
    assert not math.isnan(data["summary"]["shpm"]["are"]["mean"])


def test_the_rule_compares_methods_on_the_baselines_folds_only(tmp_path):
    """A method with a missing fold (unfinished, or no log.jsonl) is not a candidate: its mean
    would be over other folds than the baseline's."""
    runs = {("unet", 0): _val(0.80, 10, 4, 0.3), ("unet", 1): _val(0.80, 30, 10, 0.3),
            ("partial", 0): _val(0.80, 1, 1, 0.3),                      # the easy fold only: mean 2
            ("full", 0): _val(0.80, 8, 4, 0.3), ("full", 1): _val(0.80, 20, 8, 0.3)}
    for (name, k), val in runs.items():
        folder = tmp_path / "seed0" / f"fold{k}" / name
        _log(folder / "log.jsonl", [{"step": 4, "val": val}])
        (folder / "test_summary.json").write_text("{}")
    nolog = tmp_path / "seed0" / "fold1" / "partial"
    nolog.mkdir(parents=True)
    (nolog / "test_summary.json").write_text("{}")  # finished, but its log.jsonl is gone
    said = []
    write_validation(tmp_path, ["unet", "partial", "full"], [0, 1], [0], "unet", log=said.append)
    data = json.loads((tmp_path / "validation.json").read_text())
    assert data["choice"]["method"] == "full"  # 20 vs unet's 27; 'partial' (2) is not compared
    assert "partial" not in data["choice"]["eligible"]
    assert "seed 0 fold 1" in data["choice"]["incomplete"]["partial"]
    assert said == ["validation: partial left out of the choice: no validation scores for seed 0 fold 1 "
                    "(unfinished run or no log.jsonl)"]
    assert "Not compared" in (tmp_path / "validation.md").read_text()

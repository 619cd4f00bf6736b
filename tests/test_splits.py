"""k-fold splits: partitions, validation carved from training folds, contiguous blocks, splits.json."""

from __future__ import annotations

import json

import pytest

from toposeg.data import make_synthetic
from toposeg.data.splits import get_fold, load_or_create_splits, make_folds, read_splits, select

IDS = [f"{i:02d}" for i in range(20)]


@pytest.mark.parametrize("contiguous", [False, True])
def test_folds_partition_ids(contiguous):
    folds = make_folds(IDS, 5, seed=1, contiguous=contiguous)
    assert len(folds) == 5
    assert sorted(i for f in folds for i in f["test"]) == IDS  # every case tested exactly once
    for f in folds:
        assert len(f["test"]) == 4 and len(f["val"]) == 3 and len(f["train"]) == 13  # round(0.2 * 16) = 3
        assert set(f["train"]) | set(f["val"]) | set(f["test"]) == set(IDS)
        assert not set(f["val"]) & set(f["test"]) and not set(f["train"]) & set(f["val"])


def test_contiguous_blocks_for_serial_sections():
    folds = make_folds(IDS, 5, contiguous=True)
    assert [f["test"] for f in folds] == [IDS[i:i + 4] for i in range(0, 20, 4)]
    for f in folds:
        nums = [int(i) for i in f["val"]]
        assert nums == list(range(nums[0], nums[0] + len(nums)))  # one contiguous run
        first_test = int(f["test"][0])
        assert all(abs(v - t) > 1 for v in nums for t in range(first_test, first_test + 4))  # not adjacent to test


def test_random_folds_are_seeded():
    assert make_folds(IDS, 5, seed=3) == make_folds(IDS, 5, seed=3)
    assert make_folds(IDS, 5, seed=3) != make_folds(IDS, 5, seed=4)
    assert [f["test"] for f in make_folds(IDS, 5, seed=3)] != [IDS[i:i + 4] for i in range(0, 20, 4)]


def test_no_validation_split():
    f = make_folds(IDS, 4, val_fraction=0.0)[0]
    assert f["val"] == [] and len(f["train"]) == 15


def test_written_once_and_reused(tmp_path):
    path = tmp_path / "splits.json"
    folds = load_or_create_splits(path, IDS, 5, seed=2)
    stamp = path.stat().st_mtime_ns
    again = load_or_create_splits(path, list(reversed(IDS)), 5, seed=2)
    assert again == folds and path.stat().st_mtime_ns == stamp
    data = json.loads(path.read_text())
    assert data["k"] == 5 and data["seed"] == 2 and sorted(data["ids"]) == IDS


def test_mismatching_file_is_an_error(tmp_path):
    path = tmp_path / "splits.json"
    load_or_create_splits(path, IDS, 5)
    with pytest.raises(ValueError, match=r"does not match the cases: 1 case id\(s\) not in the file \['20'\], 1 id\(s\) in the file but not among the cases \['00'\]"):
        load_or_create_splits(path, IDS[1:] + ["20"], 5)
    with pytest.raises(ValueError, match=r"different parameters .*'k': \(5, 4\)"):
        load_or_create_splits(path, IDS, 4)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid splits file"):
        read_splits(path, IDS)
    data = {"ids": IDS, "folds": [{"train": IDS[4:], "val": [], "test": IDS[:3]}]}
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="do not partition"):
        read_splits(path, IDS)


def test_fold_out_of_range():
    folds = make_folds(IDS, 5)
    assert get_fold(folds, 4) == folds[4]
    for bad in (5, -1, "0", True):
        with pytest.raises(ValueError, match=r"fold must be an int in \[0, 4\]"):
            get_fold(folds, bad)


def test_bad_arguments():
    with pytest.raises(ValueError, match="k=5 folds need at least 5 cases, got 3"):
        make_folds(IDS[:3], 5)
    with pytest.raises(ValueError, match="k must be an int >= 2, got 1"):
        make_folds(IDS, 1)
    with pytest.raises(ValueError, match=r"case ids must be unique, duplicated: \['00'\]"):
        make_folds(IDS + ["00"], 5)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        make_folds(IDS, 5, val_fraction=1.0)


def test_select_cases_by_id():
    cases = make_synthetic("vessels2d", 5, size=32)
    fold = make_folds([c.id for c in cases], 5, seed=0)[0]
    assert [c.id for c in select(cases, fold["test"])] == fold["test"]
    with pytest.raises(ValueError, match="ids not among the cases"):
        select(cases, ["nope"])

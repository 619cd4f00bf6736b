"""k-fold splits: partitions, validation carved from training folds, contiguous blocks, splits.json."""

from __future__ import annotations

import json

import pytest

import numpy as np

from toposeg.data import make_synthetic, open_dataset
from toposeg.data.splits import get_fold, load_or_create_splits, make_folds, read_splits, select, serial_sections

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


def _neighbours_in_training(fold, z_of):
    """Test sections whose neighbour (z - 1 or z + 1 in the same volume) is a training section."""
    train = {z_of(i) for i in fold["train"]}
    return [i for i in fold["test"] if any((z_of(i)[0], z_of(i)[1] + d) in train for d in (-1, 1))]


def test_contiguous_blocks_for_serial_sections():
    # (changed with splits version 2: the validation sections now sit right next to the test block,
    # as a buffer, instead of at the far end of the next block, where a training section touched
    # each end of the test block)
    folds = make_folds(IDS, 5, contiguous=True)
    assert [f["test"] for f in folds] == [IDS[i:i + 4] for i in range(0, 20, 4)]
    assert folds[0]["val"] == ["04", "05", "06"]            # block at the start: all after it
    assert folds[2]["val"] == ["07", "12", "13"]            # b, a-1, b+1 around test 08-11
    assert folds[4]["val"] == ["13", "14", "15"]            # block at the end: all before it
    for f in folds:
        assert _neighbours_in_training(f, lambda i: (0, int(i))) == []


def _cremi_file(path, n_sections=125, size=24):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["volumes/raw"] = rng.integers(0, 255, (n_sections, size, size), dtype=np.uint8)
        ids = np.zeros((n_sections, size, size), dtype=np.uint64)
        ids[:, :, : size // 2], ids[:, :, size // 2:] = 1, 2
        f["volumes/labels/neuron_ids"] = ids
    return path


def test_cremi_gets_contiguous_folds_by_default(tmp_path):
    cases = open_dataset("cremi", _cremi_file(tmp_path / "sample_A.hdf"))
    ids = list(cases.ids)
    assert serial_sections("cremi", cases) and serial_sections("isbi2012")
    assert not serial_sections("vessels2d") and not serial_sections("folder") and not serial_sections("imagecas")

    def z_of(case_id):  # the section index from the id "<file stem>_<z:03d>", independently of toposeg
        stem, z = case_id.rsplit("_", 1)
        return stem, int(z)

    shuffled = make_folds(ids, 5, seed=0, contiguous=False)[0]
    assert len(_neighbours_in_training(shuffled, z_of)) > 15  # what shuffling did to CREMI (issue: 22 of 25)
    default = make_folds(ids, 5, seed=0, contiguous=serial_sections("cremi", cases))
    assert len(default[0]["test"]) == 25
    for fold in default:
        assert _neighbours_in_training(fold, z_of) == []


def test_a_loader_that_knows_overrides_the_kind_table():
    class Cases(list):
        serial_sections = False

    assert serial_sections("cremi", Cases()) is False


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
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "version": 1}))  # written by toposeg < 0.2
    with pytest.raises(ValueError, match=r"different parameters .*'version': \(1, 2\)"):
        load_or_create_splits(path, IDS, 5)
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

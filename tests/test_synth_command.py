"""`toposeg synth`: writes the folder format, readable by open_dataset("folder")."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from toposeg.cli import main
from toposeg.data import open_dataset
from toposeg.data.synthetic import synthetic_case


def _betti_gudhi(mask):
    gudhi = pytest.importorskip("gudhi")
    cc = gudhi.CubicalComplex(top_dimensional_cells=np.where(np.pad(mask, 1), 0.0, 1.0))
    cc.compute_persistence()
    b = list(cc.persistent_betti_numbers(0.0, 0.0)) + [0, 0, 0]
    return b[: mask.ndim]


@pytest.mark.parametrize("kind", ["membranes2d", "roads2d"])
def test_synth_2d_roundtrip(tmp_path, kind, capsys):
    out = tmp_path / "ds"
    assert main(["synth", kind, "--n", "3", "--size", "48", "--seed", "4", "--out", str(out)]) == 0
    assert "wrote 3" in capsys.readouterr().out
    assert (out / "preview.png").stat().st_size > 1000
    ds = open_dataset("folder", out)
    assert ds.ids == [f"{kind}_{i:04d}" for i in range(3)]
    with open(out / "betti.csv") as f:
        rows = list(csv.DictReader(f))
    for case, row in zip(ds, rows):
        ref = synthetic_case(kind, int(case.id[-4:]), size=48, seed=4)
        np.testing.assert_array_equal(case.label, ref.label)
        assert case.image.shape == ref.image.shape
        assert [int(row["betti0"]), int(row["betti1"])] == _betti_gudhi(case.label)


def test_synth_3d_nifti(tmp_path):
    out = tmp_path / "v"
    assert main(["synth", "vessels3d", "--n", "1", "--size", "36x40x44", "--out", str(out)]) == 0
    case = open_dataset("folder", out)[0]
    assert case.image.shape == (1, 36, 40, 44)
    assert (out / "image" / "vessels3d_0000.nii.gz").is_file()
    with open(out / "betti.csv") as f:
        row = next(csv.DictReader(f))
    assert [int(row[f"betti{k}"]) for k in range(3)] == _betti_gudhi(case.label)


def test_synth_errors(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["synth", "vessels2d", "--n", "1", "--size", "32", "--out", str(out)]) == 0
    assert main(["synth", "vessels2d", "--n", "1", "--size", "32", "--out", str(out)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert main(["synth", "vessels2d", "--n", "1", "--size", "32", "--out", str(out), "--overwrite"]) == 0
    assert main(["synth", "vessels2d", "--n", "0", "--out", str(tmp_path / "y")]) == 2
    assert "--n must be >= 1, got 0" in capsys.readouterr().err
    assert main(["synth", "vessels2d", "--size", "16", "--out", str(tmp_path / "z")]) == 2
    assert "every side must be >= 32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "blobs", "--out", str(tmp_path / "w")])
    assert "invalid choice: 'blobs'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["synth", "vessels2d", "--size", "big"])
    assert "size must be an int or DxHxW" in capsys.readouterr().err

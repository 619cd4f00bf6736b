"""Bad inputs found by an attack pass on the CLI: each is refused with one line that names what
was received (regression tests of the defects, one kind per test)."""

from __future__ import annotations

import numpy as np
import pytest

from toposeg.cli import main
from toposeg.io import write_array


def _mask():
    m = np.zeros((24, 24), np.uint8)
    m[4:20, 10:12] = 255
    return m


def _error(capsys, command: str) -> str:
    """The one stderr line of a refused command (no traceback)."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and "%|" not in ln]  # progress bars aside
    assert len(lines) == 1 and lines[0].startswith(f"toposeg {command}: error: "), err
    return lines[0]


@pytest.fixture
def folders(tmp_path):
    for name in ("pred", "gt"):
        write_array(tmp_path / name / "a.png", _mask())
    return tmp_path


# ---------------------------------------------------------------- 1. output inside an input


@pytest.mark.parametrize("out, flag, how", [
    ("gt/results", "--gt", "lies inside the --gt folder"),
    ("gt", "--gt", "is the --gt folder"),
    ("pred/", "--pred", "is the --pred folder"),
    ("pred/a/b", "--pred", "lies inside the --pred folder"),
])
def test_evaluate_refuses_output_inside_an_input_folder(folders, capsys, monkeypatch, out, flag, how):
    monkeypatch.chdir(folders)
    before = {p: p.read_bytes() for p in folders.rglob("*") if p.is_file()}
    assert main(["evaluate", "--pred", "pred", "--gt", "gt", "--out", out, "--overwrite", "--no-progress"]) == 2
    line = _error(capsys, "evaluate")
    assert f"--out {out.rstrip('/')} {how}" in line and "outside" in line
    after = {p: p.read_bytes() for p in folders.rglob("*") if p.is_file()}
    assert after == before and not (folders / "gt" / "results").exists()  # nothing written


def test_evaluate_nnunet_refuses_output_inside_an_input_folder(tmp_path, capsys):
    label = np.zeros((16, 16), np.uint8)
    label[4:12, 4:6] = 1
    for name in ("pred", "gt"):
        write_array(tmp_path / name / "a.png", label)
    out = tmp_path / "pred" / "eval"
    assert main(["evaluate", "--nnunet", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--out", str(out)]) == 2
    assert f"--out {out} lies inside the --pred folder" in _error(capsys, "evaluate")
    assert not out.exists()


def test_evaluate_output_next_to_the_inputs_is_fine(folders, capsys):
    assert main(["evaluate", "--pred", str(folders / "pred"), "--gt", str(folders / "gt"),
                 "--out", str(folders / "eval"), "--no-progress"]) == 0
    assert (folders / "eval" / "summary.json").is_file()


def test_mine_refuses_output_that_is_an_input_file(tmp_path, capsys):
    write_array(tmp_path / "label.png", _mask())
    write_array(tmp_path / "image.npy", np.random.default_rng(0).random((24, 24)).astype(np.float32))
    write_array(tmp_path / "pred.npy", (_mask() > 0).astype(np.float32))
    before = (tmp_path / "label.png").read_bytes()
    assert main(["mine", "--image", str(tmp_path / "image.npy"), "--label", str(tmp_path / "label.png"),
                 "--prediction", str(tmp_path / "pred.npy"), "--out", str(tmp_path / "label.png"),
                 "--overwrite"]) == 2
    assert f"--out {tmp_path / 'label.png'} is the --label file; it would be overwritten" in _error(capsys, "mine")
    assert (tmp_path / "label.png").read_bytes() == before


def test_graph_refuses_output_folder_that_would_replace_an_input(tmp_path, capsys):
    write_array(tmp_path / "gt.npy", _mask() > 0)
    write_array(tmp_path / "routes.png", _mask())  # an --image named like the figure graph writes
    before = (tmp_path / "routes.png").read_bytes()
    assert main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "gt.npy"),
                 "--image", str(tmp_path / "routes.png"), "--out", str(tmp_path), "--overwrite"]) == 2
    line = _error(capsys, "graph")
    assert f"--image {tmp_path / 'routes.png'} is in it and has the name of an output (routes.png)" in line
    assert (tmp_path / "routes.png").read_bytes() == before


# ---------------------------------------------------------------- 2, 5, 6. config files and --set


def test_train_refuses_an_empty_or_binary_config_in_one_line(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert main(["train", str(tmp_path / "empty.yaml"), "--print-config"]) == 2
    line = _error(capsys, "train")
    assert line == (f"toposeg train: error: {tmp_path / 'empty.yaml'}: config file is empty (only comments and blank "
                    "lines); write {} for a config that keeps every default")  # the file named once
    write_array(tmp_path / "mask.png", _mask())
    assert main(["train", str(tmp_path / "mask.png"), "--print-config"]) == 2
    line = _error(capsys, "train")
    assert f"{tmp_path / 'mask.png'}: not a YAML/JSON text file" in line and "utf" not in line.lower()


def test_train_set_unknown_section_hints_method_params(capsys):
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "datasets" / "vessels2d.yaml"
    assert main(["train", str(config), "--set", "loss.lam=0.5", "--print-config"]) == 2
    assert _error(capsys, "train") == (
        "toposeg train: error: --set loss.lam=0.5: unknown key 'loss'; did you mean method.params.lam? "
        "(valid top-level sections: ['name', 'data', 'model', 'train', 'method', 'inference'])")

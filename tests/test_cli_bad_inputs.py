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


def _pred_and_gt(tmp_path):
    """tmp_path/pred/a.png and tmp_path/gt/a.png: the same 8x2 bar."""
    label = np.zeros((16, 16), np.uint8)
    label[4:12, 4:6] = 1
    for name in ("pred", "gt"):
        write_array(tmp_path / name / "a.png", label)


def test_evaluate_nnunet_refuses_output_inside_an_input_folder(tmp_path, capsys):
    _pred_and_gt(tmp_path)
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


# ---------------------------------------------------------------- 3. a folder where a file is expected


@pytest.mark.parametrize("command, flag", [("graph", "--gt"), ("graph", "--pred"), ("graph", "--image"),
                                           ("mine", "--label"), ("mine", "--image"), ("mine", "--prediction")])
def test_folder_given_for_a_file_names_the_flag(tmp_path, capsys, command, flag):
    write_array(tmp_path / "gt.npy", _mask() > 0)
    write_array(tmp_path / "image.npy", np.random.default_rng(0).random((24, 24)).astype(np.float32))
    (tmp_path / "folder").mkdir()
    files = {"--gt": "gt.npy", "--pred": "gt.npy", "--image": "image.npy", "--label": "gt.npy",
             "--prediction": "gt.npy", flag: "folder"}
    if command == "graph":
        args = ["graph", "--gt", files["--gt"], "--pred", files["--pred"], "--image", files["--image"], "--out", "o"]
    else:
        args = ["mine", "--image", files["--image"], "--label", files["--label"], "--prediction",
                files["--prediction"], "--out", "o.png"]
    args = [str(tmp_path / a) if a in files.values() or a in ("o", "o.png") else a for a in args]
    assert main(args) == 2
    assert _error(capsys, command) == (f"toposeg {command}: error: {flag} {tmp_path / 'folder'}: is a folder, expected "
                                       "a file (.png, .jpg, .jpeg, .tif, .tiff, .nii, .nii.gz, .npy)")


@pytest.mark.parametrize("given", ["folder", "mask.png", "empty.json", "missing.json"])
def test_evaluate_nnunet_dataset_json_that_is_not_a_json_file(tmp_path, capsys, given):
    label = np.zeros((16, 16), np.uint8)
    label[4:12, 4:6] = 1
    for name in ("pred", "gt"):
        write_array(tmp_path / name / "a.png", label)
    (tmp_path / "folder").mkdir()
    write_array(tmp_path / "mask.png", label)
    (tmp_path / "empty.json").write_text("  \n")
    expected = {"folder": "is a folder, expected a JSON file", "mask.png": "not a JSON text file (binary content",
                "empty.json": "file is empty, expected a JSON object", "missing.json": "no such file"}[given]
    assert main(["evaluate", "--nnunet", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--dataset-json", str(tmp_path / given)]) == 2
    assert f"--dataset-json {tmp_path / given}: {expected}" in _error(capsys, "evaluate")


# ---------------------------------------------------------------- 4. NaN in a probability map


def _nan_map():
    prob = np.where(_mask() > 0, 0.9, 0.1).astype(np.float32)
    prob[0, :5] = np.nan  # 5 NaN pixels, counted by hand
    return prob


def test_evaluate_threshold_names_nan_pixels(folders, capsys):
    np.save(folders / "pred" / "a.npy", _nan_map())
    (folders / "pred" / "a.png").unlink()
    assert main(["evaluate", "--pred", str(folders / "pred"), "--gt", str(folders / "gt"), "--out",
                 str(folders / "eval"), "--threshold", "0.5", "--no-progress"]) == 2
    line = _error(capsys, "evaluate")
    assert f"{folders / 'pred' / 'a.npy'}: prediction contains non-finite values (5 NaN of 576 pixels)" in line
    assert "[0, 1], got values in" not in line and not (folders / "eval").exists()


def test_graph_and_mine_name_nan_pixels(tmp_path, capsys):
    write_array(tmp_path / "gt.npy", _mask() > 0)
    write_array(tmp_path / "image.npy", np.random.default_rng(0).random((24, 24)).astype(np.float32))
    np.save(tmp_path / "prob.npy", _nan_map())
    assert main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "prob.npy"),
                 "--out", str(tmp_path / "g")]) == 2
    assert f"--pred {tmp_path / 'prob.npy'}: prediction contains non-finite values (5 NaN of 576 pixels)" in _error(capsys, "graph")
    assert main(["mine", "--image", str(tmp_path / "image.npy"), "--label", str(tmp_path / "gt.npy"),
                 "--prediction", str(tmp_path / "prob.npy"), "--out", str(tmp_path / "m.png")]) == 2
    assert f"{tmp_path / 'prob.npy'}: prediction contains non-finite values (5 NaN of 576 pixels)" in _error(capsys, "mine")


# ---------------------------------------------------------------- 10. unreadable images


def test_unreadable_image_is_wrapped_without_reader_internals(tmp_path, capsys):
    write_array(tmp_path / "image.npy", np.zeros((24, 24), np.float32))
    write_array(tmp_path / "gt.npy", _mask() > 0)
    (tmp_path / "label.png").write_bytes(b"this is not a PNG")  # SimpleITK's reader is tried by scikit-image
    assert main(["mine", "--image", str(tmp_path / "image.npy"), "--label", str(tmp_path / "label.png"),
                 "--prediction", str(tmp_path / "gt.npy"), "--out", str(tmp_path / "m.png")]) == 2
    line = _error(capsys, "mine")
    assert line.startswith(f"toposeg mine: error: --label {tmp_path / 'label.png'}: could not read file as an image: ")
    assert "sitk" not in line and ".cxx" not in line and "RuntimeError" not in line


# ---------------------------------------------------------------- 7, 9. argparse errors: one line, the right command


def _argparse_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "usage:" not in err, err  # no usage block: --help has it
    return lines[0]


@pytest.mark.parametrize("argv, expected", [
    (["evaluate", "--pred", "p", "--gt", "g", "--bogus"],
     "toposeg evaluate: error: unrecognized arguments: --bogus (see toposeg evaluate --help)"),
    (["graph", "--gt", "g", "--pred", "p", "--pairs", "3", "extra"],
     "toposeg graph: error: unrecognized arguments: extra (see toposeg graph --help)"),
    (["nnunet", "evaluate", "--pred", "p", "--gt", "g", "--bogus", "1"],
     "toposeg nnunet evaluate: error: unrecognized arguments: --bogus 1 (see toposeg nnunet evaluate --help)"),
    (["--bogus", "evaluate", "--pred", "p", "--gt", "g"],  # before the command: the top level's
     "toposeg: error: unrecognized arguments: --bogus (see toposeg --help)"),
])
def test_unknown_flag_is_reported_by_its_subcommand(capsys, argv, expected):
    assert _argparse_error(capsys, argv) == expected


@pytest.mark.parametrize("command", [["evaluate", "--pred", "p", "--gt", "g"], ["mine", "--image", "i", "--label", "l",
                                     "--prediction", "p", "--out", "o.png"], ["graph", "--gt", "g", "--pred", "p"]])
def test_bad_choice_is_one_line_listing_the_choices(capsys, command):
    line = _argparse_error(capsys, [*command, "--label-foreground", "white"])
    # argparse quotes the choices differently across Python versions
    assert line.startswith(f"toposeg {command[0]}: error: argument --label-foreground: invalid choice: 'white' ")
    assert all(name in line for name in ("nonzero", "bright", "dark"))
    assert line.endswith(f"(see toposeg {command[0]} --help)")


# ---------------------------------------------------------------- 8. unknown names and unchecked numbers


def test_error_message_keyerror_quotes_and_bare_keys():
    from toposeg.cli import error_message

    # str(KeyError("...")) adds quotes: the message itself is printed
    assert error_message(KeyError("unknown skeleton backend 'x'; valid: ['auto']")) == \
        "unknown skeleton backend 'x'; valid: ['auto']"
    assert error_message(KeyError("labels")) is None  # a bare key: a failed lookup in toposeg, shown as a bug


@pytest.mark.parametrize("extra, expected", [
    (["--backend", "bogus"], "--backend: unknown skeleton backend 'bogus'; valid: ['auto', 'torch', 'skimage']"),
    (["--threshold", "1.5"], "--threshold must be a number in (0, 1), got 1.5"),
])
def test_mine_names_the_flag_of_a_bad_value(tmp_path, capsys, extra, expected):
    write_array(tmp_path / "gt.npy", _mask() > 0)
    write_array(tmp_path / "image.npy", np.zeros((24, 24), np.float32))
    assert main(["mine", "--image", str(tmp_path / "image.npy"), "--label", str(tmp_path / "gt.npy"),
                 "--prediction", str(tmp_path / "gt.npy"), "--out", str(tmp_path / "m.png"), *extra]) == 2
    assert _error(capsys, "mine") == f"toposeg mine: error: {expected}"
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("extra, expected", [
    (["--routes", "-1"], "--routes must be >= 0 (routes drawn in the figure), got -1"),  # drew all but one before
    (["--threshold", "2"], "--threshold must be a number in (0, 1), got 2.0"),
    (["--snap", "nan"], "--snap must be a finite number of pixels >= 0, got nan"),
    (["--min-branch", "-3"], "--min-branch must be a finite number of pixels >= 0, got -3.0"),
])
def test_graph_refuses_bad_numbers_naming_the_flag(tmp_path, capsys, extra, expected):
    write_array(tmp_path / "gt.npy", _mask() > 0)
    assert main(["graph", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "gt.npy"),
                 "--out", str(tmp_path / "g"), *extra]) == 2
    assert _error(capsys, "graph") == f"toposeg graph: error: {expected}"
    assert not (tmp_path / "g").exists()


def test_mine_refuses_an_image_with_nan(tmp_path, capsys):
    image = np.zeros((24, 24), np.float32)
    image[3, 3] = np.nan  # one NaN pixel: through a network it makes the whole probability map NaN
    write_array(tmp_path / "image.npy", image)
    write_array(tmp_path / "gt.npy", _mask() > 0)
    assert main(["mine", "--image", str(tmp_path / "image.npy"), "--label", str(tmp_path / "gt.npy"),
                 "--prediction", str(tmp_path / "gt.npy"), "--out", str(tmp_path / "m.png")]) == 2
    assert _error(capsys, "mine") == (f"toposeg mine: error: --image {tmp_path / 'image.npy'}: image contains non-finite "
                                      "values (1 NaN of 576 pixels); expected finite intensities (a NaN spreads through the network)")


def test_nested_command_errors_name_the_nested_command(tmp_path, capsys):
    _pred_and_gt(tmp_path)
    out = tmp_path / "gt" / "eval"
    assert main(["nnunet", "evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--out", str(out)]) == 2
    assert _error(capsys, "nnunet evaluate").startswith(f"toposeg nnunet evaluate: error: --out {out} lies inside")

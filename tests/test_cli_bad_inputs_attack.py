"""Bad inputs found by a new-user attack on the CLI (second pass): each is refused before any work
with one line that names the flag and what was received (regression tests, one defect per test)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from test_cli_bad_inputs import _error, _pred_and_gt
from test_cli_bad_inputs_paths import CONFIGS, _checkpoint, _snapshot, no_work  # noqa: F401 (fixture)
from toposeg.cli import main
from toposeg.io import write_array


@pytest.fixture
def dataset(tmp_path):
    """A two-case folder dataset under tmp_path/nn/Dataset001_X/src (image/ and label/)."""
    root = tmp_path / "nn" / "Dataset001_X" / "src"
    for cid in ("a", "b"):
        write_array(root / "image" / f"{cid}.png", np.full((16, 16), 7, np.uint8))
        label = np.zeros((16, 16), np.uint8)
        label[4:12, 6:8] = 1
        write_array(root / "label" / f"{cid}.png", label)
    return root


# ---------------------------------------------------------------- 1. --overwrite never deletes an input


@pytest.mark.parametrize("overwrite", [True, False])
@pytest.mark.parametrize("root_is_out", [False, True])
def test_nnunet_convert_refuses_a_data_root_inside_out(tmp_path, dataset, capsys, overwrite, root_is_out):
    out = tmp_path / "nn" / "Dataset001_X"
    data_root = out if root_is_out else dataset
    before = _snapshot(tmp_path)
    argv = ["nnunet", "convert", "--kind", "folder", "--data-root", str(data_root), "--out", str(out)]
    assert main(argv + (["--overwrite"] if overwrite else [])) == 2
    line = _error(capsys, "nnunet convert")
    how = "is" if root_is_out else "lies inside"
    if root_is_out:  # out == data root is already refused as "--out is the --data-root folder"
        assert f"--out {out} is the --data-root folder" in line
    else:
        assert line == (f"toposeg nnunet convert: error: --data-root {data_root} {how} --out {out}; convert replaces "
                        "the whole output folder (--overwrite would delete the dataset): choose an output folder "
                        "outside the dataset")
    assert _snapshot(tmp_path) == before  # the two source cases (4 files) are still there
    assert len([p for p in dataset.rglob("*") if p.is_file()]) == 4


def test_nnunet_convert_refuses_an_out_link_before_any_work(tmp_path, dataset, capsys, monkeypatch):
    import toposeg.data

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "keep.txt").write_text("x")
    link = tmp_path / "Dataset002_Y"
    link.symlink_to(tmp_path / "real")
    monkeypatch.setattr(toposeg.data, "open_dataset", lambda *a, **k: pytest.fail("the dataset was read"))
    assert main(["nnunet", "convert", "--kind", "folder", "--data-root", str(dataset), "--out", str(link),
                 "--overwrite"]) == 2
    assert _error(capsys, "nnunet convert") == (
        f"toposeg nnunet convert: error: --out {link} is a symbolic link (to {tmp_path / 'real'}); convert replaces "
        "the whole output folder: give the real folder, not a link to it")
    assert link.is_symlink() and (tmp_path / "real" / "keep.txt").read_text() == "x"


def test_nnunet_convert_overwrite_replaces_the_whole_folder(tmp_path, dataset):
    """Documented in docs/nnunet.md: a file convert does not write is gone after --overwrite."""
    out = tmp_path / "raw" / "Dataset003_Z"
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    assert main(["nnunet", "convert", "--kind", "folder", "--data-root", str(dataset), "--out", str(out),
                 "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "imagesTr", "labelsTr"]


@pytest.mark.parametrize("inside", ["", "sub"])
def test_evaluate_refuses_an_input_folder_with_an_output_name_inside_out(tmp_path, capsys, inside):
    """--overwrite replaces OUT/summary.json whole; a --gt folder there (or inside it) would be deleted."""
    _pred_and_gt(tmp_path)
    gt = tmp_path / "ev" / "summary.json" / inside
    gt.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp_path / "gt", gt)
    before = _snapshot(tmp_path)
    out = tmp_path / "ev"
    assert main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(gt), "--out", str(out), "--overwrite",
                 "--no-progress"]) == 2
    line = _error(capsys, "evaluate")
    if inside:
        assert line.endswith(f"--out {out}: --gt {gt} lies inside {out / 'summary.json'}, an output this command "
                             "writes (replaced whole); it would be deleted: choose another folder")
    else:
        assert line.endswith(f"--out {out}: --gt {gt} is in it and has the name of an output (summary.json); it "
                             "would be overwritten: choose another folder")
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- 3. --out under a file, before any work


def _commands(tmp_path: Path) -> dict:
    """argv (without --out) of each output command, with inputs that need not exist: the output
    check runs before they are read."""
    t = str(tmp_path)
    return {
        "evaluate": ["evaluate", "--pred", f"{t}/pred", "--gt", f"{t}/gt", "--no-progress"],
        "graph": ["graph", "--gt", f"{t}/gt/a.png", "--pred", f"{t}/pred/a.png"],
        "predict": ["predict", "--checkpoint", f"{t}/m.pt", "--input", f"{t}/pred/a.png", "--no-progress"],
        "render": ["render", "--gt", f"{t}/gt/a.png", "--pred", f"{t}/pred/a.png"],
        "synth": ["synth", "vessels2d", "--n", "1", "--size", "32"],
        "mine": ["mine", "--image", f"{t}/gt/a.png", "--label", f"{t}/gt/a.png", "--prediction", f"{t}/pred/a.png"],
        "nnunet convert": ["nnunet", "convert", "--kind", "vessels2d", "--n", "1", "--size", "32"],
    }


@pytest.mark.parametrize("command", ["evaluate", "graph", "predict", "render", "synth", "mine", "nnunet convert"])
def test_out_under_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch, command):
    import toposeg.inference

    _pred_and_gt(tmp_path)
    _checkpoint(tmp_path / "m.pt")
    monkeypatch.setattr(toposeg.inference, "sliding_window_predict", lambda *a, **k: pytest.fail("inference ran"))
    (tmp_path / "afile").write_text("not a folder")
    name = {"mine": "x.png", "nnunet convert": "Dataset001_X"}.get(command, "x")
    out = tmp_path / "afile" / name
    before = _snapshot(tmp_path)
    assert main(_commands(tmp_path)[command] + ["--out", str(out)]) == 2
    assert _error(capsys, command) == (f"toposeg {command}: error: --out {out} lies under {tmp_path / 'afile'}, "
                                       "which is a file; give a folder")
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- 4. a symbolic link loop as --out


@pytest.mark.parametrize("command", ["evaluate", "graph", "predict", "render", "synth", "mine", "nnunet convert"])
def test_out_link_loop_is_one_line_naming_the_flag(tmp_path, capsys, monkeypatch, command):
    _pred_and_gt(tmp_path)
    _checkpoint(tmp_path / "m.pt")
    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    out = tmp_path / "loopA" / ({"mine": "x.png", "nnunet convert": "Dataset001_X"}.get(command, "x"))
    assert main(_commands(tmp_path)[command] + ["--out", str(out)]) == 2
    line = _error(capsys, command)
    assert line.startswith(f"toposeg {command}: error: --out {out}: symbolic link loop (")
    assert line.endswith("); give a real folder or file name")


@pytest.mark.parametrize("command", ["train", "cv"])
def test_train_and_cv_out_link_loop_is_refused(tmp_path, capsys, no_work, command):  # noqa: F811
    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    argv = ["train", str(CONFIGS / "unet.yaml")] if command == "train" else ["cv", str(CONFIGS / "*.yaml")]
    assert main(argv + ["--out", str(tmp_path / "loopA")]) == 2
    assert _error(capsys, command).startswith(f"toposeg {command}: error: --out {tmp_path / 'loopA'}: symbolic "
                                              "link loop (")
    assert no_work == []


# ---------------------------------------------------------------- 8. empty names


@pytest.mark.parametrize("command", ["train", "cv"])
@pytest.mark.parametrize("flag, message", [("--out", "--out is empty; give a folder or file name"),
                                           ("--data-root", "--data-root is empty; give the dataset folder")])
def test_train_and_cv_refuse_empty_out_and_data_root(tmp_path, capsys, monkeypatch, no_work, command, flag,  # noqa: F811
                                                     message):
    monkeypatch.chdir(tmp_path)
    argv = ["train", str(CONFIGS / "unet.yaml")] if command == "train" else ["cv", str(CONFIGS / "*.yaml")]
    values = {"--out": "runs", "--data-root": "data", flag: ""}
    assert main(argv + ["--out", values["--out"], "--data-root", values["--data-root"]]) == 2
    assert _error(capsys, command) == f"toposeg {command}: error: {message}"
    assert no_work == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["evaluate", "graph", "synth"])
def test_empty_out_is_refused(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    _pred_and_gt(tmp_path)
    before = _snapshot(tmp_path)
    assert main(_commands(tmp_path)[command] + ["--out", ""]) == 2
    assert _error(capsys, command) == f"toposeg {command}: error: --out is empty; give a folder or file name"
    assert _snapshot(tmp_path) == before


# ---------------------------------------------------------------- 2. NaN/inf in dataset images


def _nan_inf_image() -> np.ndarray:
    """16x16 float32 ramp with 3 NaN and 2 +-inf written by hand."""
    image = np.arange(256, dtype=np.float32).reshape(16, 16)
    image[0, 0] = image[5, 7] = image[15, 15] = np.nan
    image[2, 3], image[9, 9] = np.inf, -np.inf
    return image


def _folder_dataset(root: Path, bad: dict) -> None:
    """Six cases c0..c5 (16x16, a vertical bar label); ``bad``: case index -> its image."""
    label = np.zeros((16, 16), np.uint8)
    label[2:14, 7:9] = 1
    for i in range(6):
        write_array(root / "image" / f"c{i}.npy", bad.get(i, np.full((16, 16), float(i), np.float32)))
        write_array(root / "label" / f"c{i}.npy", label)


def test_folder_dataset_counts_nan_and_inf_in_an_image(tmp_path):
    from toposeg.data import open_dataset

    _folder_dataset(tmp_path, {2: _nan_inf_image()})
    cases = open_dataset("folder", tmp_path)
    assert float(cases[1].image.mean()) == 1.0  # the finite cases read as before
    with pytest.raises(ValueError) as err:
        cases[2]
    assert str(err.value) == (f"{tmp_path / 'image' / 'c2.npy'}: image contains non-finite values (3 NaN and 2 "
                              "infinite of 256 pixels); expected finite intensities (re-save the image without "
                              "NaN/inf)")


def test_case_without_a_file_names_its_id():
    from toposeg.data import Case

    image = np.zeros((1, 2, 3, 4), np.float32)
    image[0, 1, 2, 3] = np.inf
    with pytest.raises(ValueError, match=r"^case 'v7': image contains non-finite values \(1 infinite of 24 voxels\)"):
        Case(id="v7", image=image, label=np.zeros((2, 3, 4), bool))


def test_train_refuses_a_nan_image_before_any_training(tmp_path, capsys, monkeypatch):
    import toposeg.engine.protocol as protocol

    monkeypatch.setattr(protocol, "run_stage", lambda *a, **k: pytest.fail("training started"))
    _folder_dataset(tmp_path / "data", {5: _nan_inf_image()})  # one bad case, in whichever split: read first
    config = tmp_path / "tiny.yaml"
    config.write_text(f"base: {CONFIGS.parents[0] / 'base.yaml'}\nname: tiny\ndata:\n  kind: folder\n"
                      "  patch: [16, 16]\n  batch_size: 1\nmethod:\n  loss: bce_dice\n  params: {}\n"
                      "train:\n  pretrain: {steps: 1}\n  finetune: {steps: 1}\n")
    assert main(["train", str(config), "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "runs"),
                 "--no-progress"]) == 2
    assert _error(capsys, "train") == (
        f"toposeg train: error: {tmp_path / 'data' / 'image' / 'c5.npy'}: image contains non-finite values (3 NaN "
        "and 2 infinite of 256 pixels); expected finite intensities (re-save the image without NaN/inf)")
    assert not list((tmp_path / "runs").rglob("*.pt"))


# ---------------------------------------------------------------- 7. NaN and inf counted together


def test_check_finite_counts_nan_and_inf_together():
    from toposeg.io import check_finite

    arr = np.zeros((32, 32), np.float32)
    arr[0, :3] = np.nan
    arr[1, :2] = [np.inf, -np.inf]
    with pytest.raises(ValueError) as err:
        check_finite(arr, "p.npy")
    assert str(err.value) == ("p.npy: prediction contains non-finite values (3 NaN and 2 infinite of 1024 pixels); "
                              "expected probabilities in [0, 1] everywhere")
    assert check_finite(np.ones(3, np.uint8), "x") is not None  # integers are always finite


# ---------------------------------------------------------------- 5. huge finite intensities


def test_normalize_huge_finite_intensities_in_float64():
    from toposeg.data.transforms import normalize

    assert np.array_equal(normalize(np.full((1, 8, 8), 1e38, np.float32)), np.zeros((1, 8, 8), np.float32))
    two = np.full((1, 4, 4), 3e38, np.float32)
    two[0, :2] = -3e38  # half -3e38, half 3e38: mean 0, std 3e38 -> z = -1 / +1; min-max -> 0 / 1
    expected = np.where(two > 0, 1.0, -1.0).astype(np.float32)
    assert np.allclose(normalize(two), expected, atol=1e-6)
    assert np.allclose(normalize(two, "minmax"), (expected + 1) / 2, atol=1e-6)


def test_predict_on_a_huge_constant_image_gives_finite_probabilities(tmp_path, capsys):
    """z-scoring makes any constant image 0: 1e38 everywhere must predict what 0 everywhere does."""
    _checkpoint(tmp_path / "m.pt")
    for name, value in (("big", 1e38), ("zero", 0.0)):
        write_array(tmp_path / "in" / f"{name}.npy", np.full((32, 32), value, np.float32))
    assert main(["predict", "--checkpoint", str(tmp_path / "m.pt"), "--input", str(tmp_path / "in"),
                 "--out", str(tmp_path / "out"), "--window", "32", "--no-progress"]) == 0
    big, zero = (np.load(tmp_path / "out" / f"{n}_prob.npy") for n in ("big", "zero"))
    assert np.isfinite(big).all() and np.array_equal(big, zero)


def test_predict_refuses_non_finite_probabilities_before_writing(tmp_path, capsys, monkeypatch):
    import torch

    import toposeg.inference

    _checkpoint(tmp_path / "m.pt")
    write_array(tmp_path / "a.npy", np.zeros((8, 8), np.float32))
    prob = torch.full((1, 8, 8), 0.5)
    prob[0, 0, :2] = float("nan")
    monkeypatch.setattr(toposeg.inference, "sliding_window_predict", lambda *a, **k: prob)
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tmp_path / "m.pt"), "--input", str(tmp_path / "a.npy"),
                 "--out", str(out), "--window", "8", "--no-progress"]) == 2
    assert _error(capsys, "predict") == (
        f"toposeg predict: error: {tmp_path / 'a.npy'}: probability map of the model contains non-finite values "
        "(2 NaN of 64 pixels); expected finite probabilities (the network overflowed on this image: check its "
        "intensities and --normalize)")
    assert not out.exists()


# ---------------------------------------------------------------- 6. complex images


def test_predict_refuses_a_complex_image(tmp_path, capsys):
    _checkpoint(tmp_path / "m.pt")
    np.save(tmp_path / "c.npy", np.full((8, 8), 1 + 2j, np.complex64))
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(tmp_path / "m.pt"), "--input", str(tmp_path / "c.npy"),
                 "--out", str(out), "--no-progress"]) == 2
    assert _error(capsys, "predict") == (f"toposeg predict: error: {tmp_path / 'c.npy'}: image has dtype complex64; "
                                         "expected real intensities (bool, integer or float)")
    assert not out.exists()


def test_folder_dataset_and_mine_refuse_a_complex_image(tmp_path, capsys):
    from toposeg.data import open_dataset

    _folder_dataset(tmp_path, {1: np.full((16, 16), 3 - 1j, np.complex128)})
    with pytest.raises(TypeError) as err:
        open_dataset("folder", tmp_path)[1]
    assert str(err.value) == (f"{tmp_path / 'image' / 'c1.npy'}: image has dtype complex128; expected real "
                              "intensities (bool, integer or float)")
    image, label = tmp_path / "image" / "c1.npy", tmp_path / "label" / "c1.npy"
    assert main(["mine", "--image", str(image), "--label", str(label), "--prediction", str(label),
                 "--out", str(tmp_path / "m.png")]) == 2
    assert _error(capsys, "mine") == (f"toposeg mine: error: --image {image}: image has dtype complex128; expected "
                                      "real intensities (bool, integer or float)")


def test_persistence_and_membranes_count_nan_and_inf_together():
    from toposeg.data.labels import membranes_from_ids
    from toposeg.topology.persistence import persistence_pairs

    values = np.zeros((4, 5))
    values[0, 0] = values[3, 4] = np.nan
    values[1, 2] = -np.inf  # 2 NaN and 1 infinite of 20, by hand
    with pytest.raises(ValueError, match=r"^values contains NaN or infinite values \(2 NaN and 1 infinite of 20; "):
        persistence_pairs(values)
    with pytest.raises(ValueError, match=r"^ids hold non-finite values \(2 NaN and 1 infinite of 20 values\)"):
        membranes_from_ids(values, 1)


@pytest.mark.parametrize("command", ["demo", "bench"])
def test_demo_and_bench_check_out_before_any_work(tmp_path, capsys, monkeypatch, command):
    import toposeg.benchmark
    import toposeg.engine.demo

    monkeypatch.setattr(toposeg.engine.demo, "run_demo", lambda *a, **k: pytest.fail("the demo ran"))
    monkeypatch.setattr(toposeg.benchmark, "run_benchmark", lambda *a, **k: pytest.fail("the benchmark ran"))
    (tmp_path / "afile").write_text("x")
    (tmp_path / "loopA").symlink_to(tmp_path / "loopB")
    (tmp_path / "loopB").symlink_to(tmp_path / "loopA")
    for out, message in (("", "--out is empty; give a folder or file name"),
                         (str(tmp_path / "afile" / "x"),
                          f"--out {tmp_path / 'afile' / 'x'} lies under {tmp_path / 'afile'}, which is a file; "
                          "give a folder")):
        assert main([command, "--out", out]) == 2
        assert _error(capsys, command) == f"toposeg {command}: error: {message}"
    assert main([command, "--out", str(tmp_path / "loopA")]) == 2
    assert f"--out {tmp_path / 'loopA'}: symbolic link loop (" in _error(capsys, command)

"""`toposeg nnunet convert` and `toposeg nnunet evaluate` (nnunetv2 only for the reader checks).

References are independent of toposeg: files are read back with tifffile / nibabel / skimage,
Dice is counted by hand, Betti-0 errors by scipy.ndimage.label (8-connectivity in 2D).
"""

import json

import numpy as np
import pytest
from scipy import ndimage

from toposeg.cli import main
from toposeg.data import Case, open_dataset
from toposeg.nnunet.convert import convert_dataset, dataset_folder
from toposeg.nnunet.evaluate import evaluate_folder


def test_convert_synthetic_2d_float_images_go_to_tif_losslessly(tmp_path):
    import tifffile

    cases = open_dataset("vessels2d", n=3, size=40)
    out = convert_dataset(cases, tmp_path / "Dataset501_V", label_name="vessel")
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "vessel": 1}
    assert meta["channel_names"] == {"0": "image"} and meta["numTraining"] == 3 and meta["file_ending"] == ".tif"
    for case in cases:
        img = tifffile.imread(out / "imagesTr" / f"{case.id}_0000.tif")
        lab = tifffile.imread(out / "labelsTr" / f"{case.id}.tif")
        assert img.dtype == np.float32 and np.array_equal(img, case.image[0])
        assert lab.dtype == np.uint8 and set(np.unique(lab)) <= {0, 1} and np.array_equal(lab.astype(bool), case.label)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_convert_8bit_images_to_png_with_labels_0_1_and_channels_split(tmp_path):
    from skimage.io import imread

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (3, 16, 20)).astype(np.float32)
    lab = rng.random((16, 20)) > 0.5
    out = convert_dataset([Case(id="a", image=img, label=lab)], tmp_path / "Dataset002_Rgb")
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["file_ending"] == ".png"
    assert meta["channel_names"] == {"0": "channel_0", "1": "channel_1", "2": "channel_2"}
    for c in range(3):
        assert np.array_equal(imread(out / "imagesTr" / f"a_{c:04d}.png"), img[c].astype(np.uint8))
    assert np.array_equal(imread(out / "labelsTr" / "a.png"), lab.astype(np.uint8))  # 0/1, not 0/255


def test_convert_3d_to_nifti(tmp_path):
    import nibabel as nib

    cases = open_dataset("vessels3d", n=1, size=(32, 32, 32))
    out = convert_dataset(cases, tmp_path / "Dataset003_V3")
    assert json.loads((out / "dataset.json").read_text())["file_ending"] == ".nii.gz"
    case = cases[0]
    img = np.asarray(nib.load(str(out / "imagesTr" / f"{case.id}_0000.nii.gz")).dataobj)
    lab = np.asarray(nib.load(str(out / "labelsTr" / f"{case.id}.nii.gz")).dataobj)
    assert np.array_equal(img, case.image[0]) and np.array_equal(lab.astype(bool), case.label)


@pytest.mark.parametrize("ending,kind,size", [(".tif", "vessels2d", 32), (".png", None, None)])
def test_nnunet_natural_image_reader_reads_converted_2d(tmp_path, ending, kind, size):
    pytest.importorskip("nnunetv2", reason="nnunetv2 not installed (pip install -e '.[nnunet]')")
    from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO

    if kind:
        case = open_dataset(kind, n=1, size=size)[0]
    else:
        case = Case(id="c", image=np.arange(24 * 24, dtype=np.float32).reshape(1, 24, 24) % 256,
                    label=np.eye(24, dtype=bool))
    out = convert_dataset([case], tmp_path / "Dataset004_R")
    io = NaturalImage2DIO()
    img, _ = io.read_images([str(out / "imagesTr" / f"{case.id}_0000{ending}")])
    seg, _ = io.read_seg(str(out / "labelsTr" / f"{case.id}{ending}"))
    assert np.array_equal(img[0, 0], case.image[0]) and np.array_equal(seg[0, 0], case.label.astype(np.float32))


def test_convert_refuses_non_empty_output_and_bad_names(tmp_path):
    cases = open_dataset("vessels2d", n=1, size=32)
    out = tmp_path / "Dataset005_X"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match=r"already holds files; choose another folder or pass --overwrite"):
        convert_dataset(cases, out)
    assert (out / "keep.txt").exists()
    convert_dataset(cases, out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "dataset.json").exists()
    with pytest.raises(ValueError, match=r"is not named DatasetXXX_Name; give --id and --name"):
        dataset_folder(tmp_path / "raw")
    with pytest.raises(ValueError, match=r"dataset id must be an integer in 1\.\.999.*got 1000"):
        dataset_folder(tmp_path, 1000, "X")
    with pytest.raises(ValueError, match=r"letters, digits, '_' and '-' only, got 'a b'"):
        dataset_folder(tmp_path, 7, "a b")
    assert dataset_folder(tmp_path, 7, "Roads") == tmp_path / "Dataset007_Roads"
    with pytest.raises(ValueError, match=r"do not fit an 8-bit PNG losslessly"):
        convert_dataset(cases, tmp_path / "Dataset006_P", file_ending=".png")


def test_convert_cli_synthetic_in_one_command(tmp_path, capsys):
    rc = main(["nnunet", "convert", "--kind", "membranes2d", "--n", "2", "--size", "32", "--out", str(tmp_path),
               "--id", "9", "--name", "Mem"])
    assert rc == 0
    meta = json.loads((tmp_path / "Dataset009_Mem" / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "membrane": 1} and meta["numTraining"] == 2
    assert "nnUNetv2_plan_and_preprocess -d 9" in capsys.readouterr().out
    assert main(["nnunet", "convert", "--kind", "isbi2012", "--n", "2", "--out", str(tmp_path / "Dataset010_A")]) == 2
    assert "--n only apply to synthetic kinds" in capsys.readouterr().err


def test_trainer_dir_cli_prints_the_ext_folder(capsys):
    from toposeg.nnunet import trainer_dir

    assert main(["nnunet", "trainer-dir"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(trainer_dir())
    assert (trainer_dir() / "toposeg_nnunet_trainers.py").is_file()


# ------------------------------------------------------------------ evaluate


def _write_png(path, arr):
    from skimage.io import imsave

    path.parent.mkdir(parents=True, exist_ok=True)
    imsave(path, arr.astype(np.uint8), check_contrast=False)


def _folders(tmp_path):
    """Two classes + ignore label 3. Class 1: a line; the prediction breaks it at column 10
    (outside the ignored area) -> 2 components instead of 1. Class 2: a line broken at column
    5 *under the ignore label* -> no error. A predicted class-2 blob inside the ignored area
    is not a false positive."""
    gt = np.zeros((12, 20), np.uint8)
    gt[2, 1:19] = 1
    gt[8, 1:19] = 2
    gt[7:10, 4:7] = 3  # ignore patch over the class-2 line
    gt[0:2, 15:19] = 3
    pred = np.zeros_like(gt)
    pred[2, 1:19] = 1
    pred[2, 10] = 0  # gap in class 1
    pred[8, 1:19] = 2
    pred[8, 5] = 0  # gap in class 2, ignored
    pred[0, 16] = 2  # blob in the ignored area
    _write_png(tmp_path / "pred" / "case1.png", pred)
    _write_png(tmp_path / "gt" / "case1.png", gt)
    meta = {"labels": {"background": 0, "line": 1, "other": 2, "ignore": 3}, "file_ending": ".png",
            "channel_names": {"0": "x"}, "numTraining": 1}
    (tmp_path / "pred" / "dataset.json").write_text(json.dumps(meta))
    return gt, pred


def test_evaluate_folder_per_class_with_ignore_label(tmp_path):
    gt, pred = _folders(tmp_path)
    rows = evaluate_folder(tmp_path / "pred", tmp_path / "gt")
    assert [(r["case"], r["class"], r["label"]) for r in rows] == [("case1", "line", 1), ("case1", "other", 2)]
    line, other = rows
    # class 1: hand Dice = 2*17/(17+18); Betti-0 by scipy (8-connectivity)
    assert line["dice"] == pytest.approx(2 * 17 / (17 + 18))
    n_pred = ndimage.label(pred == 1, structure=np.ones((3, 3)))[1]
    n_gt = ndimage.label(gt == 1, structure=np.ones((3, 3)))[1]
    assert (n_pred, n_gt) == (2, 1) and line["betti0_error"] == abs(n_pred - n_gt)
    # class 2: the gap and the blob are under the ignore label -> perfect
    assert other["dice"] == 1.0 and other["betti0_error"] == 0 and other["betti1_error"] == 0
    assert other["ignored_voxels"] == int((gt == 3).sum()) == 17


def test_evaluate_folder_errors_quote_the_problem(tmp_path):
    _folders(tmp_path)
    _write_png(tmp_path / "pred" / "case2.png", np.zeros((12, 20)))
    with pytest.raises(ValueError, match=r"no ground truth for prediction\(s\) \['case2'\]"):
        evaluate_folder(tmp_path / "pred", tmp_path / "gt")
    (tmp_path / "pred" / "case2.png").unlink()
    _write_png(tmp_path / "pred" / "case1.png", np.full((12, 20), 7))
    with pytest.raises(ValueError, match=r"prediction holds label values \[7\] not in dataset.json"):
        evaluate_folder(tmp_path / "pred", tmp_path / "gt")
    with pytest.raises(FileNotFoundError, match="dataset.json not found"):
        evaluate_folder(tmp_path / "pred", tmp_path / "gt", dataset_json=tmp_path / "nope.json")


def test_evaluate_cli_writes_per_case_and_summary(tmp_path, capsys):
    _folders(tmp_path)
    out = tmp_path / "eval"
    assert main(["nnunet", "evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "line" in text and "other" in text
    summary = json.loads((out / "summary.json").read_text())
    assert [c["class"] for c in summary["per_class"]] == ["line", "other"]
    assert summary["per_class"][0]["betti0_error"] == 1.0
    assert (out / "per_case.csv").read_text().count("\n") == 3
    assert main(["nnunet", "evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--out", str(out)]) == 2
    assert "already holds files" in capsys.readouterr().err


def test_iter_class_pairs_completes_ignored_ground_truth_with_the_prediction(tmp_path):
    from toposeg.nnunet.evaluate import iter_class_pairs

    gt, pred = _folders(tmp_path)
    items = list(iter_class_pairs(tmp_path / "pred", tmp_path / "gt"))
    other = items[1]
    ign = gt == 3
    assert np.array_equal(other["ignored"], ign)
    assert np.array_equal(other["gt"][ign], (pred == 2)[ign])  # completed with the prediction
    assert np.array_equal(other["gt"][~ign], (gt == 2)[~ign])  # untouched elsewhere
    assert np.array_equal(other["pred"], pred == 2)  # the prediction is never modified

"""`toposeg render` end to end on small NPY / NIfTI volumes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toposeg.cli import main
from toposeg.io import write_array


def vessels():
    v = np.zeros((12, 32, 32), np.uint8)
    v[5:7, 15:17, 2:30] = 1
    v[5:7, 2:30, 8:10] = 1
    broken = v.copy()
    broken[:, :, 20:23] = 0
    return v, broken


@pytest.mark.parametrize("fmt", ["ply", "obj", "stl"])
def test_render_command_writes_meshes_and_panel(tmp_path, capsys, fmt):
    trimesh = pytest.importorskip("trimesh")
    gt, broken = vessels()
    write_array(tmp_path / "gt.nii.gz", gt)
    np.save(tmp_path / "unet.npy", broken)
    np.save(tmp_path / "shpm.npy", gt.astype(bool))
    out = tmp_path / "out"
    rc = main(["render", "--gt", str(tmp_path / "gt.nii.gz"), "--pred", str(tmp_path / "unet.npy"),
               "--pred", str(tmp_path / "shpm.npy"), "--name", "U-Net", "--name", "SHPM",
               "--format", fmt, "--axes", "0", "1", "--out", str(out)])
    assert rc == 0
    assert "U-Net: 2 components" in capsys.readouterr().out
    summary = json.loads((out / "render.json").read_text())["volumes"]
    assert [summary[k]["components"] for k in ("ground truth", "U-Net", "SHPM")] == [1, 2, 1]
    for key in summary:
        mesh = trimesh.load(out / summary[key]["mesh"], process=fmt == "stl")
        assert len(mesh.faces) == summary[key]["faces"] and len(mesh.vertices) == summary[key]["vertices"]
    assert summary["U-Net"]["euler_characteristic"] == 4  # two closed surfaces of genus 0
    # mesh files are named by --name (file-safe), as documented
    assert sorted(p.name for p in out.glob(f"*.{fmt}")) == [f"gt.{fmt}", f"pred1_U-Net.{fmt}", f"pred2_SHPM.{fmt}"]
    from skimage.io import imread

    assert imread(out / "panel.png").shape[:2] == (2 * 300, 3 * 300)


def test_render_command_empty_prediction_and_errors(tmp_path, capsys):
    gt, _ = vessels()
    np.save(tmp_path / "gt.npy", gt)
    np.save(tmp_path / "empty.npy", np.zeros_like(gt))
    rc = main(["render", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "empty.npy"),
               "--out", str(tmp_path / "o")])
    assert rc == 0 and "empty mask, no mesh written" in capsys.readouterr().out
    rc = main(["render", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "empty.npy"),
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "already holds files; choose another folder or pass --overwrite" in capsys.readouterr().err
    np.save(tmp_path / "flat.npy", gt[0])
    rc = main(["render", "--gt", str(tmp_path / "flat.npy"), "--pred", str(tmp_path / "flat.npy"),
               "--out", str(tmp_path / "o2")])
    assert rc == 2 and "render needs 3D masks (D, H, W), got shape (32, 32)" in capsys.readouterr().err
    rc = main(["render", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "gt.npy"),
               "--name", "a", "--name", "b", "--out", str(tmp_path / "o2")])
    assert rc == 2 and "one --name per --pred: got 2 names for 1 predictions" in capsys.readouterr().err
    np.save(tmp_path / "other.npy", gt[:, :20])
    rc = main(["render", "--gt", str(tmp_path / "gt.npy"), "--pred", str(tmp_path / "other.npy"),
               "--out", str(tmp_path / "o2")])
    assert rc == 2 and "has shape (12, 20, 32), --gt has (12, 32, 32)" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_render_file_part():
    from toposeg.commands.render import file_part

    assert file_part("U-Net + SHPM") == "U-Net_+_SHPM" and file_part("a/b") == "a_b" and file_part("..") == "pred"


def test_render_ground_truth_polarity(tmp_path, capsys):
    pytest.importorskip("trimesh")
    gt, _ = vessels()
    np.save(tmp_path / "gt_dark.npy", (1 - gt).astype(np.uint8))  # the vessels are the dark level
    np.save(tmp_path / "pred.npy", gt)
    rc = main(["render", "--gt", str(tmp_path / "gt_dark.npy"), "--pred", str(tmp_path / "pred.npy"),
               "--label-foreground", "dark", "--out", str(tmp_path / "o")])
    assert rc == 0
    summary = json.loads((tmp_path / "o" / "render.json").read_text())
    assert summary["label_foreground"] == "dark"
    assert summary["volumes"]["ground truth"]["voxels"] == int(gt.sum())

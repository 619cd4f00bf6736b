"""toposeg.reports.mesh: marching-cubes meshes, export, component panel.

References: Euler characteristic of closed surfaces (sphere 2, torus 0, two spheres 4), voxel
counts and 4/3 pi r^3 for volumes, trimesh's own volume / watertightness and file readers,
scikit-image's ``label`` for component counts, PNG sizes from matplotlib's figure geometry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from toposeg.reports.mesh import (Mesh, colour_components, component_panel, mask_to_mesh, mesh_euler_characteristic,
                                  save_mesh)


def ball(shape=(32, 32, 32), centre=(15.5, 15.5, 15.5), r=10.0) -> np.ndarray:
    z, y, x = np.indices(shape)
    return (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= r * r


def torus(R=10.0, r=4.0) -> np.ndarray:
    z, y, x = np.indices((24, 36, 36))
    return (np.hypot(y - 17.5, x - 17.5) - R) ** 2 + (z - 11.5) ** 2 <= r * r


def test_sphere_euler_characteristic_and_volume():
    b = ball()
    mesh = mask_to_mesh(b)
    assert mesh.euler_characteristic == 2
    assert mesh.volume == pytest.approx(b.sum(), rel=0.05)
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 10 ** 3, rel=0.05)
    # vertices in the mask's coordinates: the surface lies half a voxel outside the extreme voxels
    zz = np.nonzero(b.any(axis=(1, 2)))[0]
    assert mesh.vertices[:, 0].min() == pytest.approx(zz.min() - 0.5)
    assert mesh.vertices[:, 0].max() == pytest.approx(zz.max() + 0.5)


def test_ball_touching_the_border_is_closed():
    b = np.ones((6, 6, 6), bool)  # fills the volume: padding must still close the surface
    mesh = mask_to_mesh(b)
    assert mesh.euler_characteristic == 2
    assert mesh.volume == pytest.approx(216, rel=0.05)


def test_torus_two_balls_and_hollow_shell():
    assert mask_to_mesh(torus()).euler_characteristic == 0
    two = ball((24, 24, 48), (11.5, 11.5, 11.5), 6) | ball((24, 24, 48), (11.5, 11.5, 35.5), 6)
    assert mask_to_mesh(two).euler_characteristic == 4
    shell = ball(r=10) & ~ball(r=5)  # outer and inner (cavity) surfaces
    m = mask_to_mesh(shell)
    assert m.euler_characteristic == 4
    assert m.volume == pytest.approx(shell.sum(), rel=0.06)


def test_mesh_agrees_with_trimesh():
    trimesh = pytest.importorskip("trimesh")
    mesh = mask_to_mesh(ball())
    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert tm.is_watertight and tm.is_winding_consistent
    assert tm.volume == pytest.approx(mesh.volume)
    assert tm.euler_number == mesh.euler_characteristic


def test_spacing_scales_volume_and_sigma_smooths():
    b = ball()
    m1 = mask_to_mesh(b)
    m2 = mask_to_mesh(b, spacing=(2.0, 1.0, 0.5))
    assert m2.volume == pytest.approx(m1.volume * 1.0, rel=1e-9)
    m3 = mask_to_mesh(b, spacing=2.0)
    assert m3.volume == pytest.approx(m1.volume * 8, rel=1e-9)
    ms = mask_to_mesh(b, sigma=1.0)
    assert ms.euler_characteristic == 2
    assert ms.volume == pytest.approx(b.sum(), rel=0.1)


def test_euler_characteristic_of_a_tetrahedron_by_hand():
    v = np.eye(4, 3)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]])
    assert mesh_euler_characteristic(v, f) == 4 - 6 + 4


@pytest.mark.parametrize("fmt", ["ply", "obj", "stl"])
def test_export_reopens_with_same_counts(tmp_path, fmt):
    trimesh = pytest.importorskip("trimesh")
    mesh = mask_to_mesh(ball((20, 20, 20), (9.5, 9.5, 9.5), 6))
    path = save_mesh(mesh, tmp_path / f"ball.{fmt}")
    loaded = trimesh.load(path, process=fmt == "stl")  # STL stores triangles only: merge vertices
    assert len(loaded.faces) == len(mesh.faces)
    assert len(loaded.vertices) == len(mesh.vertices)
    assert loaded.volume == pytest.approx(mesh.volume, rel=1e-4)


@pytest.mark.parametrize("fmt", ["ply", "obj"])
def test_builtin_writers_reopen(tmp_path, fmt):
    trimesh = pytest.importorskip("trimesh")
    mesh = mask_to_mesh(ball((20, 20, 20), (9.5, 9.5, 9.5), 6))
    path = save_mesh(mesh, tmp_path / "x" / f"ball.{fmt}", backend="builtin")
    loaded = trimesh.load(path, process=False)
    assert loaded.vertices.shape == mesh.vertices.shape and loaded.faces.shape == mesh.faces.shape
    assert np.allclose(loaded.vertices, mesh.vertices, atol=1e-5)
    assert np.array_equal(loaded.faces, mesh.faces)


def test_mesh_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"needs a 3D mask \(D, H, W\), got shape \(8, 8\)"):
        mask_to_mesh(np.ones((8, 8), bool))
    with pytest.raises(ValueError, match=r"mask is empty .*\(4, 4, 4\)"):
        mask_to_mesh(np.zeros((4, 4, 4), bool))
    with pytest.raises(ValueError, match=r"binary.*0\.3"):
        mask_to_mesh(np.full((4, 4, 4), 0.3))
    with pytest.raises(ValueError, match=r"spacing must be .*\(1, 2\)"):
        mask_to_mesh(np.ones((4, 4, 4), bool), spacing=(1, 2))
    with pytest.raises(ValueError, match=r"sigma must be a number >= 0, got -1"):
        mask_to_mesh(np.ones((4, 4, 4), bool), sigma=-1)
    mesh = mask_to_mesh(np.ones((3, 3, 3), bool))
    with pytest.raises(ValueError, match=r"unknown mesh format 'vtk'.*\['ply', 'obj', 'stl'\]"):
        save_mesh(mesh, tmp_path / "a.vtk")
    with pytest.raises(ValueError, match=r"builtin mesh writer supports ply and obj"):
        save_mesh(mesh, tmp_path / "a.stl", backend="builtin")
    with pytest.raises(KeyError, match=r"unknown mesh backend 'vtk'"):
        save_mesh(mesh, tmp_path / "a.ply", backend="vtk")
    with pytest.raises(TypeError, match=r"must be a toposeg.reports.mesh.Mesh, got tuple"):
        save_mesh((mesh.vertices, mesh.faces), tmp_path / "a.ply")


def broken_vessel():
    v = np.zeros((12, 40, 40), bool)
    v[5:7, 20:22, 2:38] = True  # a vessel along x
    v[5:7, 2:38, 10:12] = True  # a crossing vessel along y
    gt = v.copy()
    pred = v.copy()
    pred[:, :, 25:28] = False  # break the first vessel: 2 components
    return gt, pred


def test_colour_components_counts_and_colours():
    from skimage.measure import label

    gt, pred = broken_vessel()
    rgb, n = colour_components(pred)
    assert n == label(pred, connectivity=3).max() == 2
    assert rgb.shape == (40, 40, 3)
    assert (rgb[~pred.any(axis=0)] == 0).all()
    left, right, cross = rgb[20, 5], rgb[20, 30], rgb[5, 10]
    assert not np.allclose(left, right) and np.allclose(left, cross)  # break = colour change
    _, n_gt = colour_components(gt, axis=2)
    assert n_gt == 1
    diag = np.zeros((3, 3, 3), bool)
    diag[0, 0, 0] = diag[1, 1, 1] = True
    assert colour_components(diag, connectivity=26)[1] == 1
    assert colour_components(diag, connectivity=6)[1] == 2


def test_colour_components_bad_input():
    with pytest.raises(ValueError, match=r"connectivity must be 6, 18 or 26 in 3D, got 8"):
        colour_components(np.ones((3, 3, 3), bool), connectivity=8)
    with pytest.raises(ValueError, match=r"axis must be 0, 1 or 2, got 3"):
        colour_components(np.ones((3, 3, 3), bool), axis=3)
    with pytest.raises(ValueError, match=r"needs a 3D mask.*\(3, 3\)"):
        colour_components(np.ones((3, 3), bool))


@pytest.mark.parametrize("axes, shaded, rows", [((0,), False, 1), ((0, 1, 2), False, 3), ((0,), True, 2)])
def test_component_panel_png_size(tmp_path, axes, shaded, rows):
    from skimage.io import imread

    gt, pred = broken_vessel()
    path = component_panel(gt, {"U-Net": pred, "SHPM": gt}, tmp_path / "p" / "panel.png", axes=axes,
                           shaded=shaded, cell=2.0, dpi=50)
    img = imread(path)
    assert img.shape[:2] == (rows * 100, 3 * 100)
    assert img[..., :3].std() > 0  # not blank


def test_component_panel_bad_input(tmp_path):
    gt, pred = broken_vessel()
    with pytest.raises(ValueError, match=r"U-Net has shape \(12, 40, 39\), ground truth has \(12, 40, 40\)"):
        component_panel(gt, {"U-Net": pred[..., :39]}, tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"needs 3D masks.*\(40, 40\)"):
        component_panel(gt[0], [pred[0]], tmp_path / "a.png")
    with pytest.raises(ValueError, match=r"axes must be a non-empty sequence of 0, 1, 2, got \(5,\)"):
        component_panel(gt, pred, tmp_path / "a.png", axes=(5,))


def test_mesh_dataclass_is_plain():
    m = Mesh(np.zeros((0, 3)), np.zeros((0, 3), int))
    assert m.euler_characteristic == 0 and m.volume == 0.0

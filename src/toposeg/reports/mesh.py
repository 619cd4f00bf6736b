"""Surface meshes of 3D masks (marching cubes) and a PNG comparison panel like the paper's Fig. 6.

* :func:`mask_to_mesh` - marching cubes (scikit-image, Lewiner) on a zero-padded mask, so every
  surface is closed; vertices in voxel units ``(z, y, x)`` times ``spacing``.
* :func:`save_mesh` - PLY / OBJ / STL through trimesh (``toposeg[graph]``), with a small built-in
  writer for PLY/OBJ when trimesh is not installed.
* :func:`component_panel` - maximum-intensity projections of ground truth and predictions side
  by side, each connected component (26-connectivity) in its own colour so broken vessels show
  up as colour changes; optionally a row of shaded surface renderings (matplotlib
  ``Poly3DCollection``) for small meshes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from toposeg.reports._figure import pyplot, save
from toposeg.reports._inputs import named_masks
from toposeg.topology._inputs import as_mask

FORMATS = ("ply", "obj", "stl")


@dataclass(frozen=True)
class Mesh:
    """Triangle mesh: ``vertices`` float ``(V, 3)``, ``faces`` int ``(F, 3)`` (outward normals)."""

    vertices: np.ndarray
    faces: np.ndarray

    @property
    def euler_characteristic(self) -> int:
        """``V - E + F`` (2 for a sphere, 0 for a torus; summed over closed components)."""
        return mesh_euler_characteristic(self.vertices, self.faces)

    @property
    def volume(self) -> float:
        """Enclosed volume (divergence theorem); positive for outward-oriented closed meshes."""
        return mesh_volume(self.vertices, self.faces)


def mesh_euler_characteristic(vertices: np.ndarray, faces: np.ndarray) -> int:
    faces = np.asarray(faces)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    n_edges = len(np.unique(edges, axis=0)) if len(edges) else 0
    used = len(np.unique(faces)) if faces.size else 0
    return int(used - n_edges + len(faces))


def mesh_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    v = np.asarray(vertices, dtype=float)[np.asarray(faces)]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def _spacing(spacing: Any) -> tuple[float, float, float]:
    sp = (float(spacing),) * 3 if isinstance(spacing, (int, float)) else tuple(float(s) for s in spacing)
    if len(sp) != 3 or not all(s > 0 and np.isfinite(s) for s in sp):
        raise ValueError(f"spacing must be a positive number or 3 positive numbers, got {spacing!r}")
    return sp  # type: ignore[return-value]


def mask_to_mesh(mask: Any, *, spacing: Any = 1.0, sigma: float = 0.0, step_size: int = 1) -> Mesh:
    """Closed surface of a binary 3D mask by marching cubes at level 0.5.

    Args:
        mask: bool / {0, 1} array or tensor ``(D, H, W)``; must contain foreground.
        spacing: voxel size (one number or ``(dz, dy, dx)``); vertices are scaled by it.
        sigma: optional Gaussian smoothing (voxels) before marching cubes, for nicer renderings
            (0 = exact voxel surface; smoothing can change topology of thin parts).
        step_size: marching-cubes step (> 1 = coarser, faster mesh).

    Returns:
        A :class:`Mesh` in the mask's coordinates (the one-voxel padding is removed).
    """
    from skimage.measure import marching_cubes

    m = as_mask(mask, "mask")
    if m.ndim != 3:
        raise ValueError(f"mask_to_mesh needs a 3D mask (D, H, W), got shape {m.shape}")
    if not m.any():
        raise ValueError(f"mask is empty (no foreground voxel in shape {m.shape}): there is no surface to mesh")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or sigma < 0:
        raise ValueError(f"sigma must be a number >= 0, got {sigma!r}")
    if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
        raise ValueError(f"step_size must be a positive integer, got {step_size!r}")
    sp = _spacing(spacing)
    vol = np.pad(m, 1).astype(np.float32)
    if sigma > 0:
        from scipy.ndimage import gaussian_filter

        vol = gaussian_filter(vol, sigma)
    verts, faces, _, _ = marching_cubes(vol, level=0.5, spacing=sp, step_size=step_size,
                                        allow_degenerate=False)
    verts = verts - np.asarray(sp)  # undo the padding
    mesh = Mesh(verts.astype(np.float64), faces.astype(np.int64))
    if mesh.volume < 0:  # orient outwards
        mesh = Mesh(mesh.vertices, mesh.faces[:, ::-1].copy())
    return mesh


def _write_ply(path: Path, mesh: Mesh) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write("ply\nformat ascii 1.0\n")
        f.write(f"element vertex {len(mesh.vertices)}\nproperty float x\nproperty float y\nproperty float z\n")
        f.write(f"element face {len(mesh.faces)}\nproperty list uchar int vertex_indices\nend_header\n")
        np.savetxt(f, mesh.vertices, fmt="%.6f")
        np.savetxt(f, np.column_stack([np.full(len(mesh.faces), 3), mesh.faces]), fmt="%d")


def _write_obj(path: Path, mesh: Mesh) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write("# toposeg mesh\n")
        np.savetxt(f, mesh.vertices, fmt="v %.6f %.6f %.6f")
        np.savetxt(f, mesh.faces + 1, fmt="f %d %d %d")


def save_mesh(mesh: Mesh, path: Union[str, Path], *, format: Optional[str] = None, backend: str = "auto") -> Path:
    """Write a mesh as PLY, OBJ or STL (format from ``format`` or the file extension).

    ``backend``: ``"trimesh"``, ``"builtin"`` (PLY/OBJ only, ASCII) or ``"auto"`` (trimesh when
    installed). Creates parent folders; returns the path.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown mesh format {fmt!r} (from {path.name!r}); valid: {list(FORMATS)}")
    if backend not in ("auto", "trimesh", "builtin"):
        raise KeyError(f"unknown mesh backend {backend!r}; valid: ['auto', 'trimesh', 'builtin']")
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a toposeg.reports.mesh.Mesh, got {type(mesh).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if backend == "auto":
        try:
            import trimesh  # noqa: F401

            backend = "trimesh"
        except ImportError:  # pragma: no cover - depends on the environment
            backend = "builtin"
    if backend == "trimesh":
        try:
            import trimesh
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("writing meshes with trimesh needs it: pip install 'toposeg[graph]'") from exc
        trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(str(path), file_type=fmt)
    elif fmt == "ply":
        _write_ply(path, mesh)
    elif fmt == "obj":
        _write_obj(path, mesh)
    else:
        raise ValueError("the builtin mesh writer supports ply and obj; STL needs trimesh: pip install 'toposeg[graph]'")
    return path


def colour_components(mask: Any, *, axis: int = 0, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Projection of a 3D mask along ``axis`` with components coloured: ``(RGB (H, W, 3), n)``.

    Each ray shows the component of the first foreground voxel it meets, shaded by depth
    (nearer = brighter). Components are coloured by size rank (largest first, ``tab10`` colours,
    cycling). ``connectivity``: 6, 18 or 26 (the foreground connectivity of the Betti metrics
    in 3D is 26). ``n`` is the number of components.
    """
    from matplotlib import colormaps
    from scipy import ndimage

    m = as_mask(mask, "mask")
    if m.ndim != 3:
        raise ValueError(f"colour_components needs a 3D mask (D, H, W), got shape {m.shape}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    rank = {6: 1, 18: 2, 26: 3}.get(connectivity)
    if rank is None:
        raise ValueError(f"connectivity must be 6, 18 or 26 in 3D, got {connectivity!r}")
    labels, n = ndimage.label(m, structure=ndimage.generate_binary_structure(3, rank))
    hit = m.any(axis=axis)
    depth = np.argmax(m, axis=axis)
    first = np.take_along_axis(labels, np.expand_dims(depth, axis), axis=axis).squeeze(axis)
    rgb = np.zeros((*hit.shape, 3))
    if n:
        sizes = np.bincount(labels.ravel())[1:]
        order = np.empty(n, dtype=np.int64)
        order[np.argsort(-sizes, kind="stable")] = np.arange(n)
        palette = np.asarray(colormaps["tab10"].colors)[:, :3]
        colours = np.vstack([np.zeros(3), palette[order % len(palette)]])
        shade = 1.0 - 0.6 * depth / max(m.shape[axis] - 1, 1)
        rgb = colours[first] * shade[..., None]
        rgb[~hit] = 0.0
    return rgb, n


def _named_volumes(gt: Any, preds: Any) -> dict[str, np.ndarray]:
    vols = {"ground truth": as_mask(gt, "gt"), **named_masks(preds)}
    for name, v in vols.items():
        if v.ndim != 3:
            raise ValueError(f"{name}: the panel needs 3D masks (D, H, W), got shape {v.shape}")
        if v.shape != vols["ground truth"].shape:
            raise ValueError(f"{name} has shape {v.shape}, ground truth has {vols['ground truth'].shape}")
    return vols


def _shaded(ax, mesh: Optional[Mesh], shape: tuple) -> None:
    from matplotlib.colors import LightSource
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    ax.set_axis_off()
    if mesh is None:
        ax.text2D(0.5, 0.5, "too large / empty", ha="center", transform=ax.transAxes, fontsize=8)
        return
    tris = mesh.vertices[mesh.faces][:, :, ::-1]  # (x, y, z) for display
    normals = np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True) + 1e-12
    light = np.asarray(LightSource(azdeg=315, altdeg=45).direction)
    shade = 0.35 + 0.65 * np.clip(normals @ light, 0, 1)
    colours = np.column_stack([0.85 * shade, 0.25 * shade, 0.2 * shade, np.ones_like(shade)])
    ax.add_collection3d(Poly3DCollection(tris, facecolors=colours, edgecolor="none"))
    ax.set_xlim(0, shape[2])
    ax.set_ylim(0, shape[1])
    ax.set_zlim(0, shape[0])
    ax.set_box_aspect((shape[2], shape[1], shape[0]))
    ax.view_init(elev=55, azim=-60)


def component_panel(gt: Any, preds: Any, path: Union[str, Path], *, axes: Sequence[int] = (0,),
                    shaded: bool = False, max_faces: int = 100_000, connectivity: int = 26,
                    cell: float = 3.0, dpi: int = 100) -> Path:
    """PNG panel: ground truth and predictions side by side, components coloured.

    One column per volume (ground truth first), one row per projection axis in ``axes``, plus a
    row of shaded surface renderings when ``shaded`` (meshes with more than ``max_faces`` faces
    are skipped with a note). Titles give the number of connected components. The PNG is
    ``n_columns * cell * dpi`` pixels wide and ``n_rows * cell * dpi`` high.
    """
    plt = pyplot()

    vols = _named_volumes(gt, preds)
    axes = tuple(axes)
    if not axes or any(a not in (0, 1, 2) for a in axes):
        raise ValueError(f"axes must be a non-empty sequence of 0, 1, 2, got {axes!r}")
    n_rows = len(axes) + int(bool(shaded))
    fig = plt.figure(figsize=(len(vols) * cell, n_rows * cell), dpi=dpi)
    for col, (name, vol) in enumerate(vols.items()):
        for row, axis in enumerate(axes):
            ax = fig.add_subplot(n_rows, len(vols), row * len(vols) + col + 1)
            rgb, n = colour_components(vol, axis=axis, connectivity=connectivity)
            ax.imshow(rgb, interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(f"{name}: {n} component{'s' if n != 1 else ''}" if row == 0 else f"axis {axis}",
                         fontsize=9)
        if shaded:
            ax = fig.add_subplot(n_rows, len(vols), len(axes) * len(vols) + col + 1, projection="3d")
            mesh = mask_to_mesh(vol) if vol.any() else None
            _shaded(ax, mesh if mesh is not None and len(mesh.faces) <= max_faces else None, vol.shape)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93, wspace=0.04, hspace=0.1)
    return save(fig, path, dpi)

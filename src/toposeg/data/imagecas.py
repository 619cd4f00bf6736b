"""ImageCAS (coronary CT angiography, NIfTI): ``<id>.img.nii.gz`` + ``<id>.label.nii.gz``.

Volumes are returned in ``(D, H, W)`` = NIfTI ``(z, y, x)`` order (the NIfTI array axes are
reversed). Label foreground: ``label != 0`` (``"nonzero"``; ImageCAS masks are 0/1). HU clipping:
the image is clipped to ``hu_window`` (default ``(-200, 800)``, ``None`` keeps raw HU); no
rescaling here (the pipeline z-scores). Resampling for the paper's ICAS-d: ``resample="icas-d"``
(= ``(72, 128, 128)`` in (D, H, W), i.e. 128 x 128 x 72 in NIfTI x, y, z) or any ``(D, H, W)``.
The image is resampled linearly (trilinear, ``align_corners=False``); the label by one of
:data:`LABEL_RESAMPLING` (see :func:`resample_label`; default ``"skeleton"``, which changed the
number of connected vessel components least on synthetic vessels, ``benchmarks/resample.py``;
``"nearest"`` is the paper's).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from toposeg.data.case import Case
from toposeg.data.files import as_root as _as_root, refuse_empty_files, short_list
from toposeg.data.labels import binarize
from toposeg.data.lazy import LazyCases
from toposeg.io import read_array

ICAS_D = (72, 128, 128)
#: Label resampling modes, default first.
LABEL_RESAMPLING = ("skeleton", "nearest", "linear", "area", "any")
DEFAULT_LABEL_RESAMPLING = "skeleton"
LABEL_FOREGROUND = "nonzero"


def _check_label_mode(mode: object) -> str:
    if not isinstance(mode, str) or mode not in LABEL_RESAMPLING:
        raise ValueError(f"label_resample must be one of {list(LABEL_RESAMPLING)}, got {mode!r}")
    return mode


def _area_fraction(mask: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Fraction of each output voxel covered by ``mask`` (PyTorch ``"area"`` = adaptive average
    pooling; exact block means for integer factors)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    return F.interpolate(x, size=size, mode="area")[0, 0].numpy()


def _skeleton(mask: np.ndarray) -> np.ndarray:
    """Topology-preserving skeleton of ``mask`` (toposeg's default thinning), computed per
    connected component (full connectivity) inside its bounding box, which is cheap for sparse
    vessel trees. A component whose skeleton comes out empty keeps one of its voxels, so every
    component is represented."""
    from scipy import ndimage

    from toposeg.skeleton import skeletonize

    out = np.zeros(mask.shape, bool)
    comps, _ = ndimage.label(mask, np.ones((3,) * mask.ndim, bool))
    for k, box in enumerate(ndimage.find_objects(comps), start=1):
        if box is None:
            continue
        part = comps[box] == k
        skel = np.asarray(skeletonize(np.ascontiguousarray(part)), bool) & part
        if not skel.any():
            skel = np.zeros_like(part)
            skel[tuple(int(c[0]) for c in np.nonzero(part))] = True
        out[box] |= skel
    return out


def resample_label(label: np.ndarray, shape: Sequence[int], mode: str = DEFAULT_LABEL_RESAMPLING) -> np.ndarray:
    """Resample a bool mask ``(*S)`` (2D or 3D) to ``shape``; returns a bool array of ``shape``.

    Modes (measured on synthetic vessels in ``docs/data.md``):

    - ``"skeleton"`` (default): ``"area"`` plus every output voxel that contains a voxel of the
      label's topology-preserving skeleton, so a vessel thinner than half an output voxel stays
      present and connected (the skeleton of each connected component maps to a connected set
      of output voxels).
    - ``"nearest"``: nearest neighbour (PyTorch ``"nearest-exact"``), the paper's ICAS-d.
      Thin vessels break into pieces or vanish.
    - ``"linear"``: (bi/tri)linear interpolation of the 0/1 mask (``align_corners=False``),
      ``>= 0.5``.
    - ``"area"``: the fraction of each output voxel covered by the label, ``>= 0.5``.
    - ``"any"``: every output voxel that covers any label voxel (max pooling): connected, but
      vessels get about half an output voxel thicker on each side.

    Raises:
        ValueError: unknown ``mode``; ``shape`` with another number of dims than ``label``.
    """
    import torch
    import torch.nn.functional as F

    _check_label_mode(mode)
    size = tuple(int(s) for s in shape)
    if len(size) != label.ndim or label.ndim not in (2, 3) or min(size) < 1:
        raise ValueError(f"resample shape {size} must be {label.ndim} positive sizes for a label of shape {label.shape}")
    mask = np.asarray(label, bool)
    if mode == "nearest":
        x = torch.from_numpy(mask.astype(np.float32))[None, None]
        return F.interpolate(x, size=size, mode="nearest-exact")[0, 0].numpy() > 0.5
    if mode == "linear":
        x = torch.from_numpy(mask.astype(np.float32))[None, None]
        linear = {2: "bilinear", 3: "trilinear"}[mask.ndim]
        return F.interpolate(x, size=size, mode=linear, align_corners=False)[0, 0].numpy() >= 0.5
    area = _area_fraction(mask, size)
    if mode == "area":
        return area >= 0.5
    if mode == "any":
        return area > 0
    return (area >= 0.5) | (_area_fraction(_skeleton(mask), size) > 0)


def resample(image: np.ndarray, label: np.ndarray, shape: Sequence[int],
             label_mode: str = DEFAULT_LABEL_RESAMPLING) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``image`` ``(C, *S)`` linearly (``align_corners=False``) and ``label`` ``(*S)``
    by :func:`resample_label` with ``label_mode`` to ``shape``; returns ``(float32 image, bool
    label)``."""
    import torch
    import torch.nn.functional as F

    _check_label_mode(label_mode)
    size = tuple(int(s) for s in shape)
    if len(size) != label.ndim or label.ndim not in (2, 3):
        raise ValueError(f"resample shape {size} must have {label.ndim} dims for a label of shape {label.shape}")
    linear = {2: "bilinear", 3: "trilinear"}[label.ndim]
    img = F.interpolate(torch.from_numpy(np.ascontiguousarray(image, np.float32))[None], size=size, mode=linear,
                        align_corners=False)[0].numpy()
    return img, resample_label(label, size, label_mode)


def _read_case(pairs: list[tuple[str, Path, Path]], hu_window, shape, label_mode: str, i: int) -> Case:
    case_id, img_path, lab_path = pairs[i]
    image = read_array(img_path)
    label = read_array(lab_path)
    if image.shape != label.shape or image.ndim != 3:
        raise ValueError(f"{img_path}: image shape {image.shape} does not match label {lab_path.name} shape {label.shape}")
    image = np.ascontiguousarray(image.transpose(2, 1, 0), dtype=np.float32)[None]
    label = binarize(np.ascontiguousarray(label.transpose(2, 1, 0)), LABEL_FOREGROUND, name=str(lab_path))
    if hu_window is not None:
        np.clip(image, hu_window[0], hu_window[1], out=image)
    meta = {"image_path": str(img_path), "label_path": str(lab_path), "original_shape": label.shape}
    if shape is not None:
        image, label = resample(image, label, shape, label_mode)
        meta["label_resample"] = label_mode
    return Case(id=case_id, image=image, label=label, meta=meta)


def _by_id(paths: list[Path], suffix: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in paths:
        key = p.name[: -len(suffix)]
        if key in found:
            raise ValueError(f"imagecas: two files give the id {key!r}: {found[key]} and {p}")
        found[key] = p
    return found


def open_imagecas(root, *, image_suffix: str = ".img.nii.gz", label_suffix: str = ".label.nii.gz",
                  hu_window: Optional[Sequence[float]] = (-200.0, 800.0),
                  resample: Union[None, str, Sequence[int]] = None,
                  label_resample: str = DEFAULT_LABEL_RESAMPLING) -> LazyCases:
    """ImageCAS volumes found anywhere under ``root``; ids are file names without suffix, in
    natural order (``"2"`` before ``"10"``). ``dataset.label_foreground == "nonzero"``.

    Args:
        hu_window: ``(low, high)`` clip of the image in HU, or ``None``.
        resample: ``None`` (native grid), ``"icas-d"`` (``(72, 128, 128)``) or a ``(D, H, W)``.
        label_resample: one of :data:`LABEL_RESAMPLING` (default ``"skeleton"``; ``"nearest"``
            reproduces the paper's ICAS-d), see :func:`resample_label`.

    Raises:
        FileNotFoundError: ``root`` missing. ValueError: bad options (quoted), no files,
        unpaired files (listed), two files with the same id, empty (0-byte) files.
    """
    root = _as_root(root, "imagecas")
    if hu_window is not None and (len(hu_window) != 2 or not hu_window[0] < hu_window[1]):
        raise ValueError(f"hu_window must be (low, high) with low < high or None, got {hu_window!r}")
    _check_label_mode(label_resample)
    if isinstance(resample, str):
        if resample.lower() != "icas-d":
            raise ValueError(f"resample must be None, 'icas-d' or a (D, H, W) shape, got {resample!r}")
        shape: Optional[tuple[int, ...]] = ICAS_D
    elif resample is None:
        shape = None
    else:
        shape = tuple(int(s) for s in resample)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"resample must be a (D, H, W) shape of positive ints, got {resample!r}")
    images = _by_id(sorted(root.rglob(f"*{image_suffix}")), image_suffix)
    labels = _by_id(sorted(root.rglob(f"*{label_suffix}")), label_suffix)
    if not images and not labels:
        raise ValueError(f"imagecas: no '*{image_suffix}' / '*{label_suffix}' files under {root}")
    lonely_i, lonely_l = sorted(set(images) - set(labels)), sorted(set(labels) - set(images))
    if lonely_i or lonely_l:
        raise ValueError(f"imagecas {root}: unpaired files; images without a label: "
                         f"[{short_list([images[k].name for k in lonely_i])}]; labels without an image: "
                         f"[{short_list([labels[k].name for k in lonely_l])}]")
    keys = sorted(images, key=lambda k: (len(k), k))  # numeric ids in natural order
    pairs = [(k, images[k], labels[k]) for k in keys]
    refuse_empty_files([p for pair in pairs for p in pair[1:]], f"imagecas {root}")
    window = None if hu_window is None else (float(hu_window[0]), float(hu_window[1]))
    return LazyCases(keys, partial(_read_case, pairs, window, shape, label_resample), description=f"imagecas {root}",
                     label_foreground=LABEL_FOREGROUND)

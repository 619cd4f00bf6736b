"""ImageCAS (coronary CT angiography, NIfTI): ``<id>.img.nii.gz`` + ``<id>.label.nii.gz``.

Volumes are returned in ``(D, H, W)`` = NIfTI ``(z, y, x)`` order (the NIfTI array axes are
reversed). HU clipping: the image is clipped to ``hu_window`` (default ``(-200, 800)``, ``None``
keeps raw HU); no rescaling here (the pipeline z-scores). Resampling for the paper's ICAS-d:
``resample="icas-d"`` (= ``(72, 128, 128)`` in (D, H, W), i.e. 128 x 128 x 72 in NIfTI x, y, z)
or any ``(D, H, W)``. The image is resampled linearly (trilinear, ``align_corners=False``); the
label either by ``"nearest"`` neighbour or by ``"area"``: the fraction of each output voxel
covered by the vessel (area/average interpolation) thresholded at 0.5 — smoother boundaries,
but thin vessels narrower than half a coarse voxel can disappear.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from toposeg.data.case import Case
from toposeg.data.loaders import _as_root, _short
from toposeg.data.lazy import LazyCases
from toposeg.io import read_array

ICAS_D = (72, 128, 128)
LABEL_RESAMPLING = ("nearest", "area")


def resample(image: np.ndarray, label: np.ndarray, shape: Sequence[int], label_mode: str = "nearest") -> tuple[np.ndarray, np.ndarray]:
    """Resample ``image`` ``(C, *S)`` linearly and ``label`` ``(*S)`` by ``label_mode`` to ``shape``."""
    import torch
    import torch.nn.functional as F

    if label_mode not in LABEL_RESAMPLING:
        raise ValueError(f"label_resample must be one of {list(LABEL_RESAMPLING)}, got {label_mode!r}")
    size = tuple(int(s) for s in shape)
    if len(size) != label.ndim:
        raise ValueError(f"resample shape {size} must have {label.ndim} dims for a label of shape {label.shape}")
    linear = {2: "bilinear", 3: "trilinear"}[label.ndim]
    img = F.interpolate(torch.from_numpy(np.ascontiguousarray(image, np.float32))[None], size=size, mode=linear,
                        align_corners=False)[0].numpy()
    lab = torch.from_numpy(label.astype(np.float32))[None, None]
    if label_mode == "nearest":
        out = F.interpolate(lab, size=size, mode="nearest-exact")[0, 0].numpy() > 0.5
    else:
        out = F.interpolate(lab, size=size, mode="area")[0, 0].numpy() >= 0.5
    return img, out


def _read_case(pairs: list[tuple[str, Path, Path]], hu_window, shape, label_mode: str, i: int) -> Case:
    case_id, img_path, lab_path = pairs[i]
    image = read_array(img_path)
    label = read_array(lab_path)
    if image.shape != label.shape or image.ndim != 3:
        raise ValueError(f"{img_path}: image shape {image.shape} does not match label {lab_path.name} shape {label.shape}")
    image = np.ascontiguousarray(image.transpose(2, 1, 0), dtype=np.float32)[None]
    label = np.ascontiguousarray(label.transpose(2, 1, 0)) > 0
    if hu_window is not None:
        np.clip(image, hu_window[0], hu_window[1], out=image)
    meta = {"image_path": str(img_path), "label_path": str(lab_path), "original_shape": label.shape}
    if shape is not None:
        image, label = resample(image, label, shape, label_mode)
    return Case(id=case_id, image=image, label=label, meta=meta)


def open_imagecas(root, *, image_suffix: str = ".img.nii.gz", label_suffix: str = ".label.nii.gz",
                  hu_window: Optional[Sequence[float]] = (-200.0, 800.0),
                  resample: Union[None, str, Sequence[int]] = None, label_resample: str = "nearest") -> LazyCases:
    """ImageCAS volumes found anywhere under ``root``; ids are file names without suffix."""
    root = _as_root(root, "imagecas")
    if hu_window is not None and (len(hu_window) != 2 or not hu_window[0] < hu_window[1]):
        raise ValueError(f"hu_window must be (low, high) with low < high or None, got {hu_window!r}")
    if label_resample not in LABEL_RESAMPLING:
        raise ValueError(f"label_resample must be one of {list(LABEL_RESAMPLING)}, got {label_resample!r}")
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
    images = {p.name[: -len(image_suffix)]: p for p in sorted(root.rglob(f"*{image_suffix}"))}
    labels = {p.name[: -len(label_suffix)]: p for p in sorted(root.rglob(f"*{label_suffix}"))}
    if not images and not labels:
        raise ValueError(f"imagecas: no '*{image_suffix}' / '*{label_suffix}' files under {root}")
    lonely_i, lonely_l = sorted(set(images) - set(labels)), sorted(set(labels) - set(images))
    if lonely_i or lonely_l:
        raise ValueError(f"imagecas {root}: unpaired files; images without a label: "
                         f"[{_short([images[k].name for k in lonely_i])}]; labels without an image: "
                         f"[{_short([labels[k].name for k in lonely_l])}]")
    keys = sorted(images, key=lambda k: (len(k), k))  # numeric ids in natural order
    pairs = [(k, images[k], labels[k]) for k in keys]
    window = None if hu_window is None else (float(hu_window[0]), float(hu_window[1]))
    return LazyCases(keys, partial(_read_case, pairs, window, shape, label_resample), description=f"imagecas {root}")

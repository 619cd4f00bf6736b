"""Loaders for image/label pairs on disk: ``folder``, ``isbi2012`` and ``roads``.

All return a :class:`~toposeg.data.lazy.LazyCases`: files are listed and paired when the
dataset is opened (so missing folders and unpaired files fail immediately, naming them) and
read when a case is accessed (so an unreadable file or a shape mismatch fails naming the file).
Images are returned as float32 in their native intensity range (no normalisation: that is the
training pipeline's job, see :mod:`toposeg.data.transforms`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Optional

import numpy as np

from toposeg.data.case import Case
from toposeg.data.files import as_root as _as_root, refuse_empty_files
from toposeg.data.labels import binarize, check_rule
from toposeg.data.lazy import LazyCases
from toposeg.io import check_real, extension, list_images, pair_by_stem, read_array

RASTER = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _check_rule(foreground: str) -> None:
    check_rule(foreground, "foreground")


def _source(rule: str) -> str:
    return {"nonzero": "label files, foreground = nonzero values",
            "bright": "label files, foreground = the high level of a two-level mask",
            "dark": "label files, foreground = the low level of a two-level mask"}[rule]


def _paired(pairs: list[tuple[str, Path, Path]], where: str) -> list[tuple[str, Path, Path]]:
    refuse_empty_files([p for pair in pairs for p in pair[1:]], where)
    return pairs


def arrange(image: np.ndarray, label: np.ndarray, image_path, label_path) -> tuple[np.ndarray, np.ndarray]:
    """Bring a raw image/label pair to ``(C, *S)`` / ``(*S)``.

    Accepted: image ``(*S)`` (one channel), ``(C, *S)``, or channels-last ``(*S, 3|4)`` for 2D
    raster files (alpha dropped); a raster label saved as grey RGB(A) is reduced to one channel.
    """
    if label.ndim == 3 and label.shape[-1] in (3, 4) and extension(label_path) in RASTER:
        rgb = label[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise ValueError(f"{label_path}: label is a colour image {label.shape}; expected a grey mask")
        label = rgb[..., 0]
    if image.shape == label.shape:
        image = image[None]
    elif image.ndim == label.ndim + 1 and image.shape[1:] == label.shape:
        pass
    elif (image.ndim == label.ndim + 1 and image.shape[:-1] == label.shape and image.shape[-1] in (3, 4)
          and extension(image_path) in RASTER):
        image = np.moveaxis(image[..., :3], -1, 0)
    else:
        raise ValueError(
            f"{image_path}: image shape {image.shape} does not match label {Path(label_path).name} "
            f"shape {label.shape}"
        )
    if label.ndim not in (2, 3):
        raise ValueError(f"{label_path}: label must be 2D or 3D, got shape {label.shape}")
    return np.ascontiguousarray(image, dtype=np.float32), label


def read_pair(case_id: str, image_path: Path, label_path: Path, foreground: str) -> Case:
    image, label = arrange(check_real(read_array(image_path), image_path), read_array(label_path), image_path,
                           label_path)
    return Case(id=case_id, image=image, label=binarize(label, foreground, name=str(label_path)),
                meta={"image_path": str(image_path), "label_path": str(label_path)})


def _read_indexed(pairs: list[tuple[str, Path, Path]], foreground: str, i: int) -> Case:
    return read_pair(*pairs[i], foreground)


def open_folder(root, *, foreground: str = "nonzero", image_dir: str = "image", label_dir: str = "label") -> LazyCases:
    """Any folder with ``image/`` and ``label/`` subfolders of files matched by name (stem):
    PNG/JPEG, TIFF, NIfTI, NumPy. ``foreground``: ``"nonzero"`` (default) | ``"bright"`` |
    ``"dark"`` (see :func:`toposeg.data.labels.binarize`; bright/dark detect 0/1 vs 0/255
    encodings per file); it becomes ``dataset.label_foreground``.

    Raises:
        FileNotFoundError: missing root or subfolder. ValueError: unknown ``foreground``, no
        files, unpaired files, empty (0-byte) files (all listed).
    """
    root = _as_root(root, "folder")
    _check_rule(foreground)
    for sub, what in ((image_dir, "image"), (label_dir, "label")):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f"{what} folder not found: {root / sub}")
    pairs = pair_by_stem(list_images(root / image_dir, "image"), list_images(root / label_dir, "label"), str(root))
    pairs = _paired(pairs, f"folder {root}")
    return LazyCases([p[0] for p in pairs], partial(_read_indexed, pairs, foreground), description=f"folder {root}",
                     label_foreground=foreground, label_source=_source(foreground))


# ---------------------------------------------------------------- ISBI 2012


def _tiff_stack_shape(path: Path) -> tuple[int, ...]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            shape = tuple(tf.series[0].shape)
    except Exception as exc:
        raise ValueError(f"{path}: could not read TIFF ({type(exc).__name__}: {exc})") from exc
    return shape if len(shape) == 3 else (1,) + shape


def _read_tiff_section(path: Path, index: int, n: int) -> np.ndarray:
    import tifffile

    try:
        arr = tifffile.imread(path)  # series 0: (N, H, W); a whole ISBI stack is ~8 MB
        arr = arr[index] if n > 1 or arr.ndim == 3 else arr
    except Exception as exc:
        raise ValueError(f"{path}: could not read section {index} ({type(exc).__name__}: {exc})") from exc
    return np.asarray(arr)


def _read_isbi_tiff(volume: Path, labels: Path, n: int, foreground: str, i: int) -> Case:
    image = _read_tiff_section(volume, i, n).astype(np.float32)
    label = _read_tiff_section(labels, i, n)
    return Case(id=f"{i:02d}", image=image[None], label=binarize(label, foreground, name=str(labels)),
                meta={"image_path": str(volume), "label_path": str(labels), "section": i})


def open_isbi2012(root, *, layout: str = "auto", volume: str = "train-volume.tif", labels: str = "train-labels.tif",
                  foreground: str = "dark") -> LazyCases:
    """ISBI 2012 EM membranes: multi-page TIFF stacks (``train-volume.tif`` and
    ``train-labels.tif``, one case per section, ids ``"00"``, ``"01"``...) or PNG folders
    (``image/NN.png``, ``label/NN.png``, ids = file stems). Membranes are the dark level of the
    two-level label (0 of 0/255, also 0 of 0/1), so ``foreground="dark"`` (=
    ``dataset.label_foreground``). ``layout``: ``"auto"`` | ``"tiff"`` | ``"png"``."""
    root = _as_root(root, "isbi2012")
    _check_rule(foreground)
    if layout not in ("auto", "tiff", "png"):
        raise ValueError(f"layout must be 'auto', 'tiff' or 'png', got {layout!r}")
    vol, lab = root / volume, root / labels
    if layout == "auto":
        layout = "tiff" if vol.is_file() else "png" if (root / "image").is_dir() else ""
        if not layout:
            raise FileNotFoundError(f"isbi2012: {root} has neither {volume} nor an image/ folder")
    if layout == "png":
        cases = open_folder(root, foreground=foreground)
        cases.description = f"isbi2012 {root}"
        return cases
    for p in (vol, lab):
        if not p.is_file():
            raise FileNotFoundError(f"isbi2012: {p} not found")
    refuse_empty_files([vol, lab], f"isbi2012 {root}")
    sv, sl = _tiff_stack_shape(vol), _tiff_stack_shape(lab)
    if sv != sl:
        raise ValueError(f"{lab}: label stack shape {sl} does not match {vol.name} shape {sv}")
    n = sv[0]
    return LazyCases([f"{i:02d}" for i in range(n)], partial(_read_isbi_tiff, vol, lab, n, foreground),
                     description=f"isbi2012 {root}", label_foreground=foreground, label_source=_source(foreground))


# ---------------------------------------------------------------- Massachusetts Roads


def _blank_fraction(path: Path, blank_value: float) -> float:
    image = read_array(path)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        return float(np.all(image[..., :3] == blank_value, axis=-1).mean())
    return float((image == blank_value).mean())


def _read_road(pairs: list[tuple[str, Path, Path]], foreground: str, i: int) -> Case:
    case = read_pair(*pairs[i], foreground)
    if case.image.shape[0] != 3 or case.label.ndim != 2:
        raise ValueError(f"{pairs[i][1]}: expected a 2D RGB image, got image {case.image.shape}")
    return case


def open_roads(root, *, split: Optional[str] = "train", foreground: str = "bright",
               max_blank: Optional[float] = None, blank_value: float = 255) -> LazyCases:
    """Massachusetts Roads: RGB TIFF/PNG tiles with masks (3 input channels; label = the high
    level of the two-level mask, ``foreground="bright"``, or ``"nonzero"``; it becomes
    ``dataset.label_foreground``).

    Layouts: ``image/`` + ``label/`` under ``root`` (folder format), or the original
    ``[tiff/]{split}/`` + ``[tiff/]{split}_labels/`` (``split``: ``"train"``, ``"val"``,
    ``"test"``). ``max_blank``: skip tiles whose fraction of blank pixels (all channels equal to
    ``blank_value``, white no-data areas) exceeds it, as the paper does (e.g. ``0.1``); this
    reads every image once when the dataset is opened. ``None`` keeps all tiles."""
    root = _as_root(root, "roads")
    _check_rule(foreground)
    if max_blank is not None and not 0.0 <= float(max_blank) <= 1.0:
        raise ValueError(f"max_blank must be in [0, 1] or None, got {max_blank!r}")
    if (root / "image").is_dir():
        img_dir, lab_dir = root / "image", root / "label"
    else:
        base = root / "tiff" if (root / "tiff").is_dir() else root
        img_dir, lab_dir = base / str(split), base / f"{split}_labels"
        if not img_dir.is_dir():
            raise FileNotFoundError(f"roads: found neither {root / 'image'} nor {img_dir}")
    if not lab_dir.is_dir():
        raise FileNotFoundError(f"label folder not found: {lab_dir}")
    pairs = pair_by_stem(list_images(img_dir, "image"), list_images(lab_dir, "label"), str(root))
    pairs = _paired(pairs, f"roads {root}")
    if max_blank is not None:
        pairs = [p for p in pairs if _blank_fraction(p[1], blank_value) <= max_blank]
        if not pairs:
            raise ValueError(f"roads: every tile in {img_dir} is more than {max_blank:.0%} blank")
    return LazyCases([p[0] for p in pairs], partial(_read_road, pairs, foreground), description=f"roads {img_dir}",
                     label_foreground=foreground, label_source=_source(foreground))

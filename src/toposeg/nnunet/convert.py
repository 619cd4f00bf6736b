"""Write a toposeg dataset in nnU-Net v2's raw format (``nnUNet_raw/DatasetXXX_Name``).

Layout written (nnU-Net's documented raw format)::

    DatasetXXX_Name/
      dataset.json          channel_names, labels {"background": 0, <name>: 1}, numTraining, file_ending
      imagesTr/<case>_0000<ending>   one file per input channel (_0000, _0001, ...)
      labelsTr/<case><ending>        uint8 label map, 0 = background, 1 = foreground

File endings: 2D images go to ``.png`` when every value is an integer in 0..255 (8-bit, read
by nnU-Net's ``NaturalImage2DIO``) and to ``.tif`` otherwise (float32, lossless; the same
reader); 3D volumes to ``.nii.gz`` (float32 images, uint8 labels, unit spacing, read by
``SimpleITKIO``). Labels hold the values 0 and 1 (not 0 and 255: nnU-Net reads label values
as class indices).

The folder is written next to its final place and renamed into it when complete, so an
interrupted conversion never leaves a half-written dataset under its final name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from toposeg.io import write_array

FILE_ENDINGS = ("auto", ".png", ".tif", ".nii.gz")

#: foreground name written to ``dataset.json`` per dataset kind
LABEL_NAMES = {
    "folder": "foreground", "isbi2012": "membrane", "cremi": "membrane", "roads": "road",
    "imagecas": "vessel", "vessels2d": "vessel", "membranes2d": "membrane", "roads2d": "road",
    "vessels3d": "vessel",
}

_DATASET_DIR = re.compile(r"^Dataset(\d{3})_([A-Za-z0-9_\-]+)$")
_CASE_ID = re.compile(r"^[A-Za-z0-9_\-.]+$")


def dataset_folder(out: Union[str, Path], dataset_id: Optional[int] = None, name: Optional[str] = None) -> Path:
    """The ``DatasetXXX_Name`` folder: ``out`` itself when its name has that form (``--id``/``--name``
    must then agree with it), else ``out / f"Dataset{id:03d}_{name}"``.

    Raises:
        ValueError: an id outside 1..999, a name with characters other than letters, digits,
            ``_`` and ``-``, a folder name without id/name given, or a disagreement.
    """
    out = Path(out)
    if dataset_id is not None and (isinstance(dataset_id, bool) or not isinstance(dataset_id, int)
                                   or not 1 <= dataset_id <= 999):
        raise ValueError(f"dataset id must be an integer in 1..999 (nnU-Net's three digits), got {dataset_id!r}")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9_\-]+", str(name)):
        raise ValueError(f"dataset name may contain letters, digits, '_' and '-' only, got {name!r}")
    match = _DATASET_DIR.match(out.name)
    if match:
        got_id, got_name = int(match.group(1)), match.group(2)
        if (dataset_id is not None and dataset_id != got_id) or (name is not None and name != got_name):
            raise ValueError(f"--out {out.name!r} disagrees with --id {dataset_id!r} / --name {name!r}")
        return out
    if dataset_id is None or name is None:
        raise ValueError(f"--out {str(out)!r} is not named DatasetXXX_Name; give --id and --name to create "
                         f"{out / 'DatasetXXX_Name'}, or name the folder like Dataset501_Vessels")
    return out / f"Dataset{dataset_id:03d}_{name}"


def _is_uint8_exact(image: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(image)) and image.min() >= 0 and image.max() <= 255
                and np.array_equal(image, np.round(image)))


def _choose_ending(image: np.ndarray, ndim: int, requested: str) -> str:
    if requested == "auto":
        if ndim == 3:
            return ".nii.gz"
        return ".png" if _is_uint8_exact(image) else ".tif"
    if ndim == 3 and requested != ".nii.gz":
        raise ValueError(f"3D volumes are written as .nii.gz, got file_ending={requested!r}")
    if ndim == 2 and requested == ".nii.gz":
        raise ValueError("2D images are written as .png or .tif (nnU-Net's NaturalImage2DIO), got '.nii.gz'")
    return requested


def _write(path: Path, array: np.ndarray, ending: str) -> None:
    if ending == ".png":
        write_array(path, array.astype(np.uint8))
    elif ending == ".tif":
        import tifffile

        path.parent.mkdir(parents=True, exist_ok=True)
        tifffile.imwrite(path, array)
    else:
        write_array(path, array)


def check_convert_output(out: Union[str, Path], overwrite: bool = False,
                         data_root: Optional[Union[str, Path]] = None) -> Path:
    """Check the output folder of :func:`convert_dataset` before any work (ValueError, quoting the
    paths); ``convert_dataset`` replaces the whole folder, so these would lose data or fail late:

    - ``out`` is a symbolic link (the folder it points to would be replaced by a folder; give
      the target itself);
    - ``data_root`` (the dataset being converted) equals or lies inside ``out``: replacing
      ``out`` deletes it;
    - ``out`` exists and is not an empty folder, without ``overwrite``.

    Returns ``out`` as a Path.
    """
    out = Path(out)
    if out.is_symlink():
        raise ValueError(f"--out {out} is a symbolic link (to {os.readlink(out)}); convert replaces the whole "
                         "output folder: give the real folder, not a link to it")
    if data_root is not None and str(data_root).strip() and Path(data_root).exists():
        try:
            root, target = Path(data_root).resolve(), out.resolve()
        except (RuntimeError, OSError):  # a link loop: the readers report it
            root, target = None, None
        if root is not None and (root == target or root.is_relative_to(target)):
            where = "is" if root == target else "lies inside"
            raise ValueError(f"--data-root {data_root} {where} --out {out}; convert replaces the whole output "
                             "folder (--overwrite would delete the dataset): choose an output folder outside "
                             "the dataset")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ValueError(f"--out {out} already holds files; choose another folder or pass --overwrite "
                         "(overwrite=True) to replace it")
    return out


def convert_dataset(
    cases: Sequence[Any],
    out: Union[str, Path],
    *,
    label_name: str = "foreground",
    file_ending: str = "auto",
    overwrite: bool = False,
    description: str = "",
    dataset_name: Optional[str] = None,
) -> Path:
    """Write ``cases`` (from :func:`toposeg.data.open_dataset`) as an nnU-Net raw dataset in ``out``.

    Args:
        cases: a sequence of :class:`toposeg.data.Case` (``image`` float32 ``(C, *S)``, ``label``
            bool ``(*S)``), 2D or 3D, all with the same number of channels.
        out: the ``DatasetXXX_Name`` folder (see :func:`dataset_folder`).
        label_name: name of label 1 in ``dataset.json``.
        file_ending: ``"auto"`` (see the module docstring), ``".png"`` (2D, 8-bit integer images
            only), ``".tif"`` (2D) or ``".nii.gz"`` (3D).
        overwrite: replace a non-empty ``out`` (the whole folder: files in it that this function
            does not write are deleted too); otherwise it is refused.
        description: free text for ``dataset.json``.
        dataset_name: ``"name"`` in ``dataset.json`` (default: the folder name).

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: ``out`` exists, is not empty and ``overwrite`` is False; ``out`` is a
            symbolic link (see :func:`check_convert_output`); no cases, unknown ``file_ending``, mixed 2D/3D or channel counts, an image
            that does not fit ``.png``, case ids that are not safe file names or repeat.
    """
    out = Path(out)
    if file_ending not in FILE_ENDINGS:
        raise ValueError(f"file_ending must be one of {FILE_ENDINGS}, got {file_ending!r}")
    if len(cases) == 0:
        raise ValueError("no cases to convert (the dataset is empty)")
    check_convert_output(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        ending, n_channels, ndim, seen = None, None, None, set()
        for i in range(len(cases)):
            case = cases[i]
            image, label = np.asarray(case.image), np.asarray(case.label)
            cid = str(case.id)
            if not _CASE_ID.match(cid) or cid in seen:
                raise ValueError(f"case id {cid!r} is {'repeated' if cid in seen else 'not a safe file name'} "
                                 "(letters, digits, '_', '-', '.')")
            seen.add(cid)
            if ending is None:
                ndim, n_channels = label.ndim, image.shape[0]
                ending = _choose_ending(image, ndim, file_ending)
            if label.ndim != ndim or image.shape[0] != n_channels:
                raise ValueError(f"case {cid!r}: image {image.shape} / label {label.shape} differs from the first "
                                 f"case ({n_channels} channel(s), {ndim}D); nnU-Net needs one layout per dataset")
            if ending == ".png" and not _is_uint8_exact(image):
                raise ValueError(f"case {cid!r}: image values in [{image.min():.4g}, {image.max():.4g}] do not fit an "
                                 "8-bit PNG losslessly; use file_ending '.tif' (float32) instead")
            for ch in range(n_channels):
                img = image[ch]
                _write(tmp / "imagesTr" / f"{cid}_{ch:04d}{ending}", img if ending == ".png" else img.astype(np.float32),
                       ending)
            _write(tmp / "labelsTr" / f"{cid}{ending}", label.astype(np.uint8), ending)
        channel_names = {"0": "image"} if n_channels == 1 else {str(c): f"channel_{c}" for c in range(n_channels)}
        meta = {
            "name": dataset_name or out.name,
            "description": description,
            "channel_names": channel_names,
            "labels": {"background": 0, label_name: 1},
            "numTraining": len(seen),
            "file_ending": ending,
            "converted_by": "toposeg nnunet convert",
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = ["FILE_ENDINGS", "LABEL_NAMES", "check_convert_output", "convert_dataset", "dataset_folder"]

"""Read and write single images/volumes by file extension.

PNG/JPEG (2D, via scikit-image), TIFF (via tifffile), NIfTI ``.nii``/``.nii.gz`` (via nibabel),
NumPy ``.npy``. Optional readers raise an ImportError naming the extra to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

PathLike = Union[str, Path]
EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".nii.gz", ".npy")


def extension(path: PathLike) -> str:
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def stem(path: PathLike) -> str:
    """File name without its (possibly double) extension."""
    name = Path(path).name
    ext = extension(path)
    return name[: len(name) - len(ext)] if ext else name


def _optional(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading/writing this format needs {module}: pip install 'toposeg[{extra}]'") from exc


def read_array(path: PathLike) -> np.ndarray:
    """Read an image or volume as a NumPy array (no normalisation, native dtype)."""
    path = Path(path)
    ext = extension(path)
    if ext not in EXTENSIONS:
        raise ValueError(f"{path}: unsupported file type {ext!r}; supported: {', '.join(EXTENSIONS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if ext in (".png", ".jpg", ".jpeg"):
            from skimage.io import imread

            return np.asarray(imread(path))
        if ext in (".tif", ".tiff"):
            return np.asarray(_optional("tifffile", "io").imread(path))
        if ext in (".nii", ".nii.gz"):
            return np.asarray(_optional("nibabel", "io").load(str(path)).dataobj)
        return np.load(path, allow_pickle=False)
    except ImportError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: could not read file ({type(exc).__name__}: {exc})") from exc


def write_array(path: PathLike, array: np.ndarray) -> Path:
    """Write an array in the format given by the extension; creates parent folders."""
    path = Path(path)
    ext = extension(path)
    if ext not in EXTENSIONS:
        raise ValueError(f"{path}: unsupported file type {ext!r}; supported: {', '.join(EXTENSIONS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == bool:
        array = array.astype(np.uint8) * (255 if ext in (".png", ".jpg", ".jpeg") else 1)
    if ext in (".png", ".jpg", ".jpeg"):
        from skimage.io import imsave

        imsave(path, array, check_contrast=False)
    elif ext in (".tif", ".tiff"):
        _optional("tifffile", "io").imwrite(path, array)
    elif ext in (".nii", ".nii.gz"):
        nib = _optional("nibabel", "io")
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(path))
    else:
        np.save(path, array)
    return path

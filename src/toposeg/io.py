"""Read and write single images/volumes by file extension; list and pair image folders.

PNG/JPEG (2D, via scikit-image), TIFF (via tifffile), NIfTI ``.nii``/``.nii.gz`` (via nibabel),
NumPy ``.npy``. Optional readers raise :class:`MissingExtraError` (an ``ImportError``) naming the
extra to install.

Folders: :func:`list_images` is the one lister of image folders (used by ``predict``,
``evaluate`` and the dataset loaders) and :func:`pair_by_stem` the one way two folders are
paired (by file name without its extension).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, Path]
EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".nii", ".nii.gz", ".npy")

# optional module -> the toposeg extra that installs it
EXTRAS = {"tifffile": "io", "h5py": "io", "nibabel": "io", "networkx": "graph", "skan": "graph", "trimesh": "graph",
          "nnunetv2": "nnunet"}


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names ``pip install 'toposeg[extra]'``."""


def missing_extra_message(module: str, what: str = "this feature") -> str:
    """``"<what> needs <module>: pip install 'toposeg[<extra>]'"`` (``pip install <module>`` for a
    module that no extra installs)."""
    top = module.split(".")[0]
    extra = EXTRAS.get(top)
    install = f"pip install 'toposeg[{extra}]'" if extra else f"pip install {top}"
    return f"{what} needs {top}, which is not installed: {install}"


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
    except ImportError as exc:
        raise MissingExtraError(missing_extra_message(module, "reading/writing this format")) from exc


def check_readable(path: PathLike) -> Path:
    """``path`` as a Path after checking it is a non-empty, readable file.

    Raises:
        FileNotFoundError: nothing at ``path``.
        IsADirectoryError: ``path`` is a folder.
        ValueError: the file is empty (0 bytes) or cannot be opened (permissions).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return path


def read_array(path: PathLike) -> np.ndarray:
    """Read an image or volume as a NumPy array (no normalisation, native dtype).

    Raises:
        ValueError: unsupported extension, empty (0-byte) file, a file its reader rejects
            ("FILE: could not read file as an image: <the reader's reason, one short line>") or
            reads as an array without pixels (a corrupt TIFF).
        IsADirectoryError: ``path`` is a folder ("is a folder, expected a file (.png, ...)").
        FileNotFoundError: no file at ``path``.
        MissingExtraError: TIFF/NIfTI without ``toposeg[io]``.
    """
    path = Path(path)
    ext = extension(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, expected a file ({', '.join(EXTENSIONS)})")
    if ext not in EXTENSIONS:
        raise ValueError(f"{path}: unsupported file type {ext!r}; supported: {', '.join(EXTENSIONS)}")
    check_readable(path)
    try:
        if ext in (".png", ".jpg", ".jpeg"):
            from skimage.io import imread

            arr = np.asarray(imread(path))
        elif ext in (".tif", ".tiff"):
            arr = np.asarray(_optional("tifffile", "io").imread(path))
        elif ext in (".nii", ".nii.gz"):
            arr = np.asarray(_optional("nibabel", "io").load(str(path)).dataobj)
        else:
            arr = np.load(path, allow_pickle=False)
    except ImportError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: could not read file as an image: {_short_reason(exc, path)}") from exc
    if arr.size == 0:  # e.g. tifffile on a corrupt TIFF: an empty array, no error
        raise ValueError(f"{path}: could not read file as an image: no pixels found (shape {arr.shape}; a corrupt "
                         "or empty image)")
    return arr


def _short_reason(exc: BaseException, path: Path, limit: int = 160) -> str:
    """The reader's reason in a few words: the last non-empty line of its message (SimpleITK puts
    its C++ source location first), without the file name it repeats, cut at ``limit``."""
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)  # no repr quotes
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(exc).__name__
    if "sitk::ERROR:" in text:
        text = text.split("sitk::ERROR:", 1)[1].strip()
    for name in (str(path.absolute()), str(path), path.name):  # quoted repeats of the file name
        text = text.replace(f'"{name}"', "the file").replace(f"'{name}'", "the file")
    text = text.rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def grey_mask(arr: np.ndarray, path: PathLike, what: str = "mask") -> np.ndarray:
    """A mask read from a PNG/JPEG saved as RGB(A) or grey+alpha with equal colour channels ->
    its first channel; other arrays unchanged.

    Raises:
        ValueError: a colour image (channels differ), quoting its shape.
    """
    if extension(path) in (".png", ".jpg", ".jpeg") and arr.ndim == 3 and arr.shape[-1] in (2, 3, 4):
        colour = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., :1]
        if not all(np.array_equal(colour[..., 0], colour[..., c]) for c in range(colour.shape[-1])):
            raise ValueError(f"{path}: a {what} must be grayscale, got a colour image of shape {arr.shape}")
        return colour[..., 0]
    return arr


def _values(arr: np.ndarray, limit: int = 8) -> str:
    values = np.unique(arr)
    shown = ", ".join(f"{v:g}" for v in values[:limit].astype(float))
    return f"[{shown}{', ...' if values.size > limit else ''}] ({values.size} distinct)"


def binary_mask(arr: np.ndarray) -> Optional[np.ndarray]:
    """``arr != 0`` when ``arr`` is a binary mask (bool, values within {0, 1} or within
    {0, 255}), else None."""
    if arr.dtype == bool:
        return arr.copy()
    if arr.dtype.kind not in "uif":
        return None
    values = set(np.unique(arr).tolist())
    return arr != 0 if values <= {0, 1} or values <= {0, 255} else None


def nonfinite_counts(arr: np.ndarray) -> str:
    """``"3 NaN and 2 infinite"`` (a zero count left out: ``"3 NaN"``) for a float or complex
    array, ``""`` when every value is finite (always for other dtypes)."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fc":
        return ""
    n_nan, n_inf = int(np.count_nonzero(np.isnan(arr))), int(np.count_nonzero(np.isinf(arr)))
    return " and ".join(part for part in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} infinite" if n_inf else "")
                        if part)


def check_real(arr: np.ndarray, path: PathLike, what: str = "image") -> np.ndarray:
    """``arr`` unchanged when its dtype is bool, integer or real float; a complex (or other)
    dtype is a TypeError naming ``path`` and the dtype (a cast to float would silently drop the
    imaginary part): ``"<path>: image has dtype complex64; expected real intensities (bool,
    integer or float)"``."""
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{path}: {what} has dtype {arr.dtype}; expected real intensities (bool, integer or float)")
    return arr


def check_finite(arr: np.ndarray, path: PathLike, what: str = "prediction",
                 expected: str = "probabilities in [0, 1] everywhere", unit: Optional[str] = None) -> np.ndarray:
    """``arr`` unchanged when it holds no NaN or infinite value (always so for integer dtypes).

    Raises:
        ValueError: ``"<path>: <what> contains non-finite values (3 NaN and 2 infinite of 1024
            pixels); expected <expected>"`` (both counts, a zero one left out; ``unit`` default:
            voxels for an array of 3 or more dimensions).
    """
    found = nonfinite_counts(arr)
    if found:
        unit = unit or ("pixels" if arr.ndim <= 2 else "voxels")
        raise ValueError(f"{path}: {what} contains non-finite values ({found} of {arr.size} "
                         f"{unit[:-1] if arr.size == 1 else unit}); expected {expected}")
    return arr


def prediction_probabilities(arr: np.ndarray, path: PathLike) -> np.ndarray:
    """float32 foreground probabilities of a prediction file's array: a binary mask (see
    :func:`binary_mask`) as 0/1; uint8/uint16 images scaled by 255/65535 (``toposeg predict``
    writes PNG probabilities as 8-bit); floats as they are, which must lie in [0, 1].

    Raises:
        ValueError: other integer dtypes (e.g. an id map), NaN or infinite values ("contains
            non-finite values (n NaN of N pixels)", :func:`check_finite`), out-of-range floats, other dtypes; the message
            quotes the values found.
    """
    mask = binary_mask(arr)
    if mask is not None:
        return mask.astype(np.float32)
    if arr.dtype in (np.uint8, np.uint16):
        return (arr.astype(np.float64) / np.iinfo(arr.dtype).max).astype(np.float32)
    if arr.dtype.kind in "ui":
        raise ValueError(f"{path}: integer prediction of dtype {arr.dtype} is neither binary nor 8/16-bit; expected "
                         f"a binary mask (0/1, 0/255, bool) or probabilities, found values {_values(arr)}")
    if arr.dtype.kind != "f":
        raise ValueError(f"{path}: cannot read a prediction of dtype {arr.dtype}")
    check_finite(arr, path)
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{path}: prediction must hold probabilities in [0, 1], got values in "
                         f"[{np.nanmin(arr):.4g}, {np.nanmax(arr):.4g}] (pass sigmoid(logits))")
    return arr.astype(np.float32)


def read_prediction_mask(path: PathLike, threshold: Optional[float] = None) -> np.ndarray:
    """Bool mask of a prediction file: a binary mask as it is; a probability map
    (:func:`prediction_probabilities`) as ``probability > threshold``, which then must be given.
    Grey RGB(A) PNGs are reduced to one channel, colour images refused (:func:`grey_mask`)."""
    arr = check_finite(grey_mask(read_array(path), path, "prediction"), path)
    mask = binary_mask(arr)
    if mask is not None:
        return mask
    if threshold is None:
        raise ValueError(f"{path}: prediction is not a binary mask (0/1 or 0/255), found values {_values(arr)}; "
                         "pass --threshold T to binarise probability maps")
    return prediction_probabilities(arr, path) > threshold


# ---------------------------------------------------------------- folders


def image_files(folder: PathLike, what: str = "image") -> list[Path]:
    """Sorted supported image files directly in ``folder`` (hidden files and other types ignored).

    ``what`` names the folder in messages (e.g. ``"image"``, ``"--pred"``).

    Raises:
        FileNotFoundError: ``"<what> folder not found: <folder>"``.
        NotADirectoryError: ``folder`` is a file.
        ValueError: ``"<what> folder <folder>: no image files found (supported: ...)"``.
    """
    folder = Path(folder)
    if folder.is_file():
        raise NotADirectoryError(f"{what} {folder}: is a file, expected a folder")
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {folder}")
    files = sorted(p for p in folder.iterdir()
                   if not p.name.startswith(".") and p.is_file() and extension(p) in EXTENSIONS)
    if not files:
        raise ValueError(f"{what} folder {folder}: no image files found (supported: {', '.join(EXTENSIONS)})")
    return files


def index_by_stem(files: Iterable[Path], what: str = "image", suffix: str = "") -> dict[str, Path]:
    """``{stem: path}``; ``suffix`` is removed from stems that end with it (e.g. ``"_mask"``).

    Raises:
        ValueError: two files give the same stem (``"several files share a name: a.png / a.tif"``).
    """
    found: dict[str, Path] = {}
    clashes = []
    for p in files:
        key = stem(p)
        if suffix and key.endswith(suffix):
            key = key[: -len(suffix)]
        if key in found:
            clashes.append(f"{found[key].name} / {p.name}")
        else:
            found[key] = p
    if clashes:
        raise ValueError(f"{what}: several files share a name: {', '.join(clashes)}")
    return found


def list_images(folder: PathLike, what: str = "image", *, suffix: str = "") -> dict[str, Path]:
    """Supported image files in ``folder`` by stem: :func:`image_files` + :func:`index_by_stem`."""
    folder = Path(folder)
    try:
        return index_by_stem(image_files(folder, what), what, suffix)
    except ValueError as exc:
        if "several files share a name" in str(exc):
            raise ValueError(f"{folder}: {str(exc).split(': ', 1)[1]}") from None
        raise


def short_list(names: Sequence[str], limit: int = 10) -> str:
    """``"a, b, c ... (+n more)"``: a list of names for an error message."""
    names = list(names)
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def pair_by_stem(
    first: dict[str, Path],
    second: dict[str, Path],
    where: str,
    *,
    missing: tuple[str, str] = ("images without a label", "labels without an image"),
    subset: bool = False,
    suffix_note: Optional[str] = None,
) -> list[tuple[str, Path, Path]]:
    """``[(id, first path, second path)]`` for the stems in both, sorted by id.

    Args:
        first, second: ``{stem: path}`` (from :func:`list_images`).
        where: prefix of error messages (e.g. the data root).
        missing: how to call files of ``first`` without a partner and files of ``second``
            without a partner, in messages.
        subset: keep only the stems present in both instead of refusing unpaired files.
        suffix_note: a suffix stripped before pairing, named in the "no matching pairs" message.

    Raises:
        ValueError: no stem in common ("no matching pairs", listing both sides), or, unless
            ``subset``, any file without a partner ("unpaired files; <missing[0]>: ...;
            <missing[1]>: ...").
    """
    common = sorted(set(first) & set(second))
    if not common:
        how = "by name without extension" + (f" and without the suffix {suffix_note!r}" if suffix_note else "")
        raise ValueError(f"{where}: no matching pairs between {short_list([p.name for p in first.values()])} and "
                         f"{short_list([p.name for p in second.values()])} (files are paired {how})")
    lonely_a = sorted(set(first) - set(second))
    lonely_b = sorted(set(second) - set(first))
    if (lonely_a or lonely_b) and not subset:
        parts = []
        if lonely_a:
            parts.append(f"{missing[0]}: {short_list([first[k].name for k in lonely_a])}")
        if lonely_b:
            parts.append(f"{missing[1]}: {short_list([second[k].name for k in lonely_b])}")
        raise ValueError(f"{where}: unpaired files; " + "; ".join(parts))
    return [(k, first[k], second[k]) for k in common]


__all__ = ["EXTENSIONS", "MissingExtraError", "binary_mask", "check_finite", "check_readable", "extension", "grey_mask",
           "image_files", "index_by_stem", "list_images", "missing_extra_message", "pair_by_stem", "prediction_probabilities",
           "read_array", "read_prediction_mask", "stem", "write_array"]

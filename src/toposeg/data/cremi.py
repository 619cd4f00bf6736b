"""CREMI (HDF5): ``volumes/raw`` and ``volumes/labels/neuron_ids``, one 2D case per section.

The label is a membrane mask derived from the neuron ids with
:func:`toposeg.data.labels.membranes_from_ids`, section by section: pixels within ``width``
pixels across a boundary between two different ids (default 5, about the paper's width), plus
pixels whose id is a *background* id. Background convention: ids in ``background_ids`` (default:
0 and the two largest uint64 values, used for "no neuron / unlabelled" in CREMI-derived files)
are not neurons; they count as membrane (foreground), and they are reported per case in
``case.meta["background_fraction"]``. Pass ``background_ids=()`` to treat every id as a neuron.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from toposeg.data.case import Case
from toposeg.data.labels import membranes_from_ids
from toposeg.data.lazy import LazyCases

RAW = "volumes/raw"
IDS = "volumes/labels/neuron_ids"
HDF5_EXTENSIONS = (".hdf", ".h5", ".hdf5")
DEFAULT_BACKGROUND = (0, 2**64 - 1, 2**64 - 2)


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading CREMI files needs h5py: pip install 'toposeg[io]'") from exc
    return h5py


def _shapes(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in (RAW, IDS) if k not in f]
            if missing:
                raise ValueError(f"{path}: not a CREMI file, missing dataset(s) {missing}")
            return tuple(f[RAW].shape), tuple(f[IDS].shape)
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: could not read HDF5 ({type(exc).__name__}: {exc})") from exc


def _usable_ids(ids_dtype: np.dtype, background_ids: Sequence[int]) -> list[int]:
    if not np.issubdtype(ids_dtype, np.integer):
        return list(background_ids)
    info = np.iinfo(ids_dtype)
    return [int(b) for b in background_ids if info.min <= int(b) <= info.max]


def _read_section(path: Path, z: int, width: int, background_ids: tuple[int, ...], case_id: str) -> Case:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            raw = np.asarray(f[RAW][z])
            ids = np.asarray(f[IDS][z])
    except Exception as exc:
        raise ValueError(f"{path}: could not read section {z} ({type(exc).__name__}: {exc})") from exc
    bg = _usable_ids(ids.dtype, background_ids)
    label = membranes_from_ids(ids, width, background_ids=bg)
    frac = float(np.isin(ids, np.asarray(bg, dtype=ids.dtype)).mean()) if bg else 0.0
    return Case(id=case_id, image=raw.astype(np.float32)[None], label=label,
                meta={"image_path": str(path), "section": z, "background_fraction": frac})


def _read_indexed(entries: list[tuple[str, Path, int]], width: int, background_ids: tuple[int, ...], i: int) -> Case:
    case_id, path, z = entries[i]
    return _read_section(path, z, width, background_ids, case_id)


def open_cremi(root, *, width: int = 5, background_ids: Sequence[int] = DEFAULT_BACKGROUND) -> LazyCases:
    """Sections of one CREMI file or of every ``*.hdf``/``*.h5``/``*.hdf5`` in a folder, ids
    ``"<file stem>_<z:03d>"``. Raw and label volumes must have the same shape (use the
    unpadded training files)."""
    if root is None:
        raise ValueError("open_dataset('cremi') needs a data root (an HDF5 file or a folder), got root=None")
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"cremi: data root not found: {root}")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    files = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.suffix.lower() in HDF5_EXTENSIONS)
    if not files:
        raise ValueError(f"cremi: no HDF5 files ({', '.join(HDF5_EXTENSIONS)}) in {root}")
    entries = []
    for path in files:
        raw_shape, ids_shape = _shapes(path)
        if raw_shape != ids_shape or len(raw_shape) != 3:
            raise ValueError(f"{path}: {RAW} shape {raw_shape} does not match {IDS} shape {ids_shape} "
                             "(3D volumes of equal shape expected; padded CREMI files are not supported)")
        entries += [(f"{path.stem}_{z:03d}", path, z) for z in range(raw_shape[0])]
    return LazyCases([e[0] for e in entries], partial(_read_indexed, entries, int(width), tuple(background_ids)),
                     description=f"cremi {root}")

"""CREMI (HDF5): ``volumes/raw`` and ``volumes/labels/neuron_ids``, one 2D case per section.

The label is a membrane mask derived from the neuron ids with
:func:`toposeg.data.labels.membranes_from_ids`, section by section: pixels within ``width``
pixels across a boundary between two different ids (default 5, about the paper's width), plus
pixels whose id is a *background* id. Ids are compared exactly (uint64 ids above 2**53 too).
Background convention: ids in ``background_ids`` (default: 0 and the two largest uint64 values,
used for "no neuron / unlabelled" in CREMI-derived files) are not neurons; they count as
membrane (foreground), and they are reported per case in ``case.meta["background_fraction"]``.
Pass ``background_ids=()`` to treat every id as a neuron.

Both CREMI releases are read: the *cropped* files (raw and labels of equal shape) and the
*padded* ones, whose raw volume carries extra context around the labelled block. In the padded
files (https://cremi.org/data/) every volume has a ``resolution`` attribute (nm per voxel,
``(z, y, x)``) and the label volume an ``offset`` attribute (nm, ``(z, y, x)``) that marks where
it starts in the raw volume; the raw volume is cropped to the labelled block
``offset / resolution`` (e.g. ``(37, 911, 911)`` voxels for ``(1480, 3644, 3644)`` nm at
``(40, 4, 4)`` nm), so a padded file gives the same cases as its cropped twin.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from toposeg.data.case import Case
from toposeg.data.files import as_root, refuse_empty_files
from toposeg.data.labels import ids_in, membranes_from_ids
from toposeg.data.lazy import LazyCases

RAW = "volumes/raw"
IDS = "volumes/labels/neuron_ids"
HDF5_EXTENSIONS = (".hdf", ".h5", ".hdf5")
DEFAULT_BACKGROUND = (0, 2**64 - 1, 2**64 - 2)
LABEL_FOREGROUND = "nonzero"  # of the membrane masks toposeg derives and writes (see LazyCases)


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading CREMI files needs h5py: pip install 'toposeg[io]'") from exc
    return h5py


def _vector(attrs, key: str, path: Path, name: str) -> Optional[np.ndarray]:
    if key not in attrs:
        return None
    value = np.asarray(attrs[key], dtype=np.float64).reshape(-1)
    if value.size != 3 or not np.isfinite(value).all():
        raise ValueError(f"{path}: {name} attribute {key!r} must be 3 finite numbers (z, y, x), got {attrs[key]!r}")
    return value


def label_offset(path: Path, raw_shape: Sequence[int], ids_shape: Sequence[int], raw_attrs, ids_attrs) -> tuple[int, int, int]:
    """Voxel offset ``(z, y, x)`` of the label block inside the raw volume.

    ``(0, 0, 0)`` for equal shapes (cropped files, whatever their attributes say); otherwise
    ``(labels.offset - raw.offset) / resolution`` (nm; raw offset 0 when absent), which must be
    whole voxels and keep the label block inside the raw volume.

    Raises:
        ValueError: shapes that differ without an ``offset``; an offset without a
            ``resolution``; resolutions of raw and labels that differ; an offset that is not a
            whole number of voxels, is negative, or puts the labels outside the raw volume.
    """
    where = f"{path}: {IDS} shape {tuple(ids_shape)} inside {RAW} shape {tuple(raw_shape)}"
    if len(raw_shape) != 3 or len(ids_shape) != 3:
        raise ValueError(f"{path}: {RAW} shape {tuple(raw_shape)} and {IDS} shape {tuple(ids_shape)} must be 3D volumes")
    offset = _vector(ids_attrs, "offset", path, IDS)
    if tuple(raw_shape) == tuple(ids_shape):
        return (0, 0, 0)  # same block (a cropped file may keep the offset of the padded one)
    if offset is None:
        if tuple(raw_shape) != tuple(ids_shape):
            raise ValueError(f"{path}: {RAW} shape {tuple(raw_shape)} does not match {IDS} shape {tuple(ids_shape)} "
                             f"and {IDS} has no 'offset' attribute (nm, z y x) that places the labels in the raw "
                             "volume, as the padded CREMI files have")
        return (0, 0, 0)
    res_ids = _vector(ids_attrs, "resolution", path, IDS)
    res_raw = _vector(raw_attrs, "resolution", path, RAW)
    if res_ids is not None and res_raw is not None and not np.allclose(res_ids, res_raw):
        raise ValueError(f"{path}: resolution of {RAW} {res_raw.tolist()} and {IDS} {res_ids.tolist()} differ "
                         "(resampling is not supported)")
    resolution = res_raw if res_raw is not None else res_ids
    if resolution is None:
        raise ValueError(f"{path}: {IDS} has an 'offset' attribute {offset.tolist()} (nm) but no volume has a "
                         "'resolution' attribute (nm per voxel) to convert it to voxels")
    if (resolution <= 0).any():
        raise ValueError(f"{path}: resolution must be positive, got {resolution.tolist()}")
    raw_offset = _vector(raw_attrs, "offset", path, RAW)
    nm = offset - (raw_offset if raw_offset is not None else 0.0)
    vox = nm / resolution
    whole = np.round(vox)
    if not np.allclose(vox, whole, atol=1e-6):
        raise ValueError(f"{where}: label offset {nm.tolist()} nm is not a whole number of voxels of "
                         f"{resolution.tolist()} nm ({vox.tolist()})")
    start = tuple(int(v) for v in whole)
    if min(start) < 0 or any(s + n > r for s, n, r in zip(start, ids_shape, raw_shape)):
        raise ValueError(f"{where}: the label offset {list(start)} voxels puts the labels outside the raw volume")
    return start  # type: ignore[return-value]


def _layout(path: Path) -> tuple[int, tuple[int, int, int]]:
    """(number of labelled sections, voxel offset of the labels in raw)."""
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in (RAW, IDS) if k not in f]
            if missing:
                raise ValueError(f"{path}: not a CREMI file, missing dataset(s) {missing}")
            raw, ids = f[RAW], f[IDS]
            start = label_offset(path, raw.shape, ids.shape, dict(raw.attrs), dict(ids.attrs))
            return int(ids.shape[0]), start
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: could not read HDF5 ({type(exc).__name__}: {exc})") from exc


def _read_section(path: Path, z: int, start: tuple[int, int, int], width: int, background_ids: tuple[int, ...],
                  case_id: str) -> Case:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as f:
            ids = np.asarray(f[IDS][z])
            z0, y0, x0 = start
            raw = np.asarray(f[RAW][z0 + z, y0:y0 + ids.shape[0], x0:x0 + ids.shape[1]])
    except Exception as exc:
        raise ValueError(f"{path}: could not read section {z} ({type(exc).__name__}: {exc})") from exc
    label = membranes_from_ids(ids, width, background_ids=background_ids)
    frac = float(ids_in(ids, background_ids).mean()) if background_ids else 0.0
    meta = {"image_path": str(path), "section": z, "background_fraction": frac}
    if any(start):
        meta["raw_offset"] = tuple(start)  # voxels (z, y, x) of the labels in the padded raw volume
    return Case(id=case_id, image=raw.astype(np.float32)[None], label=label, meta=meta)


def _read_indexed(entries: list[tuple[str, Path, int, tuple[int, int, int]]], width: int,
                  background_ids: tuple[int, ...], i: int) -> Case:
    case_id, path, z, start = entries[i]
    return _read_section(path, z, start, width, background_ids, case_id)


def open_cremi(root, *, width: int = 5, background_ids: Sequence[int] = DEFAULT_BACKGROUND) -> LazyCases:
    """Sections of one CREMI file or of every ``*.hdf``/``*.h5``/``*.hdf5`` in a folder, ids
    ``"<file stem>_<z:03d>"`` (``z`` counts labelled sections). Cropped and padded CREMI files
    are both read (see the module docstring); ``dataset.label_foreground == "nonzero"``.

    Raises:
        ValueError: no root / no HDF5 files / a 0-byte file / not a CREMI file / labels that
            cannot be placed in the raw volume (each message names the file); a bad ``width``.
        FileNotFoundError: ``root`` missing.
    """
    if root is None:
        raise ValueError("open_dataset('cremi') needs a data root (an HDF5 file or a folder), got root=None")
    root = as_root(root, "cremi")
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    files = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.suffix.lower() in HDF5_EXTENSIONS)
    if not files:
        raise ValueError(f"cremi: no HDF5 files ({', '.join(HDF5_EXTENSIONS)}) in {root}")
    refuse_empty_files(files, f"cremi {root}")
    entries = []
    for path in files:
        n, start = _layout(path)
        entries += [(f"{path.stem}_{z:03d}", path, z, start) for z in range(n)]
    bg = tuple(int(b) for b in background_ids)
    return LazyCases([e[0] for e in entries], partial(_read_indexed, entries, int(width), bg),
                     description=f"cremi {root}", label_foreground=LABEL_FOREGROUND,
                     label_source=f"membranes between neuron ids (width {int(width)} px; background ids {list(bg)} "
                                  "count as membrane)")

"""Cubical persistent homology of 2D images / 3D volumes and its critical pixels.

Backend: `cripser <https://github.com/shizuo-kaji/CubicalRipser_3dim>`_ (``tcripser``, the
T-construction), cross-checked against gudhi's ``CubicalComplex`` in the tests.

Conventions
-----------
* **T-construction**: every pixel/voxel is a top-dimensional cell carrying its value; lower
  cells get the minimum of the top cells around them (gudhi's ``top_dimensional_cells``).
  A sublevel set is therefore a union of *closed* squares/cubes, so two pixels touching at a
  corner are connected: the sublevel set is 8-connected in 2D (26 in 3D) and its complement
  4-connected (6 in 3D). This is the dual pair used for Betti numbers of the foreground in
  :mod:`toposeg.metrics` (foreground 8/26, background 4/6).
* **Superlevel filtration** (``superlevel=True``): foreground is *high* probability, so the
  natural filtration grows the set ``{p >= s}`` while ``s`` decreases. It is computed as the
  sublevel filtration of ``-values``; births/deaths are reported back in the original values
  (a class is born at the high value and dies at a lower one), so for superlevel pairs
  ``birth >= death`` and essential classes have ``death = -inf``. Components/loops of the
  *foreground* then use 8/26-connectivity.
* **Coordinates** are plain array indices in the array's own axis order (``(row, col)`` in 2D,
  ``(depth, row, col)`` in 3D); the array is handed to the library as is (C-contiguous, never
  transposed), so non-square and non-cubic inputs keep their geometry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

import numpy as np

from toposeg._checks import describe
from toposeg.io import nonfinite_counts

_INF_CUTOFF = 1e300


@dataclass(frozen=True)
class PersistencePairs:
    """Persistence pairs of a cubical filtration.

    Attributes:
        dim: ``(n,)`` homology dimension of each pair.
        birth, death: ``(n,)`` filtration values (``±inf`` death for essential classes).
        birth_index, death_index: ``(n, ndim)`` integer array indices of the pixel that creates
            / destroys the class (the death index of an essential class is meaningless, -1).
    """

    dim: np.ndarray
    birth: np.ndarray
    death: np.ndarray
    birth_index: np.ndarray
    death_index: np.ndarray

    def __len__(self) -> int:
        return int(self.dim.shape[0])

    @property
    def finite(self) -> np.ndarray:
        """Bool ``(n,)``: pairs with a finite death."""
        return np.isfinite(self.death)

    def diagram(self, dim: int) -> np.ndarray:
        """``(m, 2)`` array of (birth, death) of dimension ``dim``, sorted (for comparisons)."""
        sel = self.dim == dim
        d = np.stack([self.birth[sel], self.death[sel]], axis=1)
        return d[np.lexsort((d[:, 1], d[:, 0]))] if len(d) else d.reshape(0, 2)


def _check_values(values: object, name: str = "values") -> np.ndarray:
    if not isinstance(values, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (H, W) or (D, H, W), got {describe(values)}")
    if values.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2D (H, W) or 3D (D, H, W), got shape {values.shape}")
    if values.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {values.dtype}")
    arr = values.astype(np.float64)
    if not np.isfinite(arr).all():
        found = nonfinite_counts(arr)
        raise ValueError(f"{name} contains NaN or infinite values ({found} of {arr.size}; {describe(values)})")
    return np.ascontiguousarray(arr)


def persistence_pairs(values: np.ndarray, *, superlevel: bool = False, maxdim: Optional[int] = None) -> PersistencePairs:
    """Cubical persistence pairs (T-construction) of a 2D/3D array.

    Args:
        values: ``(H, W)`` or ``(D, H, W)`` numeric array.
        superlevel: filter by superlevel sets ``{values >= s}`` (foreground = high values)
            instead of sublevel sets ``{values <= s}``.
        maxdim: highest homology dimension (default ``values.ndim - 1``).
    """
    arr = _check_values(values)
    nd = arr.ndim
    if maxdim is None:
        maxdim = nd - 1
    if not isinstance(maxdim, (int, np.integer)) or not 0 <= int(maxdim) < nd:
        raise ValueError(f"maxdim must be an integer in [0, {nd - 1}] for a {nd}D array, got {maxdim!r}")
    import cripser

    sign = -1.0 if superlevel else 1.0
    out = np.asarray(cripser.computePH_T(np.ascontiguousarray(sign * arr), maxdim=int(maxdim)))
    if out.size == 0:
        out = out.reshape(0, 9)
    dim = out[:, 0].astype(np.int64)
    birth = out[:, 1].copy()
    death = out[:, 2].copy()
    essential = death >= _INF_CUTOFF
    death[essential] = np.inf
    birth_index = out[:, 3:3 + nd].astype(np.int64)
    death_index = out[:, 6:6 + nd].astype(np.int64)
    death_index[essential] = -1
    return PersistencePairs(dim=dim, birth=sign * birth, death=sign * death,
                            birth_index=birth_index, death_index=death_index)


def _check_dims(dims: Iterable[int], ndim: int) -> tuple[int, ...]:
    if isinstance(dims, (int, np.integer)):
        dims = (dims,)
    try:
        items = list(dims)
    except TypeError:
        raise TypeError(f"dims must be an iterable of homology dimensions, got {dims!r}") from None
    valid = tuple(range(ndim))
    if not items or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d not in valid for d in items):
        raise ValueError(f"dims must be a non-empty subset of {valid} for {ndim}D inputs, got {dims!r}")
    return tuple(sorted({int(d) for d in items}))


def critical_pixels(values: np.ndarray, *, dims: Iterable[int] = (0, 1), superlevel: bool = True) -> np.ndarray:
    """Bool mask of the birth and death pixels of the *finite* persistence pairs in ``dims``.

    Pairs of zero persistence are never reported by the library; essential classes (infinite
    death) have no death pixel and are left out, as in PHPM (eq. 5).
    """
    arr = _check_values(values)
    dims = _check_dims(dims, arr.ndim)
    pairs = persistence_pairs(arr, superlevel=superlevel, maxdim=max(dims))
    sel = np.isin(pairs.dim, dims) & pairs.finite
    mask = np.zeros(arr.shape, dtype=bool)
    if sel.any():
        mask[tuple(pairs.birth_index[sel].T)] = True
        mask[tuple(pairs.death_index[sel].T)] = True
    return mask


__all__ = ["PersistencePairs", "critical_pixels", "persistence_pairs"]

"""Betti numbers and Euler characteristic of binary masks with a declared dual connectivity pair.

``connectivity`` always names the *foreground* connectivity; the background uses the dual one:

=====  ==========================  ==========================
dims   default (foreground/bg)     opposite pair (option)
=====  ==========================  ==========================
2D     8 / 4                       4 / 8
3D     26 / 6                      6 / 26
=====  ==========================  ==========================

The default pair is the one of cubical homology of the binary image in which every foreground
pixel/voxel is a closed unit square/cube (gudhi ``CubicalComplex(top_dimensional_cells=...)``
with value 0 on the foreground, 1 on the background, homology of the sublevel set at 0). The
opposite pair is the one of the complex built on pixel *vertices* (gudhi ``vertices=...``).

Counting (``m`` = mask, outside the image is background):

- β0 = number of foreground components (foreground connectivity);
- last Betti number (β1 in 2D, β2 in 3D) = number of *bounded* background components
  (background connectivity; components touching the image border are part of the unbounded
  outside, since everything outside the image is background);
- 3D: β1 = β0 + β2 − χ, with χ the Euler characteristic of the foreground, counted on the
  cubical complex of the same construction (equal to ``skimage.measure.euler_number`` with
  the foreground connectivity; tested).
"""

from __future__ import annotations

import itertools
from typing import Optional

import numpy as np
from scipy import ndimage

from toposeg.topology._inputs import as_mask

#: valid foreground connectivities per spatial ndim -> dual background connectivity
CONNECTIVITIES: dict[int, dict[int, int]] = {2: {8: 4, 4: 8}, 3: {26: 6, 6: 26}}
#: default foreground connectivity per spatial ndim (agrees with cubical homology)
DEFAULT_CONNECTIVITY: dict[int, int] = {2: 8, 3: 26}
_FULL = {8, 26}


def resolve_connectivity(ndim: int, connectivity: Optional[int] = None) -> tuple[int, int]:
    """``(foreground, background)`` connectivity for a ``ndim``-D mask (None = default pair)."""
    if ndim not in CONNECTIVITIES:
        raise ValueError(f"masks must be 2D or 3D, got {ndim} dims")
    fg = DEFAULT_CONNECTIVITY[ndim] if connectivity is None else connectivity
    if isinstance(fg, bool) or fg not in CONNECTIVITIES[ndim]:
        raise ValueError(
            f"connectivity for a {ndim}D mask must be one of {sorted(CONNECTIVITIES[ndim])} "
            f"(foreground connectivity; the background uses the dual), got {connectivity!r}"
        )
    return int(fg), CONNECTIVITIES[ndim][fg]


def structure(ndim: int, conn: int) -> np.ndarray:
    """SciPy structuring element: 8/26 = full neighbourhood, 4/6 = face neighbours."""
    return ndimage.generate_binary_structure(ndim, ndim if conn in _FULL else 1)


def connected_components(mask: np.ndarray, conn: int) -> tuple[np.ndarray, int]:
    """``(labels int32, count)`` of the True pixels of a bool array with connectivity ``conn``."""
    labels, n = ndimage.label(mask, structure=structure(mask.ndim, conn))
    return labels, int(n)


def _euler(m: np.ndarray, fg: int) -> int:
    """χ of the foreground by counting cells of the cubical complex (vectorised, any ndim).

    Full connectivity (8/26): the union of closed pixels/voxels. A cell spanned by the axes S
    (size-2 window along S, 1 elsewhere, on the background-padded array) exists when *any*
    pixel of its window is foreground, and has dimension d − |S|.
    Face connectivity (4/6): pixels are vertices; the cell spanned by S has dimension |S| and
    exists when *all* pixels of its window are foreground.
    """
    full = fg in _FULL
    x = np.pad(m, 1) if full else m
    d = m.ndim
    chi = 0
    for r in range(d + 1):
        for axes in itertools.combinations(range(d), r):
            w = x
            for a in axes:
                lo = [slice(None)] * d
                hi = [slice(None)] * d
                lo[a], hi[a] = slice(None, -1), slice(1, None)
                w = (w[tuple(lo)] | w[tuple(hi)]) if full else (w[tuple(lo)] & w[tuple(hi)])
            dim = d - r if full else r
            chi += (-1) ** dim * int(np.count_nonzero(w))
    return chi


def euler_characteristic(mask: np.ndarray, connectivity: Optional[int] = None) -> int:
    """Euler characteristic χ of the foreground with the given foreground connectivity.

    χ = β0 − β1 (2D) and β0 − β1 + β2 (3D).
    """
    m = as_mask(mask, "mask")
    fg, _ = resolve_connectivity(m.ndim, connectivity)
    return _euler(m, fg)


def bounded_components(labels: np.ndarray, n: int) -> int:
    """How many of the ``n`` labelled components (labels 1..n) do not touch the array border."""
    border = np.zeros(n + 1, bool)
    for axis in range(labels.ndim):
        for index in (0, -1):
            border[np.take(labels, index, axis=axis).reshape(-1)] = True
    return int(n - np.count_nonzero(border[1:]))


def _betti(m: np.ndarray, fg: int, bg: int, chi: Optional[int] = None,
           bg_labels: Optional[tuple[np.ndarray, int]] = None) -> tuple[int, ...]:
    """Betti numbers; ``bg_labels`` = precomputed ``connected_components(~m, bg)`` (reused)."""
    b0 = connected_components(m, fg)[1]
    # background components touching the border belong to the unbounded outside (the image is
    # surrounded by background); the others are holes (2D) / cavities (3D)
    labels, n = connected_components(~m, bg) if bg_labels is None else bg_labels
    bounded = bounded_components(labels, n)
    if m.ndim == 2:
        return b0, bounded
    chi = _euler(m, fg) if chi is None else chi
    return b0, b0 + bounded - chi, bounded


def betti_numbers(mask: np.ndarray, *, connectivity: Optional[int] = None) -> tuple[int, ...]:
    """``(β0, β1)`` of a 2D mask, ``(β0, β1, β2)`` of a 3D mask.

    Args:
        mask: bool or {0, 1} NumPy array / tensor, 2D ``(H, W)`` or 3D ``(D, H, W)``.
        connectivity: foreground connectivity (2D: 8 or 4; 3D: 26 or 6); None = the default pair
            (8/4 in 2D, 26/6 in 3D); the background uses the dual.
    """
    m = as_mask(mask, "mask")
    fg, bg = resolve_connectivity(m.ndim, connectivity)
    return _betti(m, fg, bg)

"""Betti numbers of binary masks with a declared dual connectivity pair.

Default pair (agrees with cubical homology of the binary image): 2D foreground 8 / background 4;
3D foreground 26 / background 6. ``connectivity`` names the *foreground* connectivity
(2D: 8 or 4; 3D: 26 or 6); the background uses the dual.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from toposeg.metrics._inputs import as_mask

_DUAL = {2: {8: 4, 4: 8}, 3: {26: 6, 6: 26}}
_DEFAULT = {2: 8, 3: 26}


def _structure(ndim: int, conn: int) -> np.ndarray:
    # full connectivity (8 / 26) = rank ndim; face connectivity (4 / 6) = rank 1
    return ndimage.generate_binary_structure(ndim, ndim if conn in (8, 26) else 1)


def resolve_connectivity(ndim: int, connectivity: Optional[int]) -> tuple[int, int]:
    fg = _DEFAULT[ndim] if connectivity is None else connectivity
    if fg not in _DUAL[ndim]:
        raise ValueError(f"connectivity for {ndim}D must be one of {sorted(_DUAL[ndim])}, got {connectivity!r}")
    return fg, _DUAL[ndim][fg]


def _n_components(mask: np.ndarray, conn: int) -> int:
    return int(ndimage.label(mask, structure=_structure(mask.ndim, conn))[1])


def euler_characteristic(mask: np.ndarray, connectivity: Optional[int] = None) -> int:
    """Euler characteristic of the foreground with the given foreground connectivity."""
    from skimage.measure import euler_number

    m = as_mask(mask, "mask")
    fg, _ = resolve_connectivity(m.ndim, connectivity)
    return int(euler_number(m, connectivity=m.ndim if fg in (8, 26) else 1))


def betti_numbers(mask: np.ndarray, *, connectivity: Optional[int] = None) -> tuple[int, ...]:
    """(β0, β1) in 2D, (β0, β1, β2) in 3D.

    β0 = foreground components; the last Betti number = bounded background components (holes in
    2D, cavities in 3D), counted after padding with background; in 3D β1 = β0 + β2 − χ.
    """
    m = as_mask(mask, "mask")
    fg, bg = resolve_connectivity(m.ndim, connectivity)
    b0 = _n_components(m, fg)
    holes = _n_components(np.pad(~m, 1, constant_values=True), bg) - 1
    if m.ndim == 2:
        return b0, holes
    chi = euler_characteristic(m, fg)
    return b0, b0 + holes - chi, holes


def betti_errors(pred: np.ndarray, target: np.ndarray, *, connectivity: Optional[int] = None) -> tuple[int, ...]:
    """|β_k(pred) − β_k(target)| for each k."""
    bp = betti_numbers(pred, connectivity=connectivity)
    bt = betti_numbers(target, connectivity=connectivity)
    return tuple(abs(a - b) for a, b in zip(bp, bt))

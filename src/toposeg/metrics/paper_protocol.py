"""The paper's evaluation clean-up, for the one labelled "paper protocol" score row.

The official evaluation of Zhang, Dong & Li (BMVC 2023) removes, in 2D, foreground objects of
fewer than 100 pixels and fills holes of fewer than 10 pixels in **both** the prediction and the
ground truth before scoring (scikit-image's ``remove_small_objects`` / ``remove_small_holes`` with
their default connectivity 1). toposeg scores raw masks by default and never alters a ground
truth anywhere else; this module exists only so that a table can carry a clearly labelled extra
row that compares with the paper's numbers. No official 3D rule is known, so 3D inputs are
refused.
"""

from __future__ import annotations

import inspect

import numpy as np

from toposeg.metrics._inputs import as_mask

#: Objects with fewer pixels than this are removed (the paper's evaluation).
MIN_OBJECT_SIZE = 100
#: Holes with fewer pixels than this are filled (the paper's evaluation).
MIN_HOLE_SIZE = 10


def _strictly_smaller_kwargs(fn, old_name: str, size: int) -> dict:
    """Keyword arguments that make scikit-image remove components of *fewer* than ``size`` pixels.

    scikit-image >= 0.26 names the threshold ``max_size`` and removes components of size <=
    ``max_size``; older releases name it ``min_size`` / ``area_threshold`` and remove size < it.
    """
    if "max_size" in inspect.signature(fn).parameters:
        return {"max_size": size - 1}
    return {old_name: size}


def paper_clean(mask, *, name: str = "mask") -> np.ndarray:
    """Copy of a 2D binary mask with objects < 100 px removed and holes < 10 px filled.

    Args:
        mask: 2D ``(H, W)`` binary array or tensor (bool or 0/1).
        name: how errors refer to the input.

    Returns:
        A new bool ``(H, W)`` array; the input is not modified.

    Raises:
        ValueError: not 2D, or not binary.

    Source: the official evaluation of the SHPM paper (objects < 100 px, holes < 10 px,
    connectivity 1, scikit-image).
    """
    from skimage.morphology import remove_small_holes, remove_small_objects

    m = as_mask(mask, name)
    if m.ndim != 2:
        raise ValueError(f"{name}: the paper protocol clean-up is defined for 2D masks only, got shape {m.shape}")
    out = remove_small_objects(m, connectivity=1,
                               **_strictly_smaller_kwargs(remove_small_objects, "min_size", MIN_OBJECT_SIZE))
    return remove_small_holes(out, connectivity=1,
                              **_strictly_smaller_kwargs(remove_small_holes, "area_threshold", MIN_HOLE_SIZE))

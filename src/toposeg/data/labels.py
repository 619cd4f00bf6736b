"""Label conversions shared by loaders and generators."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
from scipy import ndimage

FOREGROUND_RULES = ("nonzero", "bright", "dark")


def binarize(label: np.ndarray, rule: str, *, name: str = "label") -> np.ndarray:
    """Bool foreground mask of a label image by ``rule``.

    ``"nonzero"``: ``label != 0``; ``"bright"``: ``label >= mid``; ``"dark"``: ``label < mid``,
    where ``mid`` is half the dtype's range for integers (128 for uint8, 32768 for uint16) and
    0.5 for floats and bools.
    """
    if rule not in FOREGROUND_RULES:
        raise ValueError(f"foreground must be one of {list(FOREGROUND_RULES)}, got {rule!r}")
    if label.dtype == bool:
        return label.copy() if rule != "dark" else ~label
    if rule == "nonzero":
        return label != 0
    if np.issubdtype(label.dtype, np.integer):
        info = np.iinfo(label.dtype)
        mid = (int(info.max) + int(info.min) + 1) / 2 if info.min < 0 else (int(info.max) + 1) / 2
    elif np.issubdtype(label.dtype, np.floating):
        mid = 0.5
    else:
        raise TypeError(f"{name}: cannot binarize a label of dtype {label.dtype}")
    return label >= mid if rule == "bright" else label < mid


def membranes_from_ids(
    ids: np.ndarray, width: Union[int, np.ndarray] = 5, *, background_ids: Sequence[int] = (),
) -> np.ndarray:
    """Membrane mask of an instance-id map (any number of dims): pixels within the boundary band
    between different ids, plus every pixel whose id is in ``background_ids``.

    A pixel is in the band when a window of side ``width + 1`` around it sees two different ids,
    which gives a band exactly ``width`` pixels wide across an axis-aligned boundary (for odd
    widths one side gets the extra pixel). ``width`` may also be an integer array of the shape of
    ``ids`` (a local width per pixel, used by the synthetic membranes).
    """
    widths = np.asarray(width)
    if not np.issubdtype(widths.dtype, np.integer) or widths.size == 0 or widths.min() < 1:
        raise ValueError(f"width must be a positive integer or integer array, got {width!r}")
    if widths.ndim and widths.shape != ids.shape:
        raise ValueError(f"width array shape {widths.shape} does not match ids shape {ids.shape}")
    out = np.zeros(ids.shape, bool)
    for w in np.unique(widths):
        size = int(w) + 1
        band = ndimage.minimum_filter(ids, size=size, mode="nearest") != ndimage.maximum_filter(ids, size=size, mode="nearest")
        out |= band if widths.ndim == 0 else band & (widths == w)
    if len(background_ids):
        out |= np.isin(ids, np.asarray(list(background_ids), dtype=ids.dtype))
    return out

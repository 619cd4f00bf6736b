"""Convert metric inputs (NumPy or tensors) to bool NumPy arrays, with clear errors."""

from __future__ import annotations

import numpy as np

from toposeg._checks import check_same_shape
from toposeg.topology._inputs import as_mask

__all__ = ["as_mask", "as_pair"]


def as_pair(pred: object, target: object) -> tuple[np.ndarray, np.ndarray]:
    p, t = as_mask(pred, "pred"), as_mask(target, "target")
    check_same_shape(p, t, ("pred", "target"))
    return p, t

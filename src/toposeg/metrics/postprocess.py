"""Optional clean-up of a *prediction* (never of the ground truth)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from toposeg.metrics._inputs import as_mask
from toposeg.topology.betti import connected_components, resolve_connectivity


def remove_small_objects(pred: np.ndarray, min_size: int, *, connectivity: Optional[int] = None) -> np.ndarray:
    """Copy of ``pred`` without foreground components of fewer than ``min_size`` pixels/voxels.

    Components use the foreground connectivity (default 8 in 2D, 26 in 3D). The input is not
    modified. Only ever apply this to predictions; report the result separately.
    """
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 0:
        raise ValueError(f"min_size must be a non-negative integer, got {min_size!r}")
    m = as_mask(pred, "pred")
    fg, _ = resolve_connectivity(m.ndim, connectivity)
    labels, n = connected_components(m, fg)
    if n == 0 or min_size <= 1:
        return m.copy()
    sizes = np.bincount(labels.reshape(-1), minlength=n + 1)
    keep = sizes >= min_size
    keep[0] = False
    return keep[labels]

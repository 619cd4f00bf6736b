"""``evaluate_case``: every metric for one prediction/ground-truth pair."""

from __future__ import annotations

from typing import Optional

import numpy as np

from toposeg.metrics._inputs import as_pair
from toposeg.metrics.betti import betti_errors
from toposeg.metrics.overlap import dice, iou, miou


def evaluate_case(pred: np.ndarray, target: np.ndarray, *, connectivity: Optional[int] = None) -> dict[str, float]:
    """All metrics for one whole image/volume. No post-processing; the ground truth is untouched."""
    p, t = as_pair(pred, target)
    out = {"dice": dice(p, t), "iou": iou(p, t), "miou": miou(p, t)}
    for k, err in enumerate(betti_errors(p, t, connectivity=connectivity)):
        out[f"betti{k}_error"] = float(err)
    return out

"""Overlap metrics: Dice, IoU (foreground) and mIoU (mean of foreground and background IoU)."""

from __future__ import annotations

import numpy as np

from toposeg.metrics._inputs import as_pair


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def dice(pred: np.ndarray, target: np.ndarray) -> float:
    """Foreground Dice; NaN when both masks are empty (undefined)."""
    p, t = as_pair(pred, target)
    return _ratio(2 * np.count_nonzero(p & t), np.count_nonzero(p) + np.count_nonzero(t))


def iou(pred: np.ndarray, target: np.ndarray) -> float:
    """Foreground IoU; NaN when both masks are empty."""
    p, t = as_pair(pred, target)
    return _ratio(np.count_nonzero(p & t), np.count_nonzero(p | t))


def miou(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean of foreground and background IoU (NaN-aware: an undefined class is skipped)."""
    p, t = as_pair(pred, target)
    fg = iou(p, t)
    bg = iou(~p, ~t)
    vals = [v for v in (fg, bg) if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")

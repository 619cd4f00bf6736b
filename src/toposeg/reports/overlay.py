"""RGB overlays of hard pixels (positive green, negative red) on a greyscale image."""

from __future__ import annotations

from typing import Optional

import numpy as np

GREEN = (0.0, 1.0, 0.0)
RED = (1.0, 0.0, 0.0)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Scale a 2D image to [0, 1] with 1st/99th percentiles (robust to outliers)."""
    lo, hi = np.percentile(image, [1, 99])
    return np.clip((image - lo) / (hi - lo + 1e-8), 0.0, 1.0)


def overlay(image: np.ndarray, pos: Optional[np.ndarray] = None, neg: Optional[np.ndarray] = None,
            *, alpha: float = 1.0) -> np.ndarray:
    """``(H, W, 3)`` float RGB: ``image`` in grey, ``pos`` in green, ``neg`` in red."""
    if image.ndim != 2:
        raise ValueError(f"image must be 2D (H, W), got shape {image.shape}")
    rgb = np.repeat(to_gray(image)[..., None], 3, axis=-1)
    for mask, colour in ((pos, GREEN), (neg, RED)):
        if mask is None:
            continue
        if mask.shape != image.shape:
            raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape}")
        m = mask.astype(bool)
        rgb[m] = (1 - alpha) * rgb[m] + alpha * np.asarray(colour)
    return rgb

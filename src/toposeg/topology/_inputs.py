"""Convert mask inputs (NumPy or tensors) to bool NumPy arrays, with clear errors."""

from __future__ import annotations

import numpy as np
import torch

from toposeg._checks import check_binary, describe


def as_mask(x: object, name: str) -> np.ndarray:
    """A single 2D/3D binary mask (bool or {0, 1}, NumPy or tensor) as a bool ndarray."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray or torch.Tensor, got {describe(x)}")
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must be a single 2D (H, W) or 3D (D, H, W) mask, got shape {x.shape}")
    check_binary(x, name)
    return x.astype(bool, copy=False)

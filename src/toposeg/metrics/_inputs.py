"""Convert metric inputs (NumPy or tensors) to bool NumPy arrays, with clear errors."""

from __future__ import annotations

import numpy as np
import torch

from toposeg._checks import check_binary, check_same_shape, describe


def as_mask(x: object, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray or torch.Tensor, got {describe(x)}")
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must be a single 2D (H, W) or 3D (D, H, W) mask, got shape {x.shape}")
    check_binary(x, name)
    return x.astype(bool, copy=False)


def as_pair(pred: object, target: object) -> tuple[np.ndarray, np.ndarray]:
    p, t = as_mask(pred, "pred"), as_mask(target, "target")
    check_same_shape(p, t, ("pred", "target"))
    return p, t

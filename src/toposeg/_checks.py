"""Input validation shared by the library. Every error quotes what was received."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

SPATIAL_DIMS = (2, 3)


def describe(x: object) -> str:
    """Short description of an array-like for error messages."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__}"


def check_batched(x: object, name: str) -> int:
    """``x`` must be a tensor ``(N, C, *S)`` with 2 or 3 spatial dims; returns the spatial ndim."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, C, H, W) or (N, C, D, H, W), got {describe(x)}")
    if x.ndim - 2 not in SPATIAL_DIMS:
        raise ValueError(
            f"{name} must have shape (N, C, H, W) or (N, C, D, H, W), got {x.ndim} dims {tuple(x.shape)}"
        )
    return x.ndim - 2


def check_same_shape(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, names: Sequence[str]) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def _found_values(values: np.ndarray) -> str:
    uniq = np.unique(values[np.isfinite(values)] if values.dtype.kind == "f" else values)
    shown = ", ".join(f"{v:g}" for v in uniq[:6].astype(float))
    return f"[{shown}{', ...' if uniq.size > 6 else ''}]"


def check_finite(x: torch.Tensor | np.ndarray, name: str) -> None:
    if isinstance(x, torch.Tensor):
        bad = x.is_floating_point() and not bool(torch.isfinite(x).all())
    else:
        bad = np.asarray(x).dtype.kind == "f" and not bool(np.isfinite(x).all())
    if bad:
        from toposeg.io import nonfinite_counts

        # float64 holds every float tensor dtype exactly, so the counts are those of x
        arr = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        raise ValueError(f"{name} contains NaN or infinite values ({nonfinite_counts(arr)} of {arr.size}; "
                         f"{describe(x)})")


def check_binary(x: torch.Tensor | np.ndarray, name: str) -> None:
    """Values must be in {0, 1} (bool is always fine)."""
    if x.dtype in (torch.bool, np.bool_):
        return
    check_finite(x, name)
    if isinstance(x, torch.Tensor):
        ok = bool(((x == 0) | (x == 1)).all())
        values = x.detach().cpu().numpy() if not ok else None
    else:
        arr = np.asarray(x)
        ok = bool(((arr == 0) | (arr == 1)).all())
        values = arr
    if not ok:
        raise ValueError(f"{name} must be binary (values 0/1 or bool), found values {_found_values(values)}")


def check_probabilities(p: torch.Tensor, name: str) -> None:
    check_finite(p, name)
    lo, hi = float(p.min()), float(p.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must be probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
            "pass probabilities (apply sigmoid/softmax first)"
        )


def check_threshold(t: float) -> float:
    if not isinstance(t, (int, float)) or not 0.0 < float(t) < 1.0:
        raise ValueError(f"threshold must be a number in (0, 1), got {t!r}")
    return float(t)

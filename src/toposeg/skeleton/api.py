"""``skeletonize``: one entry point, dispatching to a backend.

First version: the scikit-image backend (2D Zhang-Suen, 3D Lee), per sample.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np
import torch

from toposeg._checks import check_binary, describe

ArrayOrTensor = Union[np.ndarray, torch.Tensor]


def _skimage_single(mask: np.ndarray) -> np.ndarray:
    from skimage.morphology import skeletonize as sk_skeletonize

    if mask.ndim == 2:
        return sk_skeletonize(mask, method="zhang")
    return sk_skeletonize(mask, method="lee").astype(bool)


def _skimage_backend(mask: torch.Tensor) -> torch.Tensor:
    arr = mask.detach().cpu().numpy()
    out = np.zeros(arr.shape, dtype=bool)
    for n in range(arr.shape[0]):
        for c in range(arr.shape[1]):
            out[n, c] = _skimage_single(arr[n, c])
    return torch.from_numpy(out).to(mask.device)


BACKENDS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"skimage": _skimage_backend}


def skeletonize(mask: ArrayOrTensor, *, backend: str = "auto") -> ArrayOrTensor:
    """Skeleton of a binary mask.

    Args:
        mask: bool or {0, 1} tensor ``(N, 1, H, W)`` / ``(N, 1, D, H, W)`` on any device, or a
            single 2D/3D NumPy array.
        backend: ``"auto"`` or one of :data:`BACKENDS`.

    Returns:
        A bool skeleton of the same type, shape and device as ``mask``. The input is not modified.
    """
    if backend != "auto" and backend not in BACKENDS:
        raise KeyError(f"unknown skeleton backend {backend!r}; valid: {['auto', *BACKENDS]}")
    if isinstance(mask, np.ndarray):
        if mask.ndim not in (2, 3):
            raise ValueError(f"a NumPy mask must be 2D (H, W) or 3D (D, H, W), got shape {mask.shape}")
        check_binary(mask, "mask")
        out = skeletonize(torch.from_numpy(mask.astype(bool))[None, None], backend=backend)
        return out[0, 0].numpy()
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or numpy.ndarray, got {describe(mask)}")
    if mask.ndim not in (4, 5):
        raise ValueError(
            f"mask must have shape (N, 1, H, W) or (N, 1, D, H, W), got {mask.ndim} dims {tuple(mask.shape)}"
        )
    check_binary(mask, "mask")
    name = "skimage" if backend == "auto" else backend
    return BACKENDS[name](mask.bool())

"""scikit-image backend: per sample, threads over the batch (scikit-image's loops release the GIL)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch


def skimage_single(mask: np.ndarray, method: str) -> np.ndarray:
    """``skimage.morphology.skeletonize(mask, method=method)`` of one bool array, as bool.

    ``method``: ``"zhang"`` (2D Zhang-Suen) or ``"lee"`` (Lee, Kashyap & Chu; 2D or 3D).
    """
    from skimage.morphology import skeletonize as sk_skeletonize

    return sk_skeletonize(mask, method=method).astype(bool, copy=False)


def max_workers() -> int:
    """Threads used for a batch: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def skimage_backend(mask: torch.Tensor, method: str) -> torch.Tensor:
    """Skeleton of a bool ``(N, C, *S)`` tensor with scikit-image's ``method``, one
    sample/channel per task; the result is returned on ``mask``'s device."""
    arr = mask.detach().to("cpu").numpy().astype(bool, copy=False)
    flat = arr.reshape(-1, *arr.shape[2:])
    out = np.zeros(flat.shape, dtype=bool)

    def work(i: int) -> None:
        if flat[i].any():
            out[i] = skimage_single(np.ascontiguousarray(flat[i]), method)

    workers = min(max_workers(), len(flat))
    if workers <= 1:
        for i in range(len(flat)):
            work(i)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, range(len(flat))))
    return torch.from_numpy(out.reshape(arr.shape)).to(mask.device)

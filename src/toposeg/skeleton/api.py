"""``skeletonize``: one entry point, dispatching to a backend.

Backends (:data:`BACKENDS`, name -> ``fn(bool tensor (N, C, *S)) -> bool tensor``):

- ``"torch"``: pure tensor operations on the tensor's own device (CPU, CUDA, ...), whole batch
  at once. 2D: bit-for-bit scikit-image's Zhang-Suen. 3D: parallel subfield form of Lee's
  directional thinning (topology preserving, curve skeleton; see ``docs/skeleton.md``).
- ``"skimage"``: scikit-image per sample (2D Zhang-Suen, 3D Lee), threads over the batch.
- ``"auto"``: the faster of the two as measured by ``benchmarks/skeleton.py`` for the device
  type and dimensionality, see :data:`AUTO_RULE`.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np
import torch

from toposeg._checks import check_binary, describe
from toposeg.skeleton._skimage import skimage_backend
from toposeg.skeleton._thin3d import thin3d_torch
from toposeg.skeleton._zhang import zhang_torch

ArrayOrTensor = Union[np.ndarray, torch.Tensor]

_TORCH = {2: zhang_torch, 3: thin3d_torch}


def _torch_backend(mask: torch.Tensor) -> torch.Tensor:
    return _TORCH[mask.ndim - 2](mask)


BACKENDS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "torch": _torch_backend,
    "skimage": skimage_backend,
}

#: ``"auto"``: (device type, spatial dims) -> backend; device types not listed use ``"torch"``.
#: On the CPU scikit-image's compiled loops (threaded over the batch) were measured faster
#: than the tensor version in 2D and 3D (benchmarks/skeleton.py, docs/skeleton.md); everywhere
#: else (CUDA, ...) the tensor version runs where the data lives, without a host round-trip.
#: In 3D the two backends use different (both topology-preserving) thinnings, so ``"auto"``
#: gives Lee's skeleton on the CPU and the subfield thinning elsewhere: pass
#: ``backend="torch"`` for device-independent 3D results.
AUTO_RULE: dict[tuple[str, int], str] = {("cpu", 2): "skimage", ("cpu", 3): "skimage"}


def resolve_backend(backend: str, device: torch.device | str, spatial_dims: int) -> str:
    """The backend name ``skeletonize`` uses for ``backend`` on ``device`` in ``spatial_dims`` D."""
    if backend == "auto":
        return AUTO_RULE.get((torch.device(device).type, spatial_dims), "torch")
    if backend not in BACKENDS:
        raise KeyError(f"unknown skeleton backend {backend!r}; valid: {['auto', *BACKENDS]}")
    return backend


def skeletonize(mask: ArrayOrTensor, *, backend: str = "auto") -> ArrayOrTensor:
    """Skeleton of a binary mask (topology-preserving thinning).

    2D: Zhang-Suen thinning, identical to ``skimage.morphology.skeletonize(method="zhang")`` with
    every backend. 3D: a curve skeleton (26/6 topology preserved, end points kept): Lee's thinning
    with ``"skimage"``, its parallel subfield form with ``"torch"`` (see ``docs/skeleton.md``).

    Args:
        mask: bool or {0, 1} tensor ``(N, 1, H, W)`` / ``(N, 1, D, H, W)`` on any device
            (channels beyond one are thinned independently), or a single 2D ``(H, W)`` / 3D
            ``(D, H, W)`` NumPy array.
        backend: ``"auto"`` (see :data:`AUTO_RULE`: ``"skimage"`` on the CPU, ``"torch"`` on
            other devices) or one of :data:`BACKENDS` (``"torch"``, ``"skimage"``).

    Returns:
        A bool skeleton of the same type, shape and device as ``mask``. The input is not modified.

    Raises:
        KeyError: unknown backend. TypeError: not a tensor/array. ValueError: wrong number of
        dimensions, values other than 0/1, NaN.

    Example:
        >>> import torch
        >>> from toposeg.skeleton import skeletonize
        >>> m = torch.zeros(2, 1, 9, 9, dtype=torch.bool); m[:, :, 3:6, 1:8] = True
        >>> s = skeletonize(m, backend="torch")
        >>> s.shape, s.dtype, bool((s == skeletonize(m, backend="skimage")).all())
        (torch.Size([2, 1, 9, 9]), torch.bool, True)
    """
    if backend != "auto" and backend not in BACKENDS:
        raise KeyError(f"unknown skeleton backend {backend!r}; valid: {['auto', *BACKENDS]}")
    if isinstance(mask, np.ndarray):
        if mask.ndim not in (2, 3):
            raise ValueError(
                f"a NumPy mask must be a single 2D (H, W) or 3D (D, H, W) array, got shape {mask.shape}"
            )
        check_binary(mask, "mask")
        out = skeletonize(torch.from_numpy(mask.astype(bool))[None, None], backend=backend)
        return out[0, 0].numpy()
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or numpy.ndarray, got {describe(mask)}")
    if mask.ndim not in (4, 5):
        raise ValueError(
            f"mask must have shape (N, 1, H, W) or (N, 1, D, H, W), got {mask.ndim} dims {tuple(mask.shape)}"
        )
    if mask.is_complex():
        raise ValueError(f"mask must be binary (values 0/1 or bool), got {describe(mask)}")
    check_binary(mask, "mask")
    name = resolve_backend(backend, mask.device, mask.ndim - 2)
    return BACKENDS[name](mask.bool())

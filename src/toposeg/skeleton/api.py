"""``skeletonize``: one entry point; the thinning *rule* (``method``) is separate from its
*implementation* (``backend``).

Rules (:data:`METHODS`, name -> spatial dims -> backends that implement it):

- ``"thin"`` (default): toposeg's own topology-preserving thinning, thin by definition (no simple
  pixel/voxel is left unless it is an end point). 2D: directional subfield thinning with an
  exact simple-point table (:mod:`toposeg.skeleton._thin2d`); 3D: parallel subfield form of Lee's
  directional curve thinning (:mod:`toposeg.skeleton._thin3d`). Backend ``"torch"`` only.
- ``"zhang"`` (2D only): scikit-image's Zhang-Suen, bit for bit
  (``skimage.morphology.skeletonize(method="zhang")``). Backends ``"torch"`` and ``"skimage"``
  (identical results). Can leave solid blocks and removable pixels; kept to reproduce the paper.
- ``"lee"`` (3D only): scikit-image's Lee thinning (``method="lee"``). Backend ``"skimage"`` only.
  Deletes whole objects of even cross-section (e.g. a 2x2x2 cube); explicit opt-in only.

Backends (:data:`BACKENDS`): ``"torch"`` (tensor operations on the mask's own device, whole batch
at once) and ``"skimage"`` (scikit-image on the CPU, threads over the batch; the result is moved
back to the mask's device). ``"auto"`` picks one per rule and device, see :data:`AUTO_RULE`.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np
import torch

from toposeg._checks import check_binary, describe
from toposeg.skeleton._skimage import skimage_backend
from toposeg.skeleton._thin2d import thin2d_torch
from toposeg.skeleton._thin3d import thin3d_torch
from toposeg.skeleton._zhang import zhang_torch

ArrayOrTensor = Union[np.ndarray, torch.Tensor]

#: The default rule of :func:`skeletonize` (and of every toposeg function that skeletonizes).
DEFAULT_METHOD = "thin"

#: rule -> {spatial dims: backends implementing it}
METHODS: dict[str, dict[int, tuple[str, ...]]] = {
    "thin": {2: ("torch",), 3: ("torch",)},
    "zhang": {2: ("torch", "skimage")},
    "lee": {3: ("skimage",)},
}

#: implementations; ``"auto"`` is resolved to one of these by :func:`resolve_backend`
BACKENDS: tuple[str, ...] = ("torch", "skimage")

#: ``backend="auto"``: (rule, device type) -> backend; ``"*"`` stands for every device type
#: other than the CPU. "thin" has one implementation. For "zhang" (both implementations give the
#: same result) scikit-image's compiled loop was measured faster on the CPU, and the tensor
#: version avoids the host round trip elsewhere (benchmarks/skeleton.py). "lee" exists only in
#: scikit-image.
AUTO_RULE: dict[tuple[str, str], str] = {
    ("thin", "cpu"): "torch",
    ("thin", "*"): "torch",
    ("zhang", "cpu"): "skimage",
    ("zhang", "*"): "torch",
    ("lee", "cpu"): "skimage",
    ("lee", "*"): "skimage",
}

#: Version of each rule's output. Bump it whenever a rule's result changes, so that skeleton
#: caches keyed by :func:`skeleton_cache_key` never return stale skeletons.
SKELETON_VERSIONS: dict[str, str] = {"thin": "v3", "zhang": "v1", "lee": "v1"}

_IMPL: dict[tuple[str, str, int], Callable[[torch.Tensor], torch.Tensor]] = {
    ("thin", "torch", 2): thin2d_torch,
    ("thin", "torch", 3): thin3d_torch,
    ("zhang", "torch", 2): zhang_torch,
    ("zhang", "skimage", 2): lambda m: skimage_backend(m, "zhang"),
    ("lee", "skimage", 3): lambda m: skimage_backend(m, "lee"),
}


def valid_combinations() -> str:
    """Human-readable list of the (method, dims, backend) combinations, for error messages."""
    parts = []
    for method, dims in METHODS.items():
        by_dims = ", ".join(f"{d}D {'/'.join(bk)}" for d, bk in dims.items())
        parts.append(f"{method!r} ({by_dims})")
    return "; ".join(parts) + "; backend='auto' picks one"


def _check_names(method: str, backend: str) -> None:
    if method not in METHODS:
        raise KeyError(f"unknown skeleton method {method!r}; valid: {list(METHODS)}")
    if backend != "auto" and backend not in BACKENDS:
        raise KeyError(f"unknown skeleton backend {backend!r}; valid: {['auto', *BACKENDS]}")


def resolve_backend(method: str, backend: str, device: torch.device | str, spatial_dims: int) -> str:
    """The implementation :func:`skeletonize` uses for ``method``/``backend`` on ``device``.

    Args:
        method: a rule of :data:`METHODS` (``"thin"``, ``"zhang"``, ``"lee"``).
        backend: ``"auto"`` (see :data:`AUTO_RULE`) or one of :data:`BACKENDS`.
        device: where the mask lives (``"cpu"``, ``"cuda"``, a ``torch.device``).
        spatial_dims: 2 or 3.

    Returns:
        ``"torch"`` or ``"skimage"``.

    Raises:
        KeyError: unknown method or backend (the message lists the valid names).
        ValueError: a combination that does not exist (``"zhang"`` in 3D, ``"lee"`` in 2D,
            ``"lee"`` with ``"torch"``, ``"thin"`` with ``"skimage"``); the message lists the
            valid combinations.
    """
    _check_names(method, backend)
    dims = METHODS[method]
    if spatial_dims not in dims:
        raise ValueError(
            f"skeleton method {method!r} is not defined for {spatial_dims}D masks; "
            f"valid combinations: {valid_combinations()}"
        )
    if backend == "auto":
        kind = torch.device(device).type
        backend = AUTO_RULE[(method, "cpu" if kind == "cpu" else "*")]
    if backend not in dims[spatial_dims]:
        raise ValueError(
            f"skeleton method {method!r} has no {backend!r} backend for {spatial_dims}D masks; "
            f"valid combinations: {valid_combinations()}"
        )
    return backend


def skeleton_cache_key(method: str = DEFAULT_METHOD, backend: str = "auto") -> str:
    """Short string naming a rule and its version, e.g. ``"thin-v3"``: key skeleton caches by it.

    The key depends on the rule only: where a rule has several backends they give bit-identical
    results (tested), so ``backend`` is only validated. Raises ``KeyError`` for unknown names.
    """
    _check_names(method, backend)
    return f"{method}-{SKELETON_VERSIONS[method]}"


def skeletonize(mask: ArrayOrTensor, *, method: str = DEFAULT_METHOD, backend: str = "auto") -> ArrayOrTensor:
    """Skeleton of a binary mask by topology-preserving thinning.

    2D topology: foreground 8-connected, background 4-connected; 3D: 26/6. Outside the array is
    background. Every rule preserves the number of components and holes (and cavities in 3D)
    except scikit-image's ``"lee"``, which can delete objects of even cross-section.

    Args:
        mask: bool or {0, 1} tensor ``(N, C, H, W)`` / ``(N, C, D, H, W)`` on any device
            (channels and samples are thinned independently), or one 2D ``(H, W)`` / 3D
            ``(D, H, W)`` NumPy array (any numeric or bool dtype).
        method: the thinning rule, one of :data:`METHODS`. ``"thin"`` (default, 2D and 3D):
            toposeg's topology-preserving thinning whose result has no simple pixel/voxel other
            than end points, same result on every device. ``"zhang"`` (2D): bit-for-bit
            ``skimage.morphology.skeletonize(method="zhang")``. ``"lee"`` (3D):
            ``skimage.morphology.skeletonize(method="lee")``.
        backend: ``"auto"`` (default; see :data:`AUTO_RULE`), ``"torch"`` or ``"skimage"``.

    Returns:
        A bool skeleton of the same type, shape and device as ``mask``; the input is not
        modified.

    Raises:
        KeyError: unknown ``method`` or ``backend`` (lists the valid names).
        ValueError: a method/backend/dimensionality combination that does not exist (lists the
            valid ones); wrong number of dimensions; values other than 0/1; NaN.
        TypeError: ``mask`` is not a tensor or NumPy array.

    Sources: Zhang & Suen (1984) as implemented by scikit-image; Lee, Kashyap & Chu (1994);
    the "thin" rules are described and proved in ``docs/skeleton.md``.

    Example:
        >>> import torch
        >>> from toposeg.skeleton import skeletonize
        >>> m = torch.zeros(2, 1, 9, 9, dtype=torch.bool); m[:, :, 3:6, 1:8] = True
        >>> s = skeletonize(m)  # method="thin"
        >>> s.shape, s.dtype, s[0, 0, 4].int().tolist()
        (torch.Size([2, 1, 9, 9]), torch.bool, [0, 1, 1, 1, 1, 1, 1, 1, 0])
        >>> z = skeletonize(m, method="zhang")  # scikit-image's Zhang-Suen, any backend
    """
    _check_names(method, backend)
    if isinstance(mask, np.ndarray):
        if mask.ndim not in (2, 3):
            raise ValueError(
                f"a NumPy mask must be a single 2D (H, W) or 3D (D, H, W) array, got shape {mask.shape}"
            )
        check_binary(mask, "mask")
        out = skeletonize(torch.from_numpy(mask.astype(bool))[None, None], method=method, backend=backend)
        return out[0, 0].numpy()
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor or numpy.ndarray, got {describe(mask)}")
    if mask.ndim not in (4, 5):
        raise ValueError(
            f"mask must have shape (N, 1, H, W) or (N, 1, D, H, W), got {mask.ndim} dims {tuple(mask.shape)}"
        )
    name = resolve_backend(method, backend, mask.device, mask.ndim - 2)
    if mask.is_complex():
        raise ValueError(f"mask must be binary (values 0/1 or bool), got {describe(mask)}")
    check_binary(mask, "mask")
    return _IMPL[(method, name, mask.ndim - 2)](mask.bool())

"""Hard pixel miners: ``(prob, target) -> (pos, neg)`` bool masks, no gradient.

``pos`` are hard pixels of the ground truth the prediction misses (they should go up),
``neg`` are hard pixels the prediction wrongly claims (they should go down). The hard set of
the paper is ``H = pos | neg``.

Tensors are ``(N, C, *S)`` with 2 or 3 spatial dims; every sample and channel is mined
independently (each channel is treated as its own binary foreground; the losses decide which
channels are foreground classes, see :mod:`toposeg.losses`).

Miners (``p_t = prob > threshold``; the default threshold of every mining entry point -- the
miners, the HPM losses, ``toposeg mine`` and the Table-2 benchmark -- is
:data:`DEFAULT_MINING_THRESHOLD` = 0.6, the paper's value; binarising a prediction for
inference and evaluation is a different threshold, 0.5):

* :func:`thpm` (eq. 3): ``H = p_t XOR y``.
* :func:`phpm` (eq. 4-5): birth/death pixels of the cubical persistence pairs of
  ``p_f = p`` where ``p_t != y`` else ``y``, superlevel filtration (foreground 8/26-connected),
  restricted to misclassified pixels.
* :func:`shpm` (eq. 6-8): skeleton pixels of the ground truth the prediction misses, and skeleton
  pixels of the prediction outside the ground truth; the skeleton is
  :func:`toposeg.skeleton.skeletonize` with a thinning rule ``method`` (default ``"thin"``) and an
  implementation ``backend`` (default ``"auto"``).

Targets are binary and shaped like ``prob``; a multi-class class-index map ``(N, *S)`` is refused
with the conversion to one-hot in the message (:func:`check_target_layout`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Optional

import numpy as np
import torch

from toposeg._checks import check_batched, describe, check_binary, check_probabilities, check_same_shape, check_threshold
from toposeg.skeleton import skeletonize


#: Threshold ``t`` of ``p_t = p > t`` for hard pixel mining: the paper's 0.6. The one default of
#: every mining entry point (miners, HPM losses, ``HPMTerm``, ``toposeg mine``, the Table-2
#: benchmark). Not the binarisation threshold of inference/evaluation (0.5).
DEFAULT_MINING_THRESHOLD: float = 0.6

_ONE_HOT = "torch.nn.functional.one_hot({t}.long(), {c}).movedim(-1, 1)"


def check_target_layout(input: torch.Tensor, target: torch.Tensor, names: tuple[str, str] = ("input", "target")) -> None:
    """``target`` must be shaped like ``input`` ``(N, C, *S)``: one binary channel per input channel.

    A different shape raises ``ValueError`` saying what was received, what is expected and, for
    the usual mistake -- a multi-class class-index map ``(N, *S)`` or ``(N, 1, *S)`` passed with a
    ``C``-channel input -- how to convert it (``torch.nn.functional.one_hot(t, C).movedim(-1, 1)``).
    """
    a, b = names
    shp_in, shp_t = tuple(input.shape), tuple(target.shape)
    if shp_in == shp_t:
        return
    c = shp_in[1]
    expected = (f"{b} must be shaped like {a} {shp_in}: (N, C, *S) with one binary channel (float 0/1 or bool) "
                f"per {a} channel, i.e. one-hot for multi-class")
    if len(shp_t) == len(shp_in) - 1 and shp_t[0] == shp_in[0] and shp_t[1:] == shp_in[2:]:
        if c > 1:
            raise ValueError(
                f"{b} has shape {shp_t}, which looks like a class-index map (N, *S), but {expected}; "
                f"convert class indices with {_ONE_HOT.format(t=b, c=c)}"
            )
        raise ValueError(f"{b} has shape {shp_t} without a channel axis; {expected}; "
                         f"add the channel axis with {b}.unsqueeze(1)")
    if len(shp_t) == len(shp_in) and shp_t[0] == shp_in[0] and shp_t[2:] == shp_in[2:]:
        hint = (f"; if it holds class indices 0..{c - 1}, convert with {_ONE_HOT.format(t=b + '[:, 0]', c=c)}"
                if shp_t[1] == 1 and c > 1 else "")
        raise ValueError(f"{b} has {shp_t[1]} channel(s) but {a} has {c} ({a} {shp_in}, {b} {shp_t}); "
                         f"{expected}{hint}")
    check_same_shape(input, target, names)


def _prepare(prob: torch.Tensor, target: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    check_batched(prob, "prob")
    if not prob.is_floating_point():
        raise TypeError(f"prob must be a floating-point tensor of probabilities, got dtype {prob.dtype}")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor shaped like prob, got {describe(target)}")
    check_target_layout(prob, target, ("prob", "target"))
    check_probabilities(prob, "prob")
    check_binary(target, "target")
    return prob.detach() > check_threshold(threshold), target.bool()


def _check_workers(workers: Optional[int]) -> Optional[int]:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return workers


def _skeleton_per_channel(mask: torch.Tensor, method: str, backend: str) -> torch.Tensor:
    n, c = mask.shape[:2]
    flat = mask.reshape(n * c, 1, *mask.shape[2:])
    return skeletonize(flat, method=method, backend=backend).reshape(mask.shape)


@torch.no_grad()
def thpm(prob: torch.Tensor, target: torch.Tensor, *,
         threshold: float = DEFAULT_MINING_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3: every misclassified pixel, ``H = p_t XOR y``, split into missed (pos) and false (neg).

    Args:
        prob: float probabilities ``(N, C, *S)`` in [0, 1] (2 or 3 spatial dims).
        target: binary tensor shaped like ``prob`` (one-hot for multi-class).
        threshold: ``t`` of ``p_t = prob > t``, default :data:`DEFAULT_MINING_THRESHOLD` (0.6).

    Returns:
        ``(pos, neg)`` bool tensors shaped like ``prob``, on its device.
    """
    pred, y = _prepare(prob, target, threshold)
    return y & ~pred, pred & ~y


@torch.no_grad()
def shpm(
    prob: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float = DEFAULT_MINING_THRESHOLD,
    method: str = "thin",
    backend: str = "auto",
    target_skeleton: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6-8: skeleton-based hard pixels.

    ``pos = (p_t AND s(y)) XOR s(y)`` (ground-truth skeleton pixels the prediction misses),
    ``neg = (s(p_t) AND y) XOR s(p_t)`` (prediction skeleton pixels outside the ground truth).

    Args:
        prob: float probabilities ``(N, C, *S)`` in [0, 1] (2 or 3 spatial dims).
        target: binary tensor shaped like ``prob`` (one-hot for multi-class).
        threshold: ``t`` of ``p_t = prob > t``, default :data:`DEFAULT_MINING_THRESHOLD` (0.6).
        method: thinning rule of ``s`` (:func:`toposeg.skeleton.skeletonize`): ``"thin"``
            (default; thin and topology-preserving, 2D and 3D), ``"zhang"`` (2D, identical to
            scikit-image, the paper's code), ``"lee"`` (3D, scikit-image).
        backend: implementation of the rule, ``"auto"`` (default), ``"torch"`` or ``"skimage"``.
        target_skeleton: optional precomputed ``s(y)`` (bool, shaped like ``target``); the
            ground-truth skeleton never changes during training, so it can be computed once
            (with the same ``method``; it is used as given).

    Returns:
        ``(pos, neg)`` bool tensors shaped like ``prob``, on its device.

    Raises:
        TypeError / ValueError: bad tensors (message quotes what was received); KeyError:
        unknown ``method`` or ``backend``.
    """
    pred, y = _prepare(prob, target, threshold)
    if target_skeleton is None:  # one batched call for both skeletons
        both = _skeleton_per_channel(torch.cat([y, pred]), method, backend)
        sy, sp = both[: y.shape[0]], both[y.shape[0]:]
        return sy & ~pred, sp & ~y
    if not isinstance(target_skeleton, torch.Tensor):
        raise TypeError(f"target_skeleton must be a bool torch.Tensor shaped like target, got {describe(target_skeleton)}")
    check_same_shape(target_skeleton, target, ("target_skeleton", "target"))
    check_binary(target_skeleton, "target_skeleton")
    sy = target_skeleton.bool().to(y.device)
    sp = _skeleton_per_channel(pred, method, backend)
    return sy & ~pred, sp & ~y


def _phpm_single(p: np.ndarray, pt: np.ndarray, y: np.ndarray, dims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    from toposeg.topology.persistence import critical_pixels

    wrong = pt != y
    if not wrong.any():
        empty = np.zeros(p.shape, dtype=bool)
        return empty, empty
    p_f = np.where(wrong, p.astype(np.float64), y.astype(np.float64))  # eq. 4
    hard = critical_pixels(p_f, dims=dims, superlevel=True) & wrong  # eq. 5, misclassified only
    return hard & y, hard & ~y


@torch.no_grad()
def phpm(
    prob: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float = DEFAULT_MINING_THRESHOLD,
    dims: Iterable[int] = (0, 1),
    workers: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 4-5: persistent-homology hard pixels.

    ``p_f = p`` where ``p_t != y`` else ``y`` (true positives clamped to 1, true negatives to 0);
    ``H`` = birth and death pixels of the finite cubical persistence pairs of ``p_f`` in the
    homology dimensions ``dims``, keeping only misclassified pixels. The filtration is by
    superlevel sets (foreground = high probability), T-construction, so the foreground is
    8-connected in 2D and 26-connected in 3D (see :mod:`toposeg.topology.persistence`).
    ``pos`` = hard pixels with ``y = 1`` (missed), ``neg`` = hard pixels with ``y = 0``.

    Args:
        threshold: ``t`` of ``p_t = prob > t``, default :data:`DEFAULT_MINING_THRESHOLD` (0.6).
        dims: homology dimensions, a subset of ``{0, .., ndim-1}`` ({1} membranes, {0, 1} roads,
            {0} 3D vessels in the paper).
        workers: threads over the ``N * C`` images (the library releases the GIL); default
            ``min(N * C, os.cpu_count())``.
    """
    from toposeg.topology.persistence import _check_dims

    pred, y = _prepare(prob, target, threshold)
    dims = _check_dims(dims, prob.ndim - 2)
    workers = _check_workers(workers)
    p_np = prob.detach().to(torch.float64).cpu().numpy()
    y_np = y.cpu().numpy()
    pt_np = pred.cpu().numpy()
    n, c = p_np.shape[:2]
    items = [(i, j) for i in range(n) for j in range(c)]
    pos = np.zeros(p_np.shape, dtype=bool)
    neg = np.zeros(p_np.shape, dtype=bool)

    def work(item: tuple[int, int]) -> None:
        i, j = item
        pos[i, j], neg[i, j] = _phpm_single(p_np[i, j], pt_np[i, j], y_np[i, j], dims)

    n_workers = min(len(items), workers or os.cpu_count() or 1)
    if n_workers <= 1:
        for item in items:
            work(item)
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            list(pool.map(work, items))
    return torch.from_numpy(pos).to(prob.device), torch.from_numpy(neg).to(prob.device)


MINERS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {"thpm": thpm, "phpm": phpm, "shpm": shpm}


def mine(name: str, prob: torch.Tensor, target: torch.Tensor, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the miner ``name`` (one of :data:`MINERS`)."""
    if name not in MINERS:
        raise KeyError(f"unknown miner {name!r}; valid: {sorted(MINERS)}")
    return MINERS[name](prob, target, **options)


__all__ = ["DEFAULT_MINING_THRESHOLD", "MINERS", "check_target_layout", "mine", "phpm", "shpm", "thpm"]

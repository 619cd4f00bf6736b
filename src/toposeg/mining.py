"""Hard pixel miners: ``(prob, target) -> (pos, neg)`` bool masks, no gradient.

``pos`` are hard pixels of the ground truth the prediction misses (they should go up),
``neg`` are hard pixels the prediction wrongly claims (they should go down). The hard set of
the paper is ``H = pos | neg``.

Tensors are ``(N, C, *S)`` with 2 or 3 spatial dims; channels are mined independently.
"""

from __future__ import annotations

from typing import Optional

import torch

from toposeg._checks import check_batched, check_binary, check_probabilities, check_same_shape, check_threshold
from toposeg.skeleton import skeletonize


def _prepare(prob: torch.Tensor, target: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    check_batched(prob, "prob")
    check_same_shape(prob, target, ("prob", "target"))
    check_probabilities(prob, "prob")
    check_binary(target, "target")
    return prob.detach() > check_threshold(threshold), target.bool()


def _skeleton_per_channel(mask: torch.Tensor, backend: str) -> torch.Tensor:
    n, c = mask.shape[:2]
    flat = mask.reshape(n * c, 1, *mask.shape[2:])
    return skeletonize(flat, backend=backend).reshape(mask.shape)


@torch.no_grad()
def thpm(prob: torch.Tensor, target: torch.Tensor, *, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3: every misclassified pixel, ``H = p_t XOR y``, split into missed (pos) and false (neg)."""
    pred, y = _prepare(prob, target, threshold)
    return y & ~pred, pred & ~y


@torch.no_grad()
def shpm(
    prob: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float = 0.5,
    backend: str = "auto",
    target_skeleton: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6-8: skeleton-based hard pixels.

    ``pos = (p_t AND s(y)) XOR s(y)`` (ground-truth skeleton pixels the prediction misses),
    ``neg = (s(p_t) AND y) XOR s(p_t)`` (prediction skeleton pixels outside the ground truth).

    Args:
        target_skeleton: optional precomputed ``s(y)`` (bool, shaped like ``target``); the
            ground-truth skeleton never changes during training, so it can be computed once.
    """
    pred, y = _prepare(prob, target, threshold)
    if target_skeleton is None:
        sy = _skeleton_per_channel(y, backend)
    else:
        check_same_shape(target_skeleton, target, ("target_skeleton", "target"))
        check_binary(target_skeleton, "target_skeleton")
        sy = target_skeleton.bool().to(y.device)
    sp = _skeleton_per_channel(pred, backend)
    return sy & ~pred, sp & ~y

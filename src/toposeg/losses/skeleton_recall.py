"""Skeleton Recall loss (Kirchhoff et al., ECCV 2024) combined with BCE + Dice.

The ground truth is skeletonized (exact thinning, :func:`toposeg.skeleton.skeletonize`) and
dilated into a thin *tube* (a diamond / L1 ball of radius ``tube_radius``, built from
``tube_radius`` cross-shaped dilations: one code path in 2D and 3D). The loss term is one minus
the soft recall of the prediction on that tube::

    L = BCE + Dice + weight * (1 - (Σ p·T + smooth) / (Σ T + smooth))

The tube depends only on the ground truth: compute it once per sample with
:func:`tubed_skeleton` and pass it as ``target_skeleton``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from toposeg._checks import check_batched, check_binary, check_same_shape, describe
from toposeg.losses._common import (
    MAX_POOL, activate, check_loss_inputs, check_options, check_weight, expand_mask, foreground, reduce, spatial_dims,
)
from toposeg.losses.bce_dice import _bce_dice_per_sample


def _check_radius(radius: object) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"tube_radius must be a non-negative integer, got {radius!r}")
    return radius


def _cross_dilate(x: torch.Tensor) -> torch.Tensor:
    nd = x.ndim - 2
    out = x
    for axis in range(nd):
        kernel = tuple(3 if a == axis else 1 for a in range(nd))
        out = torch.maximum(out, MAX_POOL[nd](x, kernel_size=kernel, stride=1,
                                              padding=tuple(k // 2 for k in kernel)))
    return out


@torch.no_grad()
def tubed_skeleton(target: torch.Tensor, *, tube_radius: int = 2, backend: str = "auto") -> torch.Tensor:
    """Bool ``(N, C, *S)``: skeleton of each channel of ``target`` dilated by an L1 ball of ``tube_radius``."""
    from toposeg.skeleton import skeletonize

    check_batched(target, "target")
    check_binary(target, "target")
    radius = _check_radius(tube_radius)
    n, c = target.shape[:2]
    skel = skeletonize(target.bool().reshape(n * c, 1, *target.shape[2:]), backend=backend).reshape(target.shape)
    tube = skel.float()
    for _ in range(radius):
        tube = _cross_dilate(tube)
    return tube > 0


def skeleton_recall_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: float = 1.0,
    tube_radius: int = 2,
    backend: str = "auto",
    activation: Optional[str] = "sigmoid",
    smooth: float = 1.0,
    reduction: str = "mean",
    mask: Optional[torch.Tensor] = None,
    target_skeleton: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """BCE + Dice + ``weight`` · (1 − soft recall of the prediction on the tubed GT skeleton).

    Args:
        input: logits ``(N, C, *S)`` (probabilities with ``activation=None``).
        target: binary tensor of the same shape (one-hot for softmax).
        weight: weight of the recall term (the paper uses 1).
        tube_radius: dilation radius of the skeleton (ignored with ``target_skeleton``).
        backend: skeletonization backend (ignored with ``target_skeleton``).
        target_skeleton: precomputed tube from :func:`tubed_skeleton`, shaped like ``target``.
        mask: optional binary ``(N, 1, *S)``; masked pixels are ignored.
    """
    weight = check_weight(weight, "weight")
    _check_radius(tube_radius)
    check_loss_inputs(input, target, activation, reduction, mask)
    if target_skeleton is None:  # only the foreground channels are skeletonized
        tube = tubed_skeleton(foreground(target, activation), tube_radius=tube_radius, backend=backend)
    else:
        if not isinstance(target_skeleton, torch.Tensor):
            raise TypeError(f"target_skeleton must be a torch.Tensor shaped like target, got {describe(target_skeleton)}")
        check_same_shape(target_skeleton, target, ("target_skeleton", "target"))
        check_binary(target_skeleton, "target_skeleton")
        tube = foreground(target_skeleton, activation)
    prob = activate(input, activation)
    p = foreground(prob, activation)
    t = tube.to(device=p.device, dtype=p.dtype)
    m = expand_mask(mask, p)
    if m is not None:
        t = t * m
    dims = spatial_dims(p)
    recall = ((p * t).sum(dims) + smooth) / (t.sum(dims) + smooth)  # (N, C)
    base = _bce_dice_per_sample(input, target, activation, smooth, mask)
    return reduce(base + weight * (1.0 - recall).mean(1), reduction)


class SkeletonRecallLoss(nn.Module):
    """Module form of :func:`skeleton_recall_loss`."""

    def __init__(self, *, weight: float = 1.0, tube_radius: int = 2, backend: str = "auto",
                 activation: Optional[str] = "sigmoid", smooth: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        check_options(activation, reduction)
        self.weight, self.tube_radius = check_weight(weight, "weight"), _check_radius(tube_radius)
        self.backend, self.activation, self.smooth, self.reduction = backend, activation, smooth, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
                target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
        return skeleton_recall_loss(
            input, target, weight=self.weight, tube_radius=self.tube_radius, backend=self.backend,
            activation=self.activation, smooth=self.smooth, reduction=self.reduction, mask=mask,
            target_skeleton=target_skeleton,
        )

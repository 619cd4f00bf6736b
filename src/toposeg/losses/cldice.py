"""Soft clDice (Shit et al., CVPR 2021) combined with BCE + Dice.

The soft skeleton is computed by iterated soft morphology: ``erode`` = minimum over axis-aligned
3-pixel windows (a cross / 6-neighbourhood), ``dilate`` = 3x3(x3) maximum, ``open = dilate∘erode``,
and

    skel = relu(x - open(x));  repeat iters times: x = erode(x); delta = relu(x - open(x));
                                                    skel = skel + relu(delta - skel * delta)

One code path for 2D and 3D (the pooling op is picked from the number of spatial dims).

Channels: every *foreground* channel is scored (see
:func:`toposeg.losses._common.foreground`), so a single-channel sigmoid output gets a real
clDice term; the reference implementations slice ``[1:]`` and silently return 0 there.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from toposeg._checks import check_batched, check_same_shape, describe
from toposeg.losses._common import (
    MAX_POOL, activate, check_loss_inputs, check_options, check_weight, expand_mask, foreground, reduce, spatial_dims,
)
from toposeg.losses.bce_dice import _bce_dice_per_sample


def _pool(x: torch.Tensor, kernel: tuple[int, ...]) -> torch.Tensor:
    return MAX_POOL[x.ndim - 2](x, kernel_size=kernel, stride=1, padding=tuple(k // 2 for k in kernel))


def soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Soft erosion: minimum over the axis-aligned 3-windows (cross/6-neighbourhood)."""
    nd = x.ndim - 2
    out = None
    for axis in range(nd):
        kernel = tuple(3 if a == axis else 1 for a in range(nd))
        e = -_pool(-x, kernel)
        out = e if out is None else torch.minimum(out, e)
    return out


def soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Soft dilation: maximum over the full 3x3 (3x3x3) window."""
    return _pool(x, (3,) * (x.ndim - 2))


def soft_open(x: torch.Tensor) -> torch.Tensor:
    return soft_dilate(soft_erode(x))


def soft_skeleton(x: torch.Tensor, iters: int = 3) -> torch.Tensor:
    """Differentiable soft skeleton of ``x`` in [0, 1], shape ``(N, C, *S)`` (2 or 3 spatial dims)."""
    check_batched(x, "x")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ValueError(f"iters must be a non-negative integer, got {iters!r}")
    skel = torch.relu(x - soft_open(x))
    for _ in range(iters):
        x = soft_erode(x)
        delta = torch.relu(x - soft_open(x))
        skel = skel + torch.relu(delta - skel * delta)
    return skel


def topology_precision_sensitivity(
    prob: torch.Tensor,
    target: torch.Tensor,
    *,
    iters: int = 3,
    smooth: float = 1.0,
    mask: Optional[torch.Tensor] = None,
    target_skeleton: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft topology precision ``|S_P ∩ Y| / |S_P|`` and sensitivity ``|S_Y ∩ P| / |S_Y|``, each ``(N, C)``.

    A *missing* branch lowers sensitivity only; a *spurious* branch lowers precision only.
    """
    y = target.to(prob.dtype)
    sp = soft_skeleton(prob, iters)
    sy = soft_skeleton(y, iters) if target_skeleton is None else target_skeleton.to(prob.dtype)
    m = expand_mask(mask, prob)
    if m is not None:
        sp, sy = sp * m, sy * m
    dims = spatial_dims(prob)
    tprec = ((sp * y).sum(dims) + smooth) / (sp.sum(dims) + smooth)
    tsens = ((sy * prob).sum(dims) + smooth) / (sy.sum(dims) + smooth)
    return tprec, tsens


def soft_cldice(prob: torch.Tensor, target: torch.Tensor, *, iters: int = 3, smooth: float = 1.0,
                mask: Optional[torch.Tensor] = None, target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``1 - clDice`` per sample, ``(N,)``, averaged over channels (``prob`` already activated)."""
    tprec, tsens = topology_precision_sensitivity(prob, target, iters=iters, smooth=smooth, mask=mask,
                                                  target_skeleton=target_skeleton)
    return (1.0 - 2.0 * tprec * tsens / (tprec + tsens)).mean(1)


def cldice_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float = 0.5,
    iters: int = 3,
    activation: Optional[str] = "sigmoid",
    smooth: float = 1.0,
    reduction: str = "mean",
    mask: Optional[torch.Tensor] = None,
    target_skeleton: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``(1 - alpha) * (BCE + Dice) + alpha * (1 - soft clDice)`` as in Shit et al. (their base
    is soft Dice; ours is the paper's BCE + Dice so that +clDice is compared on equal terms).

    Args:
        input: logits ``(N, C, *S)`` (probabilities with ``activation=None``).
        target: binary tensor of the same shape (one-hot for softmax).
        alpha: weight in [0, 1] of the clDice term.
        iters: soft-skeleton iterations (should exceed the largest structure radius in pixels).
        target_skeleton: optional precomputed soft skeleton of the target, shaped like ``target``
            (e.g. ``soft_skeleton(target.float(), iters)``).
        mask: optional binary ``(N, 1, *S)``; masked pixels are ignored.
    """
    alpha = check_weight(alpha, "alpha")
    if alpha > 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    check_loss_inputs(input, target, activation, reduction, mask)
    if target_skeleton is not None:
        if not isinstance(target_skeleton, torch.Tensor):
            raise TypeError(f"target_skeleton must be a torch.Tensor shaped like target, got {describe(target_skeleton)}")
        check_same_shape(target_skeleton, target, ("target_skeleton", "target"))
        target_skeleton = foreground(target_skeleton, activation)
    prob = activate(input, activation)
    cl = soft_cldice(foreground(prob, activation), foreground(target, activation), iters=iters, smooth=smooth,
                     mask=mask, target_skeleton=target_skeleton)
    base = _bce_dice_per_sample(input, target, activation, smooth, mask)
    return reduce((1.0 - alpha) * base + alpha * cl, reduction)


class CLDiceLoss(nn.Module):
    """Module form of :func:`cldice_loss`."""

    def __init__(self, *, alpha: float = 0.5, iters: int = 3, activation: Optional[str] = "sigmoid",
                 smooth: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        check_options(activation, reduction)
        alpha = check_weight(alpha, "alpha")
        if alpha > 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
            raise ValueError(f"iters must be a non-negative integer, got {iters!r}")
        self.alpha, self.iters, self.activation, self.smooth, self.reduction = alpha, iters, activation, smooth, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
                target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
        return cldice_loss(input, target, alpha=self.alpha, iters=self.iters, activation=self.activation,
                           smooth=self.smooth, reduction=self.reduction, mask=mask, target_skeleton=target_skeleton)

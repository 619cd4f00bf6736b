"""Soft clDice (Shit et al., CVPR 2021) on top of BCE + Dice:
``L = BCE + Dice + weight * (1 - soft clDice)`` (both base terms at weight 1).

The soft skeleton is computed by iterated soft morphology: ``erode`` = minimum over axis-aligned
3-pixel windows (a cross / 6-neighbourhood), ``dilate`` = 3x3(x3) maximum, ``open = dilate∘erode``,
and

    skel = relu(x - open(x));  repeat iters times: x = erode(x); delta = relu(x - open(x));
                                                    skel = skel + relu(delta - skel * delta)

(the clDice authors' ``soft_skel``). ``iters`` must reach the structure's radius: a structure of
width ``w`` is eroded away after about ``w / 2`` iterations, and with too few iterations its
soft skeleton is empty (a bar 9 px wide has none with 3 iterations). Default 10, as the SHPM
paper's code ran its clDice baseline; the clDice authors' default is 3.

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

#: Soft-skeleton iterations by default: the SHPM paper's clDice baseline (``cl_iter: 10``).
DEFAULT_ITERS = 10
#: The clDice authors' default (``iter_=3``), too few for structures wider than about 7 px.
AUTHORS_ITERS = 3


def _check_iters(iters: object) -> int:
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
        raise ValueError(f"iters must be a non-negative integer, got {iters!r}")
    return iters


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


def soft_skeleton(x: torch.Tensor, iters: int = DEFAULT_ITERS) -> torch.Tensor:
    """Differentiable soft skeleton of ``x`` in [0, 1], shape ``(N, C, *S)`` (2 or 3 spatial dims).

    ``iters`` (default 10) must be at least about half the width of the widest structure, else
    that structure has no skeleton (see the module docstring).
    """
    check_batched(x, "x")
    _check_iters(iters)
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
    iters: int = DEFAULT_ITERS,
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


def soft_cldice(prob: torch.Tensor, target: torch.Tensor, *, iters: int = DEFAULT_ITERS, smooth: float = 1.0,
                mask: Optional[torch.Tensor] = None, target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``1 - clDice`` per sample, ``(N,)``, averaged over channels (``prob`` already activated)."""
    tprec, tsens = topology_precision_sensitivity(prob, target, iters=iters, smooth=smooth, mask=mask,
                                                  target_skeleton=target_skeleton)
    return (1.0 - 2.0 * tprec * tsens / (tprec + tsens)).mean(1)


def cldice_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: float = 1.0,
    iters: int = DEFAULT_ITERS,
    activation: Optional[str] = "sigmoid",
    smooth: float = 1.0,
    reduction: str = "mean",
    mask: Optional[torch.Tensor] = None,
    target_skeleton: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``BCE + Dice + weight * (1 - soft clDice)``: the base at weight 1 like every compared method.

    ``soft clDice = 2 Tprec Tsens / (Tprec + Tsens)`` with ``Tprec = (sum S_P * Y + smooth) /
    (sum S_P + smooth)`` and ``Tsens = (sum S_Y * P + smooth) / (sum S_Y + smooth)``, ``S`` the
    soft skeleton (Shit et al., CVPR 2021, eq. 1-3 and their ``soft_cldice``), per sample and
    foreground channel, averaged over channels. The SHPM paper's clDice baseline used the same
    weights (BCE 1, Dice 1, clDice 1) and 10 iterations. The clDice authors' own combination
    ``(1 - alpha) * Dice + alpha * clDice`` is not used: it would scale the shared base.

    Args:
        input: logits ``(N, C, *S)`` (probabilities with ``activation=None``).
        target: binary tensor of the same shape (one-hot for softmax).
        weight: non-negative weight of the clDice term (default 1).
        iters: soft-skeleton iterations (default 10; must reach the largest structure radius in
            pixels; the clDice authors' default is 3).
        smooth: smoothing of the soft Dice and of ``Tprec``/``Tsens`` (the authors' 1).
        target_skeleton: optional precomputed soft skeleton of the target, shaped like ``target``
            (e.g. ``soft_skeleton(target.float(), iters)``).
        mask: optional binary ``(N, 1, *S)``; masked pixels are ignored.

    Raises:
        ValueError: negative/NaN ``weight``, bad ``iters``, bad tensors (message quotes them).
    """
    weight = check_weight(weight, "weight")
    _check_iters(iters)
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
    return reduce(base + weight * cl, reduction)


class CLDiceLoss(nn.Module):
    """Module form of :func:`cldice_loss`: ``CLDiceLoss(weight=1.0, iters=10, ...)``."""

    def __init__(self, *, weight: float = 1.0, iters: int = DEFAULT_ITERS, activation: Optional[str] = "sigmoid",
                 smooth: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        check_options(activation, reduction)
        self.weight, self.iters = check_weight(weight, "weight"), _check_iters(iters)
        self.activation, self.smooth, self.reduction = activation, smooth, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
                target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
        return cldice_loss(input, target, weight=self.weight, iters=self.iters, activation=self.activation,
                           smooth=self.smooth, reduction=self.reduction, mask=mask, target_skeleton=target_skeleton)

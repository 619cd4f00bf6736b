"""BCE + soft Dice, the base loss of the paper (eq. 1 without the HPM term)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from toposeg.losses._common import activate, check_loss_inputs, check_options, expand_mask, reduce, spatial_dims


def _bce_dice_per_sample(input: torch.Tensor, target: torch.Tensor, activation: Optional[str], smooth: float,
                         mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``(N,)``: BCE (mean over pixels and channels) + soft Dice (mean over channels)."""
    y = target.to(input.dtype)
    if activation == "sigmoid":
        bce = F.binary_cross_entropy_with_logits(input, y, reduction="none")
    else:
        p = activate(input, activation).clamp(1e-7, 1 - 1e-7)
        bce = F.binary_cross_entropy(p, y, reduction="none")
    p = activate(input, activation)
    dims = spatial_dims(input)
    m = expand_mask(mask, input)
    if m is None:
        bce_n = bce.flatten(1).mean(1)
    else:
        bce_n = (bce * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp(min=1)
        p, y = p * m, y * m
    inter = (p * y).sum(dims)
    dice = 1.0 - (2.0 * inter + smooth) / (p.sum(dims) + y.sum(dims) + smooth)  # (N, C)
    return bce_n + dice.mean(1)


def bce_dice_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    activation: Optional[str] = "sigmoid",
    smooth: float = 1.0,
    reduction: str = "mean",
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice (per sample and channel, averaged).

    Args:
        input: logits ``(N, C, *S)`` (or probabilities with ``activation=None``).
        target: binary tensor of the same shape (one-hot for softmax).
        reduction: ``"mean"`` over the batch or ``"none"`` for one value per sample.
        mask: optional binary ``(N, 1, *S)`` (or input-shaped) tensor; pixels with 0 are ignored.
    """
    check_loss_inputs(input, target, activation, reduction, mask)
    return reduce(_bce_dice_per_sample(input, target, activation, smooth, mask), reduction)


class BCEDiceLoss(nn.Module):
    """Module form of :func:`bce_dice_loss`."""

    def __init__(self, *, activation: Optional[str] = "sigmoid", smooth: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        check_options(activation, reduction)
        self.activation, self.smooth, self.reduction = activation, smooth, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return bce_dice_loss(input, target, activation=self.activation, smooth=self.smooth,
                             reduction=self.reduction, mask=mask)

"""BCE + soft Dice, the base loss of the paper (eq. 1 without the HPM term)."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from toposeg.losses._common import activate, check_loss_inputs, spatial_dims


def _bce_dice_per_sample(input: torch.Tensor, target: torch.Tensor, activation: Optional[str], smooth: float) -> torch.Tensor:
    y = target.to(input.dtype)
    if activation == "sigmoid":
        bce = F.binary_cross_entropy_with_logits(input, y, reduction="none")
    else:
        p = activate(input, activation).clamp(1e-7, 1 - 1e-7)
        bce = F.binary_cross_entropy(p, y, reduction="none")
    p = activate(input, activation)
    dims = spatial_dims(input)
    inter = (p * y).sum(dims)
    dice = 1.0 - (2.0 * inter + smooth) / (p.sum(dims) + y.sum(dims) + smooth)  # (N, C)
    return bce.flatten(1).mean(1) + dice.mean(1)


def bce_dice_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    activation: Optional[str] = "sigmoid",
    smooth: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice (per sample and channel, averaged).

    Args:
        input: logits ``(N, C, *S)`` (or probabilities with ``activation=None``).
        target: binary tensor of the same shape.
        reduction: ``"mean"`` over the batch or ``"none"`` for one value per sample.
    """
    check_loss_inputs(input, target, activation, reduction)
    per_sample = _bce_dice_per_sample(input, target, activation, smooth)
    return per_sample.mean() if reduction == "mean" else per_sample


class BCEDiceLoss(nn.Module):
    def __init__(self, *, activation: Optional[str] = "sigmoid", smooth: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.activation, self.smooth, self.reduction = activation, smooth, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return bce_dice_loss(input, target, activation=self.activation, smooth=self.smooth, reduction=self.reduction)

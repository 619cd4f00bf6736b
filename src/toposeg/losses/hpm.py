"""Hard-pixel-mining loss, eq. 1-2: ``BCE + Dice + lam * MSE over the mined hard set H``."""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn

from toposeg import mining
from toposeg.losses._common import activate, check_loss_inputs
from toposeg.losses.bce_dice import _bce_dice_per_sample

MINERS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {
    "thpm": mining.thpm,
    "shpm": mining.shpm,
}


def hard_pixel_mse(prob: torch.Tensor, target: torch.Tensor, hard: torch.Tensor, reduction: str) -> torch.Tensor:
    """Eq. 2: mean of ``(p - y)^2`` over the hard pixels; exactly 0 (with a valid graph) when H is empty."""
    sq = (prob - target.to(prob.dtype)).square() * hard.to(prob.dtype)
    if reduction == "mean":
        return sq.sum() / hard.sum().clamp(min=1)
    return sq.flatten(1).sum(1) / hard.flatten(1).sum(1).clamp(min=1)


def hpm_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    miner: str = "shpm",
    lam: float = 0.5,
    threshold: float = 0.5,
    activation: Optional[str] = "sigmoid",
    smooth: float = 1.0,
    reduction: str = "mean",
    miner_options: Optional[dict[str, Any]] = None,
) -> torch.Tensor:
    """Full eq. 1: ``L_BCE + L_Dice + lam * L_HPM`` with the hard set from ``miner``.

    Args:
        input: logits ``(N, C, *S)`` (probabilities with ``activation=None``).
        target: binary tensor of the same shape.
        miner: one of :data:`MINERS`.
        lam: weight of the hard-pixel term (the paper's 0.5).
        threshold: binarisation threshold ``t`` of the prediction (the paper's configs use 0.6).
        reduction: ``"mean"`` (HPM term averaged over all hard pixels of the batch) or
            ``"none"`` (one value per sample).
        miner_options: extra keyword arguments for the miner (e.g. ``{"backend": "torch"}``).
    """
    if miner not in MINERS:
        raise KeyError(f"unknown miner {miner!r}; valid: {sorted(MINERS)}")
    check_loss_inputs(input, target, activation, reduction)
    prob = activate(input, activation)
    pos, neg = MINERS[miner](prob.detach(), target, threshold=threshold, **(miner_options or {}))
    hpm = hard_pixel_mse(prob, target, pos | neg, reduction)
    base = _bce_dice_per_sample(input, target, activation, smooth)
    if reduction == "mean":
        base = base.mean()
    return base + lam * hpm


class HPMLoss(nn.Module):
    """Module form of :func:`hpm_loss`."""

    def __init__(
        self,
        *,
        miner: str = "shpm",
        lam: float = 0.5,
        threshold: float = 0.5,
        activation: Optional[str] = "sigmoid",
        smooth: float = 1.0,
        reduction: str = "mean",
        miner_options: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        if miner not in MINERS:
            raise KeyError(f"unknown miner {miner!r}; valid: {sorted(MINERS)}")
        self.miner, self.lam, self.threshold = miner, lam, threshold
        self.activation, self.smooth, self.reduction = activation, smooth, reduction
        self.miner_options = dict(miner_options or {})

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return hpm_loss(
            input, target, miner=self.miner, lam=self.lam, threshold=self.threshold,
            activation=self.activation, smooth=self.smooth, reduction=self.reduction,
            miner_options=self.miner_options,
        )

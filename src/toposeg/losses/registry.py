"""Explicit loss registry: ``build_loss(name, **params)``."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from torch import nn

from toposeg.losses.bce_dice import BCEDiceLoss
from toposeg.losses.hpm import HPMLoss

LOSSES: dict[str, Callable[..., nn.Module]] = {
    "bce_dice": BCEDiceLoss,
    "thpm": partial(HPMLoss, miner="thpm"),
    "shpm": partial(HPMLoss, miner="shpm"),
}


def build_loss(name: str, **params: Any) -> nn.Module:
    """Build a loss module by name. HPM losses (``thpm``, ``shpm``, ...) return the full eq. 1."""
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; valid: {sorted(LOSSES)}")
    return LOSSES[name](**params)

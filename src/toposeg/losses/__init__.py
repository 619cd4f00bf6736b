"""Losses: each a pure function plus a thin ``nn.Module``; ``build_loss`` is the registry."""

from toposeg.losses.bce_dice import BCEDiceLoss, bce_dice_loss
from toposeg.losses.hpm import HPMLoss, hpm_loss
from toposeg.losses.registry import LOSSES, build_loss

__all__ = ["BCEDiceLoss", "HPMLoss", "LOSSES", "bce_dice_loss", "build_loss", "hpm_loss"]

"""Losses: each a pure function plus a thin ``nn.Module``; ``build_loss`` is the registry.

Inputs are logits ``(N, C, *S)`` by default (``activation="sigmoid"``; ``"softmax"`` for
one-hot multi-class targets; ``None`` for probabilities) and a binary target of the same shape.
Every compared method is ``BCE + Dice`` (both at weight 1) plus its own term; ``hpm_term`` /
``HPMTerm`` give the hard-pixel term of the HPM methods alone.
"""

from toposeg.losses.bce_dice import BCEDiceLoss, bce_dice_loss
from toposeg.losses.cldice import CLDiceLoss, cldice_loss, soft_cldice, soft_skeleton, topology_precision_sensitivity
from toposeg.losses.hpm import (
    HPMLoss, HPMTerm, PHPMLoss, SHPMLoss, SHPMPlusLoss, THPMLoss, gradient_share, hard_pixel_mse, hard_pixel_term,
    hpm_loss, hpm_stats, hpm_term, phpm_loss, shpm_loss, shpm_plus_loss, thpm_loss,
)
from toposeg.losses.registry import LOSSES, build_loss
from toposeg.losses.skeleton_recall import SkeletonRecallLoss, skeleton_recall_loss, tubed_skeleton

__all__ = [
    "BCEDiceLoss", "CLDiceLoss", "HPMLoss", "HPMTerm", "LOSSES", "PHPMLoss", "SHPMLoss", "SHPMPlusLoss", "SkeletonRecallLoss",
    "THPMLoss", "bce_dice_loss", "build_loss", "cldice_loss", "gradient_share", "hard_pixel_mse", "hard_pixel_term",
    "hpm_loss", "hpm_stats", "hpm_term", "phpm_loss", "shpm_loss", "shpm_plus_loss",
    "skeleton_recall_loss", "soft_cldice", "soft_skeleton", "thpm_loss", "topology_precision_sensitivity",
    "tubed_skeleton",
]

"""Explicit loss registry: ``build_loss(name, **params)``."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from toposeg.losses.bce_dice import BCEDiceLoss
from toposeg.losses.cldice import CLDiceLoss
from toposeg.losses.hpm import PHPMLoss, SHPMLoss, SHPMPlusLoss, THPMLoss
from toposeg.losses.skeleton_recall import SkeletonRecallLoss

LOSSES: dict[str, Callable[..., nn.Module]] = {
    "bce_dice": BCEDiceLoss,
    "cldice": CLDiceLoss,
    "thpm": THPMLoss,
    "phpm": PHPMLoss,
    "shpm": SHPMLoss,
    "shpm_plus": SHPMPlusLoss,  # candidate variant (docs/losses.md, "SHPM variants"); "shpm" is the paper's
    "skeleton_recall": SkeletonRecallLoss,
}


def build_loss(name: str, **params: Any) -> nn.Module:
    """Build a loss module by name. HPM losses (``thpm``, ``phpm``, ``shpm``) return the full eq. 1;
    ``shpm_plus`` is a candidate SHPM variant with other defaults (``hard_loss="bce"``,
    ``normalize="pos_neg"``, ``pos_filter="gap"``, ``neg_filter="spurious_whole"``, ``threshold=0.5``).

    Every module is called as ``loss(input, target)`` (logits by default); ``mask=`` and, where
    meaningful, ``target_skeleton=`` are optional keyword arguments of ``forward``. Unknown
    parameters raise ``TypeError`` naming them.
    """
    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; valid: {sorted(LOSSES)}")
    import inspect

    valid = [p for p in inspect.signature(LOSSES[name]).parameters if p not in ("self", "args", "kwargs")]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(f"unknown parameter(s) {unknown} for loss {name!r}; valid: {valid}")
    return LOSSES[name](**params)

"""Hard-pixel-mining losses, eq. 1-2: ``BCE + Dice + lam * MSE over the mined hard set H``.

``thpm_loss`` / ``phpm_loss`` / ``shpm_loss`` (and the modules ``THPMLoss`` / ``PHPMLoss`` /
``SHPMLoss``) are the three miners of the paper; ``hpm_loss(miner=...)`` is the generic form.
``hpm_term`` / ``HPMTerm`` return the hard-pixel term ``L_HPM`` alone (eq. 2), for training
loops that bring their own base loss; the full losses reuse it. The mining threshold defaults to
:data:`toposeg.mining.DEFAULT_MINING_THRESHOLD` (the paper's 0.6) everywhere.

Multi-class rule: with ``activation="softmax"`` and ``C > 1`` channels, channel 0 is the
background and is not mined; every foreground class ``c >= 1`` is mined one-vs-rest on its own
probability map ``softmax(input)[:, c]`` against ``target[:, c]`` (one-hot), and the HPM term is
the mean over the foreground classes. With ``sigmoid`` (or ``None``) every channel is an
independent binary foreground and is mined, again averaged over channels.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn

from toposeg import mining
from toposeg.mining import DEFAULT_MINING_THRESHOLD
from toposeg._checks import check_binary, check_same_shape, check_threshold, describe
from toposeg.losses._common import (
    activate, check_loss_inputs, check_options, check_weight, expand_mask, foreground, reduce, spatial_dims,
)
from toposeg.losses.bce_dice import _bce_dice_per_sample

MINERS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = mining.MINERS


def hard_pixel_mse(prob: torch.Tensor, target: torch.Tensor, hard: torch.Tensor, reduction: str) -> torch.Tensor:
    """Eq. 2: mean of ``(p - y)^2`` over the hard pixels, per channel, then averaged over channels.

    ``reduction="mean"``: one average over all hard pixels of the batch (per channel);
    ``"none"``: ``(N,)``, one average per sample. Exactly 0 (with a valid graph) when H is empty.
    """
    sq = (prob - target.to(prob.dtype)).square() * hard.to(prob.dtype)
    dims = spatial_dims(prob)
    if reduction == "mean":
        per_channel = sq.sum((0, *dims)) / hard.sum((0, *dims)).clamp(min=1).to(prob.dtype)
        return per_channel.mean()
    per = sq.sum(dims) / hard.sum(dims).clamp(min=1).to(prob.dtype)  # (N, C)
    return per.mean(1)


def _check_target_skeleton(target_skeleton: Optional[torch.Tensor], target: torch.Tensor) -> Optional[torch.Tensor]:
    if target_skeleton is None:
        return None
    if not isinstance(target_skeleton, torch.Tensor):
        raise TypeError(f"target_skeleton must be a torch.Tensor shaped like target, got {describe(target_skeleton)}")
    check_same_shape(target_skeleton, target, ("target_skeleton", "target"))
    check_binary(target_skeleton, "target_skeleton")
    return target_skeleton.bool()


def _check_miner(miner: str) -> str:
    if miner not in MINERS:
        raise KeyError(f"unknown miner {miner!r}; valid: {sorted(MINERS)}")
    return miner


def _check_hard(hard: object, input: torch.Tensor, activation: Optional[str]) -> torch.Tensor:
    """``hard`` shaped like ``input``, or (softmax) like its foreground channels; returns the latter."""
    if not isinstance(hard, torch.Tensor):
        raise TypeError(f"hard must be a bool torch.Tensor shaped like input {tuple(input.shape)}, got {describe(hard)}")
    n_fg = foreground(input[:1, :, :1], activation).shape[1]
    ok = hard.ndim == input.ndim and hard.shape[0] == input.shape[0] and hard.shape[2:] == input.shape[2:] \
        and hard.shape[1] in (input.shape[1], n_fg)
    if not ok:
        also = f" or {(input.shape[0], n_fg, *input.shape[2:])} (foreground channels)" if n_fg != input.shape[1] else ""
        raise ValueError(f"hard must have shape {tuple(input.shape)}{also} to match input, got {tuple(hard.shape)}")
    check_binary(hard, "hard")
    hard = hard.bool()
    return foreground(hard, activation) if hard.shape[1] == input.shape[1] else hard


def _hpm_term(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    hard: Optional[torch.Tensor],
    miner: str,
    threshold: float,
    activation: Optional[str],
    reduction: str,
    mask: Optional[torch.Tensor],
    target_skeleton: Optional[torch.Tensor],
    miner_options: Optional[dict[str, Any]],
) -> torch.Tensor:
    """Eq. 2 on validated inputs (shared by :func:`hpm_term` and :func:`hpm_loss`)."""
    prob = activate(input, activation)
    p_fg, y_fg = foreground(prob, activation), foreground(target, activation)
    if hard is None:
        options = dict(miner_options or {})
        skel = _check_target_skeleton(target_skeleton, target)
        if skel is not None:
            if miner != "shpm":
                raise ValueError(f"target_skeleton is only used by the 'shpm' miner, got miner={miner!r}")
            options["target_skeleton"] = foreground(skel, activation)
        pos, neg = MINERS[miner](p_fg.detach(), y_fg, threshold=threshold, **options)
        hard = pos | neg
    else:
        if target_skeleton is not None or miner_options:
            raise ValueError("hard= replaces mining: target_skeleton and miner_options must not be given with it")
        hard = _check_hard(hard, input, activation).to(p_fg.device)
    m = expand_mask(mask, p_fg)
    if m is not None:
        hard = hard & m.bool()
    return hard_pixel_mse(p_fg, y_fg, hard, reduction)


def hpm_term(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    hard: Optional[torch.Tensor] = None,
    miner: str = "shpm",
    threshold: float = DEFAULT_MINING_THRESHOLD,
    activation: Optional[str] = "sigmoid",
    reduction: str = "mean",
    mask: Optional[torch.Tensor] = None,
    target_skeleton: Optional[torch.Tensor] = None,
    miner_options: Optional[dict[str, Any]] = None,
) -> torch.Tensor:
    """The hard-pixel term alone, eq. 2: ``L_HPM = 1/|H| * sum_{h in H} (p[h] - y[h])^2``.

    This is what a training loop adds to its own base loss (e.g. nnU-Net's Dice + CE):
    ``base + lam * hpm_term(...)``. :func:`hpm_loss` is ``BCE + Dice + lam * hpm_term``.

    Args:
        input: logits ``(N, C, *S)`` (probabilities with ``activation=None``), 2 or 3 spatial dims.
        target: binary tensor shaped like ``input`` (one-hot for softmax; a class-index map is
            refused with the conversion in the message).
        hard: optional bool hard set ``H`` (e.g. ``pos | neg`` of a miner) shaped like ``input``
            (or, with softmax, like its foreground channels ``1:``); replaces mining, so
            ``miner``, ``threshold``, ``target_skeleton`` and ``miner_options`` are not used.
        miner: ``"thpm"``, ``"phpm"`` or ``"shpm"`` (default), run without gradient on the
            foreground probabilities.
        threshold: mining threshold ``t``, default :data:`toposeg.mining.DEFAULT_MINING_THRESHOLD` (0.6).
        activation: ``"sigmoid"`` (default), ``"softmax"`` (channel 0 = background, not mined)
            or ``None`` (probabilities).
        reduction: ``"mean"``: per channel, the mean over all hard pixels of the batch, then
            the mean over (foreground) channels -> scalar; ``"none"``: ``(N,)``, per sample.
        mask: optional binary ``(N, 1, *S)`` (or input-shaped) tensor; pixels with 0 (e.g. an
            ignore label) are removed from ``H``.
        target_skeleton: SHPM only, precomputed ``s(y)`` shaped like ``target``.
        miner_options: extra miner keywords (``{"method": "zhang"}`` for SHPM, ``{"dims": (1,)}``
            for PHPM, ...); unknown keys raise ``TypeError``.

    Returns:
        Scalar (``"mean"``) or ``(N,)`` tensor, float like ``input``. Exactly 0 -- and still
        attached to the graph of ``input`` -- when ``H`` is empty (e.g. a perfect prediction);
        the gradient flows through ``p`` at the pixels of ``H`` only.

    Raises:
        KeyError: unknown miner. TypeError / ValueError: bad tensors or options, with the
        received value in the message.
    """
    _check_miner(miner)
    threshold = check_threshold(threshold)
    check_loss_inputs(input, target, activation, reduction, mask)
    return _hpm_term(input, target, hard=hard, miner=miner, threshold=threshold, activation=activation,
                     reduction=reduction, mask=mask, target_skeleton=target_skeleton, miner_options=miner_options)


def hpm_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    miner: str = "shpm",
    lam: float = 0.5,
    threshold: float = DEFAULT_MINING_THRESHOLD,
    activation: Optional[str] = "sigmoid",
    smooth: float = 1.0,
    reduction: str = "mean",
    mask: Optional[torch.Tensor] = None,
    target_skeleton: Optional[torch.Tensor] = None,
    miner_options: Optional[dict[str, Any]] = None,
) -> torch.Tensor:
    """Full eq. 1: ``L_BCE + L_Dice + lam * L_HPM`` with ``L_HPM`` = :func:`hpm_term`.

    Args:
        input: logits ``(N, C, *S)`` (probabilities with ``activation=None``).
        target: binary tensor of the same shape (one-hot for softmax).
        miner: one of :data:`MINERS` (``"thpm"``, ``"phpm"``, ``"shpm"``).
        lam: weight of the hard-pixel term (the paper's 0.5).
        threshold: mining threshold ``t`` of ``p_t = p > t``, default
            :data:`toposeg.mining.DEFAULT_MINING_THRESHOLD` (the paper's 0.6).
        smooth: smoothing of the soft Dice of the base.
        reduction: ``"mean"`` (HPM term averaged over all hard pixels of the batch) or
            ``"none"`` (one value per sample).
        mask: optional binary ``(N, 1, *S)`` tensor; pixels with 0 are ignored everywhere
            (BCE, Dice and the hard set).
        target_skeleton: SHPM only: precomputed ``s(y)`` shaped like ``target`` (it never
            changes during training, compute it once per sample).
        miner_options: extra keyword arguments for the miner (``{"method": "zhang",
            "backend": "torch"}`` for SHPM, ``{"dims": (1,)}`` for PHPM, ...); unknown keys raise
            ``TypeError``.
    """
    _check_miner(miner)
    lam = check_weight(lam, "lam")
    threshold = check_threshold(threshold)
    check_loss_inputs(input, target, activation, reduction, mask)
    hpm = _hpm_term(input, target, hard=None, miner=miner, threshold=threshold, activation=activation,
                    reduction=reduction, mask=mask, target_skeleton=target_skeleton, miner_options=miner_options)
    base = reduce(_bce_dice_per_sample(input, target, activation, smooth, mask), reduction)
    return base + lam * hpm


def thpm_loss(input: torch.Tensor, target: torch.Tensor, *, lam: float = 0.5, threshold: float = DEFAULT_MINING_THRESHOLD,
              activation: Optional[str] = "sigmoid", smooth: float = 1.0, reduction: str = "mean",
              mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. 1 with THPM (eq. 3): every misclassified pixel is hard."""
    return hpm_loss(input, target, miner="thpm", lam=lam, threshold=threshold, activation=activation,
                    smooth=smooth, reduction=reduction, mask=mask)


def phpm_loss(input: torch.Tensor, target: torch.Tensor, *, lam: float = 0.5, threshold: float = DEFAULT_MINING_THRESHOLD,
              dims: Iterable[int] = (0, 1), workers: Optional[int] = None,
              activation: Optional[str] = "sigmoid", smooth: float = 1.0, reduction: str = "mean",
              mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. 1 with PHPM (eq. 4-5): critical pixels of the persistence pairs in ``dims``."""
    return hpm_loss(input, target, miner="phpm", lam=lam, threshold=threshold, activation=activation,
                    smooth=smooth, reduction=reduction, mask=mask,
                    miner_options={"dims": dims, "workers": workers})


def shpm_loss(input: torch.Tensor, target: torch.Tensor, *, lam: float = 0.5, threshold: float = DEFAULT_MINING_THRESHOLD,
              method: str = "thin", backend: str = "auto", activation: Optional[str] = "sigmoid",
              smooth: float = 1.0, reduction: str = "mean", mask: Optional[torch.Tensor] = None,
              target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eq. 1 with SHPM (eq. 6-8): skeleton pixels missed by / wrongly added to the prediction.

    ``method`` (thinning rule, default ``"thin"``; ``"zhang"`` reproduces the paper's 2D code) and
    ``backend`` (implementation) go to :func:`toposeg.skeleton.skeletonize`.
    """
    return hpm_loss(input, target, miner="shpm", lam=lam, threshold=threshold, activation=activation,
                    smooth=smooth, reduction=reduction, mask=mask, target_skeleton=target_skeleton,
                    miner_options={"method": method, "backend": backend})


class HPMLoss(nn.Module):
    """Module form of :func:`hpm_loss`."""

    def __init__(
        self,
        *,
        miner: str = "shpm",
        lam: float = 0.5,
        threshold: float = DEFAULT_MINING_THRESHOLD,
        activation: Optional[str] = "sigmoid",
        smooth: float = 1.0,
        reduction: str = "mean",
        miner_options: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        _check_miner(miner)
        check_options(activation, reduction)
        self.miner, self.lam, self.threshold = miner, check_weight(lam, "lam"), check_threshold(threshold)
        self.activation, self.smooth, self.reduction = activation, smooth, reduction
        self.miner_options = dict(miner_options or {})

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
                target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
        return hpm_loss(
            input, target, miner=self.miner, lam=self.lam, threshold=self.threshold,
            activation=self.activation, smooth=self.smooth, reduction=self.reduction, mask=mask,
            target_skeleton=target_skeleton, miner_options=self.miner_options,
        )


class THPMLoss(HPMLoss):
    """Module form of :func:`thpm_loss`."""

    def __init__(self, *, lam: float = 0.5, threshold: float = DEFAULT_MINING_THRESHOLD, activation: Optional[str] = "sigmoid",
                 smooth: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(miner="thpm", lam=lam, threshold=threshold, activation=activation, smooth=smooth,
                         reduction=reduction)


class PHPMLoss(HPMLoss):
    """Module form of :func:`phpm_loss`."""

    def __init__(self, *, lam: float = 0.5, threshold: float = DEFAULT_MINING_THRESHOLD, dims: Iterable[int] = (0, 1),
                 workers: Optional[int] = None, activation: Optional[str] = "sigmoid", smooth: float = 1.0,
                 reduction: str = "mean") -> None:
        super().__init__(miner="phpm", lam=lam, threshold=threshold, activation=activation, smooth=smooth,
                         reduction=reduction, miner_options={"dims": dims, "workers": workers})


class SHPMLoss(HPMLoss):
    """Module form of :func:`shpm_loss`; ``forward(input, target, mask=None, target_skeleton=None)``."""

    def __init__(self, *, lam: float = 0.5, threshold: float = DEFAULT_MINING_THRESHOLD, method: str = "thin",
                 backend: str = "auto", activation: Optional[str] = "sigmoid", smooth: float = 1.0,
                 reduction: str = "mean") -> None:
        super().__init__(miner="shpm", lam=lam, threshold=threshold, activation=activation, smooth=smooth,
                         reduction=reduction, miner_options={"method": method, "backend": backend})
        self.method, self.backend = method, backend


class HPMTerm(nn.Module):
    """Module form of :func:`hpm_term`: the hard-pixel term ``L_HPM`` alone (eq. 2).

    ``HPMTerm(miner="shpm", threshold=0.6, activation="sigmoid", reduction="mean",
    miner_options=None)``; ``forward(input, target, mask=None, target_skeleton=None, hard=None)``.
    """

    def __init__(self, *, miner: str = "shpm", threshold: float = DEFAULT_MINING_THRESHOLD,
                 activation: Optional[str] = "sigmoid", reduction: str = "mean",
                 miner_options: Optional[dict[str, Any]] = None) -> None:
        super().__init__()
        _check_miner(miner)
        check_options(activation, reduction)
        self.miner, self.threshold = miner, check_threshold(threshold)
        self.activation, self.reduction = activation, reduction
        self.miner_options = dict(miner_options or {})

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
                target_skeleton: Optional[torch.Tensor] = None, hard: Optional[torch.Tensor] = None) -> torch.Tensor:
        return hpm_term(input, target, hard=hard, miner=self.miner, threshold=self.threshold,
                        activation=self.activation, reduction=self.reduction, mask=mask,
                        target_skeleton=target_skeleton,
                        miner_options=None if hard is not None else self.miner_options)

"""Hard-pixel-mining losses, eq. 1-2: ``BCE + Dice + lam * MSE over the mined hard set H``.

``thpm_loss`` / ``phpm_loss`` / ``shpm_loss`` (and the modules ``THPMLoss`` / ``PHPMLoss`` /
``SHPMLoss``) are the three miners of the paper; ``hpm_loss(miner=...)`` is the generic form.
``hpm_term`` / ``HPMTerm`` return the hard-pixel term ``L_HPM`` alone (eq. 2), for training
loops that bring their own base loss; the full losses reuse it. The mining threshold defaults to
:data:`toposeg.mining.DEFAULT_MINING_THRESHOLD` (the paper's 0.6) everywhere.

Candidate variants (docs/losses.md, "SHPM variants"): ``hard_loss`` and ``normalize`` of every
HPM entry point, ``pos_filter`` / ``neg_filter`` of SHPM, all defaulting to the paper; the
candidate ``shpm_plus_loss`` / ``SHPMPlusLoss`` (registry ``"shpm_plus"``) changes the defaults.
Telemetry for validation steps: :func:`hpm_stats` (hard-set sizes, term value) and
:func:`gradient_share` (gradient-norm ratio of the HPM term to BCE + Dice).

Multi-class rule: with ``activation="softmax"`` and ``C > 1`` channels, channel 0 is the
background and is not mined; every foreground class ``c >= 1`` is mined one-vs-rest on its own
probability map ``softmax(input)[:, c]`` against ``target[:, c]`` (one-hot), and the HPM term is
the mean over the foreground classes. With ``sigmoid`` (or ``None``) every channel is an
independent binary foreground and is mined, again averaged over channels.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

import torch
import torch.nn.functional as F
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


#: valid ``hard_loss`` values: the per-pixel loss on the hard set ("mse" = the paper's eq. 2)
HARD_LOSSES: tuple[str, ...] = ("mse", "bce")
#: valid ``normalize`` values: how the per-pixel losses are averaged ("batch" = the paper's eq. 2)
NORMALIZATIONS: tuple[str, ...] = ("batch", "sample", "pos_neg")


def check_choice(value: object, valid: tuple[str, ...], name: str) -> str:
    """``value`` must be one of ``valid``; else ``ValueError`` listing them and quoting ``value``."""
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name} must be one of {list(valid)}, got {value!r}")
    return value


def _mean_over(per_pixel: torch.Tensor, hard: torch.Tensor, batch: bool) -> torch.Tensor:
    """Mean of ``per_pixel`` over ``hard``: over the batch per channel (scalar) or per sample ``(N,)``;
    then the mean over channels. 0 where the set is empty."""
    h = hard.to(per_pixel.dtype)
    dims = spatial_dims(per_pixel)
    if batch:
        axes = (0, *dims)
        return ((per_pixel * h).sum(axes) / h.sum(axes).clamp(min=1)).mean()
    return ((per_pixel * h).sum(dims) / h.sum(dims).clamp(min=1)).mean(1)


def hard_pixel_term(prob: torch.Tensor, target: torch.Tensor, hard: torch.Tensor, reduction: str, *,
                    hard_loss: str = "mse", normalize: str = "batch",
                    logits: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The hard-pixel term with the candidate options; ``("mse", "batch")`` is eq. 2 (:func:`hard_pixel_mse`).

    Per-pixel loss ``l``: ``hard_loss="mse"``: ``(p - y)^2``; ``"bce"``:
    ``-[y log p + (1 - y) log(1 - p)]`` (from ``logits`` when given, for accuracy, else from
    ``prob`` with PyTorch's clamp of the log at -100). Averaging over ``H`` (then over channels):

    * ``"batch"``: ``reduction="mean"``: ``sum_H l / |H|`` over the whole batch per channel;
      ``"none"``: the same per sample ``(N,)``.
    * ``"sample"``: per sample ``sum_{H_i} l / |H_i|`` (0 when ``H_i`` is empty), then the mean
      over samples for ``"mean"`` -- so ``"mean"`` is the mean of ``"none"``.
    * ``"pos_neg"``: ``H_pos = H ∩ {y = 1}`` and ``H_neg = H ∩ {y = 0}`` each averaged over its own
      size (batch-wide for ``"mean"``, per sample for ``"none"``), then **summed**; an empty set
      contributes 0, so it equals ``"batch"`` when either set is empty.

    Args:
        prob: probabilities ``(N, C, *S)`` (the foreground channels); target: binary, same shape;
        hard: bool, same shape; reduction: ``"mean"`` (scalar) or ``"none"`` (``(N,)``).
        logits: optional logits of ``prob`` (sigmoid), used by ``"bce"``.

    Raises:
        ValueError: unknown ``hard_loss`` / ``normalize`` (the message lists the valid ones).
    """
    check_choice(hard_loss, HARD_LOSSES, "hard_loss")
    check_choice(normalize, NORMALIZATIONS, "normalize")
    y = target.to(prob.dtype)
    if hard_loss == "mse":
        per_pixel = (prob - y).square()
    elif logits is not None:
        per_pixel = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    else:
        per_pixel = F.binary_cross_entropy(prob, y, reduction="none")
    batch = reduction == "mean" and normalize != "sample"
    if normalize == "pos_neg":
        yb = target.bool()
        out = _mean_over(per_pixel, hard & yb, batch) + _mean_over(per_pixel, hard & ~yb, batch)
    else:
        out = _mean_over(per_pixel, hard, batch)
    return out.mean() if reduction == "mean" and not batch else out


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
    hard_loss: str = "mse",
    normalize: str = "batch",
    return_hard: bool = False,
) -> Any:
    """Eq. 2 on validated inputs (shared by :func:`hpm_term`, :func:`hpm_loss` and :func:`hpm_stats`)."""
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
    logits = foreground(input, activation) if activation == "sigmoid" else None
    term = hard_pixel_term(p_fg, y_fg, hard, reduction, hard_loss=hard_loss, normalize=normalize, logits=logits)
    return (term, hard, y_fg) if return_hard else term


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
    hard_loss: str = "mse",
    normalize: str = "batch",
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
        hard_loss: per-pixel loss on ``H``: ``"mse"`` (default, eq. 2) or ``"bce"``
            (:func:`hard_pixel_term`).
        normalize: ``"batch"`` (default, eq. 2), ``"sample"`` or ``"pos_neg"`` (:func:`hard_pixel_term`).

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
    check_choice(hard_loss, HARD_LOSSES, "hard_loss")
    check_choice(normalize, NORMALIZATIONS, "normalize")
    check_loss_inputs(input, target, activation, reduction, mask)
    return _hpm_term(input, target, hard=hard, miner=miner, threshold=threshold, activation=activation,
                     reduction=reduction, mask=mask, target_skeleton=target_skeleton, miner_options=miner_options,
                     hard_loss=hard_loss, normalize=normalize)


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
    hard_loss: str = "mse",
    normalize: str = "batch",
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
        hard_loss, normalize: candidate options of the hard-pixel term (:func:`hard_pixel_term`);
            the defaults ``"mse"`` / ``"batch"`` are the paper's eq. 2.
    """
    _check_miner(miner)
    lam = check_weight(lam, "lam")
    threshold = check_threshold(threshold)
    check_choice(hard_loss, HARD_LOSSES, "hard_loss")
    check_choice(normalize, NORMALIZATIONS, "normalize")
    check_loss_inputs(input, target, activation, reduction, mask)
    hpm = _hpm_term(input, target, hard=None, miner=miner, threshold=threshold, activation=activation,
                    reduction=reduction, mask=mask, target_skeleton=target_skeleton, miner_options=miner_options,
                    hard_loss=hard_loss, normalize=normalize)
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
              target_skeleton: Optional[torch.Tensor] = None, hard_loss: str = "mse", normalize: str = "batch",
              pos_filter: str = "none", neg_filter: str = "none") -> torch.Tensor:
    """Eq. 1 with SHPM (eq. 6-8): skeleton pixels missed by / wrongly added to the prediction.

    ``method`` (thinning rule, default ``"thin"``; ``"zhang"`` reproduces the paper's 2D code) and
    ``backend`` (implementation) go to :func:`toposeg.skeleton.skeletonize`.

    Candidate options (docs/losses.md, "SHPM variants"), each defaulting to the paper:
    ``hard_loss`` ``"mse"`` | ``"bce"`` and ``normalize`` ``"batch"`` | ``"sample"`` | ``"pos_neg"``
    (:func:`hard_pixel_term`); ``pos_filter`` ``"none"`` | ``"gap"`` and ``neg_filter`` ``"none"``
    | ``"spurious_whole"`` (:func:`toposeg.mining.shpm`). Bad values raise ``ValueError`` listing
    the valid ones.
    """
    return hpm_loss(input, target, miner="shpm", lam=lam, threshold=threshold, activation=activation,
                    smooth=smooth, reduction=reduction, mask=mask, target_skeleton=target_skeleton,
                    miner_options=_shpm_options(method, backend, pos_filter, neg_filter),
                    hard_loss=hard_loss, normalize=normalize)


def _shpm_options(method: str, backend: str, pos_filter: str, neg_filter: str) -> dict[str, Any]:
    """Miner options of SHPM; the filters are validated here so that a module fails at construction."""
    check_choice(pos_filter, mining.POS_FILTERS, "pos_filter")
    check_choice(neg_filter, mining.NEG_FILTERS, "neg_filter")
    options: dict[str, Any] = {"method": method, "backend": backend}
    if pos_filter != "none":
        options["pos_filter"] = pos_filter
    if neg_filter != "none":
        options["neg_filter"] = neg_filter
    return options


#: defaults of the candidate ``shpm_plus`` (a candidate to be chosen on validation splits, not a claim)
SHPM_PLUS_DEFAULTS: dict[str, Any] = {"hard_loss": "bce", "normalize": "pos_neg", "pos_filter": "gap",
                                      "neg_filter": "spurious_whole", "threshold": 0.5}


def shpm_plus_loss(input: torch.Tensor, target: torch.Tensor, *, lam: float = 0.5, threshold: float = 0.5,
                   method: str = "thin", backend: str = "auto", activation: Optional[str] = "sigmoid",
                   smooth: float = 1.0, reduction: str = "mean", mask: Optional[torch.Tensor] = None,
                   target_skeleton: Optional[torch.Tensor] = None, hard_loss: str = "bce",
                   normalize: str = "pos_neg", pos_filter: str = "gap",
                   neg_filter: str = "spurious_whole") -> torch.Tensor:
    """Candidate improved SHPM: :func:`shpm_loss` with other defaults (:data:`SHPM_PLUS_DEFAULTS`).

    ``hard_loss="bce"`` (no vanishing gradient on confidently wrong pixels), ``normalize="pos_neg"``
    (missed and false skeleton pixels weigh the same whatever their counts), ``pos_filter="gap"``
    (only real gaps are pushed up), ``neg_filter="spurious_whole"`` (spurious blobs are pushed
    down whole, not cut along their skeleton) and ``threshold=0.5`` (mine what evaluation
    binarises: specks with p in (0.5, 0.6] are foreground at evaluation). A candidate, to be
    chosen or rejected on validation splits; the paper's method is :func:`shpm_loss`.
    """
    return shpm_loss(input, target, lam=lam, threshold=threshold, method=method, backend=backend,
                     activation=activation, smooth=smooth, reduction=reduction, mask=mask,
                     target_skeleton=target_skeleton, hard_loss=hard_loss, normalize=normalize,
                     pos_filter=pos_filter, neg_filter=neg_filter)


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
        hard_loss: str = "mse",
        normalize: str = "batch",
    ) -> None:
        super().__init__()
        _check_miner(miner)
        check_options(activation, reduction)
        self.miner, self.lam, self.threshold = miner, check_weight(lam, "lam"), check_threshold(threshold)
        self.activation, self.smooth, self.reduction = activation, smooth, reduction
        self.miner_options = dict(miner_options or {})
        self.hard_loss = check_choice(hard_loss, HARD_LOSSES, "hard_loss")
        self.normalize = check_choice(normalize, NORMALIZATIONS, "normalize")

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
                target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
        return hpm_loss(
            input, target, miner=self.miner, lam=self.lam, threshold=self.threshold,
            activation=self.activation, smooth=self.smooth, reduction=self.reduction, mask=mask,
            target_skeleton=target_skeleton, miner_options=self.miner_options,
            hard_loss=self.hard_loss, normalize=self.normalize,
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
                 reduction: str = "mean", hard_loss: str = "mse", normalize: str = "batch",
                 pos_filter: str = "none", neg_filter: str = "none") -> None:
        super().__init__(miner="shpm", lam=lam, threshold=threshold, activation=activation, smooth=smooth,
                         reduction=reduction, miner_options=_shpm_options(method, backend, pos_filter, neg_filter),
                         hard_loss=hard_loss, normalize=normalize)
        self.method, self.backend = method, backend
        self.pos_filter, self.neg_filter = pos_filter, neg_filter


class SHPMPlusLoss(SHPMLoss):
    """Module form of :func:`shpm_plus_loss` (registry ``"shpm_plus"``): SHPM with the candidate defaults."""

    def __init__(self, *, lam: float = 0.5, threshold: float = 0.5, method: str = "thin",
                 backend: str = "auto", activation: Optional[str] = "sigmoid", smooth: float = 1.0,
                 reduction: str = "mean", hard_loss: str = "bce", normalize: str = "pos_neg",
                 pos_filter: str = "gap", neg_filter: str = "spurious_whole") -> None:
        super().__init__(lam=lam, threshold=threshold, method=method, backend=backend, activation=activation,
                         smooth=smooth, reduction=reduction, hard_loss=hard_loss, normalize=normalize,
                         pos_filter=pos_filter, neg_filter=neg_filter)


class HPMTerm(nn.Module):
    """Module form of :func:`hpm_term`: the hard-pixel term ``L_HPM`` alone (eq. 2).

    ``HPMTerm(miner="shpm", threshold=0.6, activation="sigmoid", reduction="mean",
    miner_options=None)``; ``forward(input, target, mask=None, target_skeleton=None, hard=None)``.
    """

    def __init__(self, *, miner: str = "shpm", threshold: float = DEFAULT_MINING_THRESHOLD,
                 activation: Optional[str] = "sigmoid", reduction: str = "mean",
                 miner_options: Optional[dict[str, Any]] = None, hard_loss: str = "mse",
                 normalize: str = "batch") -> None:
        super().__init__()
        _check_miner(miner)
        check_options(activation, reduction)
        self.miner, self.threshold = miner, check_threshold(threshold)
        self.activation, self.reduction = activation, reduction
        self.miner_options = dict(miner_options or {})
        self.hard_loss = check_choice(hard_loss, HARD_LOSSES, "hard_loss")
        self.normalize = check_choice(normalize, NORMALIZATIONS, "normalize")

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
                target_skeleton: Optional[torch.Tensor] = None, hard: Optional[torch.Tensor] = None) -> torch.Tensor:
        return hpm_term(input, target, hard=hard, miner=self.miner, threshold=self.threshold,
                        activation=self.activation, reduction=self.reduction, mask=mask,
                        target_skeleton=target_skeleton,
                        miner_options=None if hard is not None else self.miner_options,
                        hard_loss=self.hard_loss, normalize=self.normalize)


# ---------------------------------------------------------------- telemetry (validation steps)

@torch.no_grad()
def hpm_stats(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    miner: str = "shpm",
    threshold: float = DEFAULT_MINING_THRESHOLD,
    activation: Optional[str] = "sigmoid",
    mask: Optional[torch.Tensor] = None,
    target_skeleton: Optional[torch.Tensor] = None,
    miner_options: Optional[dict[str, Any]] = None,
    hard_loss: str = "mse",
    normalize: str = "batch",
) -> dict[str, float]:
    """Hard-set telemetry of one batch, without gradient: what the HPM term sees.

    Mines exactly as :func:`hpm_term` with the same arguments (``reduction="mean"``).

    Returns:
        ``{"hard_pos": |H_pos|, "hard_neg": |H_neg|, "hard": |H|, "hard_fraction": |H| / number
        of mined pixels, "hpm_term": the term's value}`` as Python floats; counts run over the
        whole batch and every mined (foreground) channel, ``H_pos = H ∩ {y = 1}``,
        ``H_neg = H ∩ {y = 0}`` (for every miner these are exactly its ``pos`` / ``neg``); the
        mined pixels are ``N * C_fg * prod(S)`` (minus pixels removed by ``mask``).

    Raises:
        as :func:`hpm_term`.
    """
    _check_miner(miner)
    threshold = check_threshold(threshold)
    check_choice(hard_loss, HARD_LOSSES, "hard_loss")
    check_choice(normalize, NORMALIZATIONS, "normalize")
    check_loss_inputs(input, target, activation, "mean", mask)
    term, hard, y_fg = _hpm_term(input, target, hard=None, miner=miner, threshold=threshold, activation=activation,
                                 reduction="mean", mask=mask, target_skeleton=target_skeleton,
                                 miner_options=miner_options, hard_loss=hard_loss, normalize=normalize,
                                 return_hard=True)
    y = y_fg.bool()
    m = expand_mask(mask, y_fg.to(torch.float32))
    n_pixels = int(m.sum()) if m is not None else y.numel()
    n_hard = int(hard.sum())
    return {
        "hard_pos": float((hard & y).sum()),
        "hard_neg": float((hard & ~y).sum()),
        "hard": float(n_hard),
        "hard_fraction": n_hard / n_pixels if n_pixels else float("nan"),
        "hpm_term": float(term),
    }


def gradient_share(model: nn.Module, base_loss_value: torch.Tensor, hpm_term_value: torch.Tensor) -> float:
    """``||∇_θ L_HPM|| / ||∇_θ (BCE + Dice)||`` over the trainable parameters ``θ`` of ``model``.

    Both gradients are taken with :func:`torch.autograd.grad` (``retain_graph=True``, so the
    graph can still be used, e.g. for ``backward`` of the full loss); parameter ``.grad`` fields
    are not touched. Norms are the Euclidean norm over all parameters together. Pass the
    *unweighted* term to compare the terms, or ``lam * term`` for the share in the actual update.

    Args:
        model: the network whose ``parameters()`` (``requires_grad=True``) are ``θ``.
        base_loss_value: scalar tensor ``BCE + Dice`` computed from ``model``'s output.
        hpm_term_value: scalar tensor of the HPM term from the same output.

    Returns:
        The ratio as a float: 0.0 when the HPM term does not depend on ``θ`` (e.g. an empty hard
        set), ``inf`` when only the base gradient is zero, NaN when both are.

    Raises:
        TypeError: ``model`` not an ``nn.Module`` or a value not a tensor; ValueError: a value that
        is not a scalar, or a model without trainable parameters.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"model {type(model).__name__} has no trainable parameters")

    def norm(value: object, name: str) -> float:
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a scalar torch.Tensor, got {describe(value)}")
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar tensor, got shape {tuple(value.shape)}")
        if not value.requires_grad:
            return 0.0
        grads = torch.autograd.grad(value.reshape(()), params, retain_graph=True, allow_unused=True)
        sq = sum(float(g.detach().double().square().sum()) for g in grads if g is not None)
        return sq ** 0.5

    base, hpm = norm(base_loss_value, "base_loss_value"), norm(hpm_term_value, "hpm_term_value")
    if base == 0.0:
        return float("nan") if hpm == 0.0 else float("inf")
    return hpm / base

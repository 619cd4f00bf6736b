"""Topology terms on nnU-Net's network output and targets (pure torch; nnunetv2 not needed).

nnU-Net hands its loss the raw network output (logits; a list of scales with deep supervision)
and its targets in one of two layouts:

* **label maps** (ordinary training): ``(N, 1, *S)`` float class indices ``0..K`` (``0`` =
  background), the logits have ``K + 1`` channels and are softmax-normalised;
* **regions** (region-based training): ``(N, R, *S)`` binary, one channel per (possibly
  overlapping) region, the logits have ``R`` channels and are sigmoid-normalised.

With an ignore label, the label map holds the ignore value at unlabelled voxels, and in the
region layout an extra last target channel marks them (1 = ignored).

:class:`TopologyTerm` turns either layout into one binary map per *foreground* class
(one-vs-rest; background channel 0 of a label map is never scored) and computes one of the
toposeg terms on it: the HPM term (eq. 2 with the THPM, PHPM or SHPM hard set), ``1 - soft
clDice``, or ``1 - soft skeleton recall``. :class:`TopologyCompoundLoss` adds it, with its
weight, to nnU-Net's own loss (Dice + CE, deep supervision included); the term itself is
computed on the full-resolution output only.

Ignore label: at ignored voxels the ground truth of every class is *completed with the
prediction* (``y_c := p_c > threshold``) before mining or skeletonizing, so ignored voxels
are never errors and do not cut or merge structures of the ground truth; then they are also
removed from the hard set / the soft sums (``mask``). No gradient flows from ignored voxels.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

#: the topology terms a trainer can add; ``weight`` defaults follow the methods' authors
TERMS: dict[str, dict[str, Any]] = {
    "shpm": {"weight": 0.5},
    "thpm": {"weight": 0.5},
    "phpm": {"weight": 0.5},
    "cldice": {"weight": 1.0},
    "skeleton_recall": {"weight": 1.0},
}


def _check_kind(kind: str) -> str:
    if kind not in TERMS:
        raise KeyError(f"unknown topology term {kind!r}; valid: {sorted(TERMS)}")
    return kind


def split_target(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    has_regions: bool,
    ignore_label: Optional[int],
) -> tuple[str, torch.Tensor, Optional[torch.Tensor]]:
    """nnU-Net target -> ``(activation, binary target shaped like logits, mask or None)``.

    Args:
        logits: network output ``(N, C, *S)`` (full resolution).
        target: nnU-Net target at the same resolution: label map ``(N, 1, *S)`` with values
            ``0..C-1`` (and ``ignore_label``), or regions ``(N, C[+1], *S)`` binary, the extra
            last channel being the ignore mask when ``ignore_label`` is set.
        has_regions: region-based training (sigmoid per channel) or not (softmax).
        ignore_label: nnU-Net's ignore label (``label_manager.ignore_label``) or None.

    Returns:
        ``activation`` (``"softmax"`` or ``"sigmoid"``), a bool target with one channel per
        logit channel (one-hot for label maps; ignored voxels 0 in every channel), and a bool
        ``(N, 1, *S)`` mask (True = labelled voxel) or None without an ignore label.

    Raises:
        ValueError: shapes that match neither layout, or label values outside
            ``0..C-1`` other than the ignore label (quoted in the message).
    """
    if logits.ndim not in (4, 5):
        raise ValueError(f"logits must be (N, C, H, W) or (N, C, D, H, W), got shape {tuple(logits.shape)}")
    n, c = logits.shape[:2]
    spatial = tuple(logits.shape[2:])
    if tuple(target.shape[2:]) != spatial or target.shape[0] != n:
        raise ValueError(f"target {tuple(target.shape)} does not match logits {tuple(logits.shape)} "
                         "(use the full-resolution target of nnU-Net's deep-supervision list)")
    if has_regions:
        expected = c + (1 if ignore_label is not None else 0)
        if target.shape[1] != expected:
            raise ValueError(f"region target must have {expected} channel(s) for {c} region logits"
                             f"{' plus the ignore channel' if ignore_label is not None else ''}, "
                             f"got shape {tuple(target.shape)}")
        y = target[:, :c].bool()
        mask = None if ignore_label is None else ~target[:, c:c + 1].bool()
        return "sigmoid", y, mask
    if target.shape[1] != 1:
        raise ValueError(f"label-map target must be (N, 1, *S) class indices, got shape {tuple(target.shape)}")
    labels = target[:, 0].round().long()
    mask = None
    if ignore_label is not None:
        mask = (labels != int(ignore_label)).unsqueeze(1)
        labels = torch.where(mask[:, 0], labels, torch.zeros_like(labels))
    bad = (labels < 0) | (labels >= c)
    if bool(bad.any()):
        values = sorted({int(v) for v in labels[bad].unique()[:10]})
        raise ValueError(f"label map holds values {values} outside 0..{c - 1} (logits have {c} channels, "
                         f"ignore label {ignore_label!r})")
    onehot = F.one_hot(labels, c).movedim(-1, 1).bool()
    return "softmax", onehot, mask


def complete_ignored(y: torch.Tensor, pred: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """``y`` with the voxels outside ``mask`` replaced by ``pred`` (the prediction is taken as the
    truth where nobody labelled); ``y`` itself when ``mask`` is None."""
    if mask is None:
        return y
    return torch.where(mask, y, pred)


class TopologyTerm(nn.Module):
    """One toposeg topology term on nnU-Net's full-resolution output and target.

    Args:
        kind: ``"shpm"``, ``"thpm"``, ``"phpm"`` (eq. 2 of Zhang et al., BMVC 2023, on the
            respective hard set), ``"cldice"`` (``1 - soft clDice``, Shit et al., CVPR 2021) or
            ``"skeleton_recall"`` (``1 - soft recall`` on the tubed ground-truth skeleton,
            Kirchhoff et al., ECCV 2024).
        has_regions / ignore_label: nnU-Net's label manager facts (see :func:`split_target`).
        threshold: mining threshold ``t`` of ``p_t = p > t`` (HPM terms; also used to complete
            the ground truth at ignored voxels), default 0.6 (the paper's).
        skeleton_method / skeleton_backend: rule and implementation of
            :func:`toposeg.skeleton.skeletonize` (SHPM, Skeleton Recall). ``"auto"`` runs the
            torch backend on every device, so the ground-truth skeleton is computed on the fly,
            on the GPU during GPU training.
        phpm_dims: homology dimensions of PHPM (``(0, 1)`` in 2D, ``(0,)`` for 3D vessels).
        cldice_iters: soft-skeleton iterations of clDice (should exceed the structure radius).
        tube_radius: Skeleton Recall tube radius (the authors' 2).
        smooth: smoothing of the soft clDice / recall ratios.

    ``forward(logits, target) -> scalar``: mean over foreground classes (HPM: mean over the
    batch's hard voxels of each class first, eq. 2; clDice / recall: per sample, then the
    batch mean). Computed in float32 whatever the autocast dtype of ``logits``.
    """

    def __init__(
        self,
        kind: str,
        *,
        has_regions: bool = False,
        ignore_label: Optional[int] = None,
        threshold: float = 0.6,
        skeleton_method: str = "thin",
        skeleton_backend: str = "auto",
        phpm_dims: Iterable[int] = (0, 1),
        cldice_iters: int = 3,
        tube_radius: int = 2,
        smooth: float = 1.0,
    ) -> None:
        super().__init__()
        from toposeg._checks import check_threshold

        self.kind = _check_kind(kind)
        self.has_regions, self.ignore_label = bool(has_regions), ignore_label
        self.threshold = check_threshold(threshold)
        self.skeleton_method, self.skeleton_backend = skeleton_method, skeleton_backend
        self.phpm_dims = tuple(phpm_dims)
        self.cldice_iters, self.tube_radius, self.smooth = cldice_iters, tube_radius, float(smooth)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        activation, y, mask = split_target(logits, target, has_regions=self.has_regions,
                                           ignore_label=self.ignore_label)
        prob = torch.softmax(logits, 1) if activation == "softmax" else torch.sigmoid(logits)
        y = complete_ignored(y, prob.detach() > self.threshold, mask)
        if self.kind in ("shpm", "thpm", "phpm"):
            from toposeg.losses import hpm_term

            options: dict[str, Any] = {}
            if self.kind == "shpm":
                options = {"method": self.skeleton_method, "backend": self.skeleton_backend}
            elif self.kind == "phpm":
                options = {"dims": self.phpm_dims}
            return hpm_term(logits, y, miner=self.kind, threshold=self.threshold, activation=activation,
                            mask=mask, miner_options=options)
        fg = slice(1, None) if activation == "softmax" else slice(None)
        p, yf = prob[:, fg], y[:, fg]
        m = None if mask is None else mask.to(p.dtype)
        dims = tuple(range(2, p.ndim))
        if self.kind == "cldice":
            from toposeg.losses import soft_cldice

            return soft_cldice(p, yf, iters=self.cldice_iters, smooth=self.smooth, mask=m).mean()
        from toposeg.losses import tubed_skeleton

        tube = tubed_skeleton(yf, tube_radius=self.tube_radius, method=self.skeleton_method,
                              backend=self.skeleton_backend, activation="sigmoid").to(p.dtype)
        if m is not None:
            tube = tube * m
        recall = ((p * tube).sum(dims) + self.smooth) / (tube.sum(dims) + self.smooth)  # (N, classes)
        return (1.0 - recall).mean()


class TopologyCompoundLoss(nn.Module):
    """nnU-Net's loss plus ``weight`` times a :class:`TopologyTerm` on the full-resolution output.

    Args:
        base: nnU-Net's loss as built by ``nnUNetTrainer._build_loss`` (Dice + CE, or Dice +
            BCE for regions; wrapped for deep supervision when enabled).
        term: the topology term.
        weight: its weight ``lambda`` (non-negative).
        deep_supervision: whether outputs and targets are lists of scales (highest first).

    ``active`` (set by the trainer each epoch; False during warm-up) switches the term off
    without computing it. ``last_term`` holds the detached value of the last computed term
    (None when inactive), for logging.
    """

    def __init__(self, base: nn.Module, term: TopologyTerm, weight: float, *, deep_supervision: bool) -> None:
        super().__init__()
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"topology weight must be a non-negative number, got {weight!r}")
        self.base, self.term, self.weight = base, term, float(weight)
        self.deep_supervision = bool(deep_supervision)
        self.active = True
        self.last_term: Optional[torch.Tensor] = None

    def forward(self, output: Union[torch.Tensor, Sequence[torch.Tensor]],
                target: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        loss = self.base(output, target)
        if not self.active or self.weight == 0.0:
            self.last_term = None
            return loss
        if isinstance(output, (list, tuple)):
            output, target = output[0], target[0]
        value = self.term(output, target)
        self.last_term = value.detach()
        return loss + self.weight * value

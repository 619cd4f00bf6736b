"""Skeleton Recall loss (Kirchhoff et al., ECCV 2024) on top of BCE + Dice.

As the authors' published code builds it (``SkeletonTransform`` and ``SoftSkeletonRecallLoss`` of
github.com/MIC-DKFZ/Skeleton-Recall):

1. binarise the ground truth (the union of the foreground classes) and skeletonize it;
2. dilate the skeleton into a *tube* with the L1 ball of radius 2 (two dilations with the
   cross-shaped footprint, in the full 2D or 3D grid: not slice by slice);
3. multiply the tube by the label map: class ``c`` keeps only the tube pixels *inside its own
   label*, ``T_c = dilate(s(y > 0)) AND y_c``;
4. soft recall of the prediction on each class's tube, ``R_c = (sum p_c T_c + smooth) /
   (sum T_c + smooth)`` (``smooth`` = 1e-5 in their trainer), averaged over the foreground
   classes (and samples); their loss is ``-R`` at weight 1 next to Dice + CE at weight 1.

Here ``L = BCE + Dice + weight * (1 - R)``; ``1 - R`` differs from their ``-R`` by a constant
(same gradient) and keeps the loss non-negative. ``per_class=True`` skeletonizes every class on
its own instead of the union (not the published recipe; it matters only where classes touch).

The tube depends only on the ground truth: compute it once per sample with
:func:`tubed_skeleton` and pass it as ``target_skeleton``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from toposeg._checks import check_batched, check_binary, check_same_shape, describe
from toposeg.losses._common import (
    ACTIVATIONS, MAX_POOL, activate, check_loss_inputs, check_options, check_weight, expand_mask, foreground, reduce,
    spatial_dims,
)
from toposeg.losses.bce_dice import _bce_dice_per_sample

#: Smoothing of the soft recall in the authors' nnU-Net trainer (``'smooth': 1e-5``).
DEFAULT_RECALL_SMOOTH = 1e-5


def _check_radius(radius: object) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"tube_radius must be a non-negative integer, got {radius!r}")
    return radius


def _cross_dilate(x: torch.Tensor) -> torch.Tensor:
    """One dilation with the cross (4-/6-neighbourhood) footprint, 2D or 3D."""
    nd = x.ndim - 2
    out = x
    for axis in range(nd):
        kernel = tuple(3 if a == axis else 1 for a in range(nd))
        out = torch.maximum(out, MAX_POOL[nd](x, kernel_size=kernel, stride=1,
                                              padding=tuple(k // 2 for k in kernel)))
    return out


@torch.no_grad()
def tubed_skeleton(
    target: torch.Tensor,
    *,
    tube_radius: int = 2,
    method: str = "thin",
    backend: str = "auto",
    activation: Optional[str] = "sigmoid",
    per_class: bool = False,
) -> torch.Tensor:
    """The Skeleton Recall tube of every channel of ``target``, inside that channel's own label.

    ``T_c = dilate_r(s(union of the foreground channels)) AND target_c`` (the authors' recipe;
    ``per_class=True``: ``dilate_r(s(target_c)) AND target_c``), ``dilate_r`` = ``r`` dilations
    with the cross footprint (the L1 ball of radius ``r``) in the full 2D/3D grid.

    Args:
        target: binary ``(N, C, *S)`` tensor (2 or 3 spatial dims); one-hot for softmax.
        tube_radius: ``r``, default 2 (the authors' tube).
        method: skeleton rule for :func:`toposeg.skeleton.skeletonize` (default ``"thin"``;
            ``"zhang"`` 2D or ``"lee"`` 3D = scikit-image's rules the authors' code calls).
        backend: skeleton implementation (``"auto"``, ``"torch"``, ``"skimage"``).
        activation: ``"softmax"``: channel 0 is the background, left out of the union and given
            an empty tube; otherwise every channel is a foreground class.
        per_class: skeletonize each channel separately instead of their union.

    Returns:
        Bool tensor shaped like ``target``; never outside ``target``.
    """
    from toposeg.skeleton import skeletonize

    check_batched(target, "target")
    check_binary(target, "target")
    radius = _check_radius(tube_radius)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if activation == "softmax" and target.shape[1] < 2:
        raise ValueError(f"activation='softmax' needs at least 2 channels, got target of shape {tuple(target.shape)}")
    y = target.bool()
    fg = foreground(y, activation)
    n, c = fg.shape[:2]
    if per_class:
        skel = skeletonize(fg.reshape(n * c, 1, *fg.shape[2:]), method=method, backend=backend).reshape(fg.shape)
    else:
        skel = skeletonize(fg.any(1, keepdim=True), method=method, backend=backend)
    tube = skel.to(torch.float32)
    for _ in range(radius):
        tube = _cross_dilate(tube)
    tube = (tube > 0) & fg  # the class's own label only
    if activation == "softmax":
        tube = torch.cat([torch.zeros_like(y[:, :1]), tube], 1)
    return tube


def skeleton_recall_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: float = 1.0,
    tube_radius: int = 2,
    method: str = "thin",
    backend: str = "auto",
    per_class: bool = False,
    recall_smooth: float = DEFAULT_RECALL_SMOOTH,
    activation: Optional[str] = "sigmoid",
    smooth: float = 1.0,
    reduction: str = "mean",
    mask: Optional[torch.Tensor] = None,
    target_skeleton: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``BCE + Dice + weight * (1 - R)``, ``R`` = soft recall on the tubed GT skeleton, per class.

    ``R_c = (sum p_c T_c + recall_smooth) / (sum T_c + recall_smooth)`` with ``T_c`` from
    :func:`tubed_skeleton` (the tube inside class ``c``'s own label), averaged over the
    foreground channels. With a mask, ``T_c`` is restricted to the kept pixels.

    Args:
        input: logits ``(N, C, *S)`` (probabilities with ``activation=None``).
        target: binary tensor of the same shape (one-hot for softmax).
        weight: weight of the recall term (the authors' 1).
        tube_radius, method, backend, per_class: see :func:`tubed_skeleton` (ignored with
            ``target_skeleton``).
        recall_smooth: smoothing of ``R`` (the authors' 1e-5); ``smooth`` is the soft Dice's.
        target_skeleton: precomputed tube from :func:`tubed_skeleton`, shaped like ``target``.
        mask: optional binary ``(N, 1, *S)``; masked pixels are ignored.
    """
    weight = check_weight(weight, "weight")
    recall_smooth = check_weight(recall_smooth, "recall_smooth")
    _check_radius(tube_radius)
    check_loss_inputs(input, target, activation, reduction, mask)
    if target_skeleton is None:
        tube = foreground(tubed_skeleton(target, tube_radius=tube_radius, method=method, backend=backend,
                                         activation=activation, per_class=per_class), activation)
    else:
        if not isinstance(target_skeleton, torch.Tensor):
            raise TypeError(f"target_skeleton must be a torch.Tensor shaped like target, got {describe(target_skeleton)}")
        check_same_shape(target_skeleton, target, ("target_skeleton", "target"))
        check_binary(target_skeleton, "target_skeleton")
        tube = foreground(target_skeleton, activation)
    prob = activate(input, activation)
    p = foreground(prob, activation)
    t = tube.to(device=p.device, dtype=p.dtype)
    m = expand_mask(mask, p)
    if m is not None:
        t = t * m
    dims = spatial_dims(p)
    recall = ((p * t).sum(dims) + recall_smooth) / (t.sum(dims) + recall_smooth).clamp(min=1e-8)  # (N, C)
    base = _bce_dice_per_sample(input, target, activation, smooth, mask)
    return reduce(base + weight * (1.0 - recall).mean(1), reduction)


class SkeletonRecallLoss(nn.Module):
    """Module form of :func:`skeleton_recall_loss`."""

    def __init__(self, *, weight: float = 1.0, tube_radius: int = 2, method: str = "thin", backend: str = "auto",
                 per_class: bool = False, recall_smooth: float = DEFAULT_RECALL_SMOOTH,
                 activation: Optional[str] = "sigmoid", smooth: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        check_options(activation, reduction)
        self.weight, self.tube_radius = check_weight(weight, "weight"), _check_radius(tube_radius)
        self.recall_smooth = check_weight(recall_smooth, "recall_smooth")
        self.method, self.backend, self.per_class = method, backend, bool(per_class)
        self.activation, self.smooth, self.reduction = activation, smooth, reduction

    def forward(self, input: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None,
                target_skeleton: Optional[torch.Tensor] = None) -> torch.Tensor:
        return skeleton_recall_loss(
            input, target, weight=self.weight, tube_radius=self.tube_radius, method=self.method,
            backend=self.backend, per_class=self.per_class, recall_smooth=self.recall_smooth,
            activation=self.activation, smooth=self.smooth, reduction=self.reduction, mask=mask,
            target_skeleton=target_skeleton,
        )

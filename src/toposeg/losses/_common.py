"""Shared input handling for losses: activation, shape checks, logits-vs-probabilities guard,
foreground channels, masks and the tensor tables shared by the soft morphology."""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F

from toposeg._checks import check_batched, check_binary, check_finite, describe
from toposeg.mining import check_target_layout

ACTIVATIONS = ("sigmoid", "softmax", None)
REDUCTIONS = ("mean", "none")
MAX_POOL = {2: F.max_pool2d, 3: F.max_pool3d}


def check_options(activation: Optional[str], reduction: str) -> None:
    """Validate ``activation``/``reduction`` (called by module constructors, so typos fail early)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_loss_inputs(input: torch.Tensor, target: torch.Tensor, activation: Optional[str], reduction: str,
                      mask: Optional[torch.Tensor] = None) -> None:
    """Validate ``(input, target[, mask])`` of a loss; warn on probabilities passed as logits."""
    check_options(activation, reduction)
    check_batched(input, "input")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor of logits or probabilities, got dtype {input.dtype}")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor shaped like input {tuple(input.shape)}, got {describe(target)}")
    check_target_layout(input, target, ("input", "target"))  # one-hot hint for class-index targets
    check_finite(input, "input")
    check_binary(target, "target")
    if activation == "softmax" and input.shape[1] < 2:
        raise ValueError(
            f"activation='softmax' needs at least 2 channels, got input of shape {tuple(input.shape)}; "
            "use activation='sigmoid' for a single foreground channel"
        )
    if mask is not None:
        check_mask(mask, input)
    lo, hi = float(input.detach().min()), float(input.detach().max())
    if activation is None and (lo < 0.0 or hi > 1.0):
        raise ValueError(
            f"activation=None expects probabilities in [0, 1], got values in "
            f"[{lo:.4g}, {hi:.4g}]; pass activation='sigmoid' for logits"
        )
    if activation in ("sigmoid", "softmax") and input.numel() > 16 and lo >= 0.0 and hi <= 1.0:
        warnings.warn(
            f"all input values lie in [0, 1] although activation={activation!r} expects logits; "
            "if you are passing probabilities, set activation=None",
            stacklevel=4,
        )


def check_weight(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0.0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def check_mask(mask: object, input: torch.Tensor) -> None:
    """``mask`` (1 = use the pixel) must be binary, ``(N, 1, *S)`` or shaped like ``input``."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor (N, 1, *S) or shaped like input, got {describe(mask)}")
    ok = mask.ndim == input.ndim and mask.shape[0] == input.shape[0] and mask.shape[2:] == input.shape[2:] \
        and mask.shape[1] in (1, input.shape[1])
    if not ok:
        raise ValueError(
            f"mask must have shape (N, 1, *S) or {tuple(input.shape)} to match input {tuple(input.shape)}, "
            f"got {tuple(mask.shape)}"
        )
    check_binary(mask, "mask")


def activate(input: torch.Tensor, activation: Optional[str]) -> torch.Tensor:
    if activation == "sigmoid":
        return torch.sigmoid(input)
    if activation == "softmax":
        return torch.softmax(input, dim=1)
    return input


def foreground(x: torch.Tensor, activation: Optional[str]) -> torch.Tensor:
    """Foreground-class channels: all channels for sigmoid/None (multi-label), ``1:`` for softmax.

    This is the rule every topology term follows: a single sigmoid channel *is* the
    foreground (the original clDice/MONAI code sliced ``[1:]`` unconditionally and returned 0).
    """
    return x[:, 1:] if activation == "softmax" else x


def spatial_dims(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


def expand_mask(mask: Optional[torch.Tensor], like: torch.Tensor) -> Optional[torch.Tensor]:
    """Mask as ``like``'s dtype, broadcast to its channels (None stays None).

    A mask with one channel per input channel is sliced to ``like``'s (foreground) channels.
    """
    if mask is None:
        return None
    if mask.shape[1] > 1 and mask.shape[1] != like.shape[1]:
        mask = mask[:, mask.shape[1] - like.shape[1]:]
    return mask.to(device=like.device, dtype=like.dtype).expand(like.shape[0], like.shape[1], *like.shape[2:])


def reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    return per_sample.mean() if reduction == "mean" else per_sample

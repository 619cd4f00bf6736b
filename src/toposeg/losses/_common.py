"""Shared input handling for losses: activation, shape checks, logits-vs-probabilities guard."""

from __future__ import annotations

import warnings
from typing import Optional

import torch

from toposeg._checks import check_batched, check_binary, check_finite, check_same_shape

ACTIVATIONS = ("sigmoid", "softmax", None)
REDUCTIONS = ("mean", "none")


def check_loss_inputs(input: torch.Tensor, target: torch.Tensor, activation: Optional[str], reduction: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    check_batched(input, "input")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor of logits or probabilities, got dtype {input.dtype}")
    check_same_shape(input, target, ("input", "target"))
    check_finite(input, "input")
    check_binary(target, "target")
    if activation == "softmax" and input.shape[1] < 2:
        raise ValueError(
            f"activation='softmax' needs at least 2 channels, got input of shape {tuple(input.shape)}; "
            "use activation='sigmoid' for a single foreground channel"
        )
    if activation is None and (float(input.min()) < 0.0 or float(input.max()) > 1.0):
        raise ValueError(
            f"activation=None expects probabilities in [0, 1], got values in "
            f"[{float(input.min()):.4g}, {float(input.max()):.4g}]; pass activation='sigmoid' for logits"
        )
    if activation == "sigmoid" and input.numel() > 16 and float(input.min()) >= 0.0 and float(input.max()) <= 1.0:
        warnings.warn(
            "all input values lie in [0, 1] although activation='sigmoid' expects logits; "
            "if you are passing probabilities, set activation=None",
            stacklevel=3,
        )


def activate(input: torch.Tensor, activation: Optional[str]) -> torch.Tensor:
    if activation == "sigmoid":
        return torch.sigmoid(input)
    if activation == "softmax":
        return torch.softmax(input, dim=1)
    return input


def spatial_dims(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))

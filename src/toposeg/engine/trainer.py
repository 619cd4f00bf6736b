"""Training helpers: seeding and optimizers (whole images are predicted by
:func:`toposeg.inference.sliding_window_predict`)."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

OPTIMIZERS = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(name: str, model: nn.Module, lr: float) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise KeyError(f"unknown optimizer {name!r}; valid: {sorted(OPTIMIZERS)}")
    if not lr > 0:
        raise ValueError(f"learning rate must be > 0, got {lr!r}")
    return OPTIMIZERS[name](model.parameters(), lr)

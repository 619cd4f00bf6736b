"""Training helpers: seeding, optimizers, whole-image prediction."""

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


@torch.no_grad()
def predict_whole(model: nn.Module, image: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Foreground probability of one whole image ``(C, *S)`` in a single forward pass."""
    model.to(device).eval()
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    return torch.sigmoid(model(x))[0, 0].cpu().numpy()

"""A small, seeded training loop: optimizer steps over an iterator of batches, with a progress bar."""

from __future__ import annotations

import math
import random
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch import nn

Batch = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

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


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterator[Batch],
    *,
    steps: int,
    optimizer: torch.optim.Optimizer,
    device: str | torch.device = "cpu",
    desc: str = "train",
    progress: bool = True,
    grad_clip: Optional[float] = None,
    on_step: Optional[Callable[[int, float], None]] = None,
) -> list[float]:
    """Run ``steps`` optimizer steps; returns the loss of every step.

    ``batches`` yields dicts with ``image`` ``(N, C, *S)`` and ``label`` ``(N, 1, *S)``.
    A non-finite loss stops training with a ``FloatingPointError`` naming the step.
    """
    from tqdm.auto import tqdm

    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    model.to(device).train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc=desc, disable=not progress, dynamic_ncols=True, leave=True)
    for step in bar:
        batch = next(batches)
        image, label = batch["image"].to(device), batch["label"].to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(image), label)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(f"{desc}: loss became {value} at step {step + 1}; stopping")
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        losses.append(value)
        if on_step is not None:
            on_step(step + 1, value)
        bar.set_postfix(loss=f"{value:.4f}")
    return losses


@torch.no_grad()
def predict_whole(model: nn.Module, image: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """Foreground probability of one whole image ``(C, *S)`` in a single forward pass."""
    model.to(device).eval()
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(device)
    return torch.sigmoid(model(x))[0, 0].cpu().numpy()

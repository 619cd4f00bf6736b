"""Step-indexed batches: batch ``i`` is a pure function of ``(seed, i)``.

A resumed run therefore sees exactly the batches an uninterrupted run would have seen, and every
DDP rank draws a disjoint part of the same global batch without coordination.
"""

from __future__ import annotations

import torch

from toposeg.data.patches import PatchDataset


class StepBatches:
    """``batches(step)`` -> ``{"image": (B, C, *P), "label": (B, 1, *P)}`` from a seeded
    :class:`~toposeg.data.patches.PatchDataset` (sample ``step * batch_size + j``).

    With ``world_size > 1`` each rank returns its own ``batch_size // world_size`` samples.
    """

    def __init__(self, dataset: PatchDataset, batch_size: int, *, rank: int = 0, world_size: int = 1) -> None:
        if dataset.seed is None:
            raise ValueError("StepBatches needs a PatchDataset with an int seed (reproducible samples)")
        if batch_size < 1 or batch_size % world_size:
            raise ValueError(f"batch_size ({batch_size}) must be a positive multiple of the world size ({world_size})")
        self.dataset, self.batch_size, self.rank, self.world_size = dataset, batch_size, rank, world_size

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        per_rank = self.batch_size // self.world_size
        first = step * self.batch_size + self.rank * per_rank
        n = len(self.dataset)
        samples = [self.dataset[i % n] for i in range(first, first + per_rank)]
        return {key: torch.stack([s[key] for s in samples]) for key in ("image", "label")}

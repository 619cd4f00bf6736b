"""Step-indexed batches: batch ``i`` is a pure function of ``(seed, i)``.

A resumed run therefore sees exactly the batches an uninterrupted run would have seen, and every
DDP rank draws a disjoint part of the same global batch without coordination.

``batch_size`` is the batch of **one process**: with ``world_size`` processes a step uses
``world_size × batch_size`` samples; rank ``r`` takes samples
``step·W·B + r·B … step·W·B + r·B + B − 1`` (``W`` world size, ``B`` batch size), indices
modulo ``len(dataset)``.
"""

from __future__ import annotations

import torch

from toposeg.data.patches import PatchDataset


def skeleton_dataset_options(target_skeleton: str, loss: object) -> dict:
    """:class:`~toposeg.data.patches.PatchDataset` keyword arguments for ``train.target_skeleton``.

    ``"patch"`` (default, the paper): ``{}``, no skeleton in the batch; the loss skeletonizes
    each training patch itself, every step. ``"crop"``: ``{"skeleton": True, "skeleton_method":
    loss.method, "skeleton_backend": loss.backend}``: the dataset skeletonizes each whole label
    once with the loss's own rule and every batch carries the crop of it as
    ``"target_skeleton"`` (no skeleton border artefacts at the patch edge).

    Raises:
        ValueError: ``target_skeleton`` not ``"patch"`` / ``"crop"``, or ``"crop"`` with a loss
            that is not SHPM (``shpm``, ``shpm_plus``); both quote what was received.
    """
    from toposeg.losses.hpm import SHPMLoss

    if target_skeleton == "patch":
        return {}
    if target_skeleton != "crop":
        raise ValueError(f"target_skeleton must be one of ['patch', 'crop'], got {target_skeleton!r}")
    if not isinstance(loss, SHPMLoss):
        raise ValueError(f"target_skeleton 'crop' needs an SHPM loss (shpm, shpm_plus), got {type(loss).__name__}")
    return {"skeleton": True, "skeleton_method": loss.method, "skeleton_backend": loss.backend}


class StepBatches:
    """``batches(step)`` -> ``{"image": (B, C, *P), "label": (B, 1, *P)}`` from a seeded
    :class:`~toposeg.data.patches.PatchDataset`, ``B = batch_size`` samples for this rank.

    With a dataset built with ``skeleton=True`` the batch also holds ``"target_skeleton"``
    ``(B, 1, *P)`` bool: each sample's crop of its whole-image ground-truth skeleton, under the
    same crop and augmentation as its label (``run_stage`` passes it to the loss as
    ``target_skeleton=``). Without it the batch holds only image and label.

    Raises:
        ValueError: a dataset without an int seed, ``batch_size < 1``, ``world_size < 1`` or
            ``rank`` outside ``[0, world_size)``.
    """

    def __init__(self, dataset: PatchDataset, batch_size: int, *, rank: int = 0, world_size: int = 1) -> None:
        if dataset.seed is None:
            raise ValueError("StepBatches needs a PatchDataset with an int seed (reproducible samples)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size (per process) must be an int >= 1, got {batch_size!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank {rank} of world size {world_size}")
        self.dataset, self.batch_size, self.rank, self.world_size = dataset, batch_size, rank, world_size

    def indices(self, step: int) -> list[int]:
        """Dataset indices of this rank's samples at ``step``."""
        first = (step * self.world_size + self.rank) * self.batch_size
        n = len(self.dataset)
        return [i % n for i in range(first, first + self.batch_size)]

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        samples = [self.dataset[i] for i in self.indices(step)]
        batch = {key: torch.stack([s[key] for s in samples]) for key in ("image", "label")}
        if self.dataset.skeleton:
            batch["target_skeleton"] = torch.stack([s["skeleton"] for s in samples])
        return batch

"""A case: one image/volume with its binary label."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toposeg.io import check_finite


@dataclass(frozen=True)
class Case:
    """One image or volume with its binary label.

    ``image`` is float32 ``(C, *S)``; ``label`` is bool ``(*S)``. ``meta`` holds optional
    extra facts (e.g. ``"betti"`` for synthetic cases, ``"source"`` for files read from disk);
    it defaults to an empty dict so ``Case(id=..., image=..., label=...)`` keeps working.

    Raises ValueError for an image that does not match the label's shape, or that holds NaN or
    infinite values (counted, naming ``meta["image_path"]`` or the case id: every loader
    builds its cases here, so a non-finite image is refused when its case is read, before it
    is normalised or scored).
    """

    id: str
    image: np.ndarray
    label: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.image.ndim != self.label.ndim + 1 or self.image.shape[1:] != self.label.shape:
            raise ValueError(
                f"case {self.id!r}: image must be (C, *S) matching label (*S), got image "
                f"{self.image.shape} and label {self.label.shape}"
            )
        where = self.meta.get("image_path") or f"case {self.id!r}"
        check_finite(np.asarray(self.image), where, "image", "finite intensities (re-save the image without "
                     "NaN/inf)", "pixels" if self.label.ndim == 2 else "voxels")

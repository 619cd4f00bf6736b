"""A case: one image/volume with its binary label."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Case:
    """``image`` is float32 ``(C, *S)``; ``label`` is bool ``(*S)``."""

    id: str
    image: np.ndarray
    label: np.ndarray

    def __post_init__(self) -> None:
        if self.image.ndim != self.label.ndim + 1 or self.image.shape[1:] != self.label.shape:
            raise ValueError(
                f"case {self.id!r}: image must be (C, *S) matching label (*S), got image "
                f"{self.image.shape} and label {self.label.shape}"
            )

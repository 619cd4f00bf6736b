"""Normalisation, padding and dimension-agnostic augmentation of ``(C, *S)`` arrays.

Geometric transforms (flips, 90-degree rotations) are applied identically to the image, the
label and the skeleton; intensity transforms (scale, shift, Gaussian noise) to the image only.
A transformed ground-truth skeleton is still a thin, topology-preserving skeleton of the
transformed label, though not always bit-identical to re-thinning it (Zhang-Suen/Lee thinning
is not exactly flip/rotation equivariant).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

NORMALIZATIONS = ("zscore", "minmax", "none")
PAD_MODES = ("reflect", "constant")


def normalize(image: np.ndarray, mode: str = "zscore", *, hu_window: Optional[Sequence[float]] = None) -> np.ndarray:
    """Per-image, per-channel normalisation of ``(C, *S)``; returns float32.

    ``hu_window=(low, high)`` first clips intensities (CT Hounsfield units). ``"zscore"``:
    zero mean, unit std per channel (a constant channel becomes 0); ``"minmax"``: [0, 1] per
    channel; ``"none"``: unchanged (cast to float32). The statistics and the arithmetic run in
    float64, one channel at a time: float32 sums overflow for large finite intensities (an image
    of 1e38 everywhere gave NaN), while every z-score (at most ``sqrt(n)`` in magnitude) and
    every min-max value fits float32.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {mode!r}")
    if hu_window is not None and (len(hu_window) != 2 or not hu_window[0] < hu_window[1]):
        raise ValueError(f"hu_window must be (low, high) with low < high, got {hu_window!r}")
    image = np.asarray(image)
    out = np.empty(image.shape, dtype=np.float32)
    for c in range(image.shape[0]):
        channel = np.array(image[c], dtype=np.float64, copy=True)
        if hu_window is not None:
            np.clip(channel, hu_window[0], hu_window[1], out=channel)
        if mode == "zscore":
            channel -= channel.mean()
            std = np.sqrt(np.mean(np.square(channel)))
            if std > 0:
                channel /= std
        elif mode == "minmax":
            lo, hi = channel.min(), channel.max()
            channel -= lo
            if hi > lo:
                channel /= hi - lo
        out[c] = channel
    return out


def pad_to(image: np.ndarray, label: np.ndarray, shape: Sequence[int], *, mode: str = "reflect",
           skeleton: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Pad ``image`` ``(C, *S)`` and ``label``/``skeleton`` ``(*S)`` to at least ``shape``,
    centred. Image: ``"reflect"`` (mirror, no artificial edge) or ``"constant"`` (zeros = the
    mean after z-scoring); label and skeleton: always background (False)."""
    if mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {list(PAD_MODES)}, got {mode!r}")
    need = [max(int(p) - s, 0) for p, s in zip(shape, label.shape)]
    if not any(need):
        return image, label, skeleton
    widths = [(n // 2, n - n // 2) for n in need]
    if mode == "reflect" and min(label.shape) < 2:
        mode = "constant"  # reflection needs at least two samples per axis
    image = np.pad(image, [(0, 0)] + widths, mode=mode)
    label = np.pad(label, widths, constant_values=False)
    if skeleton is not None:
        skeleton = np.pad(skeleton, widths, constant_values=False)
    return image, label, skeleton


@dataclass(frozen=True)
class Augment:
    """Random augmentation of a patch; ``__call__(rng, image, label, skeleton=None)``.

    flip: probability of flipping each spatial axis. rot90: probability of a 90/180/270-degree
    rotation in one random plane of two spatial axes of equal length (non-cubic 3D patches only
    rotate in planes where that keeps the shape). scale/shift: uniform ranges of an intensity
    gain and offset (applied with probability ``intensity``). noise_std: uniform range of the
    std of additive Gaussian noise (applied with probability ``noise``).
    """

    flip: float = 0.5
    rot90: float = 0.5
    intensity: float = 0.5
    scale: tuple[float, float] = (0.9, 1.1)
    shift: tuple[float, float] = (-0.1, 0.1)
    noise: float = 0.3
    noise_std: tuple[float, float] = (0.0, 0.1)

    def __post_init__(self) -> None:
        for name in ("flip", "rot90", "intensity", "noise"):
            v = getattr(self, name)
            if not 0.0 <= float(v) <= 1.0:
                raise ValueError(f"Augment.{name} is a probability in [0, 1], got {v!r}")
        for name in ("scale", "shift", "noise_std"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"Augment.{name} must be (low, high) with low <= high, got {getattr(self, name)!r}")

    def __call__(self, rng: np.random.Generator, image: np.ndarray, label: np.ndarray,
                 skeleton: Optional[np.ndarray] = None):
        nd = label.ndim
        arrays = [image, label[None]] + ([skeleton[None]] if skeleton is not None else [])
        for axis in range(1, nd + 1):
            if rng.random() < self.flip:
                arrays = [np.flip(a, axis) for a in arrays]
        if self.rot90 > 0 and rng.random() < self.rot90:
            planes = [(a, b) for a in range(1, nd + 1) for b in range(a + 1, nd + 1) if label.shape[a - 1] == label.shape[b - 1]]
            if planes:
                plane = planes[int(rng.integers(len(planes)))]
                k = int(rng.integers(1, 4))
                arrays = [np.rot90(a, k, axes=plane) for a in arrays]
        image = np.ascontiguousarray(arrays[0], dtype=np.float32)
        if rng.random() < self.intensity:
            image = image * np.float32(rng.uniform(*self.scale)) + np.float32(rng.uniform(*self.shift))
        if rng.random() < self.noise:
            image = image + rng.normal(0.0, rng.uniform(*self.noise_std), image.shape).astype(np.float32)
        label = np.ascontiguousarray(arrays[1][0])
        skeleton = np.ascontiguousarray(arrays[2][0]) if skeleton is not None else None
        return image, label, skeleton

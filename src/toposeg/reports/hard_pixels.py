"""The paper's Fig. 4: hard pixels of THPM, PHPM and SHPM side by side.

Panels: image | ground truth | prediction | THPM | PHPM | SHPM; in the miner panels the positive
hard pixels (missed foreground) are green and the negative ones (false foreground) red, over the
image (:func:`toposeg.reports.overlay.overlay`). 3D volumes are shown as maximum-intensity
projections along the first (depth) axis; a hard voxel anywhere along a ray colours its pixel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from toposeg._checks import check_binary, check_threshold, describe
from toposeg.mining import DEFAULT_MINING_THRESHOLD
from toposeg.reports._figure import pyplot, save

MINER_NAMES = ("thpm", "phpm", "shpm")


def _check_arrays(image: np.ndarray, label: np.ndarray, prob: np.ndarray) -> np.ndarray:
    for name, arr in (("image", image), ("label", label), ("prob", prob)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {describe(arr)}")
    if label.ndim not in (2, 3):
        raise ValueError(f"label must be 2D (H, W) or 3D (D, H, W), got shape {label.shape}")
    if prob.shape != label.shape:
        raise ValueError(f"prob and label must have the same shape, got {prob.shape} and {label.shape}")
    if image.shape == label.shape:
        gray = image
    elif image.ndim == label.ndim + 1 and image.shape[1:] == label.shape:
        gray = image.mean(axis=0)  # (C, *S)
    else:
        raise ValueError(f"image must have shape {label.shape} or (C, *{label.shape}), got {image.shape}")
    check_binary(label, "label")
    if not np.isfinite(prob).all() or prob.min() < 0 or prob.max() > 1:
        raise ValueError(f"prob must be probabilities in [0, 1], got values in [{prob.min():.4g}, {prob.max():.4g}]")
    return gray.astype(np.float64)


def mine_hard_pixels(prob: np.ndarray, label: np.ndarray, *, threshold: float = DEFAULT_MINING_THRESHOLD,
                     dims: Optional[Iterable[int]] = None, backend: str = "auto") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{miner: (pos, neg)}`` for THPM, PHPM, SHPM on one 2D/3D probability map.

    ``dims`` (PHPM homology dimensions) defaults to ``(0, 1)`` in 2D and ``(0,)`` in 3D.
    """
    import torch

    from toposeg import mining

    if dims is None:
        dims = (0, 1) if label.ndim == 2 else (0,)
    p = torch.from_numpy(np.ascontiguousarray(prob, dtype=np.float32))[None, None]
    y = torch.from_numpy(np.ascontiguousarray(label).astype(bool))[None, None]
    options = {"thpm": {}, "phpm": {"dims": tuple(dims)}, "shpm": {"backend": backend}}
    out = {}
    for name in MINER_NAMES:
        pos, neg = mining.MINERS[name](p, y, threshold=threshold, **options[name])
        out[name] = (pos[0, 0].numpy(), neg[0, 0].numpy())
    return out


def _project(a: np.ndarray, reduce: str) -> np.ndarray:
    if a.ndim == 2:
        return a
    return a.max(axis=0) if reduce == "max" else a.any(axis=0)


def _grow(mask: np.ndarray, grow: int) -> np.ndarray:
    if grow <= 0:
        return mask
    from scipy import ndimage

    return ndimage.binary_dilation(mask, np.ones((3, 3), bool), iterations=grow)


def hard_pixel_figure(
    image: np.ndarray,
    label: np.ndarray,
    prob: np.ndarray,
    out: Union[str, Path],
    *,
    threshold: float = DEFAULT_MINING_THRESHOLD,
    dims: Optional[Iterable[int]] = None,
    backend: str = "auto",
    grow: int = 0,
    title: Optional[str] = None,
    dpi: int = 150,
) -> Path:
    """Draw and save (PNG) image | GT | prediction | THPM | PHPM | SHPM hard pixels.

    Args:
        image: ``(*S)`` or ``(C, *S)`` intensities (channels are averaged for display).
        label: binary ``(H, W)`` or ``(D, H, W)`` ground truth.
        prob: foreground probabilities, shaped like ``label``.
        threshold: ``t`` of ``p_t = prob > t`` (default: the paper's mining threshold 0.6).
        dims: PHPM homology dimensions (default (0, 1) in 2D, (0,) in 3D).
        grow: dilate the drawn hard pixels by this many pixels (display only; single pixels are
            hard to see on large images; ``toposeg mine`` chooses it from the image size). Counts
            in the titles are the undilated ones. A legend below the panels names the colours.
    Returns:
        The written path.
    """
    plt = pyplot()

    from toposeg.reports.overlay import overlay

    gray = _check_arrays(image, label, prob)
    threshold = check_threshold(threshold)
    if isinstance(grow, bool) or not isinstance(grow, int) or grow < 0:
        raise ValueError(f"grow must be a non-negative integer, got {grow!r}")
    mined = mine_hard_pixels(prob, label, threshold=threshold, dims=dims, backend=backend)
    img2 = _project(gray, "max")
    y = label.astype(bool)
    pred = prob > threshold
    def white(mask: np.ndarray) -> np.ndarray:
        return np.repeat(mask.astype(np.float64)[..., None], 3, axis=-1)

    panels = [("image", overlay(img2)),
              ("ground truth", white(_project(y, "any"))),
              (f"prediction (p > {threshold:g})", white(_project(pred, "any")))]
    for name in MINER_NAMES:
        pos, neg = mined[name]
        rgb = overlay(img2, _grow(_project(pos, "any"), grow), _grow(_project(neg, "any"), grow))
        panels.append((f"{name.upper()}  +{int(pos.sum())} / -{int(neg.sum())}", rgb))
    h, w = img2.shape
    scale = 3.0 / max(h, w)
    legend_h = 0.35
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * w * scale + 0.4, h * scale + 0.6 + legend_h))
    for ax, (name, rgb) in zip(axes, panels):
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    suffix = " (maximum-intensity projection)" if label.ndim == 3 else ""
    fig.suptitle((title or "hard pixels: positive green, negative red") + suffix, fontsize=9)
    fig.legend(handles=legend_handles(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, legend_h / fig.get_figheight(), 1, 1))
    return save(fig, out, dpi)


def legend_handles() -> list:
    """Legend entries of the miner panels: the colour of each kind of hard pixel and its meaning
    (counts ``+pos / -neg`` are in the panel titles)."""
    from matplotlib.patches import Patch

    from toposeg.reports.overlay import GREEN, RED

    return [Patch(color=GREEN, label="positive hard pixels (+): missed foreground, pushed up"),
            Patch(color=RED, label="negative hard pixels (-): false foreground, pushed down")]


__all__ = ["MINER_NAMES", "hard_pixel_figure", "legend_handles", "mine_hard_pixels"]

"""Qualitative comparison figure: image, ground truth, predictions, and hard pixels."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np

from toposeg.reports._figure import pyplot, save
from toposeg.reports.overlay import overlay


def comparison_figure(
    path: Union[str, Path],
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    predictions: Mapping[str, Sequence[np.ndarray]],
    hard_pixels: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]] = {},
    *,
    titles: Sequence[str] = (),
) -> Path:
    """One row per case: image | ground truth | each prediction | each hard-pixel overlay.

    ``hard_pixels[name][i]`` is a ``(pos, neg)`` pair drawn over image ``i`` (pos green, neg red).
    All arrays are 2D.
    """
    plt = pyplot()

    cols = ["image", "ground truth", *predictions, *hard_pixels]
    n = len(images)
    if n == 0:
        raise ValueError("comparison_figure needs at least one image")
    fig, axes = plt.subplots(n, len(cols), figsize=(2.4 * len(cols), 2.4 * n), squeeze=False)
    for i in range(n):
        panels = [overlay(images[i]), labels[i]]
        panels += [predictions[k][i] for k in predictions]
        panels += [overlay(images[i], *hard_pixels[k][i]) for k in hard_pixels]
        for j, (ax, panel) in enumerate(zip(axes[i], panels)):
            ax.imshow(panel, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=9)
        if titles:
            axes[i][0].set_ylabel(titles[i], fontsize=8)
    fig.tight_layout()
    return save(fig, path, 110)

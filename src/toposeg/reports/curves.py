"""Training curves: loss per step (smoothed) and validation metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from toposeg.reports._figure import pyplot, save


def training_curves(history: Sequence[dict[str, Any]], path: Union[str, Path], *, title: str = "") -> Path:
    """PNG with the loss (raw and moving average) and each validation metric over steps."""
    plt = pyplot()

    steps = np.array([h["step"] for h in history])
    loss = np.array([h["loss"] for h in history])
    val = [h for h in history if "val" in h]
    names = sorted(val[0]["val"]) if val else []
    fig, axes = plt.subplots(1, 1 + (len(names) > 0), figsize=(10 if names else 5, 3.5), squeeze=False)
    ax = axes[0][0]
    if len(loss):
        ax.plot(steps, loss, alpha=0.3, lw=0.8, label="loss")
        k = max(1, len(loss) // 20)
        ax.plot(steps[k - 1:], np.convolve(loss, np.ones(k) / k, mode="valid"), lw=1.5, label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_title(f"{title} loss" if title else "loss")
    ax.legend(fontsize=8)
    if names:
        ax = axes[0][1]
        for n in names:
            ax.plot([h["step"] for h in val], [h["val"][n] for h in val], marker="o", ms=3, label=n)
        ax.set_xlabel("step")
        ax.set_title("validation")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path, 100)

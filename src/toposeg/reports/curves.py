"""Training curves: one small panel per family (loss, overlap, topology errors, partition)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from toposeg.reports._figure import pyplot, save

#: validation-metric families, each drawn on its own axis (values of one family share a scale)
FAMILIES: dict[str, tuple[str, ...]] = {
    "overlap (higher is better)": ("dice", "iou", "miou", "cldice"),
    "topology errors (lower is better)": ("betti0_error", "betti1_error", "betti2_error", "euler_error"),
    "partition (lower is better)": ("voi", "voi_split", "voi_merge", "are"),
}

Series = tuple[str, np.ndarray, np.ndarray]  # (label, steps, values)


def curve_panels(history: Sequence[dict[str, Any]]) -> list[tuple[str, list[Series]]]:
    """The panels :func:`training_curves` draws: ``[(title, [(label, steps, values), ...]), ...]``.

    First the training loss (raw and a moving average of ``len // 20`` steps), then one panel per
    :data:`FAMILIES` entry that has at least one validation metric in ``history``. Metrics of no
    family (raw Betti numbers, Euler characteristics, precision/recall parts) are not drawn;
    they stay in ``log.jsonl``. When entries carry HPM telemetry (key ``"hpm"``, written by
    :func:`toposeg.engine.stage.hpm_telemetry` at validation steps), two more panels: the hard-set
    sizes ``hard_pos`` / ``hard_neg`` (pixels per training batch) and ``grad_share`` (gradient
    norm of ``λ·L_HPM`` over that of BCE + Dice).
    """
    panels: list[tuple[str, list[Series]]] = []
    steps = np.array([h["step"] for h in history], dtype=float)
    loss = np.array([h["loss"] for h in history], dtype=float)
    series: list[Series] = []
    if len(loss):
        series.append(("loss", steps, loss))
        k = max(1, len(loss) // 20)
        if k > 1:
            series.append((f"mean of {k} steps", steps[k - 1:], np.convolve(loss, np.ones(k) / k, mode="valid")))
    panels.append(("training loss", series))
    val = [h for h in history if "val" in h]
    vsteps = np.array([h["step"] for h in val], dtype=float)
    for title, names in FAMILIES.items():
        family = [(n, vsteps, np.array([np.nan if h["val"].get(n) is None else float(h["val"][n]) for h in val]))
                  for n in names if any(n in h["val"] for h in val)]
        if family:
            panels.append((f"validation: {title}", family))
    tele = [h for h in history if isinstance(h.get("hpm"), dict)]
    if tele:
        tsteps = np.array([h["step"] for h in tele], dtype=float)

        def values(key: str) -> np.ndarray:
            return np.array([np.nan if h["hpm"].get(key) is None else float(h["hpm"][key]) for h in tele])

        panels.append(("HPM: hard pixels per batch", [(k, tsteps, values(k)) for k in ("hard_pos", "hard_neg")]))
        panels.append(("HPM: gradient share λ·HPM / (BCE+Dice)", [("grad_share", tsteps, values("grad_share"))]))
    return panels


def training_curves(history: Sequence[dict[str, Any]], path: Union[str, Path], *, title: str = "") -> Path:
    """PNG of :func:`curve_panels`: one small axis per panel in a row, the stage name as the
    figure title above them and each legend inside its own axis."""
    plt = pyplot()
    panels = curve_panels(history)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels):
        for label, x, y in series:
            if label == "loss":
                ax.plot(x, y, alpha=0.35, lw=0.8, label=label)
            else:
                marker = "o" if name.startswith(("validation", "HPM")) else None
                ax.plot(x, y, lw=1.5, label=label, marker=marker, ms=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=7, loc="best", framealpha=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path, 100)

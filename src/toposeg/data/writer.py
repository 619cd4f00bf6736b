"""Write cases in the ``folder`` format (``image/``, ``label/``) with a preview and Betti table."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Union

import numpy as np

from toposeg.data.case import Case
from toposeg.io import write_array


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` float -> ``(H, W)`` or ``(H, W, 3)`` uint8, stretched between the 0.5 and
    99.5 percentiles."""
    lo, hi = np.percentile(image, [0.5, 99.5])
    out = np.clip((image - lo) / max(hi - lo, 1e-8), 0, 1)
    out = np.round(out * 255).astype(np.uint8)
    return out[0] if out.shape[0] == 1 else np.moveaxis(out[:3], 0, -1)


def _preview(cases: list[Case], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = len(cases)
    fig, axes = plt.subplots(rows, 2, figsize=(6, 3 * rows), squeeze=False)
    for ax, case in zip(axes, cases):
        image, label = case.image, case.label
        if label.ndim == 3:  # maximum projections along depth
            image, label = image.max(axis=1), label.max(axis=0)
        ax[0].imshow(to_uint8(image), cmap="gray")
        ax[1].imshow(label, cmap="gray", interpolation="nearest")
        betti = case.meta.get("betti")
        version = case.meta.get("generator_version")
        ax[0].set_title(case.id + (f"  (generator version {version})" if version is not None else ""), fontsize=8)
        ax[1].set_title("label" + (f"  betti={tuple(betti)}" if betti is not None else ""), fontsize=8)
        for a in ax:
            a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_folder(cases: Iterable[Case], out: Union[str, Path], *, overwrite: bool = False, n_preview: int = 4) -> Path:
    """Write ``out/image/<id>`` and ``out/label/<id>`` (PNG for 2D: 8-bit image stretched to
    0-255, label 0/255; NIfTI ``.nii.gz`` for 3D: float32 image, uint8 label), ``betti.csv`` (when
    the cases carry ``meta["betti"]``) and ``preview.png``. Read it back with
    ``open_dataset("folder", out)``."""
    out = Path(out)
    for sub in ("image", "label"):
        d = out / sub
        if d.is_dir() and any(d.iterdir()) and not overwrite:
            raise ValueError(f"{d} already holds files; choose another output folder or overwrite")
    rows, shown = [], []
    versioned = None
    for case in cases:
        if versioned is None:
            versioned = "generator_version" in case.meta
        if case.label.ndim == 2:
            write_array(out / "image" / f"{case.id}.png", to_uint8(case.image))
            write_array(out / "label" / f"{case.id}.png", case.label)
        else:
            write_array(out / "image" / f"{case.id}.nii.gz", case.image[0].astype(np.float32))
            write_array(out / "label" / f"{case.id}.nii.gz", case.label.astype(np.uint8))
        if "betti" in case.meta:
            rows.append([case.id, *case.meta["betti"]] + ([case.meta.get("generator_version", "")] if versioned else []))
        if len(shown) < n_preview:
            shown.append(case)
    if not shown:
        raise ValueError("no cases to write")
    if rows:
        with open(out / "betti.csv", "w", newline="") as f:
            w = csv.writer(f)
            n_betti = len(rows[0]) - 1 - bool(versioned)
            w.writerow(["id"] + [f"betti{k}" for k in range(n_betti)] + (["generator_version"] if versioned else []))
            w.writerows(rows)
    _preview(shown, out / "preview.png")
    return out

"""Label resampling for ICAS-d: how much does each mode change the topology of thin vessels?

Synthetic coronary-like vessel trees (``toposeg.data`` kind ``vessels3d``) are generated at
``--size`` (default 256: volumes of 144 x 256 x 256, vessel radius 1-3 voxels) and their labels
downsampled by every mode of ``toposeg.data.imagecas.resample_label`` to 2x (72 x 128 x 128, the
ICAS-d grid) and 4x (36 x 64 x 64, about ImageCAS's real in-plane factor 512 -> 128) smaller
grids. Reported per mode and grid: beta0 (26-connected components, counted with
``scipy.ndimage.label``, independent of toposeg), |beta0 change|, beta1 change (toposeg's
``betti_numbers``, 26/6), foreground volume relative to the original (in original voxels) and
seconds per volume.

Usage: python benchmarks/resample.py [--n 10] [--size 256] [--out benchmarks/results/resample.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from toposeg.data.imagecas import LABEL_RESAMPLING, resample_label
from toposeg.data.synthetic import case_seed
from toposeg.data.synthetic.vessels import vessels3d
from toposeg.metrics import betti_numbers

sys.path.insert(0, str(Path(__file__).parent))
from _meta import ROOT, metadata  # noqa: E402

FULL26 = np.ones((3, 3, 3), bool)


def beta0(mask: np.ndarray) -> int:
    return int(ndimage.label(mask, FULL26)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="number of synthetic volumes")
    parser.add_argument("--size", type=int, default=256, help="vessels3d size (volume (0.5625 s, s, s))")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "resample.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    s = args.size
    source = (round(0.5625 * s), s, s)
    grids = {"2x": tuple(n // 2 for n in source), "4x": tuple(n // 4 for n in source)}
    rows = []
    for i in range(args.n):
        _, label = vessels3d(size=s, seed=case_seed(args.seed, i))
        b0, b1 = beta0(label), int(betti_numbers(label)[1])
        for grid, shape in grids.items():
            factor = float(np.prod(source)) / float(np.prod(shape))
            for mode in LABEL_RESAMPLING:
                t = time.perf_counter()
                out = resample_label(label, shape, mode)
                sec = time.perf_counter() - t
                rows.append({"volume": i, "grid": grid, "shape": list(shape), "mode": mode, "beta0_true": b0,
                             "beta0": beta0(out), "beta1_true": b1, "beta1": int(betti_numbers(out)[1]),
                             "volume_ratio": float(out.sum() * factor / max(label.sum(), 1)), "seconds": sec})
        print(f"volume {i}: beta0 {b0}, beta1 {b1}, " + ", ".join(
            f"{r['grid']} {r['mode']} {r['beta0']}" for r in rows if r["volume"] == i), flush=True)
    summary = {}
    for grid in grids:
        for mode in LABEL_RESAMPLING:
            sel = [r for r in rows if r["grid"] == grid and r["mode"] == mode]
            d0 = [abs(r["beta0"] - r["beta0_true"]) for r in sel]
            summary[f"{grid} {mode}"] = {
                "grid": grid, "shape": sel[0]["shape"], "mode": mode,
                "mean_abs_beta0_change": statistics.mean(d0), "max_abs_beta0_change": max(d0),
                "beta0_unchanged": sum(d == 0 for d in d0), "n": len(sel),
                "mean_beta0_true": statistics.mean(r["beta0_true"] for r in sel),
                "mean_beta0": statistics.mean(r["beta0"] for r in sel),
                "mean_abs_beta1_change": statistics.mean(abs(r["beta1"] - r["beta1_true"]) for r in sel),
                "mean_volume_ratio": statistics.mean(r["volume_ratio"] for r in sel),
                "median_seconds": statistics.median(r["seconds"] for r in sel),
            }
    for key, v in summary.items():
        print(f"{key:14s} |d beta0| mean {v['mean_abs_beta0_change']:.2f} max {v['max_abs_beta0_change']} "
              f"unchanged {v['beta0_unchanged']}/{v['n']}  |d beta1| {v['mean_abs_beta1_change']:.2f}  "
              f"volume x{v['mean_volume_ratio']:.2f}  {v['median_seconds']:.2f} s")
    try:
        from toposeg.skeleton.api import DEFAULT_METHOD as skeleton_method
    except ImportError:  # pragma: no cover - older skeleton API
        skeleton_method = "default"
    out = {"meta": metadata("cpu", n=args.n, size=s, source_shape=list(source), seed=args.seed,
                            skeleton_method=skeleton_method, command="python benchmarks/resample.py"),
           "summary": summary, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

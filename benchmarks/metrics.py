"""Speed of the evaluation metrics on whole images/volumes (CPU).

Times ``toposeg.metrics.evaluate_case`` on one 1250×1250 pair (EM-like membranes) and on one
72×128×128 pair (vessel tubes; also a dense 3D membrane stress case), with a per-metric
breakdown (overlap, clDice incl. both skeletons, VOI, ARE, Euler, Betti), and the Betti matching
error and local Betti error on their own (wall and CPU time). Medians over repeats after a
warm-up. Writes benchmarks/results/metrics.json.

    python benchmarks/metrics.py [--repeats 5] [--threads 1] [--out benchmarks/results/metrics.json]

clDice's skeletons run in torch (the default "thin" rule): like the other benchmark scripts this
one uses one torch thread by default (--threads), see docs/benchmarks.md "Threads".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from toposeg.metrics import evaluate_case
from toposeg.metrics.betti_matching import betti_matching_error
from toposeg.metrics.local_betti import local_betti_error

sys.path.insert(0, str(Path(__file__).parent))
from _meta import metadata  # noqa: E402


def membranes(shape, n_cells, seed):
    """Boundaries of a random Voronoi partition (2 px thick), like EM membranes."""
    from skimage.segmentation import find_boundaries

    rng = np.random.default_rng(seed)
    seeds = np.zeros(shape, np.int32)
    idx = tuple(rng.integers(0, s, n_cells) for s in shape)
    seeds[idx] = np.arange(1, n_cells + 1)
    _, ind = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    return find_boundaries(seeds[tuple(ind)], mode="thick")


def tubes(shape, n_tubes, seed, radius=1.5):
    """Random smooth polylines dilated to tubes, like vessels."""
    rng = np.random.default_rng(seed)
    centre = np.zeros(shape, bool)
    for _ in range(n_tubes):
        p = rng.uniform(0, 1, 3) * (np.array(shape) - 1)
        d = rng.normal(size=3)
        for _ in range(400):
            d = d / np.linalg.norm(d) + 0.3 * rng.normal(size=3)
            p = np.clip(p + d / np.linalg.norm(d), 0, np.array(shape) - 1)
            centre[tuple(np.round(p).astype(int))] = True
    return ndimage.distance_transform_edt(~centre) <= radius


def perturb(gt, seed, p_flip=0.002, n_gaps=30):
    """A plausible prediction: random specks and holes, some gaps cut into the structure."""
    rng = np.random.default_rng(seed)
    pred = gt ^ (rng.random(gt.shape) < p_flip)
    fg = np.argwhere(gt)
    for c in fg[rng.choice(len(fg), n_gaps, replace=False)]:
        sl = tuple(slice(max(0, x - 2), x + 3) for x in c)
        pred[sl] = False
    return pred


def bench(pred, gt, repeats):
    evaluate_case(pred, gt)  # warm-up
    totals, parts = [], {}
    for _ in range(repeats):
        t = {}
        t0 = time.perf_counter()
        evaluate_case(pred, gt, timings=t)
        totals.append(time.perf_counter() - t0)
        for k, v in t.items():
            parts.setdefault(k, []).append(v)
    return {
        "shape": list(gt.shape),
        "foreground_fraction": float(gt.mean()),
        "total_s": statistics.median(totals),
        "total_without_cldice_s": statistics.median(a - b for a, b in zip(totals, parts["cldice"])),
        "per_metric_s": {k: statistics.median(v) for k, v in parts.items()},
        "repeats": repeats,
    }


def bench_topology(pred, gt, repeats):
    """Betti matching error and local Betti error alone: median wall (perf_counter) and CPU
    (process_time) seconds; CPU time is what one core spends, also on a loaded machine."""
    out = {}
    for name, fn in (("betti_matching_error", betti_matching_error), ("local_betti_error", local_betti_error)):
        fn(pred, gt)  # warm-up
        wall, cpu = [], []
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            fn(pred, gt)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        out[name] = {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu), "value": fn(pred, gt)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "metrics.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    cases = {
        "2d_membranes_1250x1250": membranes((1250, 1250), 800, 0),
        "3d_vessels_72x128x128": tubes((72, 128, 128), 12, 0),
        "3d_membranes_72x128x128": membranes((72, 128, 128), 150, 0),
    }
    results = {}
    for name, gt in cases.items():
        pred = perturb(gt, 1)
        results[name] = bench(pred, gt, args.repeats)
        r = results[name]
        r["topology_metrics"] = bench_topology(pred, gt, args.repeats)
        for k, v in r["topology_metrics"].items():
            print(f"{name}: {k} wall {v['wall_s']:.3f} s, cpu {v['cpu_s']:.3f} s")
        print(f"{name}: total {r['total_s']:.3f} s (without clDice {r['total_without_cldice_s']:.3f} s) "
              + ", ".join(f"{k} {v:.3f}" for k, v in r["per_metric_s"].items()))
    meta = metadata(timer="time.perf_counter, median over repeats after 1 warm-up",
                    note="clDice time is the two exact skeletons (toposeg.skeleton)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    print("| case | total | without clDice | clDice (2 skeletons) | labels | VOI | ARE | Euler | Betti |")
    for name, r in results.items():
        p = r["per_metric_s"]
        cells = [r["total_s"], r["total_without_cldice_s"], p["cldice"], p["labels"], p["voi"], p["are"],
                 p["euler"], p["betti"]]
        print(f"| {name} | " + " | ".join(f"{c:.3f} s" for c in cells) + " |")
    print("| case | Betti matching wall | Betti matching CPU | local Betti wall | local Betti CPU |")
    for name, r in results.items():
        tm = r["topology_metrics"]
        cells = [tm["betti_matching_error"]["wall_s"], tm["betti_matching_error"]["cpu_s"],
                 tm["local_betti_error"]["wall_s"], tm["local_betti_error"]["cpu_s"]]
        print(f"| {name} | " + " | ".join(f"{c:.3f} s" for c in cells) + " |")


if __name__ == "__main__":
    main()

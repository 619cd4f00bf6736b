"""Speed of the downstream analyses: skeleton graphs, route planning, APLS, meshes, panels.

    python benchmarks/downstream.py [--repeats 3] [--threads 1] [--out benchmarks/results/downstream.json]

Graphs use the default skeleton rule ("thin", torch) and one node per junction cluster; one
torch thread by default like the other benchmark scripts (docs/benchmarks.md, "Threads").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import binary_dilation
from skimage.draw import line, line_nd

sys.path.insert(0, str(Path(__file__).parent))
from _meta import median_time, metadata, write_json  # noqa: E402


def road_masks(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1024² random straight roads (7 px wide) and a prediction with 20 square cuts."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((1024, 1024), bool)
    for _ in range(60):
        r0, c0, r1, c1 = rng.integers(0, 1024, 4)
        gt[line(r0, c0, r1, c1)] = True
    gt = binary_dilation(gt, iterations=3)
    pred = gt.copy()
    for r, c in rng.integers(20, 1000, (20, 2)):
        pred[r - 6:r + 6, c - 6:c + 6] = False
    return gt, pred


def vessel_volume(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.zeros((72, 128, 128), bool)
    for _ in range(12):
        v[line_nd(rng.integers(0, (72, 128, 128)), rng.integers(0, (72, 128, 128)))] = True
    return binary_dilation(v, iterations=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    import toposeg.graph as tg
    from toposeg.reports.mesh import component_panel, mask_to_mesh
    from toposeg.skeleton import skeletonize

    gt, pred = road_masks()
    res: dict = {}
    t = time.perf_counter()
    import skan  # noqa: F401

    res["skan_import_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tg.mask_to_graph(gt[:200, :200])
    res["skan_first_call_s"] = time.perf_counter() - t  # numba compilation, once per process
    res["skeleton_pixels"] = int(skeletonize(gt).sum())
    res["skeletonize_1024_s"] = median_time(lambda: skeletonize(gt), args.repeats)
    for backend in ("skan", "pixel"):
        res[f"mask_to_graph_{backend}_s"] = median_time(lambda: tg.mask_to_graph(gt, backend=backend), args.repeats)
    g_gt, g_pred = tg.mask_to_graph(gt), tg.mask_to_graph(pred)
    res["plan_routes_50_pairs_s"] = median_time(lambda: tg.plan_routes(g_pred, g_gt, n_pairs=50), args.repeats)
    res["apls_s"] = median_time(lambda: tg.apls(g_pred, g_gt), 1)
    res["apls"] = float(tg.apls(g_pred, g_gt))
    res["graph_nodes_gt"] = g_gt.number_of_nodes()
    res["graph_junctions_gt"] = sum(k == "junction" for _, k in g_gt.nodes(data="kind"))
    vol = vessel_volume()
    res["mask_to_mesh_72x128x128_s"] = median_time(lambda: mask_to_mesh(vol), args.repeats)
    res["mesh_faces"] = len(mask_to_mesh(vol).faces)
    with tempfile.TemporaryDirectory() as tmp:
        res["panel_3_axes_s"] = median_time(lambda: component_panel(vol, [vol], Path(tmp) / "p.png", axes=(0, 1, 2)), 1)
    for k, v in res.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    write_json("downstream", {"meta": metadata(), "results": res}, args.out)


if __name__ == "__main__":
    main()

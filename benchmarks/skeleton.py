"""Skeletonization speed: torch backend (CPU and, when present, CUDA) vs scikit-image (threads).

    python benchmarks/skeleton.py                 # all cases, 3 timed repeats after 1 warm-up
    python benchmarks/skeleton.py --repeats 5 --threads 1
    python benchmarks/skeleton.py --cases 2d      # only the 2D cases

Cases (batch shape (N, 1, *S); 3D spatial order (D, H, W)): 8x256^2 and 1x1250^2 in 2D,
1x72x128x128 (the paper's 128x128x72 patch) and 4x64^3 in 3D, each with tubular (vessel-like)
and blob-like content. Every timing is the median over ``--repeats`` runs after a warm-up;
CUDA timings synchronise the device. Ratios are computed within this process. Writes
benchmarks/results/skeleton.json (metadata: commit, versions, device names, threads) and prints
the Markdown table for docs/skeleton.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _meta import device_name, median_time, metadata, write_json  # noqa: E402

from toposeg.skeleton import BACKENDS, resolve_backend  # noqa: E402


def tubular(rng: np.random.Generator, shape: tuple[int, ...], count: int) -> np.ndarray:
    """Random smooth curves (random walks) dilated to tubes of radius 1-4: vessel-like masks."""
    ndim = len(shape)
    out = np.zeros(shape, bool)
    for _ in range(count):
        p = rng.uniform(0, 1, ndim) * np.array(shape)
        d = rng.normal(size=ndim)
        for _ in range(int(2 * max(shape))):
            d = d / np.linalg.norm(d) + 0.2 * rng.normal(size=ndim)
            p = np.clip(p + d / np.linalg.norm(d), 0, np.array(shape) - 1)
            out[tuple(np.round(p).astype(int))] = True
    radius = ndi.distance_transform_edt(~out)
    return radius <= rng.uniform(1, 4)


def blobs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Smoothed noise thresholded at its median: large blobs with holes and cavities."""
    f = ndi.gaussian_filter(rng.random(shape), max(shape) / 32)
    return f > np.median(f)


CASES = {
    "2d": [((8, 1, 256, 256), 6), ((1, 1, 1250, 1250), 30)],
    "3d": [((1, 1, 72, 128, 128), 6), ((4, 1, 64, 64, 64), 3)],
}


def make_batch(shape: tuple[int, ...], count: int, content: str, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    spatial = shape[2:]
    maker = (lambda: tubular(rng, spatial, count)) if content == "tubular" else (lambda: blobs(rng, spatial))
    return torch.from_numpy(np.stack([maker() for _ in range(shape[0])]))[:, None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", choices=["all", "2d", "3d"], default="all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the CPU runs")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/skeleton.json)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for dim in (["2d", "3d"] if args.cases == "all" else [args.cases]):
        for shape, count in CASES[dim]:
            for content in ("tubular", "blob"):
                x = make_batch(shape, count, content, seed=len(rows))
                row = {"shape": list(shape), "content": content, "foreground": float(x.float().mean())}
                row["skimage_cpu_s"] = median_time(lambda: BACKENDS["skimage"](x), args.repeats, args.warmup)
                ref = BACKENDS["torch"](x)
                for dev in devices:
                    xd = x.to(dev)
                    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
                    t = median_time(lambda: BACKENDS["torch"](xd), args.repeats, args.warmup, sync)
                    row[f"torch_{dev}_s"] = t
                    row[f"speedup_{dev}_vs_skimage_cpu"] = row["skimage_cpu_s"] / t
                    if dev != "cpu":
                        row[f"torch_{dev}_equals_cpu"] = bool(torch.equal(BACKENDS["torch"](xd).cpu(), ref))
                row["skeleton_voxels_torch"] = int(ref.sum())
                row["skeleton_voxels_skimage"] = int(BACKENDS["skimage"](x).sum())
                rows.append(row)
                print(row, flush=True)

    payload = {
        "benchmark": "skeleton",
        "meta": metadata("cpu", devices={d: device_name(d) for d in devices}, repeats=args.repeats,
                         warmup=args.warmup, skimage_threads_max=__import__("toposeg.skeleton._skimage",
                                                                            fromlist=["max_workers"]).max_workers()),
        "auto_rule": {f"{d}/{n}d": resolve_backend("auto", d, n) for d in ("cpu", "cuda") for n in (2, 3)},
        "rows": rows,
    }
    write_json("skeleton", payload, args.out)
    print(markdown(payload))
    return 0


def markdown(payload: dict) -> str:
    devices = list(payload["meta"]["devices"])
    head = "| batch (N,1,*S) | content | skimage CPU (s) | " + " | ".join(
        f"torch {d} (s) | skimage/torch {d}" for d in devices
    ) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(devices))]
    for r in payload["rows"]:
        cells = [f"{r['torch_' + d + '_s']:.3f} | {r['speedup_' + d + '_vs_skimage_cpu']:.2f}x" for d in devices]
        lines.append(f"| {'x'.join(map(str, r['shape']))} | {r['content']} | {r['skimage_cpu_s']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

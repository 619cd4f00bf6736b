"""Skeletonization speed: the default rule "thin" (torch backend) vs scikit-image on the CPU.

    python benchmarks/skeleton.py                     # all cases, 3 timed repeats after 1 warm-up
    python benchmarks/skeleton.py --repeats 5 --threads 1
    python benchmarks/skeleton.py --cases 2d          # only the 2D cases

Cases (batch shape (N, 1, *S); 3D spatial order (D, H, W)): 8x256^2 and 1x1250^2 in 2D,
1x72x128x128 (the paper's 128x128x72 patch) in 3D, each with tubular (vessel-like) and blob-like
content. Per case: the default rule ``method="thin"`` with the torch backend on the CPU (and on
CUDA when present), and scikit-image's rule for that dimensionality (2D ``zhang``, 3D ``lee``,
``backend="skimage"``: threads over the batch), plus, in 2D, toposeg's torch Zhang-Suen. Every
timing is the median over ``--repeats`` runs after a warm-up; CUDA timings synchronise the
device. Writes benchmarks/results/skeleton.json (metadata: commit, versions, device names,
threads, load average) and prints the Markdown table for docs/skeleton.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _meta import device_name, median_time, metadata, write_json  # noqa: E402

from toposeg.skeleton import resolve_backend, skeletonize  # noqa: E402


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
    "3d": [((1, 1, 72, 128, 128), 6)],
}
REFERENCE = {2: "zhang", 3: "lee"}  # scikit-image's rule per spatial dimensionality


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
    load_at_start = list(os.getloadavg())
    if args.threads:
        torch.set_num_threads(args.threads)
        # the scikit-image backend threads over the batch: give it the same number of threads
        import toposeg.skeleton._skimage as sk_backend

        sk_backend.max_workers = lambda: args.threads

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for dim in (["2d", "3d"] if args.cases == "all" else [args.cases]):
        for shape, count in CASES[dim]:
            ref_method = REFERENCE[len(shape) - 2]
            for content in ("tubular", "blob"):
                x = make_batch(shape, count, content, seed=len(rows))
                row = {"shape": list(shape), "content": content, "foreground": float(x.float().mean()),
                       "reference": f"skimage {ref_method}"}
                ref = skeletonize(x, method=ref_method, backend="skimage")
                row["skimage_cpu_s"] = median_time(lambda: skeletonize(x, method=ref_method, backend="skimage"),
                                                   args.repeats, args.warmup)
                thin = skeletonize(x, method="thin", backend="torch")
                for dev in devices:
                    xd = x.to(dev)
                    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
                    t = median_time(lambda: skeletonize(xd, method="thin", backend="torch"), args.repeats, args.warmup, sync)
                    row[f"thin_torch_{dev}_s"] = t
                    row[f"thin_{dev}_over_skimage_cpu"] = t / row["skimage_cpu_s"]
                    if dev != "cpu":
                        row[f"thin_{dev}_equals_cpu"] = bool(torch.equal(skeletonize(xd).cpu(), thin))
                if ref_method == "zhang":
                    row["zhang_torch_cpu_s"] = median_time(lambda: skeletonize(x, method="zhang", backend="torch"),
                                                           args.repeats, args.warmup)
                row["skeleton_pixels_thin"] = int(thin.sum())
                row[f"skeleton_pixels_{ref_method}"] = int(ref.sum())
                row[f"samples_emptied_by_{ref_method}"] = int(((ref.flatten(1).sum(1) == 0) & (x.flatten(1).sum(1) > 0)).sum())
                rows.append(row)
                print(row, flush=True)

    payload = {
        "benchmark": "skeleton",
        "meta": metadata("cpu", devices={d: device_name(d) for d in devices}, repeats=args.repeats,
                         warmup=args.warmup, skimage_threads_max=__import__("toposeg.skeleton._skimage",
                                                                            fromlist=["max_workers"]).max_workers(),
                         load_average_at_start=load_at_start),
        "auto_rule": {f"{m}/{d}/{n}d": resolve_backend(m, "auto", d, n) for m, n in
                      (("thin", 2), ("thin", 3), ("zhang", 2), ("lee", 3)) for d in ("cpu", "cuda")},
        "rows": rows,
    }
    write_json("skeleton", payload, args.out)
    print(markdown(payload))
    return 0


def markdown(payload: dict) -> str:
    devices = list(payload["meta"]["devices"])
    head = "| batch (N,1,*S) | content | scikit-image rule | scikit-image CPU (s) | " + " | ".join(
        f"thin torch {d} (s) | thin {d} / scikit-image" for d in devices
    ) + " | Zhang torch CPU (s) |"
    lines = [head, "|" + "---|" * (5 + 2 * len(devices))]
    for r in payload["rows"]:
        cells = [f"{r['thin_torch_' + d + '_s']:.3f} | {r['thin_' + d + '_over_skimage_cpu']:.2f}x" for d in devices]
        zhang = f"{r['zhang_torch_cpu_s']:.3f}" if "zhang_torch_cpu_s" in r else "-"
        lines.append(f"| {'x'.join(map(str, r['shape']))} | {r['content']} | {r['reference'].split()[1]} | "
                     f"{r['skimage_cpu_s']:.3f} | " + " | ".join(cells) + f" | {zhang} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

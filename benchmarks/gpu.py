"""Every GPU claim of toposeg measured in one run: skeleton equality, skeleton speed, Table 2, ISBI.

    bash benchmarks/gpu.sh                 # on the GPU machine (see the header of gpu.sh)
    python benchmarks/gpu.py --quick --device cpu --out /tmp/gpu-quick   # CPU rehearsal, ~2 min

Steps, each writing its own JSON under ``--out`` as soon as it finishes (so a run cut short by a
time limit still returns what it measured):

1. ``gpu_equality.json``: skeletons on ``--device`` equal those on the CPU, bit for bit, for the
   same rule (``thin`` 2D and 3D, ``zhang`` 2D; ``zhang`` also against scikit-image), on a few
   hundred random and real-shaped masks.
2. ``gpu_skeleton.json``: skeletonization time on 8x256^2, 32x256^2 and 2x72x128x128 batches: the
   torch backend on the device vs scikit-image on this host's CPU with one thread per core over
   the batch (the number of threads is recorded). Targets: >= 20x (2D), >= 10x (3D).
3. ``gpu_table2.json``: the paper's Table 2 on the device (paper U-Net 32-64-128, one 256^2 and
   one 72x128x128 patch, every method), fp32 and bf16 autocast, ratios to the plain U-Net measured
   round-robin in one process (``toposeg.benchmark.time_training``).
4. ``gpu_isbi.json`` (only with ``--isbi-root`` and time left): the ISBI 2012 protocol for the
   baseline and SHPM on fold 0 with the full-size configs.

Every JSON carries the device name and versions. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _meta import ROOT, median_time, metadata  # noqa: E402
from skeleton import make_batch  # noqa: E402


def _write(out: Path, name: str, payload: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    print(f"[gpu] wrote {out / name}.json", flush=True)


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _random_masks(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> list[np.ndarray]:
    """Random masks at several densities, smoothed so that they contain blobs, holes and curves."""
    from scipy import ndimage

    out = []
    for i in range(n):
        sigma = [0.0, 0.7, 1.5][i % 3]
        f = rng.random(shape)
        if sigma:
            f = ndimage.gaussian_filter(f, sigma)
        out.append(f > np.quantile(f, rng.uniform(0.3, 0.8)))
    return out


def step_equality(device: str, quick: bool) -> dict[str, Any]:
    from toposeg.skeleton import skeletonize

    rng = np.random.default_rng(0)
    n2, n3 = (24, 6) if quick else (300, 60)
    sets = {
        "2d_random_32": _random_masks(rng, (32, 32), n2),
        "2d_random_256": _random_masks(rng, (256, 256), max(2, n2 // 10)),
        "2d_tubular_256": [make_batch((1, 1, 256, 256), 6, "tubular", seed=s)[0, 0].numpy() for s in range(max(2, n2 // 10))],
        "3d_random_16": _random_masks(rng, (16, 16, 16), n3),
        "3d_tubular_72x128x128": [make_batch((1, 1, 72, 128, 128), 6, "tubular", seed=s)[0, 0].numpy()
                                  for s in range(1 if quick else 4)],
    }
    rows = []
    for name, masks in sets.items():
        ndim = masks[0].ndim
        rules = ["thin", "zhang"] if ndim == 2 else ["thin"]
        x = torch.from_numpy(np.stack(masks))[:, None]
        for rule in rules:
            cpu = skeletonize(x, method=rule, backend="torch")
            dev = skeletonize(x.to(device), method=rule, backend="torch").cpu()
            row = {"set": name, "rule": rule, "n": len(masks), "shape": list(masks[0].shape),
                   "mismatching_masks": int((cpu != dev).flatten(1).any(1).sum()),
                   "mismatching_pixels": int((cpu != dev).sum())}
            if rule == "zhang":
                sk = skeletonize(x, method="zhang", backend="skimage")
                row["mismatching_masks_vs_skimage"] = int((sk != dev).flatten(1).any(1).sum())
            rows.append(row)
            print("[gpu] equality", row, flush=True)
    return {"rows": rows, "all_equal": all(r["mismatching_pixels"] == 0 and r.get("mismatching_masks_vs_skimage", 0) == 0
                                           for r in rows)}


def step_skeleton_speed(device: str, quick: bool) -> dict[str, Any]:
    from toposeg.skeleton import skeletonize
    from toposeg.skeleton._skimage import max_workers

    cases = [((8, 1, 256, 256), 6), ((32, 1, 256, 256), 6), ((2, 1, 72, 128, 128), 6)]
    if quick:
        cases = [((8, 1, 64, 64), 3), ((2, 1, 16, 32, 32), 3)]
    repeats, warmup = (2, 1) if quick else (5, 2)
    rows = []
    for shape, count in cases:
        x = make_batch(shape, count, "tubular", seed=1)
        ndim = len(shape) - 2
        xd = x.to(device)
        reference = "zhang" if ndim == 2 else "lee"
        row: dict[str, Any] = {"shape": list(shape), "skimage_rule": reference, "skimage_threads": min(max_workers(), shape[0])}
        row["skimage_cpu_s"] = median_time(lambda: skeletonize(x, method=reference, backend="skimage"), repeats, warmup)
        for rule in (["thin", "zhang"] if ndim == 2 else ["thin"]):
            t = median_time(lambda: skeletonize(xd, method=rule, backend="torch"), repeats, warmup, _sync(device))
            row[f"torch_{rule}_{device}_s"] = t
            row[f"speedup_{rule}_vs_skimage_cpu"] = row["skimage_cpu_s"] / t
        rows.append(row)
        print("[gpu] skeleton speed", row, flush=True)
    return {"rows": rows, "repeats": repeats, "warmup": warmup}


def step_table2(device: str, quick: bool) -> dict[str, Any]:
    from toposeg.benchmark import time_training

    out: dict[str, Any] = {}
    settings = [(2, (256, 256)), (3, (72, 128, 128))]
    features = (32, 64, 128)
    iters, warmup = (10, 3)
    if quick:
        settings, features, iters, warmup = [(2, (64, 64)), (3, (16, 32, 32))], (8, 16, 32), 2, 1
    for amp in ("fp32", "bf16"):
        for dims, patch in settings:
            key = f"{dims}d_{amp}"
            try:
                t0 = time.perf_counter()
                ctx = torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16) if amp == "bf16" else None
                if ctx is None:
                    res = time_training(dims, patch=patch, iters=iters, warmup=warmup, device=device, features=features)
                else:
                    with ctx:
                        res = time_training(dims, patch=patch, iters=iters, warmup=warmup, device=device, features=features)
                res["wall_s"] = time.perf_counter() - t0
                out[key] = res
            except Exception as exc:  # one failing setting must not lose the others
                out[key] = {"error": f"{type(exc).__name__}: {exc}"}
            print("[gpu] table2", key, json.dumps(out[key], default=str)[:400], flush=True)
    return out


def step_isbi(device: str, root: str, out: Path, quick: bool, budget_s: float) -> dict[str, Any]:
    configs = sorted(str(p) for p in (ROOT / "configs" / ("isbi2012_quick" if quick else "isbi2012")).glob("*.yaml"))
    chosen = [c for c in configs if Path(c).stem in ("unet", "shpm")]
    runs = out / "isbi_runs"
    cmd = [sys.executable, "-m", "toposeg.cli", "cv", *chosen, "--data-root", root, "--out", str(runs),
           "--folds", "0", "--device", device]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(10.0, budget_s))
        status = {"returncode": proc.returncode, "tail": (proc.stdout + proc.stderr)[-3000:]}
    except subprocess.TimeoutExpired:
        status = {"returncode": None, "tail": f"stopped after {budget_s:.0f} s (time budget)"}
    table = runs / "table1.json"
    return {"command": " ".join(cmd), "wall_s": time.perf_counter() - t0, **status,
            "table1": json.loads(table.read_text()) if table.is_file() else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results/gpu"), help="folder for the JSON files")
    ap.add_argument("--device", default="cuda", help="device to measure (cuda, or cpu for a rehearsal)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks that every step runs end to end")
    ap.add_argument("--steps", default="equality,skeleton,table2,isbi", help="comma-separated subset of the steps")
    ap.add_argument("--isbi-root", default=None, help="ISBI 2012 folder (step 4 is skipped without it)")
    ap.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run; step 4 gets what is left")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    start = time.perf_counter()
    out = Path(args.out)
    meta = metadata(args.device, quick=args.quick, cpu_threads_torch=torch.get_num_threads(), cpu_count=os.cpu_count())
    steps = set(args.steps.split(","))
    unknown = steps - {"equality", "skeleton", "table2", "isbi"}
    if unknown:
        print(f"error: unknown steps {sorted(unknown)}; valid: equality, skeleton, table2, isbi", file=sys.stderr)
        return 2
    for name, fn in (("equality", lambda: step_equality(args.device, args.quick)),
                     ("skeleton", lambda: step_skeleton_speed(args.device, args.quick)),
                     ("table2", lambda: step_table2(args.device, args.quick))):
        if name in steps:
            t0 = time.perf_counter()
            try:
                payload = fn()
            except Exception as exc:
                payload = {"error": f"{type(exc).__name__}: {exc}"}
            _write(out, f"gpu_{name}", {"meta": meta, "wall_s": time.perf_counter() - t0, **payload})
    if "isbi" in steps and args.isbi_root:
        left = args.budget - (time.perf_counter() - start) - 20.0
        if left > 60:
            _write(out, "gpu_isbi", {"meta": meta, **step_isbi(args.device, args.isbi_root, out, args.quick, left)})
        else:
            print(f"[gpu] isbi skipped: only {left:.0f} s left of the budget", flush=True)
    print(f"[gpu] done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

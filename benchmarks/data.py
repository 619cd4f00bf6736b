"""Data benchmarks -> benchmarks/results/data.json.

speed:    patches/s of PatchDataset + DataLoader (2D 256x256, 3D 72x128x128; 0 and 2 workers),
          next to the samples/s of a plain U-Net training step on the same patches (context:
          the loader must keep a CPU training step busy).
topology: beta0/beta1 errors of a plain U-Net (features 16-32-64, BCE+Dice, 150 Adam steps on
          64x64 patches) on each 2D synthetic generator, on held-out whole 128x128 images.

generators: seconds per synthetic case.

Usage: python benchmarks/data.py [--section speed|generators|topology|all] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from toposeg.data import PatchDataset, make_synthetic

sys.path.insert(0, str(Path(__file__).parent))
from _meta import ROOT, metadata  # noqa: E402


def _throughput(ds: PatchDataset, workers: int, batch: int, repeats: int) -> float:
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(0))
    for _ in loader:  # warm-up epoch (worker start-up, caches)
        pass
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = sum(b["image"].shape[0] for b in loader)
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def _train_step_rate(model, batch: torch.Tensor, target: torch.Tensor, repeats: int) -> float:
    from toposeg.losses import bce_dice_loss

    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    times = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        opt.zero_grad()
        bce_dice_loss(model(batch), target).backward()
        opt.step()
        if i:  # first step is warm-up
            times.append(time.perf_counter() - t)
    return batch.shape[0] / statistics.median(times)


def speed(quick: bool) -> list[dict]:
    from toposeg.models import UNet

    rows = []
    setups = [
        ("2D", make_synthetic("membranes2d", 4, size=512, seed=0), (256, 256), 8, 32 if quick else 64),
        ("3D", make_synthetic("vessels3d", 2, size=(96, 160, 160), seed=0), (72, 128, 128), 2, 4 if quick else 8),
    ]
    for dims, cases, patch, batch, n in setups:
        for skeleton in (False, True):
            ds = PatchDataset(cases, patch, samples_per_epoch=n, skeleton=skeleton, seed=0).precompute()
            for workers in (0, 2):
                rate = _throughput(ds, workers, batch, repeats=3)
                rows.append({"dims": dims, "patch": list(patch), "batch": batch, "workers": workers,
                             "skeleton": skeleton, "patches_per_s": round(rate, 1)})
                print(rows[-1], flush=True)
        step_batch = 1 if dims == "3D" else batch
        sample = next(iter(DataLoader(PatchDataset(cases, patch, samples_per_epoch=step_batch, seed=0), batch_size=step_batch)))
        model = UNet(spatial_dims=len(patch), in_channels=1, out_channels=1)
        rate = _train_step_rate(model, sample["image"], sample["label"], repeats=1 if dims == "3D" else 3)
        rows.append({"dims": dims, "patch": list(patch), "batch": step_batch, "threads": torch.get_num_threads(),
                     "unet_train_samples_per_s": round(rate, 2)})
        print(rows[-1], flush=True)
    return rows


def generators(quick: bool) -> list[dict]:
    """Seconds per generated case (median of 5 after one warm-up)."""
    from toposeg.data.synthetic import SYNTHETIC

    rows = []
    for kind, size in (("vessels2d", 128), ("membranes2d", 128), ("roads2d", 128), ("vessels2d", 256),
                       ("membranes2d", 256), ("roads2d", 256), ("vessels3d", 128)):
        SYNTHETIC[kind](size=size, seed=0)
        times = []
        for seed in range(1, 4 if quick else 6):
            t = time.perf_counter()
            SYNTHETIC[kind](size=size, seed=seed)
            times.append(time.perf_counter() - t)
        rows.append({"kind": kind, "size": size, "seconds_per_case": round(statistics.median(times), 4)})
        print(rows[-1], flush=True)
    return rows


def topology(quick: bool) -> list[dict]:
    from toposeg.losses import bce_dice_loss
    from toposeg.metrics import betti_errors
    from toposeg.models import UNet

    rows = []
    steps = 60 if quick else 150
    for kind in ("vessels2d", "membranes2d", "roads2d"):
        torch.manual_seed(0)
        train = make_synthetic(kind, 16, size=128, seed=1)
        test = make_synthetic(kind, 8, size=128, seed=2)
        channels = train[0].image.shape[0]
        ds = PatchDataset(train, 64, samples_per_epoch=8 * steps, fg_prob=0.5, seed=0)
        loader = DataLoader(ds, batch_size=8)
        model = UNet(spatial_dims=2, in_channels=channels, out_channels=1, features=(16, 32, 64))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        t = time.perf_counter()
        model.train()
        for batch in loader:
            opt.zero_grad()
            loss = bce_dice_loss(model(batch["image"]), batch["label"])
            loss.backward()
            opt.step()
        train_s = time.perf_counter() - t
        model.eval()
        e0, e1, dice, gt = [], [], [], []
        from toposeg.data.transforms import normalize

        with torch.no_grad():
            for case in test:
                x = torch.from_numpy(normalize(case.image))[None]
                pred = (torch.sigmoid(model(x))[0, 0] > 0.5).numpy()
                b0, b1 = betti_errors(pred, case.label)
                e0.append(b0)
                e1.append(b1)
                dice.append(2 * (pred & case.label).sum() / max(pred.sum() + case.label.sum(), 1))
                gt.append(case.meta["betti"])
        gt = np.array(gt)
        rows.append({"kind": kind, "steps": steps, "final_loss": round(float(loss.detach()), 4), "train_s": round(train_s, 1),
                     "dice": round(float(np.mean(dice)), 3), "betti0_error": round(float(np.mean(e0)), 2),
                     "betti1_error": round(float(np.mean(e1)), 2), "gt_betti0": round(float(gt[:, 0].mean()), 2),
                     "gt_betti1": round(float(gt[:, 1].mean()), 2), "n_test": len(test)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--section", choices=["speed", "generators", "topology", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="fewer samples/steps (smoke run)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data.json"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads in the main process (1: avoids OpenMP spinning on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    result["metadata"] = metadata()
    if args.section in ("speed", "all"):
        result["speed"] = speed(args.quick)
    if args.section in ("generators", "all"):
        result["generators"] = generators(args.quick)
    if args.section in ("topology", "all"):
        result["topology"] = topology(args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

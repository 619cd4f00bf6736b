"""Training-step timing per loss: the paper's Table 2 (seconds per 100 training iterations).

Every method trains its own copy of the same U-Net (same initial weights, SGD) on the same
synthetic tubular patch; the methods are timed *round-robin* (one iteration of each in turn, so
that load changes on a shared machine hit all methods alike), after warm-up iterations, and the
per-iteration **median** is reported, extrapolated to 100 iterations, together with the ratio to
the plain U-Net (BCE + Dice) measured in the same process: the median over rounds of the
*paired* ratio (method time / U-Net time of the same round; the rotating order means no method
always runs first), which is far less sensitive to load drift than a ratio of medians (also
recorded, ``ratio_of_medians``). CUDA is synchronised around each
step. Mining-only timings (one call of each miner on a realistic imperfect prediction) are
reported separately.

Every compared method is BCE + Dice at weight 1 plus its own term, with the registry defaults
(clDice 10 soft-skeleton iterations, HPM mining threshold 0.6, skeleton rule ``"thin"``).

Ground-truth-only quantities (the SHPM target skeleton, the Skeleton Recall tube) are
precomputed once per patch, as a data pipeline would cache them; say so when quoting numbers.
"""

from __future__ import annotations

import copy
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from toposeg.mining import DEFAULT_MINING_THRESHOLD

#: Table-2 rows: label -> (registry loss name, extra parameters).
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "U-Net": ("bce_dice", {}),
    "+clDice": ("cldice", {}),
    "+THPM": ("thpm", {}),
    "+PHPM": ("phpm", {}),
    "+SHPM": ("shpm", {}),
    "+Skeleton Recall": ("skeleton_recall", {}),
}
DEFAULT_PATCH = {2: (256, 256), 3: (72, 128, 128)}


def _check_positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def tubular_patch(shape: Sequence[int], *, seed: int = 0, n_curves: int = 6, radius: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic ``(image, label)`` patch of thin random curves (2D or 3D), deterministic in ``seed``."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    centre = np.zeros(shape, bool)
    for _ in range(n_curves):
        pos = rng.uniform(0, 1, len(shape)) * (np.asarray(shape) - 1)
        direction = rng.normal(size=len(shape))
        for _ in range(4 * max(shape)):
            direction = direction / np.linalg.norm(direction) + 0.25 * rng.normal(size=len(shape))
            pos = pos + 0.5 * direction / np.linalg.norm(direction)
            if np.any(pos < 0) or np.any(pos > np.asarray(shape) - 1):
                break
            centre[tuple(np.round(pos).astype(int))] = True
    label = ndimage.distance_transform_edt(~centre) <= radius
    image = ndimage.gaussian_filter(label.astype(np.float32), 1.0) + 0.3 * rng.standard_normal(shape).astype(np.float32)
    return image.astype(np.float32), label


def imperfect_prediction(label: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Probabilities resembling a fine-tuning-stage prediction: right mostly, with breaks and blobs."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.standard_normal(label.shape), 2.0)
    logits = 4.0 * (label.astype(np.float32) - 0.5) + 12.0 * noise
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(
    spatial_dims: int,
    *,
    patch: Optional[Sequence[int]] = None,
    methods: Optional[Sequence[str]] = None,
    iters: int = 5,
    warmup: int = 2,
    batch_size: int = 1,
    device: str = "cpu",
    features: Sequence[int] = (32, 64, 128),
    threshold: float = DEFAULT_MINING_THRESHOLD,
    method: str = "thin",
    backend: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Median seconds per training iteration (forward, loss, backward, SGD step) per method.

    ``threshold`` is the HPM mining threshold (default 0.6, the paper's); ``method`` / ``backend``
    the skeleton rule and implementation of SHPM and Skeleton Recall (default ``"thin"`` / ``"auto"``).
    """
    from toposeg.losses import build_loss
    from toposeg.losses.skeleton_recall import tubed_skeleton
    from toposeg.models import build_model
    from toposeg.skeleton import skeletonize

    if spatial_dims not in DEFAULT_PATCH:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    patch = tuple(int(s) for s in (patch or DEFAULT_PATCH[spatial_dims]))
    if len(patch) != spatial_dims or any(s < 8 for s in patch):
        raise ValueError(f"patch must have {spatial_dims} sizes >= 8, got {patch!r}")
    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise KeyError(f"unknown method(s) {unknown}; valid: {list(METHODS)}")
    if "U-Net" not in methods:
        methods.insert(0, "U-Net")
    iters, batch_size = _check_positive(iters, "iters"), _check_positive(batch_size, "batch_size")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative integer, got {warmup!r}")
    dev = torch.device(device)

    images, labels = zip(*(tubular_patch(patch, seed=seed + i) for i in range(batch_size)))
    x = torch.from_numpy(np.stack(images)[:, None]).to(dev)
    y = torch.from_numpy(np.stack(labels)[:, None]).to(dev)
    y_skel = skeletonize(y, method=method, backend=backend)  # precomputed once (ground truth never changes)
    y_tube = tubed_skeleton(y, method=method, backend=backend)

    torch.manual_seed(seed)
    base = build_model("unet", spatial_dims=spatial_dims, in_channels=1, out_channels=1, features=tuple(features)).to(dev)
    runs = {}
    for label in methods:
        name, params = METHODS[label]
        params = dict(params)
        if name in ("thpm", "phpm", "shpm"):
            params["threshold"] = threshold
        if name in ("shpm", "skeleton_recall"):
            params["method"], params["backend"] = method, backend
        if name == "phpm":
            params["dims"] = (0, 1) if spatial_dims == 2 else (0,)
        loss = build_loss(name, **params)
        model = copy.deepcopy(base).train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        extra = {"target_skeleton": y_skel} if name == "shpm" else {"target_skeleton": y_tube} if name == "skeleton_recall" else {}
        runs[label] = (model, opt, loss, extra)

    def step(label: str) -> float:
        model, opt, loss, extra = runs[label]
        _sync(dev)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        value = loss(model(x), y, **extra)
        value.backward()
        opt.step()
        _sync(dev)
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {m: [] for m in methods}
    k = len(methods)
    for r in range(warmup + iters):
        order = methods[r % k:] + methods[:r % k]  # rotate: no method always runs first
        for label in order:
            t = step(label)
            if r >= warmup:
                times[label].append(t)
    ref = statistics.median(times["U-Net"])
    rows = []
    for label in methods:
        med = statistics.median(times[label])
        paired = [a / b for a, b in zip(times[label], times["U-Net"])]
        rows.append({
            "method": label, "loss": METHODS[label][0], "median_s_per_iter": med, "s_per_100_iters": 100 * med,
            "ratio_to_unet": statistics.median(paired), "ratio_of_medians": med / ref, "times_s": times[label],
        })
    return {"spatial_dims": spatial_dims, "patch": list(patch), "batch_size": batch_size, "iters": iters,
            "warmup": warmup, "features": list(features), "threshold": threshold, "method": method, "backend": backend,
            "device": str(dev), "rows": rows,
            "note": (f"median of {iters} timed iterations after {warmup} warm-up rounds, x100 (extrapolated); "
                     "methods timed round-robin (rotating order) in one process; ratio = median over rounds of "
                     "(method / U-Net in the same round); GT skeleton/tube precomputed")}


def time_mining(
    spatial_dims: int,
    *,
    patch: Optional[Sequence[int]] = None,
    repeats: int = 5,
    batch_size: int = 1,
    threshold: float = DEFAULT_MINING_THRESHOLD,
    method: str = "thin",
    backend: str = "auto",
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """Median seconds per call of each miner (and the SHPM target skeleton) on an imperfect prediction."""
    from toposeg import mining
    from toposeg.skeleton import skeletonize

    patch = tuple(int(s) for s in (patch or DEFAULT_PATCH[spatial_dims]))
    repeats = _check_positive(repeats, "repeats")
    dev = torch.device(device)
    labels = [tubular_patch(patch, seed=seed + i)[1] for i in range(batch_size)]
    y = torch.from_numpy(np.stack(labels)[:, None]).to(dev)
    p = torch.from_numpy(np.stack([imperfect_prediction(lab, seed=seed + i) for i, lab in enumerate(labels)])[:, None]).to(dev)
    sy = skeletonize(y, method=method, backend=backend)
    calls = {
        "thpm": lambda: mining.thpm(p, y, threshold=threshold),
        "phpm": lambda: mining.phpm(p, y, threshold=threshold, dims=(0, 1) if spatial_dims == 2 else (0,)),
        "shpm (GT skeleton precomputed)": lambda: mining.shpm(p, y, threshold=threshold, method=method, backend=backend,
                                                              target_skeleton=sy),
        "shpm (both skeletons)": lambda: mining.shpm(p, y, threshold=threshold, method=method, backend=backend),
    }
    out = {}
    for name, fn in calls.items():
        fn()  # warm-up
        ts = []
        for _ in range(repeats):
            _sync(dev)
            t0 = time.perf_counter()
            pos, neg = fn()
            _sync(dev)
            ts.append(time.perf_counter() - t0)
        out[name] = {"median_s": statistics.median(ts), "hard_pixels": int((pos | neg).sum())}
    return {"spatial_dims": spatial_dims, "patch": list(patch), "batch_size": batch_size, "repeats": repeats,
            "threshold": threshold, "method": method, "backend": backend, "device": str(dev), "miners": out}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def metadata(device: str = "cpu") -> dict[str, Any]:
    """Commit (and whether the tree was dirty), versions, device, threads and load for a benchmark record.

    Same fields as ``benchmarks/_meta.py`` (kept here because ``toposeg bench`` must work from an
    installed package, without the repository's ``benchmarks/`` folder).
    """
    import scipy
    import skimage

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit, dirty = git("rev-parse", "HEAD"), bool(git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    dev = torch.device(device)
    name = f"GPU: {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else f"CPU, {os.cpu_count()} cores ({_cpu_model()})"
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    return {
        "commit": commit, "dirty_tree": dirty, "device": name, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "scipy": scipy.__version__, "skimage": skimage.__version__, "load_average_1_5_15min": load,
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def run_benchmark(
    dims: Sequence[int] = (2, 3),
    *,
    patches: Optional[dict[int, Sequence[int]]] = None,
    iters: int = 5,
    warmup: int = 2,
    batch_size: int = 1,
    device: str = "cpu",
    methods: Optional[Sequence[str]] = None,
    features: Sequence[int] = (32, 64, 128),
    threshold: float = DEFAULT_MINING_THRESHOLD,
    method: str = "thin",
    backend: str = "auto",
    mining_repeats: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Table 2 for each spatial dimensionality in ``dims`` plus mining-only timings."""
    patches = patches or {}
    result: dict[str, Any] = {"metadata": metadata(device), "training": [], "mining": []}
    for d in dims:
        result["training"].append(time_training(
            d, patch=patches.get(d), methods=methods, iters=iters, warmup=warmup, batch_size=batch_size,
            device=device, features=features, threshold=threshold, method=method, backend=backend, seed=seed))
        result["mining"].append(time_mining(d, patch=patches.get(d), repeats=mining_repeats, batch_size=batch_size,
                                            threshold=threshold, method=method, backend=backend, device=device,
                                            seed=seed))
    return result


def to_markdown(result: dict[str, Any]) -> str:
    """Markdown tables (Table 2 shape + mining-only) of a :func:`run_benchmark` result."""
    meta = result["metadata"]
    lines = [f"Device: {meta['device']}, torch {meta['torch']} ({meta['torch_threads']} threads), "
             f"commit {str(meta['commit'])[:10]}, {meta['time_utc']}", ""]
    for t in result["training"]:
        size = "x".join(str(s) for s in t["patch"])
        lines += [f"**{t['spatial_dims']}D, patch {size}, batch {t['batch_size']}** — {t['note']}", "",
                  "| method | s / 100 iters | ratio to U-Net (paired) | ratio of medians |", "|---|---:|---:|---:|"]
        lines += [f"| {r['method']} | {r['s_per_100_iters']:.1f} | {r['ratio_to_unet']:.2f}x | "
                  f"{r['ratio_of_medians']:.2f}x |" for r in t["rows"]]
        lines.append("")
    steps = {(t["spatial_dims"], tuple(t["patch"]), t["batch_size"]): t["rows"][0]["median_s_per_iter"]
             for t in result["training"]}
    for m in result["mining"]:
        size = "x".join(str(s) for s in m["patch"])
        step = steps.get((m["spatial_dims"], tuple(m["patch"]), m["batch_size"]))
        lines += [f"**Mining only, {m['spatial_dims']}D {size}, batch {m['batch_size']}** (median of {m['repeats']}, "
                  "on a fine-tuning-like prediction)", "",
                  "| miner | ms / call | hard pixels | % of a U-Net step |", "|---|---:|---:|---:|"]
        for k, v in m["miners"].items():
            share = "" if step is None else f"{100 * v['median_s'] / step:.2f}%"
            lines.append(f"| {k} | {v['median_s'] * 1e3:.1f} | {v['hard_pixels']} | {share} |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["DEFAULT_PATCH", "METHODS", "imperfect_prediction", "metadata", "run_benchmark", "time_mining",
           "time_training", "to_markdown", "tubular_patch"]

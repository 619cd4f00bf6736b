"""Contrast-to-noise ratio (CNR) of every labelled branch of the synthetic vessels
-> benchmarks/results/synthetic_cnr.json.

A label with no image evidence teaches nothing, so every labelled branch must be visible at its
own scale. Measured from the image and the label only (scipy + scikit-image, no generator
internals):

1. skeleton of the label (``skimage.morphology.skeletonize``); skeleton pixels with >= 3 skeleton
   neighbours are junctions; the remaining skeleton pixels, in connected pieces (8/26-connected),
   are the *branches*;
2. width of a branch = ``2 * median(EDT(label) on its skeleton pixels) - 1`` pixels (a 1-px line has
   width 1, and so has a 2-px one; diagonal lines give in-between values, binned to the nearest
   integer); the branch is looked at on the image smoothed by a Gaussian of ``sigma = max(1, width/2)``
   (a matched filter of the branch's scale);
3. branch pixels = label pixels whose nearest skeleton-branch pixel is on the branch; background
   ring = non-label pixels whose nearest label pixel belongs to the branch and whose distance to the
   label is in ``[2 sigma + 1, 2 sigma + 1 + max(3, 2 sigma)]`` (outside the blurred branch);
4. ``CNR = polarity * (mean(branch) - mean(ring)) / std(ring)`` on the smoothed image; polarity -1
   for the dark 2D vessels, +1 for the bright 3D ones. The ring std holds noise and background
   clutter alike: what a reader of the image must see the branch against.

Rule (the threshold fixed before changing the generator): every branch of skeleton length
>= ``MIN_LENGTH`` = 12 px has CNR >= ``THRESHOLD`` = 1, i.e. it is visible at its own scale. Shorter
skeleton pieces (spurs of thick vessels, pieces between two close junctions) are too short for a
ring estimate; they are counted and summarised separately (``short_branches``). An occlusion of
generator version 2 lies only on vessels >= 3 px wide, whose contrast keeps the branch above the
threshold around the gap.

Usage: python benchmarks/synthetic_cnr.py [--n 20] [--size 128] [--versions 1,2]
(vessels2d: n images of size x size; vessels3d: n // 4 volumes of the default 72 x 128 x 128 shape
for size 128; about 2 minutes on one CPU core)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from _meta import metadata, write_json  # noqa: E402

THRESHOLD = 1.0
MIN_LENGTH = 12


def branch_cnr(image: np.ndarray, label: np.ndarray, polarity: float) -> list[dict]:
    """Per branch: width (px), skeleton length (px), sigma, CNR; see the module docstring."""
    from skimage.morphology import skeletonize

    x = np.asarray(image, float)
    x = x[0] if x.ndim == label.ndim + 1 else x
    label = np.asarray(label, bool)
    skel = skeletonize(label)
    full = np.ones((3,) * label.ndim)
    neighbours = ndimage.convolve(skel.astype(int), full, mode="constant") - skel
    branches, n = ndimage.label(skel & (neighbours < 3), structure=full)
    if n == 0:
        return []
    dt = ndimage.distance_transform_edt(label)
    # every label pixel -> the branch of its nearest branch-skeleton pixel
    _, idx = ndimage.distance_transform_edt(branches == 0, return_indices=True)
    owner = branches[tuple(idx)] * label
    # every background pixel -> the owner of its nearest label pixel, and its distance to the label
    d_out, idx = ndimage.distance_transform_edt(~label, return_indices=True)
    ring_owner = owner[tuple(idx)] * ~label
    ids = np.arange(1, n + 1)
    length = ndimage.sum_labels(np.ones_like(dt), branches, ids)
    width = 2 * ndimage.median(dt, branches, ids) - 1
    sigmas = np.maximum(1.0, np.round(width) / 2)
    out = []
    cache: dict[float, np.ndarray] = {}
    for i, w, L, s in zip(ids, width, length, sigmas):
        inner = 2 * s + 1
        if s not in cache:
            # smoothed image minus its local background: the normalised-convolution mean (Gaussian,
            # sigma max(8, 4 s)) of the pixels outside the blurred label, so that slow illumination
            # is not counted as noise
            g = ndimage.gaussian_filter(x, s)
            m = (d_out >= inner).astype(float)
            big = max(8.0, 4 * s)
            cache[s] = g - ndimage.gaussian_filter(g * m, big) / np.maximum(ndimage.gaussian_filter(m, big), 1e-6)
        r = cache[s]
        ring = (ring_owner == i) & (d_out >= inner) & (d_out <= inner + max(3.0, 2 * s))
        mine = owner == i
        if ring.sum() < 5 or mine.sum() == 0:
            continue
        bg = r[ring]
        cnr = polarity * (r[mine].mean() - bg.mean()) / (bg.std() + 1e-12)
        out.append({"width": float(w), "length": int(L), "sigma": float(s), "cnr": float(cnr)})
    return out


def _by_width(measured: list[dict]) -> dict:
    by_width: dict[str, dict] = {}
    for lo, hi, name in [(0, 1.5, "1"), (1.5, 2.5, "2"), (2.5, 3.5, "3"), (3.5, 4.5, "4"), (4.5, 99, ">=5")]:
        c = np.array([r["cnr"] for r in measured if lo <= r["width"] < hi])
        if c.size:
            by_width[name] = {
                "branches": int(c.size), "min": round(float(c.min()), 2),
                "p10": round(float(np.percentile(c, 10)), 2), "median": round(float(np.median(c)), 2),
                "fraction_below_threshold": round(float((c < THRESHOLD).mean()), 3),
            }
    return by_width


def _summary(rows: list[dict]) -> dict:
    measured = [r for r in rows if r["length"] >= MIN_LENGTH]
    short = np.array([r["cnr"] for r in rows if r["length"] < MIN_LENGTH])
    c = np.array([r["cnr"] for r in measured])
    return {
        "branches_measured": int(c.size), "branches_shorter_than_min_length": len(rows) - len(measured),
        "fraction_below_threshold": round(float((c < THRESHOLD).mean()), 4) if c.size else None,
        "min": round(float(c.min()), 2) if c.size else None, "by_width": _by_width(measured),
        "short_branches": {
            "branches": int(short.size),
            "fraction_below_threshold": round(float((short < THRESHOLD).mean()), 4) if short.size else None,
            "by_width": _by_width([r for r in rows if r["length"] < MIN_LENGTH]),
        },
    }


def measure(kind: str, version: str, n: int, size, seed: int = 0) -> dict:
    from toposeg.data.synthetic import SYNTHETIC, case_seed

    gen = SYNTHETIC[kind]
    polarity = -1.0 if kind == "vessels2d" else 1.0
    rows = []
    for i in range(n):
        kwargs = {"version": version}
        image, label = gen(size=size, seed=case_seed(seed, i), **kwargs)
        rows += [dict(r, case=i) for r in branch_cnr(image, label, polarity)]
    return {"kind": kind, "generator_version": version, "n_images": n, "size": size, **_summary(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="images per kind and version (vessels3d: n // 4)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--versions", default="1,2", help="comma-separated generator versions to measure")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    results = []
    for version in args.versions.split(","):
        for kind, n, size in [("vessels2d", args.n, args.size), ("vessels3d", max(args.n // 4, 1), args.size)]:
            r = measure(kind, version, n, size)
            results.append(r)
            print(f"{kind} v{version}: {r['branches_measured']} branches, below {THRESHOLD}: "
                  f"{r['fraction_below_threshold']}, min {r['min']}")
            for w, s in r["by_width"].items():
                print(f"   width {w:>3}: n={s['branches']:4d} min={s['min']:6.2f} p10={s['p10']:6.2f} "
                      f"median={s['median']:6.2f} below={s['fraction_below_threshold']}")
    payload = {"meta": metadata(), "threshold": THRESHOLD, "min_length_px": MIN_LENGTH,
               "rule": "every skeleton branch (split at junctions) of length >= min_length_px has CNR >= threshold "
                       "on the image smoothed with sigma = max(1, width/2)", "results": results}
    write_json("synthetic_cnr", payload, args.out)


if __name__ == "__main__":
    main()

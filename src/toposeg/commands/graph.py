"""`toposeg graph`: skeleton graphs of prediction(s) and ground truth, route planning, APLS.

The ground truth is read by ``--label-foreground`` (default: ``label_foreground`` of the
``predict.json`` next to ``--pred`` when it is ``toposeg predict`` output, else nonzero). Every
input (including ``--image``) is read and checked before any work, and the outputs appear all at
once or not at all; an output that would replace an input file is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

import numpy as np

from toposeg.commands._common import add_label_foreground, add_out, add_overwrite, add_seed

#: the files written into ``--out``
_OUTPUTS = ("routes.json", "routes.csv", "routes.png")

HELP = "Extract road/vessel graphs and plan routes on prediction vs ground truth (APLS, broken roads)."


def load_mask(path: str, *, threshold: float = 0.5, name: str = "mask") -> np.ndarray:
    """Read a predicted mask file (PNG/TIFF/NIfTI/NPY) as bool.

    bool, {0, 1} or {0, 255} -> as is; probabilities (floats in [0, 1], or 8/16-bit images
    scaled by their maximum, e.g. ``toposeg predict``'s ``*_prob.png``) -> ``> threshold``;
    grey RGB(A) PNGs -> first channel. Anything else is an error quoting the values found
    (:func:`toposeg.io.read_prediction_mask`).
    """
    from toposeg.commands._common import flagged
    from toposeg.io import read_prediction_mask

    try:
        mask = read_prediction_mask(path, threshold)
    except (ValueError, OSError) as exc:
        raise flagged(exc, name) from None
    return np.squeeze(mask) if mask.ndim > 3 else mask


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, help="ground-truth mask (png, tif, nii[.gz], npy)")
    add_label_foreground(parser, "--gt", "default: label_foreground of predict.json next to --pred (toposeg "
                                         "predict output), else nonzero")
    parser.add_argument("--pred", required=True, help="predicted mask")
    parser.add_argument("--pred2", default=None, help="a second prediction to compare (e.g. SHPM vs U-Net)")
    parser.add_argument("--name", default=None, help="label of --pred; its file name when omitted")
    parser.add_argument("--name2", default=None, help="label of --pred2; its file name when omitted")
    parser.add_argument("--image", default=None, help="image drawn in the figure (2D only)")
    parser.add_argument("--pairs", type=int, default=50, help="number of random ground-truth node pairs to route")
    parser.add_argument("--routes", type=int, default=3,
                        help="routes drawn in the figure: those the predictions get most wrong")
    parser.add_argument("--snap", type=float, default=5.0, help="snapping tolerance in pixels")
    parser.add_argument("--min-branch", type=float, default=0.0, help="prune spurs shorter than this (pixels)")
    parser.add_argument("--backend", default="skan", choices=["skan", "pixel"],
                        help="graph tracing: skan branches, or pixel (exact geodesics, no numba start-up)")
    parser.add_argument("--threshold", type=float, default=0.5, help="binarise probability maps at this value")
    parser.add_argument("--no-figure", action="store_true", help="skip the PNG figure")
    add_seed(parser)
    add_out(parser, "results/graph")
    add_overwrite(parser)


def load_gt(path: str, rule: str, name: str = "--gt") -> np.ndarray:
    """Ground-truth mask by the label rule (:func:`toposeg.data.labels.binarize`); colour images
    are refused."""
    from toposeg.commands._common import read_input
    from toposeg.data.labels import binarize
    from toposeg.io import grey_mask

    arr = read_input(path, name)
    arr = np.squeeze(arr) if arr.ndim > 3 else arr
    return binarize(grey_mask(arr, path, "ground truth"), rule, name=f"{name} {path}")


def gt_rule(flag: Optional[str], pred: str) -> tuple[str, str]:
    """``--label-foreground``, else the ``predict.json`` next to ``pred``, else ``"nonzero"``."""
    from toposeg.commands._common import resolve_label_foreground
    from toposeg.commands.evaluate import read_predict_record

    folder = Path(pred).parent
    record = read_predict_record(folder) if folder.is_dir() else {}
    return resolve_label_foreground(flag, (record.get("label_foreground"), str(folder / "predict.json")))


def check_image(image: np.ndarray, shape: tuple[int, ...], path: str) -> np.ndarray:
    """A 2D grey ``(H, W)`` or colour ``(H, W, 3|4)`` image of the mask's shape."""
    if image.shape == shape or (image.ndim == len(shape) + 1 and image.shape[:-1] == shape and image.shape[-1] in (3, 4)):
        return image
    raise ValueError(f"--image {path} has shape {image.shape}; expected {shape} or {shape + (3,)} like --gt")


def _fmt(x: float) -> str:
    return "nan" if x != x else f"{x:.4f}"


def run(args: argparse.Namespace) -> int:
    import csv

    from toposeg.commands._common import (check_apart, check_output, staged_output, thread_settings,
                                          warn_foreground_fraction, warn_same_input)
    from toposeg.graph import apls_report, mask_to_graph, plan_routes, sample_pairs
    from toposeg.commands._common import read_input
    from toposeg.io import stem
    from toposeg.reports.serialize import dumps

    import math

    from toposeg._checks import check_threshold

    if args.pairs < 1:
        raise ValueError(f"--pairs must be >= 1, got {args.pairs}")
    if args.routes < 0:
        raise ValueError(f"--routes must be >= 0 (routes drawn in the figure), got {args.routes}")
    for flag, value in (("--snap", args.snap), ("--min-branch", args.min_branch)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{flag} must be a finite number of pixels >= 0, got {value}")
    try:
        check_threshold(args.threshold)
    except ValueError as exc:
        raise ValueError(f"--{exc}") from None
    check_apart(args.out, {"--gt": args.gt, "--pred": args.pred, "--pred2": args.pred2, "--image": args.image},
                writes=_OUTPUTS, files=True)
    check_output(args.out, args.overwrite)
    rule, rule_from = gt_rule(args.label_foreground, args.pred)
    gt = load_gt(args.gt, rule)
    warn_foreground_fraction(gt, rule, f"ground truth {args.gt}")
    preds: dict[str, np.ndarray] = {}
    for flag, path, label in (("--pred", args.pred, args.name), ("--pred2", args.pred2, args.name2)):
        if path is None:
            continue
        mask = load_mask(path, threshold=args.threshold, name=flag)
        if mask.shape != gt.shape:
            raise ValueError(f"{flag} {path} has shape {mask.shape}, --gt has {gt.shape}")
        key = label or stem(path)
        if key in preds:
            key = f"{key} ({flag})"
        preds[key] = mask
    image: Optional[np.ndarray] = None
    if args.image and not args.no_figure and gt.ndim == 2:
        image = check_image(read_input(args.image, "--image"), gt.shape, args.image)
    g_gt = mask_to_graph(gt, min_branch=args.min_branch, backend=args.backend)
    for flag, path in (("--pred", args.pred), ("--pred2", args.pred2)):  # inputs read, the graph extra present
        warn_same_input((flag, path), ("--gt", args.gt))
    pairs = sample_pairs(g_gt, args.pairs, seed=args.seed) if g_gt.number_of_edges() else []
    report = {
        "gt": str(args.gt), "label_foreground": rule, "label_foreground_from": rule_from,
        "threads": thread_settings(), "snap": args.snap, "seed": args.seed, "min_branch": args.min_branch,
        "backend": args.backend,
        "gt_graph": {"nodes": g_gt.number_of_nodes(), "edges": g_gt.number_of_edges()},
        "predictions": {},
    }
    rows = []
    worst = np.ones(len(pairs))  # lowest APLS term of each pair over the predictions
    for name, mask in preds.items():
        g_pred = mask_to_graph(mask, min_branch=args.min_branch, backend=args.backend)
        plan = plan_routes(g_pred, g_gt, pairs, snap=args.snap)
        scores = apls_report(g_pred, g_gt, snap=args.snap, seed=args.seed)
        summary = plan.summary()
        report["predictions"][name] = {
            "file": str(args.pred if name == next(iter(preds)) else args.pred2),
            "graph": {"nodes": g_pred.number_of_nodes(), "edges": g_pred.number_of_edges()},
            "routes": summary, "apls": scores, "pairs": plan.rows(),
        }
        rows += [{"prediction": name, **r} for r in plan.rows()]
        sim = np.asarray([r.similarity for r in plan.routes], dtype=float)
        worst = np.fmin(worst, np.where(np.isnan(sim), 1.0, sim))
        print(f"{name}: APLS {_fmt(scores['apls'])} (gt->pred {_fmt(scores['gt_to_pred'])}, "
              f"pred->gt {_fmt(scores['pred_to_gt'])}); routes: {summary['n_valid']} valid, "
              f"unreachable {_fmt(summary['unreachable_fraction'])}, "
              f"median length ratio {_fmt(summary['median_ratio'])}")
    out = Path(args.out)
    with staged_output(out, args.overwrite) as tmp:
        (tmp / "routes.json").write_text(dumps(report, indent=2) + "\n")
        with open(tmp / "routes.csv", "w", newline="") as f:
            fields = ["prediction", "source", "target", "gt_length", "pred_length", "ratio", "similarity", "status"]
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for r in rows:
                writer.writerow({**r, "source": " ".join(f"{c:g}" for c in r["source"]),
                                 "target": " ".join(f"{c:g}" for c in r["target"])})
        figure = None
        if not args.no_figure and gt.ndim == 2:
            from toposeg.reports.graph_figure import route_figure

            # draw the routes the predictions get most wrong (broken first), as in the paper's Fig. 1
            shown = [pairs[i] for i in np.argsort(worst, kind="stable")[: args.routes]]
            route_figure(image, gt, preds, tmp / "routes.png", pairs=shown,
                         snap=args.snap, min_branch=args.min_branch, backend=args.backend)
            figure = out / "routes.png"
    print(f"wrote {out / 'routes.json'} and {out / 'routes.csv'}")
    if figure is not None:
        print(f"wrote {figure}")
    elif not args.no_figure:
        print("figure skipped: the route figure is drawn for 2D masks only")
    return 0

"""`toposeg evaluate`: score predicted masks against ground-truth masks, case by case.

Files are paired by name stem (``case01.png`` ↔ ``case01.tif``; the ``_mask`` suffix written by
``toposeg predict`` is understood). Writes ``per_case.csv``, ``summary.json`` (mean, std,
n_valid, n per metric) and ``summary.md`` (Table 1 layout), and prints the table. With
``--postprocess MIN_SIZE`` the predictions (never the ground truth) are also cleaned of small
objects and scored again; that result is written and labelled separately.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from toposeg.commands._common import add_out

HELP = ("Evaluate predicted masks against ground truth (Dice, IoU, mIoU, clDice, VOI, ARE, Betti "
        "errors) per case on whole images/volumes; writes per_case.csv, summary.json, summary.md.")

_CONNECTIVITIES = (4, 8, 6, 26)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, metavar="DIR", help="folder of predicted masks (or probability maps)")
    parser.add_argument("--gt", required=True, metavar="DIR", help="folder of ground-truth masks")
    add_out(parser, "toposeg-eval")
    parser.add_argument("--connectivity", type=int, default=None, choices=_CONNECTIVITIES,
                        help="foreground connectivity (2D: 8 or 4, 3D: 26 or 6); the background uses the "
                             "dual; default 8/4 in 2D, 26/6 in 3D")
    parser.add_argument("--threshold", type=float, default=None,
                        help="binarise non-binary predictions (probability maps: float in [0, 1], or "
                             "integer images scaled by their dtype's maximum) as value > threshold")
    parser.add_argument("--postprocess", type=int, default=None, metavar="MIN_SIZE",
                        help="also report scores after removing predicted objects smaller than MIN_SIZE "
                             "pixels/voxels (prediction only, reported separately)")
    parser.add_argument("--gt-foreground", default="bright", choices=["bright", "dark"],
                        help="which ground-truth value is the structure: bright (1/255, default) or dark "
                             "(0; e.g. ISBI 2012 membranes)")
    parser.add_argument("--pred-suffix", default="auto",
                        help="suffix stripped from prediction stems before pairing; 'auto' = use the "
                             "*_mask files of toposeg predict output (else its *_prob maps, with --threshold), "
                             "else all files as named; '' = none")
    parser.add_argument("--graph", action="store_true",
                        help="also score APLS (average path length similarity of the skeleton graphs; "
                             "needs toposeg[graph])")
    parser.add_argument("--snap", type=float, default=5.0,
                        help="with --graph: how far (pixels) a control point may snap onto the other graph")
    parser.add_argument("--name", default=None, help="row label in the table (default: the --pred folder name)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _list_files(folder: Path, what: str) -> list[Path]:
    from toposeg.io import EXTENSIONS, extension

    if not folder.is_dir():
        raise FileNotFoundError(f"--{what} {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and extension(p) in EXTENSIONS)
    if not files:
        raise ValueError(f"--{what} {folder}: no image files ({', '.join(EXTENSIONS)})")
    return files


def _by_stem(files: list[Path], what: str, suffix: str = "") -> dict[str, Path]:
    from toposeg.io import stem

    out: dict[str, Path] = {}
    for f in files:
        s = stem(f)
        if suffix and s.endswith(suffix):
            s = s[: -len(suffix)]
        if s in out:
            raise ValueError(f"--{what}: two files for case {s!r}: {out[s].name} and {f.name}")
        out[s] = f
    return out


def pair_files(pred_dir: Path, gt_dir: Path, pred_suffix: str = "auto") -> list[tuple[str, Path, Path]]:
    """``[(case_id, pred_path, gt_path)]`` sorted by case id; every file must have a partner."""
    from toposeg.io import stem

    gt = _by_stem(_list_files(gt_dir, "gt"), "gt")
    pred_files = _list_files(pred_dir, "pred")
    if pred_suffix == "auto":  # toposeg predict output: prefer *_mask, else *_prob (needs --threshold)
        pred_suffix = ""
        for suffix in ("_mask", "_prob"):
            chosen = [f for f in pred_files if stem(f).endswith(suffix)]
            if chosen:
                pred_files, pred_suffix = chosen, suffix
                break
    pred = _by_stem(pred_files, "pred", pred_suffix)
    common = sorted(set(gt) & set(pred))
    missing_pred = sorted(set(gt) - set(pred))
    missing_gt = sorted(set(pred) - set(gt))

    def names(keys: list[str], table: dict[str, Path]) -> str:
        shown = ", ".join(table[k].name for k in keys[:10])
        return shown + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")

    if not common:
        raise ValueError(
            f"no matching pairs between --pred {pred_dir} ({names(sorted(pred), pred)}) and --gt {gt_dir} "
            f"({names(sorted(gt), gt)}); files are paired by name without extension"
            + (f" and without the suffix {pred_suffix!r}" if pred_suffix else "")
        )
    problems = []
    if missing_pred:
        problems.append(f"ground truth without a prediction: {names(missing_pred, gt)}")
    if missing_gt:
        problems.append(f"predictions without ground truth: {names(missing_gt, pred)}")
    if problems:
        raise ValueError("unpaired files (paired by name without extension): " + "; ".join(problems))
    return [(k, pred[k], gt[k]) for k in common]


def _squeeze_gray(arr, path: Path):
    """PNG/JPEG masks saved as RGB(A) with equal channels -> one channel."""
    import numpy as np

    from toposeg.io import extension

    if extension(path) in (".png", ".jpg", ".jpeg") and arr.ndim == 3 and arr.shape[-1] in (2, 3, 4):
        color = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., :1]
        if not all(np.array_equal(color[..., 0], color[..., c]) for c in range(color.shape[-1])):
            raise ValueError(f"{path}: a mask must be grayscale, got a colour image of shape {arr.shape}")
        return color[..., 0]
    return arr


def _binary_values(arr) -> Optional[int]:
    """The foreground value (1 or 255) if ``arr`` is a binary mask, else None."""
    import numpy as np

    if arr.dtype == bool:
        return 1
    values = np.unique(arr)
    if values.size <= 2 and set(values.tolist()) <= {0, 1}:
        return 1
    if values.size <= 2 and set(values.tolist()) <= {0, 255}:
        return 255
    return None


def _found(arr) -> str:
    import numpy as np

    values = np.unique(arr)
    shown = ", ".join(f"{v:g}" for v in values[:8].astype(float))
    return f"[{shown}{', ...' if values.size > 8 else ''}] ({values.size} distinct)"


def read_gt(path: Path, foreground: str = "bright"):
    """Ground-truth mask from 0/1 or 0/255 files; ``foreground='dark'`` takes the 0 pixels."""
    from toposeg.io import read_array

    arr = _squeeze_gray(read_array(path), path)
    fg_value = _binary_values(arr)
    if fg_value is None:
        raise ValueError(f"{path}: ground truth must be a binary mask (values 0/1 or 0/255), "
                         f"found values {_found(arr)}")
    return (arr == 0) if foreground == "dark" else (arr != 0)


def read_pred(path: Path, threshold: Optional[float] = None):
    """Predicted mask: binary files as they are; other files need ``threshold``."""
    import numpy as np

    from toposeg.io import read_array

    arr = _squeeze_gray(read_array(path), path)
    if _binary_values(arr) is not None:
        return arr != 0
    if threshold is None:
        raise ValueError(f"{path}: prediction is not a binary mask (0/1 or 0/255), found values {_found(arr)}; "
                         "pass --threshold T to binarise probability maps")
    if arr.dtype.kind in "ui":
        prob = arr.astype(np.float64) / float(np.iinfo(arr.dtype).max)
    elif arr.dtype.kind == "f":
        prob = arr
        if not np.isfinite(prob).all() or prob.min() < 0 or prob.max() > 1:
            raise ValueError(f"{path}: probability map must hold values in [0, 1], got range "
                             f"[{np.nanmin(prob):.4g}, {np.nanmax(prob):.4g}]")
    else:
        raise ValueError(f"{path}: cannot threshold values of dtype {arr.dtype}")
    return prob > threshold


def _metrics(pred, gt, args: argparse.Namespace) -> dict:
    """evaluate_case, plus APLS with ``--graph`` (NaN when both masks are empty: undefined, not 0)."""
    from toposeg.metrics import evaluate_case

    metrics = evaluate_case(pred, gt, connectivity=args.connectivity)
    if args.graph:
        from toposeg.graph import apls

        metrics["apls"] = float(apls(pred, gt, snap=args.snap))
    return metrics


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from toposeg._checks import check_threshold
    from toposeg.metrics import MetricAccumulator, remove_small_objects
    from toposeg.reports.serialize import dumps, write_rows
    from toposeg.reports.tables import markdown_table
    from toposeg.topology import resolve_connectivity

    if args.threshold is not None:
        check_threshold(args.threshold)
    if args.postprocess is not None and args.postprocess < 1:
        raise ValueError(f"--postprocess MIN_SIZE must be a positive number of pixels, got {args.postprocess}")
    pred_dir, gt_dir, out = Path(args.pred), Path(args.gt), Path(args.out)
    pairs = pair_files(pred_dir, gt_dir, args.pred_suffix)
    name = args.name or pred_dir.resolve().name
    pp_name = f"{name} + small-object removal (< {args.postprocess} px, prediction only)"

    raw = MetricAccumulator(connectivity=args.connectivity)
    cleaned = MetricAccumulator(connectivity=args.connectivity)
    ndims = set()
    for case_id, p_path, g_path in tqdm(pairs, desc="evaluate", unit="case", disable=args.no_progress):
        gt = read_gt(g_path, args.gt_foreground)
        pred = read_pred(p_path, args.threshold)
        if pred.shape != gt.shape:
            raise ValueError(f"case {case_id!r}: prediction {p_path.name} has shape {pred.shape} but ground truth "
                             f"{g_path.name} has shape {gt.shape}")
        if gt.ndim not in (2, 3):
            raise ValueError(f"case {case_id!r}: masks must be 2D or 3D, got shape {gt.shape} ({g_path.name})")
        ndims.add(gt.ndim)
        raw.update(_metrics(pred, gt, args), case_id=case_id)
        if args.postprocess is not None:
            pp = remove_small_objects(pred, args.postprocess, connectivity=args.connectivity)
            cleaned.update(_metrics(pp, gt, args), case_id=case_id)
    if len(ndims) > 1:
        raise ValueError("--pred/--gt mix 2D images and 3D volumes; evaluate them separately")
    nd = ndims.pop()
    fg, bg = resolve_connectivity(nd, args.connectivity)

    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "per_case.csv", raw.per_case(), float_format=".10g")
    results = {name: raw.compute()}
    if args.postprocess is not None:
        write_rows(out / "per_case_postprocessed.csv", cleaned.per_case(), float_format=".10g")
        results[pp_name] = cleaned.compute()

    summary = {
        "pred": str(pred_dir), "gt": str(gt_dir), "n_cases": len(pairs), "spatial_dims": nd,
        "connectivity": {"foreground": fg, "background": bg}, "gt_foreground": args.gt_foreground,
        "threshold": args.threshold, "postprocess_min_size": args.postprocess,
        "results": {"raw": {"label": name, "metrics": results[name]}},
    }
    if args.postprocess is not None:
        summary["results"]["postprocessed"] = {"label": pp_name, "metrics": results[pp_name]}
    (out / "summary.json").write_text(dumps(summary, indent=2) + "\n")

    columns = ["dice", "miou", "voi", "are", "betti0_error", "betti1_error"]
    columns += ["betti2_error"] if nd == 3 else []
    columns += ["cldice"] + (["apls"] if args.graph else [])
    table = markdown_table(results, columns)
    n_valid = {m: results[name][m]["n_valid"] for m in columns}
    undefined = {m: len(pairs) - v for m, v in n_valid.items() if v < len(pairs)}
    lines = [
        f"# Evaluation: {name}",
        "",
        f"{len(pairs)} cases ({nd}D), whole images, mean ± std over cases (population std). "
        f"Connectivity: foreground {fg} / background {bg}. Ground truth foreground: {args.gt_foreground}; "
        "the ground truth is never modified.",
        "",
        table.rstrip("\n"),
        "",
    ]
    if undefined:
        lines.append("Undefined (NaN) cases excluded from the mean: "
                     + ", ".join(f"{m}: {k}" for m, k in undefined.items()) + ".")
        lines.append("")
    if args.postprocess is not None:
        lines.append(f"The second row is a separate result: predicted objects smaller than {args.postprocess} "
                     f"pixels/voxels ({fg}-connected) removed from the prediction only. The first row is the "
                     "raw prediction.")
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines))
    print(table, end="")
    print(f"wrote {out / 'per_case.csv'}, {out / 'summary.json'}, {out / 'summary.md'}")
    return 0

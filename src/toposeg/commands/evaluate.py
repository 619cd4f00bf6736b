"""`toposeg evaluate`: score predicted masks against ground-truth masks, case by case.

Files are paired by name stem (``case01.png`` ↔ ``case01.tif``; the ``_mask`` suffix written by
``toposeg predict`` is understood). Writes ``per_case.csv``, ``summary.json`` (mean, std,
n_valid, n per metric) and ``summary.md`` (Table 1 layout), and prints the table. With
``--postprocess MIN_SIZE`` the predictions (never the ground truth) are also cleaned of small
objects and scored again; that result is written and labelled separately.

When ``--pred`` holds the ``predict.json`` written by ``toposeg predict``, its threshold (for
probability maps) and label polarity (``label_foreground`` of the training data) are used unless
``--threshold`` / ``--label-foreground`` say otherwise, so ``predict`` + ``evaluate`` score the
test cases as training did. Every pair is read and checked before the outputs appear (all at once).
An ``--out`` that is, or lies inside, the ``--pred`` or ``--gt`` folder is refused before any work.

With ``--nnunet``, ``--pred``/``--gt`` are nnU-Net label-map folders (values ``0..K``, e.g. the
output of ``nnUNetv2_predict`` and ``nnUNet_raw/DatasetXXX/labelsTs``): every foreground class of
``dataset.json`` is scored one-vs-rest by :func:`toposeg.nnunet.evaluate_folder` (the ignore label
takes the prediction as ground truth), and the tables get one row per class (:func:`run_nnunet`,
also behind ``toposeg nnunet evaluate``). Flags that only make sense for binary masks
(``--threshold``, ``--label-foreground``, ``--pred-suffix``, ``--postprocess``, ``--subset``,
``--graph``, ``--snap``) are refused with ``--nnunet``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from toposeg.commands._common import add_label_foreground, add_out, add_overwrite

HELP = ("Evaluate predicted masks against ground truth (Dice, IoU, mIoU, clDice, VOI, ARE, Betti "
        "errors) per case on whole images/volumes; writes per_case.csv, summary.json, summary.md.")

_CONNECTIVITIES = (4, 8, 6, 26)
_DEFAULT_SNAP = 5.0
#: columns of ``per_case.csv`` rows of :func:`toposeg.nnunet.evaluate_folder` that are not metrics
_NNUNET_KEYS = ("case", "class", "label", "ignored_voxels")
#: the files written into ``--out``
_OUTPUTS = ("per_case.csv", "per_case_postprocessed.csv", "summary.json", "summary.md")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pred", required=True, metavar="DIR", help="folder of predicted masks (or probability maps)")
    parser.add_argument("--gt", required=True, metavar="DIR", help="folder of ground-truth masks")
    add_out(parser, "toposeg-eval")
    add_overwrite(parser)
    parser.add_argument("--connectivity", type=int, default=None, choices=_CONNECTIVITIES,
                        help="foreground connectivity (2D: 8 or 4, 3D: 26 or 6); the background uses the "
                             "dual; default 8/4 in 2D, 26/6 in 3D")
    parser.add_argument("--threshold", type=float, default=None,
                        help="binarise non-binary predictions (probability maps: float in [0, 1], or "
                             "8/16-bit images scaled by 255/65535) as value > threshold; default: "
                             "the threshold in --pred/predict.json (toposeg predict output), else none (binary "
                             "predictions only)")
    parser.add_argument("--postprocess", type=int, default=None, metavar="MIN_SIZE",
                        help="also report scores after removing predicted objects smaller than MIN_SIZE "
                             "pixels/voxels (prediction only, reported separately)")
    add_label_foreground(parser, "the ground truth",
                         "default: label_foreground in --pred/predict.json (the training data's), else nonzero")
    parser.add_argument("--subset", action="store_true",
                        help="score only the cases present in both folders (unpaired files are listed and "
                             "skipped) instead of refusing them")
    parser.add_argument("--pred-suffix", default=None,
                        help="suffix stripped from prediction stems before pairing; 'auto' (default) = use the "
                             "*_mask files of toposeg predict output (else its *_prob maps, with --threshold), "
                             "else all files as named; '' = none")
    parser.add_argument("--graph", action="store_true",
                        help="also score APLS (average path length similarity of the skeleton graphs; "
                             "needs toposeg[graph])")
    parser.add_argument("--snap", type=float, default=None,
                        help=f"with --graph: how far (pixels) a control point may snap onto the other graph "
                             f"(default {_DEFAULT_SNAP:g})")
    parser.add_argument("--nnunet", action="store_true",
                        help="--pred/--gt are nnU-Net label-map folders (values 0..K, any file type toposeg "
                             "reads): score every foreground class of dataset.json one-vs-rest, ignore label "
                             "excluded; one table row per class (see docs/nnunet.md)")
    parser.add_argument("--dataset-json", default=None, metavar="FILE",
                        help="with --nnunet: the dataset.json giving classes, ignore label and file ending "
                             "(default: the one in --pred, else the one above --gt, else every non-zero "
                             "value is a class)")
    parser.add_argument("--name", default=None, help="row label in the table (default: the --pred folder name)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _indexed(pred_dir: Path, gt_dir: Path, pred_suffix: str = "auto") -> tuple[dict, dict, str]:
    """``({case: prediction file}, {case: ground-truth file}, suffix stripped from predictions)``."""
    from toposeg.io import image_files, index_by_stem, list_images, stem

    gt = list_images(gt_dir, "--gt")
    pred_files = image_files(pred_dir, "--pred")
    if pred_suffix == "auto":  # toposeg predict output: prefer *_mask, else *_prob (needs --threshold)
        pred_suffix = ""
        for suffix in ("_mask", "_prob"):
            chosen = [f for f in pred_files if stem(f).endswith(suffix)]
            if chosen:
                pred_files, pred_suffix = chosen, suffix
                break
    return index_by_stem(pred_files, f"--pred {pred_dir}", pred_suffix), gt, pred_suffix


def pair_files(pred_dir: Path, gt_dir: Path, pred_suffix: str = "auto", *,
               subset: bool = False) -> list[tuple[str, Path, Path]]:
    """``[(case_id, pred_path, gt_path)]`` sorted by case id (:func:`toposeg.io.pair_by_stem`);
    every file must have a partner unless ``subset``."""
    from toposeg.io import pair_by_stem

    pred, gt, suffix = _indexed(pred_dir, gt_dir, pred_suffix)
    return pair_by_stem(pred, gt, f"--pred {pred_dir} / --gt {gt_dir}", subset=subset,
                        missing=("predictions without ground truth", "ground truth without a prediction"),
                        suffix_note=suffix or None)


def read_json_object(path: Path, what: str = "") -> dict:
    """The JSON object (a dict) in the file ``path``; ``what`` (e.g. ``"--dataset-json"``) starts
    the messages.

    Raises:
        IsADirectoryError: ``path`` is a folder. FileNotFoundError: nothing there.
        ValueError: an empty file, a binary file ("not a JSON text file"), invalid JSON (the
            parser's reason), or JSON that is not an object.
    """
    import json

    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    if path.is_dir():
        raise IsADirectoryError(f"{name}: is a folder, expected a JSON file")
    if not path.is_file():
        raise FileNotFoundError(f"{name}: no such file")
    raw = path.read_bytes()
    if not raw.strip():
        raise ValueError(f"{name}: file is empty, expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a JSON text file (binary content, e.g. an image)") from None
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{name}: expected a JSON object, got {type(record).__name__}")
    return record


def read_predict_record(pred_dir: Path) -> dict:
    """``predict.json`` of a ``toposeg predict`` output folder, or ``{}``."""
    path = pred_dir / "predict.json"
    return read_json_object(path) if path.is_file() else {}


def _squeeze_gray(arr, path: Path):
    """PNG/JPEG masks saved as RGB(A) with equal channels -> one channel (:func:`toposeg.io.grey_mask`)."""
    from toposeg.io import grey_mask

    return grey_mask(arr, path)


def read_gt(path: Path, foreground: str = "nonzero"):
    """Ground-truth mask by the label rule (:func:`toposeg.data.labels.binarize`): ``nonzero``,
    or the ``bright`` / ``dark`` level of a two-level mask (0/1, 0/255, ...). Colour images are
    refused."""
    from toposeg.data.labels import binarize
    from toposeg.io import read_array

    return binarize(_squeeze_gray(read_array(path), path), foreground, name=str(path))


def read_pred(path: Path, threshold: Optional[float] = None):
    """Predicted mask: binary files as they are; other files need ``threshold``
    (:func:`toposeg.io.read_prediction_mask`)."""
    from toposeg.io import read_prediction_mask

    return read_prediction_mask(path, threshold)


def _metrics(pred, gt, args: argparse.Namespace) -> dict:
    """evaluate_case, plus APLS with ``--graph`` (NaN when both masks are empty: undefined, not 0)."""
    from toposeg.metrics import evaluate_case

    metrics = evaluate_case(pred, gt, connectivity=args.connectivity)
    if args.graph:
        from toposeg.graph import apls

        metrics["apls"] = float(apls(pred, gt, snap=_DEFAULT_SNAP if args.snap is None else args.snap))
    return metrics


def _binary_only_flags(args: argparse.Namespace) -> list[str]:
    """The binary-mask flags given on the command line (all default to None/False)."""
    valued = [("--threshold", args.threshold), ("--label-foreground", args.label_foreground),
              ("--pred-suffix", args.pred_suffix), ("--postprocess", args.postprocess), ("--snap", args.snap)]
    return [flag for flag, value in valued if value is not None] + \
        [flag for flag, value in (("--subset", args.subset), ("--graph", args.graph)) if value]


def run(args: argparse.Namespace) -> int:
    if args.nnunet:
        given = _binary_only_flags(args)
        if given:
            raise ValueError(f"{', '.join(given)} cannot be combined with --nnunet: nnU-Net label maps (0..K) are "
                             "scored per class as they are (no threshold, polarity, suffix, post-processing, "
                             "subset or graph scoring); drop " + ("it" if len(given) == 1 else "them"))
        return run_nnunet(args.pred, args.gt, args.out, overwrite=args.overwrite, dataset_json=args.dataset_json,
                          connectivity=args.connectivity, name=args.name)
    if args.dataset_json is not None:
        raise ValueError(f"--dataset-json {args.dataset_json} only applies with --nnunet (nnU-Net label-map folders)")
    return _run_binary(args)


def _run_binary(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from toposeg._checks import check_threshold
    from toposeg.commands._common import (check_apart, check_output, resolve_label_foreground, staged_output,
                                          thread_settings, warn_foreground_fraction, warn_same_input)
    from toposeg.metrics import MetricAccumulator, remove_small_objects
    from toposeg.reports.serialize import dumps, write_rows
    from toposeg.reports.tables import markdown_table
    from toposeg.topology import resolve_connectivity

    if args.threshold is not None:
        try:
            check_threshold(args.threshold)
        except ValueError as exc:
            raise ValueError(f"--{exc}") from None
    if args.postprocess is not None and args.postprocess < 1:
        raise ValueError(f"--postprocess MIN_SIZE must be a positive number of pixels, got {args.postprocess}")
    pred_dir, gt_dir, out = Path(args.pred), Path(args.gt), Path(args.out)
    record = read_predict_record(pred_dir) if pred_dir.is_dir() else {}
    record_name = str(pred_dir / "predict.json")
    rule, rule_from = resolve_label_foreground(args.label_foreground, (record.get("label_foreground"), record_name))
    threshold, threshold_from = args.threshold, "--threshold" if args.threshold is not None else None
    if threshold is None and record.get("threshold") is not None:
        try:
            threshold, threshold_from = check_threshold(record["threshold"]), record_name
        except ValueError as exc:
            raise ValueError(f"{record_name}: {exc}") from None
    pred_suffix = "auto" if args.pred_suffix is None else args.pred_suffix
    pairs = pair_files(pred_dir, gt_dir, pred_suffix, subset=args.subset)  # the inputs are folders of images
    check_apart(args.out, {"--pred": pred_dir, "--gt": gt_dir}, writes=_OUTPUTS)  # before any work
    check_output(out, args.overwrite)
    warn_same_input(("--pred", args.pred), ("--gt", args.gt))
    skipped = []
    if args.subset:
        pred_files, gt_files, _ = _indexed(pred_dir, gt_dir, pred_suffix)
        paired = {case for case, _, _ in pairs}
        skipped = sorted(f.name for table in (pred_files, gt_files) for k, f in table.items() if k not in paired)
        if skipped:
            shown = ", ".join(skipped[:10]) + (f", ... ({len(skipped)} in all)" if len(skipped) > 10 else "")
            print(f"--subset: scoring {len(pairs)} paired cases; skipped unpaired files: {shown}", file=sys.stderr)
    name = args.name or pred_dir.resolve().name
    pp_name = f"{name} + small-object removal (< {args.postprocess} px, prediction only)"

    raw = MetricAccumulator(connectivity=args.connectivity)
    cleaned = MetricAccumulator(connectivity=args.connectivity)
    ndims = set()
    fg_pixels = total_pixels = 0
    for case_id, p_path, g_path in tqdm(pairs, desc="evaluate", unit="case", disable=args.no_progress):
        gt = read_gt(g_path, rule)
        pred = read_pred(p_path, threshold)
        fg_pixels, total_pixels = fg_pixels + int(gt.sum()), total_pixels + gt.size
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
    warn_foreground_fraction(fg_pixels / max(total_pixels, 1), rule, f"ground truth ({gt_dir})")
    results = {name: raw.compute()}
    if args.postprocess is not None:
        results[pp_name] = cleaned.compute()

    summary = {
        "pred": str(pred_dir), "gt": str(gt_dir), "n_cases": len(pairs), "spatial_dims": nd,
        "connectivity": {"foreground": fg, "background": bg},
        "label_foreground": rule, "label_foreground_from": rule_from,
        "threshold": threshold, "threshold_from": threshold_from, "postprocess_min_size": args.postprocess,
        "skipped_unpaired": skipped, "threads": thread_settings(),
        "results": {"raw": {"label": name, "metrics": results[name]}},
    }
    if args.postprocess is not None:
        summary["results"]["postprocessed"] = {"label": pp_name, "metrics": results[pp_name]}

    columns = _table_columns(nd, results[name], graph=args.graph)
    table = markdown_table(results, columns)
    n_valid = {m: results[name][m]["n_valid"] for m in columns}
    undefined = {m: len(pairs) - v for m, v in n_valid.items() if v < len(pairs)}
    lines = [
        f"# Evaluation: {name}",
        "",
        f"{len(pairs)} cases ({nd}D), whole images, mean ± std over cases (population std). "
        f"Connectivity: foreground {fg} / background {bg}. Ground truth foreground: {rule} (from {rule_from}); "
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
    with staged_output(out, args.overwrite) as tmp:
        write_rows(tmp / "per_case.csv", raw.per_case(), float_format=".10g")
        if args.postprocess is not None:
            write_rows(tmp / "per_case_postprocessed.csv", cleaned.per_case(), float_format=".10g")
        (tmp / "summary.json").write_text(dumps(summary, indent=2) + "\n")
        (tmp / "summary.md").write_text("\n".join(lines))
    print(table, end="")
    print(f"wrote {out / 'per_case.csv'}, {out / 'summary.json'}, {out / 'summary.md'}")
    return 0


def _table_columns(nd: int, metrics: dict, *, graph: bool = False) -> list[str]:
    """The summary.md columns: overlap, VOI, ARE, Betti errors (β2 in 3D), clDice (+ APLS with
    --graph), then Betti matching (off by default for 3D with 6-connectivity) and the local Betti
    error when they were computed."""
    columns = ["dice", "miou", "voi", "are", "betti0_error", "betti1_error"]
    columns += ["betti2_error"] if nd == 3 else []
    columns += ["cldice"] + (["apls"] if graph else [])
    columns += [m for m in ("betti_matching_error", "local_betti_error") if m in metrics]
    return columns


def run_nnunet(pred, gt, out=None, *, overwrite: bool = False, dataset_json=None,
               connectivity: Optional[int] = None, name: Optional[str] = None) -> int:
    """``toposeg evaluate --nnunet`` (and ``toposeg nnunet evaluate``): per-case, per-class scores
    of nnU-Net label maps by :func:`toposeg.nnunet.evaluate_folder`, printed as one table row per
    foreground class (mean ± std over the cases, population std, NaN cases excluded and counted).

    With ``out`` (a folder; refused when it holds files unless ``overwrite``) it writes, staged
    (all or nothing): ``per_case.csv`` (``case, class, label, ignored_voxels`` and every metric of
    :func:`toposeg.metrics.evaluate_case`, one row per case and class), ``summary.json``
    (``per_class``: :func:`toposeg.nnunet.evaluate.summarize` means; ``results``: per class
    ``{metric: {mean, std, n_valid, n}}``) and ``summary.md``.

    Raises:
        ValueError: ``out`` is, or lies inside, the ``pred`` or ``gt`` folder (checked before any
        work), no foreground class was scored, 2D and 3D label maps mixed, or any error of
        :func:`toposeg.nnunet.evaluate_folder` (missing ground truth, shapes, unknown labels).
        FileNotFoundError: a missing folder or ``dataset_json``.
    """
    from toposeg.commands._common import check_apart, check_output, staged_output, thread_settings, warn_same_input
    from toposeg.metrics import MetricAccumulator
    from toposeg.nnunet.evaluate import evaluate_folder, summarize
    from toposeg.reports.serialize import dumps, write_rows
    from toposeg.reports.tables import markdown_table
    from toposeg.topology import resolve_connectivity

    pred_dir, gt_dir = Path(pred), Path(gt)
    if out is not None:
        json_file = dataset_json if isinstance(dataset_json, (str, Path)) else None
        check_apart(out, {"--pred": pred_dir, "--gt": gt_dir, "--dataset-json": json_file}, writes=_OUTPUTS)
        out = check_output(out, overwrite)
    warn_same_input(("--pred", pred), ("--gt", gt))
    meta = dataset_json
    if isinstance(dataset_json, (str, Path)):
        meta = read_json_object(Path(dataset_json), "--dataset-json")
    elif dataset_json is None:  # as nnunet.read_dataset_json finds it, read with the messages above
        found = [p for p in (pred_dir / "dataset.json", gt_dir.parent / "dataset.json") if p.is_file()]
        meta = read_json_object(found[0]) if found else None
    rows = evaluate_folder(pred_dir, gt_dir, dataset_json=meta, connectivity=connectivity)
    if not rows:
        raise ValueError(f"--pred {pred_dir} / --gt {gt_dir}: no foreground class to score (dataset.json lists "
                         "only the background, or every label map is all 0)")
    ndims = {3 if "betti2_error" in r else 2 for r in rows}
    if len(ndims) > 1:
        raise ValueError("--pred/--gt mix 2D and 3D label maps; evaluate them separately")
    nd = ndims.pop()
    fg, bg = resolve_connectivity(nd, connectivity)

    classes: dict[str, tuple] = {}  # class name -> (label, accumulator, ignored voxels)
    for r in rows:
        label, acc, ignored = classes.setdefault(r["class"], (r["label"], MetricAccumulator(), [0]))
        acc.update({k: v for k, v in r.items() if k not in _NNUNET_KEYS}, case_id=r["case"])
        ignored[0] += int(r["ignored_voxels"])
    results = {cls: acc.compute() for cls, (_, acc, _) in classes.items()}
    cases = sorted({r["case"] for r in rows})
    name = name or pred_dir.resolve().name
    first = next(iter(results.values()))
    columns = _table_columns(nd, first)
    # one single-row table per class, stacked: no "best" marking across classes (not competitors)
    tables = [markdown_table({f"{cls} (label {classes[cls][0]})": s}, columns).splitlines() for cls, s in results.items()]
    table = "\n".join([tables[0][0].replace("| Method |", "| Class |", 1), tables[0][1]]
                      + [t[2] for t in tables]) + "\n"
    if out is None:
        print(table, end="")
        return 0

    summary = {
        "pred": str(pred_dir), "gt": str(gt_dir), "format": "nnunet",
        "dataset_json": None if dataset_json is None or isinstance(dataset_json, dict) else str(dataset_json),
        "n_cases": len(cases), "spatial_dims": nd, "connectivity": {"foreground": fg, "background": bg},
        "threads": thread_settings(),
        "per_class": summarize(rows),
        "results": {cls: {"label": classes[cls][0], "n_cases": len(classes[cls][1]),
                          "ignored_voxels": classes[cls][2][0], "metrics": s} for cls, s in results.items()},
    }
    lines = [
        f"# Evaluation: {name} (nnU-Net label maps, per class)",
        "",
        f"{len(cases)} cases ({nd}D), whole images, one row per foreground class (one-vs-rest), mean ± std over "
        f"cases (population std). Connectivity: foreground {fg} / background {bg}. Voxels under the ignore label "
        "take the prediction as ground truth (never errors); the prediction is never modified.",
        "",
        table.rstrip("\n"),
        "",
    ]
    undefined = [f"{cls}: " + ", ".join(f"{m}: {s[m]['n'] - s[m]['n_valid']}" for m in columns
                                         if s[m]["n_valid"] < s[m]["n"])
                 for cls, s in results.items() if any(s[m]["n_valid"] < s[m]["n"] for m in columns)]
    if undefined:
        lines += ["Undefined (NaN) cases excluded from the mean: " + "; ".join(undefined) + ".", ""]
    with staged_output(out, overwrite) as tmp:
        write_rows(tmp / "per_case.csv", rows, float_format=".10g")
        (tmp / "summary.json").write_text(dumps(summary, indent=2) + "\n")
        (tmp / "summary.md").write_text("\n".join(lines))
    print(table, end="")
    print(f"wrote {out / 'per_case.csv'}, {out / 'summary.json'}, {out / 'summary.md'}")
    return 0

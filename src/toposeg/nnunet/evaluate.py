"""Topology metrics of an nnU-Net prediction folder, per case and per foreground class.

nnU-Net writes label maps (values ``0..K``; background 0) in the dataset's file ending
(``.png``/``.tif``/``.nii.gz``...). :func:`evaluate_folder` pairs every prediction with the
ground-truth file of the same case name, and for every foreground label of ``dataset.json``
compares the binary masks ``pred in values(c)`` and ``gt in values(c)`` (one-vs-rest; a
region-based label ``[1, 2, 3]`` is the union of those values) with
:func:`toposeg.metrics.evaluate_case` (Dice, clDice, Betti errors, VOI, ARE, ...).

Ignore label (``"ignore"`` in ``dataset.json`` labels): a voxel under it is unlabelled, so the
ground truth of each class is *completed with the prediction* there (``gt_c := pred_c``).
Ignored voxels are then never errors, and -- unlike setting them to background -- they do not
cut a structure of the ground truth in two or remove its loops; the prediction itself is
never modified. nnU-Net's own Dice instead leaves ignored voxels out; the two differ for
overlap metrics only where the prediction is foreground under the ignore label (here those
voxels count as true positives).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np

from toposeg.io import read_array, stem

PathLike = Union[str, Path]


def read_dataset_json(pred_dir: Path, gt_dir: Path, dataset_json: Union[None, PathLike, dict]) -> Optional[dict]:
    """The ``dataset.json`` to use: given, else the prediction folder's (nnU-Net copies it there),
    else the one next to the ground-truth folder (``nnUNet_raw/DatasetXXX/labelsTs/..``), else None."""
    if isinstance(dataset_json, dict):
        return dataset_json
    if dataset_json is not None:
        path = Path(dataset_json)
        if not path.is_file():
            raise FileNotFoundError(f"dataset.json not found: {path}")
        return json.loads(path.read_text())
    for path in (pred_dir / "dataset.json", gt_dir.parent / "dataset.json"):
        if path.is_file():
            return json.loads(path.read_text())
    return None


def classes_from_dataset_json(meta: dict) -> tuple[list[tuple[str, tuple[int, ...]]], Optional[int]]:
    """``([(name, label values), ...] for foreground classes, ignore label or None)``.

    Raises:
        ValueError: ``labels`` missing or a value that is neither an int nor a list of ints.
    """
    labels = meta.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise ValueError(f"dataset.json has no 'labels' mapping, got {labels!r}")
    classes, ignore = [], None
    for name, value in labels.items():
        values = (value,) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
        if not isinstance(values, (list, tuple)) or not values or \
                not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise ValueError(f"dataset.json label {name!r} must be an int or a list of ints, got {value!r}")
        values = tuple(int(v) for v in values)
        if name == "ignore":
            if len(values) != 1:
                raise ValueError(f"the ignore label must be one int, got {value!r}")
            ignore = values[0]
        elif values != (0,):
            classes.append((str(name), values))
    return classes, ignore


def _files(folder: Path, ending: Optional[str]) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    found = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.suffix in (".json", ".npz", ".pkl", ".txt", ".csv"):
            continue
        if ending is not None and not p.name.endswith(ending):
            continue
        found[stem(p) if ending is None else p.name[: -len(ending)]] = p
    return found


def iter_class_pairs(
    pred_dir: PathLike,
    gt_dir: PathLike,
    *,
    dataset_json: Union[None, PathLike, dict] = None,
) -> Iterator[dict[str, Any]]:
    """The binary pairs :func:`evaluate_folder` scores, one dict per (case, class), lazily.

    Yields ``{"case", "class", "label", "pred" (bool array), "gt" (bool array, completed with
    the prediction at ignored voxels), "ignored" (bool array)}``. Every file is checked when
    its case is reached; the folder-level checks (missing ground truth, no predictions) happen
    before the first item. For callers with their own scoring (post-processing, graphs, ...).
    Arguments and errors as :func:`evaluate_folder`.
    """
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    meta = read_dataset_json(pred_dir, gt_dir, dataset_json)
    ending = meta.get("file_ending") if meta else None
    preds, gts = _files(pred_dir, ending), _files(gt_dir, ending)
    if not preds:
        raise ValueError(f"{pred_dir}: no prediction files{f' ending in {ending!r}' if ending else ''}")
    missing = sorted(set(preds) - set(gts))
    if missing:
        raise ValueError(f"{gt_dir}: no ground truth for prediction(s) {missing[:10]}"
                         f"{' ...' if len(missing) > 10 else ''}")
    classes, ignore = classes_from_dataset_json(meta) if meta else (None, None)
    return _iter_pairs(preds, gts, classes, ignore)


def _iter_pairs(preds, gts, classes, ignore) -> Iterator[dict[str, Any]]:
    for case in sorted(preds):
        pred = np.asarray(read_array(preds[case]))
        gt = np.asarray(read_array(gts[case]))
        if pred.shape != gt.shape:
            raise ValueError(f"case {case!r}: prediction {preds[case].name} has shape {pred.shape}, "
                             f"ground truth {gts[case].name} {gt.shape}")
        if pred.ndim not in (2, 3):
            raise ValueError(f"case {case!r}: label maps must be 2D or 3D, got shape {pred.shape}")
        pred, gt = np.rint(pred).astype(np.int64), np.rint(gt).astype(np.int64)
        case_classes = classes
        if case_classes is None:
            values = sorted((set(np.unique(gt).tolist()) | set(np.unique(pred).tolist())) - {0})
            case_classes = [(str(v), (v,)) for v in values]
        else:
            known = {0} | {v for _, vals in case_classes for v in vals} | ({ignore} if ignore is not None else set())
            for what, arr in (("prediction", pred), ("ground truth", gt)):
                extra = sorted(set(np.unique(arr).tolist()) - known)
                if extra:
                    raise ValueError(f"case {case!r}: {what} holds label values {extra[:10]} not in dataset.json "
                                     f"labels {sorted(known)}")
        ignored = (gt == ignore) if ignore is not None else np.zeros(gt.shape, bool)
        for name, values in case_classes:
            p = np.isin(pred, values)
            yield {"case": case, "class": name, "label": values[0] if len(values) == 1 else "+".join(map(str, values)),
                   "pred": p, "gt": np.where(ignored, p, np.isin(gt, values)), "ignored": ignored}


def evaluate_folder(
    pred_dir: PathLike,
    gt_dir: PathLike,
    *,
    dataset_json: Union[None, PathLike, dict] = None,
    connectivity: Optional[int] = None,
) -> list[dict[str, Any]]:
    """Per-case, per-class topology metrics of nnU-Net label-map predictions.

    Args:
        pred_dir: folder with one label map per case (``nnUNetv2_predict -o``, or a fold's
            ``validation/``); ``.json``/``.npz``/``.pkl`` files in it are skipped.
        gt_dir: folder with the ground-truth label maps (``labelsTs``/``labelsTr``), same names.
        dataset_json: path or dict; default the prediction folder's ``dataset.json``, else the
            one above ``gt_dir``. Gives the classes, the ignore label and the file ending.
            Without any, every non-zero value found is a class and there is no ignore label.
        connectivity: foreground connectivity for :func:`toposeg.metrics.evaluate_case`
            (None = 8 in 2D / 26 in 3D, background dual).

    Returns:
        One dict per (case, class), in case then class order: ``case``, ``class`` (name),
        ``label`` (the value, or ``"1+2+3"`` for a region), ``ignored_voxels``, then the
        metrics of :func:`toposeg.metrics.evaluate_case`. Ground-truth files without a
        prediction are not evaluated (a fold's validation holds a subset of the cases).

    Raises:
        FileNotFoundError: a missing folder or dataset.json; ValueError: no predictions, a
        prediction without ground truth (listed), shapes that differ, label values outside
        the dataset's labels.
    """
    from toposeg.metrics import evaluate_case

    rows: list[dict[str, Any]] = []
    for item in iter_class_pairs(pred_dir, gt_dir, dataset_json=dataset_json):
        row: dict[str, Any] = {"case": item["case"], "class": item["class"], "label": item["label"],
                               "ignored_voxels": int(item["ignored"].sum())}
        row.update(evaluate_case(item["pred"], item["gt"], connectivity=connectivity))
        rows.append(row)
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean of every numeric metric per class over the cases (NaN-aware), one dict per class."""
    out = []
    for name in dict.fromkeys(r["class"] for r in rows):
        sel = [r for r in rows if r["class"] == name]
        row: dict[str, Any] = {"class": name, "cases": len(sel)}
        for key, value in sel[0].items():
            if key in ("case", "class", "label", "ignored_voxels") or not isinstance(value, (int, float)):
                continue
            vals = np.array([float(r[key]) for r in sel], dtype=float)
            row[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        out.append(row)
    return out


__all__ = ["classes_from_dataset_json", "evaluate_folder", "iter_class_pairs", "read_dataset_json", "summarize"]

"""``evaluate_case``: every metric for one prediction/ground-truth pair."""

from __future__ import annotations

import time
from typing import Optional, Sequence, Union

import numpy as np

from toposeg.metrics._inputs import as_pair
from toposeg.metrics.betti_matching import betti_matching_error
from toposeg.metrics.cldice import cldice
from toposeg.metrics.local_betti import local_betti_error
from toposeg.metrics.overlap import dice, iou, miou
from toposeg.metrics.partition import _are_from_table, _table, _voi_from_table
from toposeg.topology.betti import _betti, _euler, connected_components, resolve_connectivity


def evaluate_case(pred: np.ndarray, target: np.ndarray, *, connectivity: Optional[int] = None,
                  timings: Optional[dict[str, float]] = None, skeleton_method: str = "thin",
                  skeleton_backend: str = "auto", betti_matching: Optional[bool] = None,
                  local_window: Union[None, int, Sequence[int]] = None) -> dict[str, float]:
    """All metrics for one whole image/volume (definitions: docs/evaluation.md).

    Args:
        pred, target: binary masks (bool or {0, 1}; NumPy arrays or tensors) of the same 2D
            ``(H, W)`` or 3D ``(D, H, W)`` shape. Nothing is post-processed; the ground truth
            is never modified.
        connectivity: foreground connectivity (2D: 8 or 4, 3D: 26 or 6; None = 8 / 26); the
            background uses the dual connectivity (Betti numbers, VOI/ARE partitions).
        timings: optional dict that receives the seconds spent per metric group.
        skeleton_method, skeleton_backend: the skeletons of clDice, passed to
            :func:`toposeg.skeleton.skeletonize` as ``method`` / ``backend`` (default: the
            topology-preserving ``"thin"`` rule in 2D and 3D; ``"auto"`` picks the implementation).
        betti_matching: compute the Betti matching error (:func:`betti_matching_error`). None
            (default) = on, except for 3D masks with ``connectivity=6``, whose exact loop
            matching is slower than the speed target (about 10 s of CPU for a 72×128×128
            pair; pass True to compute it).
        local_window: tile size of the local Betti error (:func:`local_betti_error`; None =
            64 in 2D, 32 in 3D).

    Returns:
        ``dice, iou, miou, cldice, cldice_tprec, cldice_tsens, voi, voi_split, voi_merge, are,
        are_precision, are_recall, betti{k}_error, betti{k}_pred, betti{k}_gt`` (k = 0, 1 and 2
        in 3D), ``euler_pred, euler_gt, euler_error``, ``betti_matching_error_{k}`` and
        ``betti_matching_error`` (unless ``betti_matching`` is off), ``local_betti{k}_error`` and
        ``local_betti_error``. Undefined values are NaN.
    """
    p, t = as_pair(pred, target)
    fg, bg = resolve_connectivity(p.ndim, connectivity)
    clock = time.perf_counter
    spent: dict[str, float] = {}

    t0 = clock()
    out: dict[str, float] = {"dice": dice(p, t), "iou": iou(p, t), "miou": miou(p, t)}
    t1 = clock()
    spent["overlap"] = t1 - t0

    out.update(cldice(p, t, skeleton_method=skeleton_method, skeleton_backend=skeleton_backend))
    t2 = clock()
    spent["cldice"] = t2 - t1

    bg_t, bg_p = connected_components(~t, bg), connected_components(~p, bg)
    lab_t, lab_p = bg_t[0], bg_p[0]  # partitions: background components 1..n, foreground 0
    t3 = clock()
    spent["labels"] = t3 - t2
    table = _table(lab_t, lab_p)  # one contingency table (skimage) for VOI and ARE
    split, merge = _voi_from_table(lab_t, lab_p, table)
    out.update(voi=split + merge, voi_split=split, voi_merge=merge)
    t4 = clock()
    spent["voi"] = t4 - t3
    e, prec, rec = _are_from_table(table)
    out.update(are=e, are_precision=prec, are_recall=rec)
    t5 = clock()
    spent["are"] = t5 - t4

    ep: Optional[int] = None
    et: Optional[int] = None
    if p.ndim == 3:  # β1 = β0 + β2 − χ needs χ
        ep, et = _euler(p, fg), _euler(t, fg)
    t6 = clock()
    spent["euler"] = t6 - t5
    bp, bt = _betti(p, fg, bg, ep, bg_p), _betti(t, fg, bg, et, bg_t)
    if p.ndim == 2:  # χ = β0 − β1 for the dual pair; no separate count needed
        ep, et = bp[0] - bp[1], bt[0] - bt[1]
    for k, (a, b) in enumerate(zip(bp, bt)):
        out[f"betti{k}_error"] = float(abs(a - b))
        out[f"betti{k}_pred"] = float(a)
        out[f"betti{k}_gt"] = float(b)
    out.update(euler_pred=float(ep), euler_gt=float(et), euler_error=float(abs(ep - et)))
    spent["betti"] = clock() - t6
    t8 = clock()
    if betti_matching is None:  # on where it meets the speed target (docs/evaluation.md § 7)
        betti_matching = not (p.ndim == 3 and fg == 6)
    if betti_matching:
        out.update(betti_matching_error(p, t, connectivity=fg))
    t9 = clock()
    spent["betti_matching"] = t9 - t8
    out.update(local_betti_error(p, t, window=local_window, connectivity=fg))
    spent["local_betti"] = clock() - t9
    if timings is not None:
        timings.update(spent)
    return out

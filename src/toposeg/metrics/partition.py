"""VOI and ARE on the partition of space induced by a binary tubular structure.

Both masks are turned into label images the same way (DESIGN.md §2): the connected components
of the *background* (cells between membranes, regions between roads) are labelled 1, 2, ...
with the background connectivity (the dual of the declared foreground connectivity: 4 in 2D,
6 in 3D by default), and the foreground itself is label 0. The ground truth is never modified.

- ARE = ``skimage.metrics.adapted_rand_error(gt_labels, pred_labels)[0]`` (label 0 of the
  ground truth ignored, ground truth as ``image_true``, alpha 0.5) = 1 − F-score of the Rand
  precision and recall, where (pairs of pixels counted over the pixels not ignored)
  ``are_precision`` = pairs in the same segment in both / pairs in the same *predicted* segment
  (low when cells are falsely merged) and ``are_recall`` = the same / pairs in the same
  *ground-truth* segment (low when cells are falsely split). These are the meanings stated in
  skimage's docstring and in the SNEMI3D paper; skimage's code returns them in the opposite
  order (scikit-image issue #6485), so ``(are, are_precision, are_recall)`` equals skimage's
  ``(are, rec, prec)``.
- VOI = H(X|Y) + H(Y|X) in bits, X = ground-truth labels, Y = predicted labels, no label
  ignored: ``voi_split`` = H(Y|X) (over-segmentation, false splits) and ``voi_merge`` = H(X|Y)
  (under-segmentation, false merges) — the two outputs of
  ``skimage.metrics.variation_of_information(gt_labels, pred_labels)``, in that order.

The contingency table is computed with one ``np.bincount`` on combined labels (or ``np.unique``
when the label product is very large), which is much faster than a sparse matrix.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from toposeg.metrics._inputs import as_mask, as_pair
from toposeg.topology.betti import connected_components, resolve_connectivity

_NAN = float("nan")


def partition_labels(mask: np.ndarray, *, connectivity: Optional[int] = None) -> np.ndarray:
    """Label image of the partition induced by ``mask``: foreground 0, background components
    1..n labelled with the background connectivity (dual of ``connectivity``)."""
    m = as_mask(mask, "mask")
    _, bg = resolve_connectivity(m.ndim, connectivity)
    return connected_components(~m, bg)[0]


def contingency(true_labels: np.ndarray, test_labels: np.ndarray,
                ignore_true: tuple[int, ...] = ()) -> np.ndarray:
    """Non-zero counts ``n_ij`` of the contingency table with row and column ids.

    Returns an int64 array of shape ``(3, K)``: rows ``i`` (true label), ``j`` (test label) and
    ``n_ij`` for the K non-empty cells. Pixels whose *true* label is in ``ignore_true`` are
    dropped.
    """
    t = np.asarray(true_labels).reshape(-1)
    s = np.asarray(test_labels).reshape(-1)
    if t.shape != s.shape:
        raise ValueError(f"label images must have the same size, got {t.size} and {s.size}")
    if t.size and (t.min() < 0 or s.min() < 0):
        raise ValueError("label images must be non-negative integers")
    if ignore_true:
        keep = ~np.isin(t, ignore_true)
        t, s = t[keep], s[keep]
    if t.size == 0:
        return np.zeros((3, 0), dtype=np.int64)
    ncol = int(s.max()) + 1
    cells = int(t.max()) + 1
    code = t.astype(np.int64) * ncol + s.astype(np.int64)
    if cells * ncol <= 4 * code.size + 1024:
        counts = np.bincount(code, minlength=cells * ncol)
        nz = np.flatnonzero(counts)
        n = counts[nz]
    else:
        nz, n = np.unique(code, return_counts=True)
    return np.stack([nz // ncol, nz % ncol, n]).astype(np.int64)


def _marginal(ids: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per-cell marginal count (the sum of n over cells sharing the same id)."""
    _, inv = np.unique(ids, return_inverse=True)
    sums = np.bincount(inv, weights=n)
    return sums[inv]


def voi_from_labels(true_labels: np.ndarray, test_labels: np.ndarray) -> tuple[float, float]:
    """``(split, merge)`` = ``(H(test|true), H(true|test))`` in bits (skimage order)."""
    i, j, n = contingency(true_labels, test_labels)
    total = float(n.sum())
    if total == 0:
        return _NAN, _NAN
    nf = n.astype(np.float64)
    a = _marginal(i, nf)  # true marginal of each cell's row
    b = _marginal(j, nf)  # test marginal of each cell's column
    p = nf / total
    split = float(-(p * np.log2(nf / a)).sum())
    merge = float(-(p * np.log2(nf / b)).sum())
    return max(split, 0.0) + 0.0, max(merge, 0.0) + 0.0


def are_from_labels(true_labels: np.ndarray, test_labels: np.ndarray) -> tuple[float, float, float]:
    """``(are, precision, recall)``: ARE exactly as ``skimage.metrics.adapted_rand_error`` (label
    0 of the true image ignored, alpha 0.5); precision = same-pair agreement / pairs within test
    segments, recall = / pairs within true segments (skimage returns these two swapped, see the
    module docstring). NaN where a denominator is 0."""
    i, j, n = contingency(true_labels, test_labels, ignore_true=(0,))
    nf = n.astype(np.float64)
    total = nf.sum()
    sum_p2 = nf @ nf - total
    a = np.bincount(np.unique(i, return_inverse=True)[1], weights=nf) if nf.size else nf
    b = np.bincount(np.unique(j, return_inverse=True)[1], weights=nf) if nf.size else nf
    sum_a2 = a @ a - total  # pairs within true segments
    sum_b2 = b @ b - total  # pairs within test segments

    def ratio(num: float, den: float) -> float:
        return float(num / den) if den > 0 else _NAN

    precision, recall = ratio(sum_p2, sum_b2), ratio(sum_p2, sum_a2)
    fscore = ratio(sum_p2, 0.5 * sum_a2 + 0.5 * sum_b2)
    return 1.0 - fscore, precision, recall


def voi(pred: np.ndarray, target: np.ndarray, *, connectivity: Optional[int] = None) -> dict[str, float]:
    """``{"voi", "voi_split", "voi_merge"}`` of two binary masks (see module docstring)."""
    p, t = as_pair(pred, target)
    split, merge = voi_from_labels(partition_labels(t, connectivity=connectivity),
                                   partition_labels(p, connectivity=connectivity))
    return {"voi": split + merge, "voi_split": split, "voi_merge": merge}


def are(pred: np.ndarray, target: np.ndarray, *, connectivity: Optional[int] = None) -> dict[str, float]:
    """``{"are", "are_precision", "are_recall"}`` of two binary masks (see module docstring)."""
    p, t = as_pair(pred, target)
    e, prec, rec = are_from_labels(partition_labels(t, connectivity=connectivity),
                                   partition_labels(p, connectivity=connectivity))
    return {"are": e, "are_precision": prec, "are_recall": rec}

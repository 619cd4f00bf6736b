"""VOI and ARE on the partition of space induced by a binary tubular structure.

Both masks are turned into label images the same way (docs/evaluation.md): the connected
components of the *background* (cells between membranes, regions between roads) are labelled
1, 2, ... with the background connectivity (the dual of the declared foreground connectivity: 4
in 2D, 6 in 3D by default), and the foreground itself is label 0. The ground truth is never
modified.

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

Both values are computed by scikit-image itself: one ``skimage.metrics.contingency_table``
(sparse pixel counts) per pair is passed as ``table=`` to ``variation_of_information``
(normalised) and to ``adapted_rand_error`` (counts without row 0, i.e. without the
ground-truth foreground), so the table is built once for both metrics.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np

from toposeg.metrics._inputs import as_mask, as_pair
from toposeg.topology.betti import connected_components, resolve_connectivity

_NAN = float("nan")
_VOI_ZERO = 1e-12


def partition_labels(mask: np.ndarray, *, connectivity: Optional[int] = None) -> np.ndarray:
    """Label image of the partition induced by ``mask``: foreground 0, background components
    1..n labelled with the background connectivity (dual of ``connectivity``)."""
    m = as_mask(mask, "mask")
    _, bg = resolve_connectivity(m.ndim, connectivity)
    return connected_components(~m, bg)[0]


def _table(true_labels: np.ndarray, test_labels: np.ndarray) -> Any:
    """``skimage.metrics.contingency_table`` (pixel counts, CSR array); None for empty images."""
    from skimage.metrics import contingency_table

    t, s = np.asarray(true_labels), np.asarray(test_labels)
    if t.shape != s.shape:
        raise ValueError(f"label images must have the same shape, got {t.shape} and {s.shape}")
    for name, x in (("true_labels", t), ("test_labels", s)):
        if x.dtype.kind not in "iub":
            raise TypeError(f"{name} must be an integer label image, got dtype {x.dtype}")
        if x.size and x.min() < 0:
            raise ValueError(f"{name} must be non-negative integers, got minimum {x.min()}")
    if t.size == 0:
        return None
    return contingency_table(t, s, normalize=False, sparse_type="array")


def _voi_from_table(t: np.ndarray, s: np.ndarray, table: Any) -> tuple[float, float]:
    from skimage.metrics import variation_of_information

    if table is None:
        return _NAN, _NAN
    # skimage checks the images' shapes even when it is given the table
    split, merge = variation_of_information(t, s, table=table / table.sum())
    # rounding residues (skimage gives ~3e-17 bits for identical partitions) are reported as 0;
    # a real difference of one pixel among n is at least ~1/n bits, far above _VOI_ZERO
    return tuple(float(v) if v > _VOI_ZERO else 0.0 for v in (split, merge))  # type: ignore[return-value]


def _are_from_table(table: Any) -> tuple[float, float, float]:
    from skimage.metrics import adapted_rand_error

    if table is None:
        return _NAN, _NAN, _NAN
    with warnings.catch_warnings():  # 0/0 when nothing is left: NaN below, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        # rows 1..: label 0 of the ground truth ignored, as skimage's ignore_labels=(0,)
        e, sk_prec, sk_rec = adapted_rand_error(table=table[1:])
    # skimage's "precision" is our recall and vice versa (module docstring, scikit-image #6485)
    e, prec, rec = (float(v) for v in (e, sk_rec, sk_prec))
    return tuple(v if np.isfinite(v) else _NAN for v in (e, prec, rec))  # type: ignore[return-value]


def voi_from_labels(true_labels: np.ndarray, test_labels: np.ndarray) -> tuple[float, float]:
    """``(split, merge)`` = ``(H(test|true), H(true|test))`` in bits, no label ignored: the
    output of ``skimage.metrics.variation_of_information(true_labels, test_labels)``.

    Args:
        true_labels, test_labels: non-negative integer label images of the same shape.

    Returns:
        Two floats; NaN for empty (size-0) images; values below 1e-12 bits (rounding residues
        of identical partitions) are returned as 0.

    Raises:
        ValueError: different shapes, negative labels. TypeError: non-integer dtype.
    """
    return _voi_from_table(true_labels, test_labels, _table(true_labels, test_labels))


def are_from_labels(true_labels: np.ndarray, test_labels: np.ndarray) -> tuple[float, float, float]:
    """``(are, precision, recall)`` of ``skimage.metrics.adapted_rand_error(true_labels,
    test_labels)`` (label 0 of the true image ignored, alpha 0.5), with precision = same-pair
    agreement / pairs within test segments and recall = / pairs within true segments (skimage
    returns these two swapped, see the module docstring). NaN where a denominator is 0 (e.g. a
    true image that is all label 0). Errors as :func:`voi_from_labels`.
    """
    return _are_from_table(_table(true_labels, test_labels))


def voi_are_from_labels(true_labels: np.ndarray, test_labels: np.ndarray
                        ) -> tuple[tuple[float, float], tuple[float, float, float]]:
    """``((split, merge), (are, precision, recall))`` from one contingency table."""
    table = _table(true_labels, test_labels)
    return _voi_from_table(true_labels, test_labels, table), _are_from_table(table)


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

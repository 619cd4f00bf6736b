"""Error decomposition of a segmentation into component and hole errors that cannot cancel.

``component_errors(pred, target)`` matches the connected components of the prediction and of
the ground truth by overlap (sharing at least one pixel) and counts, for the foreground:

* ``spurious_components``: predicted components that touch no ground-truth foreground;
* ``missing_components``: ground-truth components that touch no predicted foreground;
* ``split_components``: over ground-truth components, ``max(0, k - 1)`` with ``k`` the number of
  predicted components overlapping it (a structure broken into ``k`` pieces counts ``k - 1``);
* ``merged_components``: over predicted components, ``max(0, k - 1)`` with ``k`` the number of
  ground-truth components it overlaps (``k`` structures bridged into one count ``k - 1``);

and the same four for the *holes* -- the bounded background components (background
connectivity; a background component touching the image border is the outside, not a hole),
matched to the holes of the other mask: ``spurious_holes``, ``missing_holes``, ``split_holes``,
``merged_holes``. In 2D holes are the loops counted by β1; in 3D they are the cavities counted by
β2 (3D tunnels, β1, are not decomposed here).

Connectivity: toposeg's dual pair (foreground 8 / background 4 in 2D, 26 / 6 in 3D by default;
``connectivity`` names the foreground one), as for the Betti numbers.

Relation to the Betti error: over the bipartite overlap graph (``E`` edges between ``P`` predicted
and ``G`` ground-truth components), ``split = E - (G - missing)`` and ``merged = E - (P - spurious)``,
hence the identity

    β0(pred) - β0(gt) = spurious - missing + split - merged

(and the same for holes with β1 in 2D, β2 in 3D). The Betti error ``|β0(pred) - β0(gt)|`` can
therefore cancel -- one spurious speck and one missing structure give β0 error 0 -- while the
four counts are each non-negative and never cancel.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from toposeg.metrics._inputs import as_pair
from toposeg.topology.betti import connected_components, resolve_connectivity

#: keys returned by :func:`component_errors`, in order
DECOMPOSITION_KEYS: tuple[str, ...] = (
    "spurious_components", "missing_components", "split_components", "merged_components",
    "spurious_holes", "missing_holes", "split_holes", "merged_holes",
)


def _border_labels(labels: np.ndarray) -> np.ndarray:
    """Labels (as a unique array) present on the border of ``labels``."""
    faces = [np.take(labels, index, axis=axis).reshape(-1) for axis in range(labels.ndim) for index in (0, -1)]
    return np.unique(np.concatenate(faces))


def _holes(mask: np.ndarray, bg: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the background components of ``mask`` and a bool table ``valid[label]`` of the bounded ones."""
    labels, n = connected_components(~mask, bg)
    valid = np.ones(n + 1, dtype=bool)
    valid[0] = False
    valid[_border_labels(labels)] = False
    return labels, valid


def _match(lp: np.ndarray, valid_p: np.ndarray, lg: np.ndarray, valid_g: np.ndarray) -> tuple[int, int, int, int]:
    """``(spurious, missing, split, merged)`` for the valid labels of two label images."""
    both = valid_p[lp] & valid_g[lg]
    pairs = np.unique(np.stack([lp[both], lg[both]]), axis=1) if both.any() else np.zeros((2, 0), dtype=np.int64)
    deg_p = np.bincount(pairs[0], minlength=valid_p.size)[valid_p]
    deg_g = np.bincount(pairs[1], minlength=valid_g.size)[valid_g]
    spurious = int(np.count_nonzero(deg_p == 0))
    missing = int(np.count_nonzero(deg_g == 0))
    split = int(np.clip(deg_g - 1, 0, None).sum())
    merged = int(np.clip(deg_p - 1, 0, None).sum())
    return spurious, missing, split, merged


def component_errors(pred: object, target: object, *, connectivity: Optional[int] = None) -> dict[str, float]:
    """Spurious / missing / split / merged counts of foreground components and of holes.

    Args:
        pred, target: binary masks (bool or {0, 1}; NumPy arrays or tensors) of the same 2D
            ``(H, W)`` or 3D ``(D, H, W)`` shape. Nothing is post-processed.
        connectivity: foreground connectivity (2D: 8 or 4, 3D: 26 or 6; None = 8 / 26); the
            background (holes) uses the dual one (4 / 6 by default).

    Returns:
        ``{key: float}`` for the keys of :data:`DECOMPOSITION_KEYS` (definitions in the module
        docstring and docs/evaluation.md). Each count is >= 0; ``β0(pred) - β0(gt) = spurious -
        missing + split - merged`` for the components, and the same for holes with the last Betti
        number (β1 in 2D, β2 in 3D).

    Raises:
        TypeError / ValueError: inputs that are not binary masks of the same 2D/3D shape, or an
        invalid ``connectivity`` (the message quotes what was received).
    """
    p, t = as_pair(pred, target)
    fg, bg = resolve_connectivity(p.ndim, connectivity)
    lp, n_p = connected_components(p, fg)
    lt, n_t = connected_components(t, fg)
    vp = np.ones(n_p + 1, dtype=bool)
    vt = np.ones(n_t + 1, dtype=bool)
    vp[0] = vt[0] = False
    comp = _match(lp, vp, lt, vt)
    hp, hvp = _holes(p, bg)
    ht, hvt = _holes(t, bg)
    holes = _match(hp, hvp, ht, hvt)
    return {key: float(v) for key, v in zip(DECOMPOSITION_KEYS, comp + holes)}


__all__ = ["DECOMPOSITION_KEYS", "component_errors"]

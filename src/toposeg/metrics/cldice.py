"""Hard clDice with exact skeletons (:func:`toposeg.skeleton.skeletonize`).

    Tprec  = |S(pred) ∩ gt|   / |S(pred)|      (topology precision)
    Tsens  = |S(gt)   ∩ pred| / |S(gt)|        (topology sensitivity)
    clDice = 2 · Tprec · Tsens / (Tprec + Tsens)

Undefined cases: Tprec is NaN when the prediction's skeleton is empty, Tsens is NaN when the
ground truth's skeleton is empty. clDice is NaN when *both* skeletons are empty (nothing to
compare, like Dice of two empty masks); when exactly one skeleton is empty the structure is
entirely missed or entirely spurious and clDice = 0 (the limit of the harmonic mean, and what
Dice gives in the same situation). clDice = 0 when Tprec = Tsens = 0.
"""

from __future__ import annotations

import numpy as np

from toposeg.metrics._inputs import as_pair

_NAN = float("nan")


def _cldice_from_skeletons(p: np.ndarray, t: np.ndarray, sp: np.ndarray, st: np.ndarray) -> dict[str, float]:
    n_sp, n_st = int(np.count_nonzero(sp)), int(np.count_nonzero(st))
    tprec = np.count_nonzero(sp & t) / n_sp if n_sp else _NAN
    tsens = np.count_nonzero(st & p) / n_st if n_st else _NAN
    if not n_sp and not n_st:
        value = _NAN
    elif not n_sp or not n_st or tprec + tsens == 0:
        value = 0.0
    else:
        value = 2.0 * tprec * tsens / (tprec + tsens)
    return {"cldice": float(value), "cldice_tprec": float(tprec), "cldice_tsens": float(tsens)}


def cldice(pred: np.ndarray, target: np.ndarray, *, skeleton_method: str = "thin",
           skeleton_backend: str = "auto") -> dict[str, float]:
    """``{"cldice", "cldice_tprec", "cldice_tsens"}`` for one pair of binary masks (2D or 3D).

    Args:
        pred, target: binary masks (bool or {0, 1}; NumPy arrays or tensors) of the same 2D
            ``(H, W)`` or 3D ``(D, H, W)`` shape.
        skeleton_method: thinning rule of both skeletons, ``method`` of
            :func:`toposeg.skeleton.skeletonize`: ``"thin"`` (default; topology-preserving and
            thin in 2D and 3D), ``"zhang"`` (2D, scikit-image's Zhang-Suen rule) or ``"lee"``
            (3D, scikit-image's Lee thinning, which deletes some objects of even width).
        skeleton_backend: its implementation, ``backend`` of ``skeletonize`` (``"auto"``,
            ``"torch"``, ``"skimage"``).

    Returns:
        Three floats (see the module docstring for the undefined cases).

    Raises:
        KeyError: unknown method/backend; ValueError: a method that does not apply to the
        dimensionality, non-binary masks or different shapes (from ``skeletonize`` / the
        input checks).
    """
    from toposeg.skeleton import skeletonize

    p, t = as_pair(pred, target)
    kw = {"method": skeleton_method, "backend": skeleton_backend}
    sp = np.asarray(skeletonize(p, **kw), dtype=bool)
    st = np.asarray(skeletonize(t, **kw), dtype=bool)
    return _cldice_from_skeletons(p, t, sp, st)

"""Label conversions shared by loaders and generators.

- :func:`binarize`: the foreground mask of a label file by a rule (``"nonzero"``, ``"bright"``,
  ``"dark"``); ``"bright"``/``"dark"`` detect the file's two-level encoding (0/1, 0/255,
  0/65535, bool, float 0/1, ...) instead of splitting at a fixed mid-value.
- :func:`membranes_from_ids`: the membrane band between instance ids (CREMI, synthetic
  membranes), with ids compared exactly (uint64 ids above 2**53 included).
- :func:`foreground_fraction_warning`: the warning text for a tubular dataset whose label
  foreground covers more than half of the pixels (polarity probably inverted).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from scipy import ndimage

from toposeg.io import nonfinite_counts

FOREGROUND_RULES = ("nonzero", "bright", "dark")

def check_rule(rule: object, option: str = "foreground") -> str:
    """``rule`` if it is one of :data:`FOREGROUND_RULES`, else a ValueError naming ``option``."""
    if not isinstance(rule, str) or rule not in FOREGROUND_RULES:
        raise ValueError(f"{option} must be one of {list(FOREGROUND_RULES)}, got {rule!r}")
    return rule


def _show_values(label: np.ndarray, limit: int = 6) -> str:
    values = np.unique(label)
    shown = ", ".join(str(v.item()) for v in values[:limit])
    more = f", ... ({values.size} distinct values)" if values.size > limit else ""
    return f"{shown}{more}"


def _top_level(dtype: np.dtype) -> Union[int, float]:
    """The value a one-level label must hold to be read as the *high* level of its encoding."""
    if np.issubdtype(dtype, np.integer):
        return int(np.iinfo(dtype).max)
    return 1.0


def _check_finite_label(label: np.ndarray, name: str) -> None:
    """ValueError counting the NaN and infinite values of a float label:
    ``"<name>: label holds non-finite values (5 NaN of 576 values); ..."``."""
    found = nonfinite_counts(label)
    if found:
        raise ValueError(f"{name}: label holds non-finite values ({found} of {label.size} values); expected a "
                         "finite mask (e.g. 0/1 or 0/255): re-save the label without NaN/inf")


def label_levels(label: np.ndarray, *, name: str = "label") -> tuple[Union[int, float], Union[int, float]]:
    """``(low, high)``: the two values of a two-level label (0/1, 0/255, 0/65535, float 0/1, ...).

    A label holding a single value ``v`` gives ``(v, v)`` when ``v`` says which level it is:
    ``0`` is the low level; the top of the encoding (the integer dtype's maximum such as 255 or
    65535, or ``1.0`` for floats) is the high level. A bool label gives ``(False, True)``.

    Raises:
        TypeError: a dtype that is not bool, integer or float.
        ValueError: non-finite float values; more than two distinct values; a single value that
            is neither 0 nor the top of the encoding (e.g. an all-1 uint8 label: 0/1 and 0/255
            encodings read it differently). Messages name ``name`` and quote the values.
    """
    if label.dtype == bool:
        return (False, True)
    if not (np.issubdtype(label.dtype, np.integer) or np.issubdtype(label.dtype, np.floating)):
        raise TypeError(f"{name}: cannot binarize a label of dtype {label.dtype}")
    if label.size == 0:
        raise ValueError(f"{name}: label is empty (shape {label.shape})")
    _check_finite_label(label, name)
    lo, hi = label.min().item(), label.max().item()
    if lo == hi:
        if lo == 0 or lo == _top_level(label.dtype):
            return lo, hi
        raise ValueError(
            f"{name}: label holds the single value {lo!r}, which could be the foreground or the background "
            f"level (0/1 and 0/{_top_level(label.dtype)} encodings disagree); use foreground 'nonzero' "
            "(label != 0) for such files")
    if not np.all((label == lo) | (label == hi)):
        raise ValueError(
            f"{name}: 'bright'/'dark' need a label with exactly two values (e.g. 0/1 or 0/255), found "
            f"{_show_values(label)}; use foreground 'nonzero' (label != 0), or re-save the label as a "
            "two-level mask")
    return lo, hi


def binarize(label: np.ndarray, rule: str, *, name: str = "label") -> np.ndarray:
    """Bool foreground mask of a label image/volume (any shape) by ``rule``.

    - ``"nonzero"``: ``label != 0`` (any number of values).
    - ``"bright"`` / ``"dark"``: the label must hold two levels ``{low, high}`` — 0/1, 0/255,
      0/65535, ``False``/``True``, float 0.0/1.0 or any other pair — detected per file
      (:func:`label_levels`); ``"bright"`` is ``label == high``, ``"dark"`` is ``label == low``
      (ISBI 2012 membranes are dark). So a 0/1 mask and a 0/255 mask give the same result. A
      single-valued label is all background or all foreground when the value says which level it
      is (0: the low level, so ``"bright"`` gives an empty mask and ``"dark"`` a full one; the
      top of the encoding — 255 for uint8, 65535 for uint16, 1.0 for floats, ``True`` — the high
      level) and refused otherwise.

    Returns a new bool array of the label's shape.

    Raises:
        ValueError: unknown ``rule``; an ambiguous label for ``"bright"``/``"dark"`` (more than
            two values, or one value that is neither 0 nor the top level); non-finite floats.
        TypeError: a dtype other than bool, integer or float.
    """
    check_rule(rule)
    label = np.asarray(label)
    if label.dtype == bool:
        return ~label if rule == "dark" else label.copy()
    if not (np.issubdtype(label.dtype, np.integer) or np.issubdtype(label.dtype, np.floating)):
        raise TypeError(f"{name}: cannot binarize a label of dtype {label.dtype}")
    if rule == "nonzero":
        _check_finite_label(label, name)
        return label != 0
    lo, hi = label_levels(label, name=name)
    if lo == hi:  # one level: 0 is the low level, the top of the encoding the high one
        is_high = lo != 0
        return np.full(label.shape, is_high if rule == "bright" else not is_high)
    return label == (hi if rule == "bright" else lo)


def foreground_fraction_warning(
    mask_or_fraction: Union[np.ndarray, float], rule: str, option_name: str = "--label-foreground",
    *, limit: float = 0.5, what: str = "label",
) -> Optional[str]:
    """Warning text when the foreground of a *tubular* dataset (membranes, vessels, roads: the
    structure is a minority of the pixels) covers more than ``limit`` (default 50 %) — the usual
    sign of an inverted polarity — or ``None``.

    Args:
        mask_or_fraction: a bool mask (any shape; its mean is used) or a fraction in [0, 1].
        rule: the foreground rule that produced it (one of :data:`FOREGROUND_RULES`).
        option_name: the option the user sets, named in the text (``"--label-foreground"``,
            or ``"foreground="`` for the Python API).
        limit: fraction above which to warn (strictly greater).
        what: what the mask is, for the text (e.g. ``"ground truth of case 07"``).

    Raises:
        ValueError: unknown ``rule``; a fraction outside [0, 1]; an empty mask.
        TypeError: neither a bool array nor a number.
    """
    check_rule(rule, "rule")
    if isinstance(mask_or_fraction, np.ndarray):
        if mask_or_fraction.dtype != bool:
            raise TypeError(f"mask_or_fraction must be a bool mask or a number, got an array of dtype "
                            f"{mask_or_fraction.dtype}")
        if mask_or_fraction.size == 0:
            raise ValueError("mask_or_fraction: empty mask")
        fraction = float(mask_or_fraction.mean())
    elif isinstance(mask_or_fraction, (int, float, np.integer, np.floating)) and not isinstance(mask_or_fraction, bool):
        fraction = float(mask_or_fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"mask_or_fraction must be in [0, 1], got {mask_or_fraction!r}")
    else:
        raise TypeError(f"mask_or_fraction must be a bool mask or a number, got {type(mask_or_fraction).__name__}")
    if fraction <= limit:
        return None
    other = "bright" if rule == "dark" else "dark"
    sep = "" if option_name.endswith("=") else " "
    return (f"warning: the {what} foreground (rule {rule!r}) covers {fraction:.1%} of the pixels; thin "
            f"structures (membranes, vessels, roads) are usually a minority, so the polarity may be inverted "
            f"(if the structure is the other value, use {option_name}{sep}{other})")


def ids_in(ids: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """``ids`` equal to any of ``values``, compared exactly in the dtype of ``ids`` (values that
    the dtype cannot hold match nothing)."""
    out = np.zeros(ids.shape, bool)
    for v in values:
        if np.issubdtype(ids.dtype, np.integer):
            info = np.iinfo(ids.dtype)
            if isinstance(v, (float, np.floating)) and not float(v).is_integer():
                continue
            iv = int(v)
            if not info.min <= iv <= info.max:
                continue
            out |= ids == np.array(iv, dtype=ids.dtype)
        else:
            out |= ids == v
    return out


def id_ranks(ids: np.ndarray) -> np.ndarray:
    """``ids`` replaced by their rank among the distinct ids (int64, ``(*ids.shape)``): the same
    order and equalities, but small numbers, so filters that compute in float64 (SciPy's
    minimum/maximum filters do) stay exact for uint64/int64 ids above 2**53."""
    _, inverse = np.unique(ids, return_inverse=True)
    return inverse.reshape(ids.shape).astype(np.int64, copy=False)


def membranes_from_ids(
    ids: np.ndarray, width: Union[int, np.ndarray] = 5, *, background_ids: Sequence[int] = (),
) -> np.ndarray:
    """Membrane mask of an instance-id map (any number of dims): pixels within the boundary band
    between different ids, plus every pixel whose id is in ``background_ids``.

    A pixel is in the band when a window of side ``width + 1`` around it sees two different ids,
    which gives a band exactly ``width`` pixels wide across an axis-aligned boundary (for odd
    widths one side gets the extra pixel). ``width`` may also be an integer array of the shape of
    ``ids`` (a local width per pixel, used by the synthetic membranes). Ids are compared exactly,
    whatever their size (uint64 ids up to 2**64 - 1): the window test runs on the ids' ranks
    (:func:`id_ranks`), and background ids are matched in the ids' own dtype (a background id
    the dtype cannot hold, such as 2**64 - 1 for int64 ids, matches nothing).

    Raises:
        TypeError: ids that are not integer, bool or float.
        ValueError: a non-positive or non-integer ``width``; a width array of another shape;
            non-finite float ids.
    """
    ids = np.asarray(ids)
    if not (ids.dtype == bool or np.issubdtype(ids.dtype, np.integer) or np.issubdtype(ids.dtype, np.floating)):
        raise TypeError(f"ids must be an integer array, got dtype {ids.dtype}")
    found = nonfinite_counts(ids)
    if found:
        raise ValueError(f"ids hold non-finite values ({found} of {ids.size} values); expected integer ids")
    widths = np.asarray(width)
    if not np.issubdtype(widths.dtype, np.integer) or widths.size == 0 or widths.min() < 1:
        raise ValueError(f"width must be a positive integer or integer array, got {width!r}")
    if widths.ndim and widths.shape != ids.shape:
        raise ValueError(f"width array shape {widths.shape} does not match ids shape {ids.shape}")
    ranks = id_ranks(ids)
    out = np.zeros(ids.shape, bool)
    for w in np.unique(widths):
        size = int(w) + 1
        band = ndimage.minimum_filter(ranks, size=size, mode="nearest") != ndimage.maximum_filter(ranks, size=size, mode="nearest")
        out |= band if widths.ndim == 0 else band & (widths == w)
    if len(background_ids):
        out |= ids_in(ids, background_ids)
    return out

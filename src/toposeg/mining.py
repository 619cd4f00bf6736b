"""Hard pixel miners: ``(prob, target) -> (pos, neg)`` bool masks, no gradient.

``pos`` are hard pixels of the ground truth the prediction misses (they should go up),
``neg`` are hard pixels the prediction wrongly claims (they should go down). The hard set of
the paper is ``H = pos | neg``.

Tensors are ``(N, C, *S)`` with 2 or 3 spatial dims; every sample and channel is mined
independently (each channel is treated as its own binary foreground; the losses decide which
channels are foreground classes, see :mod:`toposeg.losses`).

Miners (``p_t = prob > threshold``; the default threshold of every mining entry point -- the
miners, the HPM losses, ``toposeg mine`` and the Table-2 benchmark -- is
:data:`DEFAULT_MINING_THRESHOLD` = 0.6, the paper's value; binarising a prediction for
inference and evaluation is a different threshold, 0.5):

* :func:`thpm` (eq. 3): ``H = p_t XOR y``.
* :func:`phpm` (eq. 4-5): birth/death pixels of the cubical persistence pairs of
  ``p_f = p`` where ``p_t != y`` else ``y``, superlevel filtration (foreground 8/26-connected),
  restricted to misclassified pixels.
* :func:`shpm` (eq. 6-8): skeleton pixels of the ground truth the prediction misses, and skeleton
  pixels of the prediction outside the ground truth; the skeleton is
  :func:`toposeg.skeleton.skeletonize` with a thinning rule ``method`` (default ``"thin"``) and an
  implementation ``backend`` (default ``"auto"``). Two candidate options, off by default (the paper):
  ``pos_filter="gap"`` keeps only missed skeleton runs that are real gaps of the prediction
  (:func:`gap_filter`), ``neg_filter="spurious_whole"`` mines every pixel of a predicted component
  that touches no ground truth (:func:`spurious_whole`).

Targets are binary and shaped like ``prob``; a multi-class class-index map ``(N, *S)`` is refused
with the conversion to one-hot in the message (:func:`check_target_layout`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Optional

import numpy as np
import torch

from toposeg._checks import check_batched, describe, check_binary, check_probabilities, check_same_shape, check_threshold
from toposeg.skeleton import skeletonize
from toposeg.topology.betti import DEFAULT_CONNECTIVITY, CONNECTIVITIES, connected_components, structure

#: valid ``pos_filter`` values of :func:`shpm` ("none" = the paper)
POS_FILTERS: tuple[str, ...] = ("none", "gap")
#: valid ``neg_filter`` values of :func:`shpm` ("none" = the paper)
NEG_FILTERS: tuple[str, ...] = ("none", "spurious_whole")


#: Threshold ``t`` of ``p_t = p > t`` for hard pixel mining: the paper's 0.6. The one default of
#: every mining entry point (miners, HPM losses, ``HPMTerm``, ``toposeg mine``, the Table-2
#: benchmark). Not the binarisation threshold of inference/evaluation (0.5).
DEFAULT_MINING_THRESHOLD: float = 0.6

_ONE_HOT = "torch.nn.functional.one_hot({t}.long(), {c}).movedim(-1, 1)"


def check_target_layout(input: torch.Tensor, target: torch.Tensor, names: tuple[str, str] = ("input", "target")) -> None:
    """``target`` must be shaped like ``input`` ``(N, C, *S)``: one binary channel per input channel.

    A different shape raises ``ValueError`` saying what was received, what is expected and, for
    the usual mistake -- a multi-class class-index map ``(N, *S)`` or ``(N, 1, *S)`` passed with a
    ``C``-channel input -- how to convert it (``torch.nn.functional.one_hot(t, C).movedim(-1, 1)``).
    """
    a, b = names
    shp_in, shp_t = tuple(input.shape), tuple(target.shape)
    if shp_in == shp_t:
        return
    c = shp_in[1]
    expected = (f"{b} must be shaped like {a} {shp_in}: (N, C, *S) with one binary channel (float 0/1 or bool) "
                f"per {a} channel, i.e. one-hot for multi-class")
    if len(shp_t) == len(shp_in) - 1 and shp_t[0] == shp_in[0] and shp_t[1:] == shp_in[2:]:
        if c > 1:
            raise ValueError(
                f"{b} has shape {shp_t}, which looks like a class-index map (N, *S), but {expected}; "
                f"convert class indices with {_ONE_HOT.format(t=b, c=c)}"
            )
        raise ValueError(f"{b} has shape {shp_t} without a channel axis; {expected}; "
                         f"add the channel axis with {b}.unsqueeze(1)")
    if len(shp_t) == len(shp_in) and shp_t[0] == shp_in[0] and shp_t[2:] == shp_in[2:]:
        hint = (f"; if it holds class indices 0..{c - 1}, convert with {_ONE_HOT.format(t=b + '[:, 0]', c=c)}"
                if shp_t[1] == 1 and c > 1 else "")
        raise ValueError(f"{b} has {shp_t[1]} channel(s) but {a} has {c} ({a} {shp_in}, {b} {shp_t}); "
                         f"{expected}{hint}")
    check_same_shape(input, target, names)


def _prepare(prob: torch.Tensor, target: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    check_batched(prob, "prob")
    if not prob.is_floating_point():
        raise TypeError(f"prob must be a floating-point tensor of probabilities, got dtype {prob.dtype}")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor shaped like prob, got {describe(target)}")
    check_target_layout(prob, target, ("prob", "target"))
    check_probabilities(prob, "prob")
    check_binary(target, "target")
    return prob.detach() > check_threshold(threshold), target.bool()


def _check_workers(workers: Optional[int]) -> Optional[int]:
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    return workers


def _skeleton_per_channel(mask: torch.Tensor, method: str, backend: str) -> torch.Tensor:
    n, c = mask.shape[:2]
    flat = mask.reshape(n * c, 1, *mask.shape[2:])
    return skeletonize(flat, method=method, backend=backend).reshape(mask.shape)


@torch.no_grad()
def thpm(prob: torch.Tensor, target: torch.Tensor, *,
         threshold: float = DEFAULT_MINING_THRESHOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3: every misclassified pixel, ``H = p_t XOR y``, split into missed (pos) and false (neg).

    Args:
        prob: float probabilities ``(N, C, *S)`` in [0, 1] (2 or 3 spatial dims).
        target: binary tensor shaped like ``prob`` (one-hot for multi-class).
        threshold: ``t`` of ``p_t = prob > t``, default :data:`DEFAULT_MINING_THRESHOLD` (0.6).

    Returns:
        ``(pos, neg)`` bool tensors shaped like ``prob``, on its device.
    """
    pred, y = _prepare(prob, target, threshold)
    return y & ~pred, pred & ~y


@torch.no_grad()
def shpm(
    prob: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float = DEFAULT_MINING_THRESHOLD,
    method: str = "thin",
    backend: str = "auto",
    target_skeleton: Optional[torch.Tensor] = None,
    pos_filter: str = "none",
    neg_filter: str = "none",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6-8: skeleton-based hard pixels.

    ``pos = (p_t AND s(y)) XOR s(y)`` (ground-truth skeleton pixels the prediction misses),
    ``neg = (s(p_t) AND y) XOR s(p_t)`` (prediction skeleton pixels outside the ground truth).

    Args:
        prob: float probabilities ``(N, C, *S)`` in [0, 1] (2 or 3 spatial dims).
        target: binary tensor shaped like ``prob`` (one-hot for multi-class).
        threshold: ``t`` of ``p_t = prob > t``, default :data:`DEFAULT_MINING_THRESHOLD` (0.6).
        method: thinning rule of ``s`` (:func:`toposeg.skeleton.skeletonize`): ``"thin"``
            (default; thin and topology-preserving, 2D and 3D), ``"zhang"`` (2D, identical to
            scikit-image, the paper's code), ``"lee"`` (3D, scikit-image).
        backend: implementation of the rule, ``"auto"`` (default), ``"torch"`` or ``"skimage"``.
        target_skeleton: optional precomputed ``s(y)`` (bool, shaped like ``target``); the
            ground-truth skeleton never changes during training, so it can be computed once
            (with the same ``method``; it is used as given).
        pos_filter: ``"none"`` (default, the paper) or ``"gap"``: keep only the missed skeleton
            runs that are real gaps of ``p_t`` (:func:`gap_filter`).
        neg_filter: ``"none"`` (default, the paper) or ``"spurious_whole"``: add every pixel of
            each component of ``p_t`` that touches no ground truth (:func:`spurious_whole`).

    Returns:
        ``(pos, neg)`` bool tensors shaped like ``prob``, on its device.

    Raises:
        TypeError / ValueError: bad tensors or filter names (message quotes what was received);
        KeyError: unknown ``method`` or ``backend``.
    """
    _check_choice(pos_filter, POS_FILTERS, "pos_filter")
    _check_choice(neg_filter, NEG_FILTERS, "neg_filter")
    pred, y = _prepare(prob, target, threshold)
    if target_skeleton is None:  # one batched call for both skeletons
        both = _skeleton_per_channel(torch.cat([y, pred]), method, backend)
        sy, sp = both[: y.shape[0]], both[y.shape[0]:]
    else:
        if not isinstance(target_skeleton, torch.Tensor):
            raise TypeError(f"target_skeleton must be a bool torch.Tensor shaped like target, got {describe(target_skeleton)}")
        check_same_shape(target_skeleton, target, ("target_skeleton", "target"))
        check_binary(target_skeleton, "target_skeleton")
        sy = target_skeleton.bool().to(y.device)
        sp = _skeleton_per_channel(pred, method, backend)
    pos, neg = sy & ~pred, sp & ~y
    if pos_filter == "gap":
        pos = gap_filter(pos, pred)
    if neg_filter == "spurious_whole":
        neg = neg | spurious_whole(pred, y)
    return pos, neg


def _check_choice(value: object, valid: tuple[str, ...], name: str) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name} must be one of {list(valid)}, got {value!r}")
    return value


def _per_image(fn: Callable[..., np.ndarray], *masks: torch.Tensor) -> torch.Tensor:
    """Apply ``fn`` (bool NumPy images -> bool image) to every ``(n, c)`` image of ``(N, C, *S)`` masks."""
    arrays = [m.detach().cpu().numpy().astype(bool) for m in masks]
    out = np.zeros(arrays[0].shape, dtype=bool)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = fn(*(a[i, j] for a in arrays))
    return torch.from_numpy(out).to(masks[0].device)


def _run_is_gap(r: np.ndarray, pw: np.ndarray, fg: int, bg: int) -> bool:
    """The gap rule for one run ``r`` (bool window, run not touching the window border) and the
    prediction ``pw`` on the same window: keep unless ``k_fg == 1 and k_bg == 1`` (see :func:`gap_filter`)."""
    from scipy import ndimage

    nd = r.ndim
    ring = ndimage.binary_dilation(r, structure=structure(nd, fg)) & ~r          # D(R) minus R
    _, k_fg = connected_components(pw & ring, fg)                                # labelled inside D(R) only
    bg_labels, _ = connected_components(~pw & ring, bg)
    faces = ndimage.binary_dilation(r, structure=structure(nd, bg)) & ~r
    k_bg = int(np.count_nonzero(np.unique(bg_labels[faces])))
    return not (k_fg == 1 and k_bg == 1)


_GAP_TABLE_2D: Optional[np.ndarray] = None
_OFFSETS_2D = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _gap_table_2d() -> np.ndarray:
    """``table[code]``: the gap rule for a single missed pixel whose 8 neighbours (bit k = offset k of
    ``_OFFSETS_2D``) are predicted; built once from :func:`_run_is_gap` itself."""
    global _GAP_TABLE_2D
    if _GAP_TABLE_2D is None:
        table = np.zeros(256, dtype=bool)
        r = np.zeros((5, 5), bool)
        r[2, 2] = True
        for code in range(256):
            pw = np.zeros((5, 5), bool)
            for k, (dy, dx) in enumerate(_OFFSETS_2D):
                pw[2 + dy, 2 + dx] = bool((code >> k) & 1)
            table[code] = _run_is_gap(r, pw, 8, 4)
        _GAP_TABLE_2D = table
    return _GAP_TABLE_2D


def _gap_filter_single(missed: np.ndarray, pred: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    nd = missed.ndim
    fg = DEFAULT_CONNECTIVITY[nd]
    bg = CONNECTIVITIES[nd][fg]
    inner = (slice(1, -1),) * nd
    missed, pred = np.pad(missed, 1), np.pad(pred, 1)  # outside the image is background
    runs, n = connected_components(missed, fg)
    keep = np.zeros_like(missed)
    if n == 0:
        return keep[inner]
    sizes = np.bincount(runs.ravel(), minlength=n + 1)
    todo = np.arange(1, n + 1)
    if nd == 2:  # single pixels (most runs) by table lookup: one vectorised pass
        single = (sizes[runs] == 1) & missed
        ys, xs = np.nonzero(single)
        code = np.zeros(ys.size, dtype=np.int64)
        for k, (dy, dx) in enumerate(_OFFSETS_2D):
            code |= pred[ys + dy, xs + dx].astype(np.int64) << k
        keep[ys[_gap_table_2d()[code]], xs[_gap_table_2d()[code]]] = True
        todo = todo[sizes[1:] > 1]
    objects = ndimage.find_objects(runs)
    for k in todo:
        sl = objects[k - 1]
        win = tuple(slice(s.start - 1, s.stop + 1) for s in sl)  # the run's box grown by one (inside the padding)
        r = runs[win] == k
        if _run_is_gap(r, pred[win], fg, bg):
            keep[win] |= r
    return keep[inner]


@torch.no_grad()
def gap_filter(pos: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """``pos_filter="gap"``: keep the missed skeleton runs whose filling changes the prediction's topology locally.

    A *run* ``R`` is a connected component (foreground connectivity: 8 in 2D, 26 in 3D) of the
    missed pixels ``pos``. Its neighbourhood is ``D(R)`` = ``R`` dilated by the full 3x3(x3)
    cube, minus ``R`` (outside the image counts as predicted background). Within ``D(R)`` only, count

    * ``k_fg`` = components of the predicted foreground ``pred ∩ D(R)`` (8 / 26-connected);
    * ``k_bg`` = components of the predicted background ``¬pred ∩ D(R)`` (4 / 6-connected) that
      contain a face neighbour (4 / 6-neighbour) of ``R``.

    ``R`` is dropped when ``k_fg == 1 and k_bg == 1`` -- the prediction next to it is one piece
    and filling ``R`` neither joins pieces nor closes a hole (the prediction already connects
    across it: a slightly shifted prediction, or a missed tip of a branch). Kept: ``k_fg == 0``
    (a missed structure), ``k_fg >= 2`` (a real gap; filling joins pieces), ``k_bg == 0`` (a
    pinhole of the prediction on the skeleton), ``k_bg >= 2``. For a single pixel in 2D this is
    the classical simple-point test (Rosenfeld), applied to ``pred ∪ {q}``: a missed pixel is
    dropped exactly when it is a simple point.

    Args:
        pos: bool ``(N, C, *S)`` missed skeleton pixels (``H_pos`` of :func:`shpm`).
        pred: bool ``(N, C, *S)`` binarised prediction ``p_t`` (same shape).

    Returns:
        bool tensor shaped like ``pos``, a subset of it, on its device.
    """
    check_same_shape(pos, pred, ("pos", "pred"))
    return _per_image(_gap_filter_single, pos, pred)


def _spurious_single(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    labels, n = connected_components(pred, DEFAULT_CONNECTIVITY[pred.ndim])
    if n == 0:
        return np.zeros_like(pred)
    touched = np.zeros(n + 1, dtype=bool)
    touched[np.unique(labels[y])] = True
    touched[0] = True
    return ~touched[labels]


@torch.no_grad()
def spurious_whole(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``neg_filter="spurious_whole"``: every pixel of a predicted component touching no ground truth.

    Components of ``pred`` use the foreground connectivity (8 in 2D, 26 in 3D); a component is
    spurious when none of its pixels is ground-truth foreground. SHPM's ``H_neg`` alone mines only
    the skeleton of such a blob: pushing its medial axis below ``t`` can cut a blob wider than the
    skeleton into two fragments. Adding the whole blob pushes it down as one.

    Args:
        pred: bool ``(N, C, *S)`` binarised prediction ``p_t``; target: bool, same shape.

    Returns:
        bool tensor shaped like ``pred`` (all its pixels are outside ``target``).
    """
    check_same_shape(pred, target, ("pred", "target"))
    return _per_image(_spurious_single, pred, target)


def _phpm_single(p: np.ndarray, pt: np.ndarray, y: np.ndarray, dims: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    from toposeg.topology.persistence import critical_pixels

    wrong = pt != y
    if not wrong.any():
        empty = np.zeros(p.shape, dtype=bool)
        return empty, empty
    p_f = np.where(wrong, p.astype(np.float64), y.astype(np.float64))  # eq. 4
    hard = critical_pixels(p_f, dims=dims, superlevel=True) & wrong  # eq. 5, misclassified only
    return hard & y, hard & ~y


@torch.no_grad()
def phpm(
    prob: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float = DEFAULT_MINING_THRESHOLD,
    dims: Iterable[int] = (0, 1),
    workers: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 4-5: persistent-homology hard pixels.

    ``p_f = p`` where ``p_t != y`` else ``y`` (true positives clamped to 1, true negatives to 0);
    ``H`` = birth and death pixels of the finite cubical persistence pairs of ``p_f`` in the
    homology dimensions ``dims``, keeping only misclassified pixels. The filtration is by
    superlevel sets (foreground = high probability), T-construction, so the foreground is
    8-connected in 2D and 26-connected in 3D (see :mod:`toposeg.topology.persistence`).
    ``pos`` = hard pixels with ``y = 1`` (missed), ``neg`` = hard pixels with ``y = 0``.

    Args:
        threshold: ``t`` of ``p_t = prob > t``, default :data:`DEFAULT_MINING_THRESHOLD` (0.6).
        dims: homology dimensions, a subset of ``{0, .., ndim-1}`` ({1} membranes, {0, 1} roads,
            {0} 3D vessels in the paper).
        workers: threads over the ``N * C`` images (the library releases the GIL); default
            ``min(N * C, os.cpu_count())``.
    """
    from toposeg.topology.persistence import _check_dims

    pred, y = _prepare(prob, target, threshold)
    dims = _check_dims(dims, prob.ndim - 2)
    workers = _check_workers(workers)
    p_np = prob.detach().to(torch.float64).cpu().numpy()
    y_np = y.cpu().numpy()
    pt_np = pred.cpu().numpy()
    n, c = p_np.shape[:2]
    items = [(i, j) for i in range(n) for j in range(c)]
    pos = np.zeros(p_np.shape, dtype=bool)
    neg = np.zeros(p_np.shape, dtype=bool)

    def work(item: tuple[int, int]) -> None:
        i, j = item
        pos[i, j], neg[i, j] = _phpm_single(p_np[i, j], pt_np[i, j], y_np[i, j], dims)

    n_workers = min(len(items), workers or os.cpu_count() or 1)
    if n_workers <= 1:
        for item in items:
            work(item)
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            list(pool.map(work, items))
    return torch.from_numpy(pos).to(prob.device), torch.from_numpy(neg).to(prob.device)


MINERS: dict[str, Callable[..., tuple[torch.Tensor, torch.Tensor]]] = {"thpm": thpm, "phpm": phpm, "shpm": shpm}


def mine(name: str, prob: torch.Tensor, target: torch.Tensor, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the miner ``name`` (one of :data:`MINERS`)."""
    if name not in MINERS:
        raise KeyError(f"unknown miner {name!r}; valid: {sorted(MINERS)}")
    return MINERS[name](prob, target, **options)


__all__ = ["DEFAULT_MINING_THRESHOLD", "MINERS", "NEG_FILTERS", "POS_FILTERS", "check_target_layout", "gap_filter", "mine",
           "phpm", "shpm", "spurious_whole", "thpm"]

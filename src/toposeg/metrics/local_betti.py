"""Local Betti error: Betti-number differences in windows, so that errors cannot cancel.

Source: X. Hu, F. Li, D. Samaras, C. Chen, "Topology-preserving deep image segmentation",
NeurIPS 2019, Sec. 4 ("Betti error"): the mean, over patches of the image, of the absolute
difference between the Betti numbers of the predicted patch and of the ground-truth patch. Hu et
al. sample the patches at random; toposeg uses a deterministic tiling so that the value is
reproducible:

- windows: a grid of non-overlapping ``window``-sized tiles (stride = window), starting at the
  array origin; default 64×64 in 2D and 32×32×32 in 3D (our choice; the paper's text does not
  fix a size);
- borders: the masks are padded with background up to a multiple of the window, so the last
  tiles along an axis are the remaining pixels surrounded by background;
- each tile is a standalone image: everything outside it is background, the connectivity pair is
  the same as for the whole-image Betti numbers (:func:`toposeg.metrics.betti_numbers`);
- 3D: tiles are cubes, with β0, β1 (loops) and β2 (cavities) per tile;
- aggregation: the **mean over all tiles** (empty tiles included, contributing 0) per dimension;
  ``local_betti_error`` is the sum of the per-dimension means.
"""

from __future__ import annotations

import itertools
from typing import Optional, Sequence, Union

import numpy as np
from scipy import ndimage

from toposeg.metrics._inputs import as_pair
from toposeg.topology.betti import _FULL, resolve_connectivity, structure

__all__ = ["DEFAULT_WINDOW", "local_betti_error", "local_betti_keys", "tile_betti_numbers"]

#: default tile edge length per spatial ndim
DEFAULT_WINDOW: dict[int, int] = {2: 64, 3: 32}


def local_betti_keys(ndim: int) -> tuple[str, ...]:
    """Keys returned by :func:`local_betti_error` for ``ndim``-D masks."""
    return tuple(f"local_betti{k}_error" for k in range(ndim)) + ("local_betti_error",)


def _window(ndim: int, window: Union[None, int, Sequence[int]]) -> tuple[int, ...]:
    if window is None:
        return (DEFAULT_WINDOW[ndim],) * ndim
    items = (window,) * ndim if isinstance(window, (int, np.integer)) and not isinstance(window, bool) else window
    try:
        w = tuple(items)
    except TypeError:
        raise TypeError(f"window must be an int or a sequence of {ndim} ints, got {window!r}") from None
    if len(w) != ndim or any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1 for x in w):
        raise ValueError(f"window must be a positive int or {ndim} positive ints for {ndim}D masks, got {window!r}")
    return tuple(int(x) for x in w)


def _tiles(m: np.ndarray, w: tuple[int, ...]) -> np.ndarray:
    """``(n_tiles, *w)`` view of ``m`` padded with False to a multiple of ``w`` (row-major tiles)."""
    pad = [(0, (-s) % k) for s, k in zip(m.shape, w)]
    x = np.pad(m, pad)
    d = m.ndim
    grid = [s // k for s, k in zip(x.shape, w)]
    x = x.reshape([v for g, k in zip(grid, w) for v in (g, k)])
    x = x.transpose(list(range(0, 2 * d, 2)) + list(range(1, 2 * d, 2)))
    return np.ascontiguousarray(x.reshape((-1,) + w))


def _per_tile_counts(labels: np.ndarray) -> np.ndarray:
    """Number of labels in each tile (labels are numbered in scan order, so tile by tile)."""
    last = labels.reshape(labels.shape[0], -1).max(axis=1)
    last = np.maximum.accumulate(last)
    return np.diff(np.concatenate([[0], last]))


def _tile_label(tiles: np.ndarray, conn: int) -> tuple[np.ndarray, np.ndarray]:
    st = np.zeros((3,) + (3,) * (tiles.ndim - 1), bool)
    st[1] = structure(tiles.ndim - 1, conn)      # never connect across tiles
    labels, _ = ndimage.label(tiles, structure=st)
    return labels, _per_tile_counts(labels)


def _tile_euler(tiles: np.ndarray, fg: int) -> np.ndarray:
    """Euler characteristic of each tile (cell counting as in toposeg.topology.betti)."""
    full = fg in _FULL
    d = tiles.ndim - 1
    x = np.pad(tiles, [(0, 0)] + [(1, 1)] * d) if full else tiles
    chi = np.zeros(tiles.shape[0], np.int64)
    for r in range(d + 1):
        for axes in itertools.combinations(range(1, d + 1), r):
            w = x
            for a in axes:
                lo = [slice(None)] * (d + 1)
                hi = [slice(None)] * (d + 1)
                lo[a], hi[a] = slice(None, -1), slice(1, None)
                w = (w[tuple(lo)] | w[tuple(hi)]) if full else (w[tuple(lo)] & w[tuple(hi)])
            dim = d - r if full else r
            chi += (-1) ** dim * np.count_nonzero(w.reshape(w.shape[0], -1), axis=1)
    return chi


def tile_betti_numbers(mask: np.ndarray, window: tuple[int, ...], fg: int, bg: int) -> np.ndarray:
    """``(n_tiles, ndim)`` Betti numbers of each tile of a bool mask (tiles as in the module doc)."""
    tiles = _tiles(mask, window)
    n = tiles.shape[0]
    _, b0 = _tile_label(tiles, fg)
    lab_bg, n_bg = _tile_label(~tiles, bg)
    border = np.zeros(int(lab_bg.max()) + 1, bool)
    d = mask.ndim
    for axis in range(1, d + 1):
        for index in (0, -1):
            border[np.take(lab_bg, index, axis=axis).reshape(-1)] = True
    border[0] = False
    # tile of every background label: labels of tile i are (cum[i-1], cum[i]]
    cum = np.cumsum(n_bg)
    touching = np.flatnonzero(border)
    per_tile_touching = np.bincount(np.searchsorted(cum, touching, side="left"), minlength=n)[:n]
    holes = n_bg - per_tile_touching
    if d == 2:
        return np.stack([b0, holes], axis=1)
    chi = _tile_euler(tiles, fg)
    return np.stack([b0, b0 + holes - chi, holes], axis=1)


def local_betti_error(pred: object, target: object, *, window: Union[None, int, Sequence[int]] = None,
                      connectivity: Optional[int] = None) -> dict[str, float]:
    """Mean absolute Betti-number difference over a grid of tiles (Hu et al., NeurIPS 2019).

    Args:
        pred, target: binary masks (bool or {0, 1}; NumPy arrays or tensors) of the same 2D
            ``(H, W)`` or 3D ``(D, H, W)`` shape.
        window: tile size in pixels/voxels, an int for every axis or one int per axis (default
            64 in 2D, 32 in 3D). Tiles do not overlap; the masks are padded with background to
            a multiple of the window.
        connectivity: foreground connectivity (None = 8 in 2D, 26 in 3D; background dual).

    Returns:
        ``{"local_betti0_error": …, "local_betti1_error": …, ["local_betti2_error": …,]
        "local_betti_error": sum}``: per dimension k, the mean over tiles of
        ``|β_k(pred tile) − β_k(target tile)|``. Never NaN.

    Raises:
        TypeError / ValueError: invalid masks, shapes, connectivity or window (messages quote
            what was received).
    """
    p, t = as_pair(pred, target)
    fg, bg = resolve_connectivity(p.ndim, connectivity)
    w = _window(p.ndim, window)
    diff = np.abs(tile_betti_numbers(p, w, fg, bg) - tile_betti_numbers(t, w, fg, bg)).mean(axis=0)
    out = {f"local_betti{k}_error": float(v) for k, v in enumerate(diff)}
    out["local_betti_error"] = float(diff.sum())
    return out

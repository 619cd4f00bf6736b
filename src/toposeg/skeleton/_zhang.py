"""2D thinning in pure tensor operations, bit-for-bit equal to scikit-image's Zhang-Suen.

scikit-image's ``skeletonize(image, method="zhang")`` works like this (its documented
semantics, reproduced here with tensor operations):

- the image is zero padded by one pixel (pixels outside the image are background);
- every foreground pixel gets an 8-neighbour code
  ``1*NW + 2*N + 4*NE + 8*E + 16*SE + 32*S + 64*SW + 128*W``;
- one *iteration* is two parallel sub-iterations: the first deletes the pixels whose code is in
  the first deletion set, the second (on the image left by the first) those whose code is in the
  second set; within a sub-iteration every pixel is decided from the same image;
- iterations repeat until one iteration deletes nothing.

The two deletion sets (a 256-entry lookup table) were recovered from scikit-image's *observable
behaviour*: starting from the textbook Zhang-Suen conditions, each table entry was fitted so that
thinning agrees with ``skimage.morphology.skeletonize`` on every binary image up to 4x5 pixels
and on 300 000 random 5x5-7x7 images (they differ from the textbook rules in a handful of
entries, e.g. diagonal 2-pixel lines). ``tests/test_skeleton_2d.py`` checks equality on thousands
of further images, including 256x256 ones.

Here the whole batch is processed at once; samples that have converged are left unchanged by
further iterations (an iteration that deletes nothing is a no-op), so stopping when the whole
batch is stable gives exactly the per-sample result.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# bit k of the neighbour code <- pixel at offset (drow, dcol)
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))

# codes deleted in the first / second sub-iteration
_DELETE_FIRST = (
    3, 6, 7, 10, 11, 12, 14, 15, 28, 30, 31, 40, 60, 112, 120, 124, 130, 131, 134, 135, 143, 159,
    160, 161, 193, 194, 195, 198, 199, 207, 225, 227, 231, 240, 241, 243,
)
_DELETE_SECOND = (
    7, 10, 15, 24, 26, 28, 30, 31, 40, 56, 60, 62, 63, 96, 104, 108, 112, 120, 124, 126, 130, 135,
    160, 176, 192, 193, 195, 199, 224, 225, 240, 241, 248, 249, 252,
)

_TABLE_CACHE: dict[torch.device, torch.Tensor] = {}


def deletion_tables(device: torch.device | str = "cpu") -> torch.Tensor:
    """``(2, 256)`` bool table: ``[s, code]`` is True if sub-iteration ``s`` deletes ``code``."""
    device = torch.device(device)
    table = _TABLE_CACHE.get(device)
    if table is None:
        table = torch.zeros(2, 256, dtype=torch.bool)
        table[0, list(_DELETE_FIRST)] = True
        table[1, list(_DELETE_SECOND)] = True
        table = table.to(device)
        _TABLE_CACHE[device] = table
    return table


def neighbour_code(padded: torch.Tensor) -> torch.Tensor:
    """8-neighbour code (int64) of the interior of a zero-padded ``(N, H+2, W+2)`` uint8 image."""
    h, w = padded.shape[-2] - 2, padded.shape[-1] - 2
    code = torch.zeros(padded.shape[:-2] + (h, w), dtype=torch.int64, device=padded.device)
    for bit, (dr, dc) in enumerate(_OFFSETS):
        code += padded[..., 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w].to(torch.int64) << bit
    return code


def zhang_torch(mask: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen skeleton of a bool ``(N, C, H, W)`` tensor (channels independent).

    Only pixels whose neighbourhood changed are re-examined: a pixel's code changes only when one
    of its 8 neighbours is deleted, so in sub-iteration ``t`` (>= 2) the candidates are the
    foreground neighbours of the pixels deleted in sub-iterations ``t-1`` and ``t-2``; every
    other pixel has the code it had when the same sub-iteration type last kept it. Sub-iterations
    0 and 1 also examine every foreground pixel with a background neighbour (the others have code
    255, which no sub-iteration deletes). Stopping after two consecutive sub-iterations that
    delete nothing gives scikit-image's result (its next full iteration would delete nothing).
    """
    n, c, h, w = mask.shape
    if mask.numel() == 0:
        return mask.clone()
    x = F.pad(mask.reshape(n * c, h, w).to(torch.uint8), (1, 1, 1, 1)).contiguous()
    flat = x.view(-1)
    dev = x.device
    table = deletion_tables(dev)
    offs = torch.tensor([dr * (w + 2) + dc for dr, dc in _OFFSETS], dtype=torch.int64, device=dev)
    weights = torch.tensor([1 << k for k in range(8)], dtype=torch.int64, device=dev)
    # foreground pixels with a background 8-neighbour (interior pixels, code 255, never go)
    near_bg = F.max_pool2d((x == 0).to(torch.float32)[:, None], 3, stride=1, padding=1)[:, 0] > 0
    fg = torch.nonzero(((x != 0) & near_bg).view(-1)).flatten()
    owner = torch.empty(flat.shape, dtype=torch.int64, device=dev)  # scratch for de-duplication
    recent: list[torch.Tensor] = []  # pixels deleted in the last two sub-iterations
    empty_runs, t = 0, 0
    while empty_runs < 2 and fg.numel():
        if t == 0:
            cand = fg
        else:
            near = (torch.cat(recent)[:, None] + offs).flatten()
            if t == 1:  # not yet examined by the second sub-iteration
                near = torch.cat([fg, near])
            near = near[flat.index_select(0, near) != 0]
            # de-duplicate without sorting: one writer wins each position
            ids = torch.arange(near.numel(), device=dev)
            owner[near] = ids
            cand = near[owner.index_select(0, near) == ids]
        nb = flat.index_select(0, (cand[:, None] + offs).flatten()).view(-1, len(_OFFSETS))
        code = (nb.to(torch.int64) * weights).sum(dim=1)
        deleted = cand[table[t % 2].index_select(0, code)]
        flat[deleted] = 0
        recent = [*recent[-1:], deleted]
        empty_runs = empty_runs + 1 if deleted.numel() == 0 else 0
        t += 1
    return x[:, 1:-1, 1:-1].bool().reshape(n, c, h, w)

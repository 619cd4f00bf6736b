"""3D curve-skeleton thinning in pure tensor operations (any device, whole batch at once).

Algorithm (Lee, Kashyap & Chu 1994, scikit-image's 3D method, with its sequential re-check made
parallel and exact with subfields):

- foreground is 26-connected, background 6-connected; the volume is zero padded by one voxel
  (and cropped to the foreground's bounding box, which changes nothing);
- one *iteration* visits the six face directions (-W, +W, +H, -H, +D, -D, Lee's order). For a
  direction, the candidates are decided on the image at the start of the sub-iteration: foreground
  voxels whose 6-neighbour in that direction is background, that are simple and that are not
  curve end points (exactly one foreground 26-neighbour) -- Lee's candidate list;
- the candidates are then re-checked and deleted in the eight subfields of the 2x2x2
  checkerboard (equal coordinate parities in the *uncropped* volume): a candidate is deleted if
  it is still simple in the current image. Two voxels of one subfield are never 26-adjacent and
  simplicity depends only on the 26-neighbourhood, so deleting a whole subfield at once equals
  deleting its voxels one by one: every deletion is the deletion of a simple point, hence the
  thinning preserves topology (it is a homotopy: β0, β1, β2 are preserved);
- iterations repeat until one deletes nothing. Then no simple non-end voxel is left (a simple
  voxel always has a background 6-neighbour, so it would have been a candidate), which also makes
  the result idempotent.

Simple point test (Malandain & Bertrand): ``x`` is simple for (26, 6) iff the foreground of
``N26(x) \\ {x}`` has exactly one 26-component (C* = 1) and the background of ``N18(x) \\ {x}``
has exactly one 6-component that is 6-adjacent to ``x`` (C̄ = 1). C̄ = 1 is a lookup in a table
over the 2**18 configurations of N18 (built once by bit-parallel flood fill on 27-bit codes);
C* = 1 is tested through the Euler characteristic of the attachment set (see :func:`is_simple`).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

# the 26 neighbour offsets (dz, dy, dx), center excluded; bit of (dz, dy, dx) in the 27-bit code
_N26 = [o for o in itertools.product((-1, 0, 1), repeat=3) if o != (0, 0, 0)]
_N27 = list(itertools.product((-1, 0, 1), repeat=3))


def _bit(o: tuple[int, int, int]) -> int:
    return (o[0] + 1) * 9 + (o[1] + 1) * 3 + (o[2] + 1)


def _mask(pred) -> int:
    return sum(1 << _bit(o) for o in _N27 if pred(o))


_FULL = _mask(lambda o: True)
_CENTER = 1 << 13
_N18 = _mask(lambda o: 1 <= sum(map(abs, o)) <= 2)
_FACES = _mask(lambda o: sum(map(abs, o)) == 1)
_NOT_X0, _NOT_X2 = _FULL & ~_mask(lambda o: o[2] == -1), _FULL & ~_mask(lambda o: o[2] == 1)
_NOT_Y0, _NOT_Y2 = _FULL & ~_mask(lambda o: o[1] == -1), _FULL & ~_mask(lambda o: o[1] == 1)


def _shift_x(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (r << 1) & _NOT_X0, (r >> 1) & _NOT_X2


def _shift_y(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return (r << 3) & _NOT_Y0, (r >> 3) & _NOT_Y2


def _dilate26(r: torch.Tensor) -> torch.Tensor:
    a, b = _shift_x(r)
    r = r | a | b
    a, b = _shift_y(r)
    r = r | a | b
    return (r | (r << 9) | (r >> 9)) & _FULL


def _dilate6(r: torch.Tensor) -> torch.Tensor:
    a, b = _shift_x(r)
    c, d = _shift_y(r)
    return (r | a | b | c | d | (r << 9) | (r >> 9)) & _FULL


def _one_component(region: torch.Tensor, seeds: torch.Tensor, dilate, steps: int) -> torch.Tensor:
    """True where the flood fill of ``region`` from the lowest bit of ``seeds`` covers all seeds.

    ``steps`` fixed dilation steps are done first; more follow (with a convergence check) only if
    the fill is still growing.
    """
    reach = seeds & -seeds  # lowest set bit (0 if no seed)
    for _ in range(steps):
        reach = dilate(reach) & region
    while True:
        grown = dilate(reach) & region
        if bool((grown == reach).all()):
            break
        reach = grown
    return (seeds != 0) & ((seeds & ~reach) == 0)


def _one_background_component(code: torch.Tensor) -> torch.Tensor:
    """C̄ == 1: the background of N18 has exactly one 6-component 6-adjacent to the center."""
    bg18 = ~code & _N18
    # faces are linked only through edge voxels, so a 6-path inside N18 has at most 10 steps
    return _one_component(bg18, bg18 & _FACES, _dilate6, steps=10)


# The 18 bits of N18, in bit order; index of a neighbourhood into the C̄ table
_N18_BITS = [b for b in range(27) if _N18 >> b & 1]
_BG_TABLE: dict[torch.device, torch.Tensor] = {}


def _background_table(device: torch.device) -> torch.Tensor:
    """``(2**18,)`` bool: C̄ == 1 for every configuration of N18 (built once, ~0.1 s)."""
    if device not in _BG_TABLE:
        i = np.arange(1 << 18, dtype=np.int64)  # NumPy: the bit operations work on both
        code = np.zeros_like(i)
        for k, b in enumerate(_N18_BITS):
            code |= ((i >> k) & 1) << b
        _BG_TABLE[device] = torch.from_numpy(_one_background_component(code)).to(device)
    return _BG_TABLE[device]


def _cell_masks() -> tuple[list[int], list[int]]:
    """Boundary cells of the center cube (8 vertices, 12 edges, 6 faces): for each, the bit mask
    of the neighbour voxels whose closed cube contains it, and its sign in the Euler sum."""
    masks, signs = [], []
    for cell in itertools.product((-1, 0, 1), repeat=3):
        if cell == (0, 0, 0):
            continue
        # a cell at offset c (c_i = -1/+1: on that side of the cube, 0: spans the axis) lies in
        # the closed cubes of the neighbours o with o_i in {0, c_i} (and o_i = 0 where c_i = 0)
        m = _mask(lambda o, c=cell: o != (0, 0, 0) and all(oi in (0, ci) for oi, ci in zip(o, c)))
        dim = sum(ci == 0 for ci in cell)  # 0 = vertex, 1 = edge, 2 = face
        masks.append(m)
        signs.append(1 if dim != 1 else -1)
    return masks, signs


_CELL_MASKS, _CELL_SIGNS = _cell_masks()


def _consts(device: torch.device) -> dict[str, torch.Tensor]:
    if device not in _CONSTS:
        i64 = dict(dtype=torch.int64, device=device)
        _CONSTS[device] = {
            "masks": torch.tensor(_CELL_MASKS, **i64),
            "signs": torch.tensor(_CELL_SIGNS, **i64),
            # bit k of the N18 index <- bit _N18_BITS[k] of the 27-bit code
            "w18": torch.tensor([1 << _N18_BITS.index(_bit(o)) if _bit(o) in _N18_BITS else 0 for o in _N26], **i64),
            "w27": torch.tensor([1 << _bit(o) for o in _N26], **i64),
        }
    return _CONSTS[device]


_CONSTS: dict[torch.device, dict[str, torch.Tensor]] = {}


def is_simple(nb: torch.Tensor) -> torch.Tensor:
    """(26, 6) simple-point test for a batch of neighbourhoods.

    ``x`` is simple iff C̄ == 1 and the attachment set ``A`` (the part of the boundary of x's cube
    covered by the closed cubes of foreground neighbours) has Euler characteristic 1: ``A`` lies on
    a sphere and, with one complementary component, ``χ(A) = C* - (C̄ - 1) = C*`` (Alexander
    duality), so ``χ(A) == 1`` iff ``C* == 1``.

    Args:
        nb: ``(M, 26)`` bool, the 26 neighbours of each voxel in ``itertools.product((-1, 0, 1),
            repeat=3)`` order with the center left out.
    """
    k = _consts(nb.device)
    nbl = nb.to(torch.int64)
    one_bg = _background_table(nb.device).index_select(0, (nbl * k["w18"]).sum(dim=1))
    code = (nbl * k["w27"]).sum(dim=1)
    chi = (((code[:, None] & k["masks"]) != 0).to(torch.int64) * k["signs"]).sum(dim=1)
    return one_bg & (chi == 1)


def _is_simple_floodfill(code: torch.Tensor) -> torch.Tensor:
    """Same test by direct component counting (slower; kept to cross-check the fast one)."""
    fg = code & (_FULL & ~_CENTER)
    return _one_background_component(code) & _one_component(fg, fg, _dilate26, steps=4)


def neighbourhood_code(nb: torch.Tensor) -> torch.Tensor:
    """27-bit int64 codes of ``(M, 26)`` neighbourhoods (order of :data:`_N26`), center bit 0."""
    return (nb.to(torch.int64) * _consts(nb.device)["w27"]).sum(dim=1)


# directions as (dz, dy, dx); Lee's order: W, E, S, N, U, B
_DIRECTIONS = ((0, 0, -1), (0, 0, 1), (0, 1, 0), (0, -1, 0), (1, 0, 0), (-1, 0, 0))


def _crop_box(x: torch.Tensor) -> tuple[slice, ...]:
    """Per spatial axis of ``(N, *S)``: the slice holding all foreground (empty if none)."""
    box = []
    for axis in range(1, x.ndim):
        other = tuple(a for a in range(x.ndim) if a != axis)
        idx = torch.nonzero(x.any(dim=other)).flatten()
        if idx.numel() == 0:
            return tuple(slice(0, 0) for _ in range(1, x.ndim))
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(box)


def thin3d_torch(mask: torch.Tensor) -> torch.Tensor:
    """Curve skeleton of a bool ``(N, C, D, H, W)`` tensor (channels independent)."""
    n, c, d, h, w = mask.shape
    out = torch.zeros_like(mask, dtype=torch.bool)
    if mask.numel() == 0:
        return out
    src = mask.reshape(n * c, d, h, w).bool()
    box = _crop_box(src)
    if box[0].stop == 0:
        return out
    # crop to the foreground's bounding box, zero frame of one voxel: identical result
    x = F.pad(src[(slice(None), *box)].to(torch.uint8), (1, 1, 1, 1, 1, 1)).contiguous()
    flat = x.view(-1)

    def take(idx: torch.Tensor) -> torch.Tensor:
        return flat.index_select(0, idx)  # much faster than flat[idx] on the CPU

    dev = x.device
    _, pd, ph, pw = x.shape
    sz, sy = ph * pw, pw
    offs = torch.tensor([dz * sz + dy * sy + dx for dz, dy, dx in _N26], dtype=torch.int64, device=dev)
    # foreground positions (flat indices into the padded volume), grouped by subfield
    pos = torch.nonzero(flat).flatten()
    z, y, xx = (pos // sz) % pd, (pos // sy) % ph, pos % pw
    # subfield = coordinate parities in the *uncropped* volume, so that the result does not depend
    # on the crop (i.e. on the other samples of the batch)
    z, y, xx = z - 1 + box[0].start, y - 1 + box[1].start, xx - 1 + box[2].start
    field = (z & 1) * 4 + (y & 1) * 2 + (xx & 1)
    order = torch.argsort(field, stable=True)
    pos, field = pos[order], field[order]
    while pos.numel():
        bounds = [0, *torch.bincount(field, minlength=8).cumsum(0).tolist()]
        removed = 0
        for dz, dy, dx in _DIRECTIONS:
            step = dz * sz + dy * sy + dx
            # candidates, decided on the image at the start of the direction: border voxels of
            # this direction that are simple and not curve end points (Lee's candidate list)
            cand = (take(pos) != 0) & (take(pos + step) == 0)
            idx = torch.nonzero(cand).flatten()
            nb = take((pos.index_select(0, idx)[:, None] + offs).flatten()).view(-1, len(_N26)) != 0
            cand[idx] = (nb.sum(dim=1) != 1) & is_simple(nb)
            changed = False  # has this direction deleted anything yet?
            for f in range(8):
                lo, hi = bounds[f], bounds[f + 1]
                if hi == lo:
                    continue
                p = pos[lo:hi][cand[lo:hi]]
                if p.numel() == 0:
                    continue
                if changed:
                    # re-check on the current image (earlier subfields changed it); a subfield
                    # holds no two 26-adjacent voxels, so parallel = sequential deletion
                    p = p[is_simple(take((p[:, None] + offs).flatten()).view(-1, len(_N26)) != 0)]
                if p.numel():
                    flat[p] = 0
                    removed += int(p.numel())
                    changed = True
        if removed == 0:
            break
        alive = take(pos) != 0
        pos, field = pos[alive], field[alive]
    inner = x[:, 1:-1, 1:-1, 1:-1].bool()
    out.view(n * c, d, h, w)[(slice(None), *box)] = inner
    return out

"""toposeg's 2D thinning rule "thin": directional parallel thinning with an exact simple-point test.

Topology: foreground 8-connected, background 4-connected; outside the image is background.

The rule
--------
- A pixel is **simple** if deleting it changes no topology: the foreground of its 8-neighbourhood
  (centre left out) has exactly one 8-component, and the background of its 8-neighbourhood has
  exactly one 4-component that is 4-adjacent to the pixel. This is a property of the 8-neighbour
  code alone, so it is a 256-entry lookup table (:data:`SIMPLE`), built here by flood fill.
- An **end point** has exactly one foreground 8-neighbour; end points are never deleted (they
  carry the branches of the skeleton).
- One **iteration** is four directional passes, North, South, East, West (alternating opposite
  sides keeps the skeleton centred). The pass of direction ``d`` deletes, all at once, every
  foreground pixel whose 4-neighbour in direction ``d`` is background (a *``d``-border* pixel),
  that is simple and that is not an end point, all decided on the image at the start of the pass
  (one table lookup per pixel, :func:`deletion_tables`).
- Iterations repeat until one deletes nothing; then the re-routing stage below runs.

Why it preserves topology (every input, any batch, any device)
--------------------------------------------------------------
By Ronse's theorem (C. Ronse, "Minimal test patterns for connectivity preservation in parallel
thinning algorithms for binary digital images", Discrete Applied Mathematics 21, 1988, 67-79),
deleting a set ``D`` of pixels at once preserves (8, 4) topology if (i) every pixel of ``D`` is
simple, (ii) for any two 4-adjacent pixels ``p``, ``q`` of ``D``, ``q`` is still simple once ``p``
is deleted, and (iii) ``D`` contains no whole 8-component that fits in a 2x2 square. For one
directional pass, (i) holds by construction; two ``d``-border pixels are never adjacent along
``d`` (the inner one's ``d``-neighbour would be the outer, foreground one), so (ii) concerns only
the two pixels side by side, a finite set of 3x4 configurations, and (iii) a finite set of 2x2
configurations: ``tests/test_skeleton_thin2d.py`` checks all of them for all four directions.
(The same tests check β0 and β1 on all 3x3/4x4 images and thousands of random ones.)

Why the result is thin
----------------------
When an iteration deletes nothing, every simple non-end pixel would have been deleted: a simple
pixel always has a background 4-neighbour (otherwise no background component touches it), so it
is a ``d``-border pixel for some ``d`` and was examined there. So the result has **no simple
pixel with more than one 8-neighbour**, and thinning it again changes nothing (idempotent).

Pixels with four foreground 4-neighbours
----------------------------------------
Such a pixel is never simple (deleting it opens a hole), so thinning alone can leave one, e.g.
at the junction of four branches ("+"). A **re-routing stage** then tries, around each such pixel
``p``, the eight moves of :data:`MOVES`: add a diagonal neighbour ``q`` of ``p`` that belongs to
the input, delete the 4-neighbour ``n`` of ``p`` next to ``q``, delete ``p`` -- three sequential
steps, each tested exactly (``q`` simple once added; ``n``, then ``p``, simple and not end points
when deleted), so topology is preserved. A move is applied only if no pixel gains four
foreground 4-neighbours; it removes one pixel in all, so thinning and re-routing alternate until
neither changes anything (this ends). A pixel with four foreground 4-neighbours that remains is
one none of these moves removes: some are forced (the crossing of two 1-pixel lines, which no
thinning that keeps topology and end points can remove), others, in noise-like masks with many
small holes, would need a non-local change (measured in ``docs/skeleton.md``). The result is still thin in the sense above (the last stage is a thinning
that deleted nothing) and a subset of the input.

Implementations (identical results, tested): a *sparse* one for the CPU, which only examines the
current border pixels (a list of flat indices that grows by the 4-neighbours of deleted pixels),
and a *dense* one (whole-image tensor operations, no host synchronisation inside an iteration)
for accelerators.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# bit k of the 8-neighbour code <- pixel at offset (drow, dcol); same order as _zhang
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
_BIT_N, _BIT_E, _BIT_S, _BIT_W = 1 << 1, 1 << 3, 1 << 5, 1 << 7

#: directions in visiting order: (name, bit of the direction's 4-neighbour, (drow, dcol))
DIRECTIONS = (("N", _BIT_N, (-1, 0)), ("S", _BIT_S, (1, 0)), ("E", _BIT_E, (0, 1)), ("W", _BIT_W, (0, -1)))


def _components(cells: set[tuple[int, int]], steps: tuple[tuple[int, int], ...]) -> list[set[tuple[int, int]]]:
    comps, left = [], set(cells)
    while left:
        stack = [left.pop()]
        comp = set(stack)
        while stack:
            r, c = stack.pop()
            for dr, dc in steps:
                q = (r + dr, c + dc)
                if q in left:
                    left.remove(q)
                    comp.add(q)
                    stack.append(q)
        comps.append(comp)
    return comps


_STEPS8 = tuple(o for o in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)))
_STEPS4 = ((-1, 0), (1, 0), (0, -1), (0, 1))


def _is_simple_code(code: int) -> bool:
    fg = {o for k, o in enumerate(_OFFSETS) if code >> k & 1}
    bg = {o for k, o in enumerate(_OFFSETS) if not code >> k & 1}
    n_fg = len(_components(fg, _STEPS8))
    n_bg = sum(1 for comp in _components(bg, _STEPS4) if comp & set(_STEPS4))
    return n_fg == 1 and n_bg == 1


#: 256 entries: SIMPLE[code] is True iff a foreground pixel with 8-neighbour code ``code`` is
#: simple for (8, 4) topology.
SIMPLE: tuple[bool, ...] = tuple(_is_simple_code(c) for c in range(256))

_LUT_CACHE: dict[torch.device, torch.Tensor] = {}


def deletion_tables(device: torch.device | str = "cpu") -> torch.Tensor:
    """``(4, 256)`` bool: ``[i, code]`` is True if direction ``DIRECTIONS[i]`` deletes ``code``
    (simple, more than one 8-neighbour, background neighbour in that direction)."""
    device = torch.device(device)
    table = _LUT_CACHE.get(device)
    if table is None:
        rows = [
            [SIMPLE[c] and bin(c).count("1") > 1 and not c & bit for c in range(256)]
            for _, bit, _ in DIRECTIONS
        ]
        table = torch.tensor(rows, dtype=torch.bool, device=device)
        _LUT_CACHE[device] = table
    return table


def _thin_dense(x: torch.Tensor, changed: torch.Tensor | None = None) -> None:
    """Thinning stage, whole-image tensor operations, in place on a zero-framed uint8
    ``(B, H+2, W+2)`` (``changed`` is not needed: every pixel is examined)."""
    b, hp, wp = x.shape
    h, w = hp - 2, wp - 2
    dev = x.device
    table = deletion_tables(dev)
    weights = [1 << k for k in range(8)]
    while True:
        before = x.clone()
        for i in range(len(DIRECTIONS)):
            code = torch.zeros((b, h, w), dtype=torch.uint8, device=dev)
            for wgt, (dr, dc) in zip(weights, _OFFSETS):
                code += x[:, 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w] * wgt
            inner = x[:, 1:-1, 1:-1]
            inner.masked_fill_(table[i][code.long()] & (inner != 0), 0)
        if torch.equal(before, x):
            break


def _thin_sparse(x: torch.Tensor, changed: torch.Tensor | None = None) -> None:
    """Thinning stage on an active list of pixels (flat indices), in place on a zero-framed
    uint8 ``(B, H+2, W+2)``; same result as :func:`_thin_dense`.

    Whether a pass deletes a pixel depends only on the pass (direction) and on the pixel's
    8-neighbour code, and the 4 passes repeat in a fixed cycle. A pixel whose 3x3 neighbourhood
    has not changed during the last 4 passes was kept by every pass with its current code, so it
    need not be examined until a neighbour changes. The active list starts
    with every border pixel (foreground with a background 4-neighbour; no other pixel is simple)
    or, if ``changed`` (flat indices of pixels changed since a thinning of ``x`` converged) is
    given, with their 3x3 neighbourhoods; the 8-neighbours of deleted pixels join it, and every 4
    passes the pixels untouched for 4 passes leave it. The stage ends after 4 consecutive passes
    that delete nothing.
    """
    flat = x.view(-1)
    dev = x.device
    _, hp, wp = x.shape
    table = deletion_tables(dev)
    offs8 = torch.tensor([dr * wp + dc for dr, dc in _OFFSETS], dtype=torch.int64, device=dev)
    weights = torch.tensor([1 << k for k in range(8)], dtype=torch.int64, device=dev)
    owner = torch.empty(flat.shape, dtype=torch.int64, device=dev)  # scratch for de-duplication
    listed = torch.zeros(flat.shape, dtype=torch.bool, device=dev)
    touched = torch.zeros(flat.shape, dtype=torch.int64, device=dev)  # last pass that changed a neighbour

    def take(src: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return src.index_select(0, idx)  # much faster than src[idx] on the CPU

    def unique(idx: torch.Tensor) -> torch.Tensor:  # without sorting: one writer wins each position
        ids = torch.arange(idx.numel(), device=dev)
        owner[idx] = ids
        return idx[take(owner, idx) == ids]

    if changed is None:
        inner = x[:, 1:-1, 1:-1]
        full4 = (x[:, :-2, 1:-1] & x[:, 2:, 1:-1] & x[:, 1:-1, :-2] & x[:, 1:-1, 2:]) != 0
        border = torch.zeros_like(x, dtype=torch.bool)
        border[:, 1:-1, 1:-1] = (inner != 0) & ~full4
        act = torch.nonzero(border.view(-1)).flatten()
    else:
        near = torch.cat([changed, (changed[:, None] + offs8).flatten()])
        act = unique(near[take(flat, near) != 0])
    listed[act] = True
    passes = [(table[i], dr * wp + dc) for i, (_, _, (dr, dc)) in enumerate(DIRECTIONS)]
    cycle = len(passes)
    t = empty_runs = 0
    while empty_runs < cycle and act.numel():
        lut, step = passes[t % cycle]
        t += 1
        p = act[(take(flat, act + step) == 0) & (take(flat, act) != 0)]
        nb = take(flat, (p[:, None] + offs8).flatten()).view(-1, 8)
        code = (nb.to(torch.int64) * weights).sum(dim=1)
        dead = p[take(lut, code)]
        if dead.numel() == 0:
            empty_runs += 1
        else:
            empty_runs = 0
            flat[dead] = 0
            near = (dead[:, None] + offs8).flatten()
            near = near[take(flat, near) != 0]
            touched[near] = t
            new = unique(near[~take(listed, near)])
            if new.numel():
                listed[new] = True
                act = torch.cat([act, new])
        if t % cycle == 0 and t > cycle:  # drop deleted pixels and those untouched for a cycle
            keep = (take(flat, act) != 0) & (take(touched, act) > t - cycle)
            listed[act[~keep]] = False
            act = act[keep]


# Re-routing moves around a pixel p whose four 4-neighbours are foreground (offsets from p):
# add the diagonal neighbour q (a pixel of the input), delete the 4-neighbour n of p next to q,
# then delete p. Tried in this order; the first valid one is applied.
MOVES: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((-1, 1), (0, 1)), ((-1, 1), (-1, 0)), ((1, 1), (0, 1)), ((1, 1), (1, 0)),
    ((1, -1), (0, -1)), ((1, -1), (1, 0)), ((-1, -1), (0, -1)), ((-1, -1), (-1, 0)),
)
_FIELD = 5  # moves applied together are >= 5 apart: each reads within 3 of p, writes within 1


def _bitmask(dr: int, dc: int) -> int:
    return 1 << _OFFSETS.index((dr, dc))


def _reroute(x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor | None:
    """Re-routing stage, in place on ``x`` (the thinned image; ``x0`` the input, both zero-framed
    uint8 ``(B, H+2, W+2)``). Returns the flat indices of the changed pixels, None if no move
    was applied.

    Each move is three sequential steps, each tested exactly: adding ``q`` (it must be simple in
    the image with ``q``), deleting ``n`` and then ``p`` (each simple and not an end point when it
    is deleted). A move is applied only if it makes no new pixel with four foreground
    4-neighbours (only ``q``'s two outer 4-neighbours can become one), so it removes one such
    pixel and one foreground pixel in all. Moves are applied in 25 subfields (coordinates
    modulo 5): moves of one subfield are >= 5 apart, and a move reads pixels within 3 of ``p``
    and writes within 1, so applying them at once equals applying them one by one.
    """
    flat, flat0 = x.view(-1), x0.view(-1)
    dev = x.device
    _, hp, wp = x.shape
    full4 = (x[:, :-2, 1:-1] & x[:, 2:, 1:-1] & x[:, 1:-1, :-2] & x[:, 1:-1, 2:]) != 0
    interior = torch.zeros_like(x, dtype=torch.bool)
    interior[:, 1:-1, 1:-1] = (x[:, 1:-1, 1:-1] != 0) & full4
    cand = torch.nonzero(interior.view(-1)).flatten()
    if cand.numel() == 0:
        return None
    simple, popcount = _code_tables(dev)
    offs8 = torch.tensor([dr * wp + dc for dr, dc in _OFFSETS], dtype=torch.int64, device=dev)
    offs4 = torch.tensor([-wp, wp, 1, -1], dtype=torch.int64, device=dev)
    weights = torch.tensor([1 << k for k in range(8)], dtype=torch.int64, device=dev)
    last = flat.numel() - 1

    def codes(idx: torch.Tensor) -> torch.Tensor:
        nb = flat.index_select(0, (idx[:, None] + offs8).flatten()).view(-1, 8)
        return (nb.to(torch.int64) * weights).sum(dim=1)

    def fg(idx: torch.Tensor) -> torch.Tensor:
        return flat.index_select(0, idx.clamp(0, last).flatten()).view(idx.shape) != 0

    moves = []
    for (qr, qc), (nr, nc) in MOVES:
        moves.append((qr * wp + qc, nr * wp + nc, _bitmask(qr - nr, qc - nc),
                      _bitmask(qr, qc), _bitmask(nr, nc), (qr * wp, qc)))
    field = ((cand // wp) % hp % _FIELD) * _FIELD + (cand % wp) % _FIELD
    applied: list[torch.Tensor] = []
    for f in range(_FIELD * _FIELD):
        p = cand[field == f]
        if p.numel() == 0:
            continue
        p = p[(flat[p] != 0) & (flat[p[:, None] + offs4] != 0).all(dim=1)]  # still interior
        if p.numel() == 0:
            continue
        code_p = codes(p)
        valid = torch.zeros((p.numel(), len(moves)), dtype=torch.bool, device=dev)
        for m, (dq, dn, q_from_n, q_from_p, n_from_p, outer) in enumerate(moves):
            q, n = p + dq, p + dn
            ok = (flat0[q] != 0) & (flat[q] == 0) & simple[codes(q)]  # adding q keeps topology
            cn = codes(n) | q_from_n  # n's code once q is added
            ok &= simple[cn] & (popcount[cn] > 1)
            cp = (code_p | q_from_p) & ~n_from_p  # p's code once q is added and n deleted
            ok &= simple[cp] & (popcount[cp] > 1)
            for step in outer:  # q's outer 4-neighbours must not get four foreground 4-neighbours
                o = q + step
                nb = o[:, None] + offs4
                nb_fg = fg(nb) | (nb == q[:, None])
                ok &= ~(fg(o) & nb_fg.all(dim=1))
            valid[:, m] = ok
        has = valid.any(dim=1)
        if not bool(has.any()):
            continue
        order = torch.arange(len(moves), device=dev).expand_as(valid)
        first = torch.where(valid, order, len(moves)).min(dim=1).values[has]  # first valid move
        p = p[has]
        dq = torch.tensor([mv[0] for mv in moves], dtype=torch.int64, device=dev)[first]
        dn = torch.tensor([mv[1] for mv in moves], dtype=torch.int64, device=dev)[first]
        flat[p + dq] = 1
        flat[p + dn] = 0
        flat[p] = 0
        applied += [p, p + dq, p + dn]
    return torch.cat(applied) if applied else None


_CODE_TABLES: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}


def _code_tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(SIMPLE, popcount)`` as tensors indexed by the 8-neighbour code."""
    if device not in _CODE_TABLES:
        _CODE_TABLES[device] = (
            torch.tensor(SIMPLE, dtype=torch.bool, device=device),
            torch.tensor([bin(c).count("1") for c in range(256)], dtype=torch.int64, device=device),
        )
    return _CODE_TABLES[device]


def _run(mask: torch.Tensor, thin_stage) -> torch.Tensor:
    n, c, h, w = mask.shape
    if mask.numel() == 0:
        return mask.clone().bool()
    x0 = F.pad(mask.reshape(n * c, h, w).to(torch.uint8), (1, 1, 1, 1)).contiguous()
    x = x0.clone()
    changed = None
    while True:  # ends: every applied move removes one pixel, thinning never adds one
        thin_stage(x, changed)
        changed = _reroute(x, x0)
        if changed is None:
            break
    return x[:, 1:-1, 1:-1].bool().reshape(n, c, h, w)


def thin2d_sparse(mask: torch.Tensor) -> torch.Tensor:
    """The "thin" rule, thinning stage on border-pixel lists: bool ``(N, C, H, W)`` -> bool."""
    return _run(mask, _thin_sparse)


def thin2d_dense(mask: torch.Tensor) -> torch.Tensor:
    """The "thin" rule, thinning stage with whole-image operations: bool ``(N, C, H, W)`` -> bool."""
    return _run(mask, _thin_dense)


def thin2d_torch(mask: torch.Tensor) -> torch.Tensor:
    """The "thin" rule for a bool ``(N, C, H, W)`` tensor (channels independent): thinning stage
    on border-pixel lists on the CPU, whole-image operations elsewhere (identical results)."""
    return thin2d_sparse(mask) if mask.device.type == "cpu" else thin2d_dense(mask)

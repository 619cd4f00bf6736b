"""Seeded synthetic data with known topology.

Kinds (:data:`SYNTHETIC`): ``vessels2d`` (retina-like trees, crossings), ``membranes2d``
(EM-like cell boundaries), ``roads2d`` (3-channel road networks with loops), ``vessels3d``
(coronary-like trees in 72 x 128 x 128 volumes). Each generator is ``f(size=..., seed=...) ->
(image (C, *S) float32, label (*S) bool)``; images are hard in the way real data is (fading
thin structures, gaps and occlusions in the image but not in the label, structured background,
distractors, blur, noise). The label's Betti numbers are in ``case.meta["betti"]`` (computed
with :func:`toposeg.metrics.betti_numbers`, default dual connectivity).

Generators are versioned (:data:`GENERATOR_VERSION`): a change to what a kind generates for a
given ``(size, seed)`` gets a new version, recorded in ``case.meta["generator_version"]`` and in
what ``toposeg synth`` writes, so that tables of different versions are never mixed. Vessels
version "2" makes every labelled branch visible at its own scale (docs/data.md).
"""

from __future__ import annotations

from typing import Callable, Sequence, Union, overload

import numpy as np

from toposeg.data.case import Case
from toposeg.data.synthetic.membranes import membranes2d
from toposeg.data.synthetic.roads import roads2d
from toposeg.data.synthetic.vessels import VERSION as _VESSELS_VERSION
from toposeg.data.synthetic.vessels import vessels2d, vessels3d

SYNTHETIC: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "vessels2d": vessels2d,
    "membranes2d": membranes2d,
    "roads2d": roads2d,
    "vessels3d": vessels3d,
}

#: current generator version of each kind (strings; compare for equality only). ``vessels2d`` and
#: ``vessels3d`` "1": the original vessels; "2": every branch >= 12 px long has a contrast-to-noise
#: ratio >= 1 at its own scale (contrast floor for thin branches, occlusions only on vessels >= 3 px
#: wide and away from branch ends and forks, distractor blobs off the vessels' surroundings).
GENERATOR_VERSION: dict[str, str] = {
    "vessels2d": _VESSELS_VERSION,
    "membranes2d": "1",
    "roads2d": "1",
    "vessels3d": _VESSELS_VERSION,
}


def _check_kind(kind: str) -> None:
    if kind not in SYNTHETIC:
        raise KeyError(f"unknown synthetic kind {kind!r}; valid: {sorted(SYNTHETIC)}")


def case_seed(seed: int, index: int) -> int:
    """The generator seed of case ``index`` of a dataset seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def synthetic_case(kind: str, index: int, *, size: Union[int, Sequence[int]] = 128, seed: int = 0) -> Case:
    """Case ``index`` of a synthetic ``kind`` (current generator version); depends only on
    ``(kind, size, seed, index)`` and :data:`GENERATOR_VERSION`. ``meta``: ``kind``, ``seed``,
    ``index``, ``generator_version`` (str) and ``betti`` (tuple of ints)."""
    from toposeg.metrics.betti import betti_numbers

    _check_kind(kind)
    image, label = SYNTHETIC[kind](size=size, seed=case_seed(seed, index))
    meta = {"kind": kind, "seed": int(seed), "index": int(index), "generator_version": GENERATOR_VERSION[kind],
            "betti": tuple(int(b) for b in betti_numbers(label))}
    return Case(id=f"{kind}_{index:04d}", image=image, label=label, meta=meta)


class SyntheticCases(Sequence):
    """Lazy sequence of ``n`` synthetic cases (generated on access, nothing cached)."""

    def __init__(self, kind: str, n: int, *, size: Union[int, Sequence[int]] = 128, seed: int = 0) -> None:
        _check_kind(kind)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        self.kind, self.n, self.size, self.seed = kind, int(n), size, int(seed)
        self.ids = [f"{kind}_{i:04d}" for i in range(self.n)]
        #: label polarity (see :class:`toposeg.data.lazy.LazyCases`): generated bool labels, which
        #: ``toposeg synth`` writes as 0/255 (2D) or 0/1 (3D) masks
        self.label_foreground = "nonzero"
        self.label_source = f"generated ({kind}, generator version {GENERATOR_VERSION[kind]})"
        self.generator_version = GENERATOR_VERSION[kind]

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> Case: ...
    @overload
    def __getitem__(self, i: slice) -> list[Case]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"case index must be an int or slice, got {type(i).__name__}")
        j = int(i) + self.n if i < 0 else int(i)
        if not 0 <= j < self.n:
            raise IndexError(f"case index {i} out of range for {self.n} cases")
        return synthetic_case(self.kind, j, size=self.size, seed=self.seed)

    def __repr__(self) -> str:
        return (f"SyntheticCases({self.kind!r}, n={self.n}, size={self.size!r}, seed={self.seed}, "
                f"generator_version={self.generator_version!r})")


def make_synthetic(kind: str, n: int, *, size: Union[int, Sequence[int]] = 128, seed: int = 0) -> list[Case]:
    """``n`` seeded cases of a synthetic ``kind``; case ``i`` depends only on ``(seed, i)``."""
    _check_kind(kind)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return list(SyntheticCases(kind, n, size=size, seed=seed))


__all__ = ["GENERATOR_VERSION", "SYNTHETIC", "SyntheticCases", "case_seed", "make_synthetic", "membranes2d", "roads2d",
           "synthetic_case", "vessels2d", "vessels3d"]

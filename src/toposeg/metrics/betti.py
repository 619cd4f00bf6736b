"""Betti numbers and Betti errors (the topology itself lives in :mod:`toposeg.topology`)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from toposeg.topology.betti import betti_numbers, euler_characteristic, resolve_connectivity

__all__ = ["betti_errors", "betti_numbers", "euler_characteristic", "resolve_connectivity"]


def betti_errors(pred: np.ndarray, target: np.ndarray, *, connectivity: Optional[int] = None) -> tuple[int, ...]:
    """``|β_k(pred) − β_k(target)|`` for each k (same connectivity pair for both)."""
    from toposeg.metrics._inputs import as_pair

    p, t = as_pair(pred, target)
    bp = betti_numbers(p, connectivity=connectivity)
    bt = betti_numbers(t, connectivity=connectivity)
    return tuple(abs(a - b) for a, b in zip(bp, bt))

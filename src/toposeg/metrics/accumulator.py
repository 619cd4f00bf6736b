"""Aggregate per-case metrics over a dataset: NaN-aware mean, std and counts."""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import numpy as np

from toposeg.metrics.case import evaluate_case


class MetricAccumulator:
    """Collects one row of metrics per case and summarises them.

    Example::

        acc = MetricAccumulator(connectivity=None)
        for case_id, pred, gt in cases:
            acc.update(pred, gt, case_id=case_id)     # runs evaluate_case
        acc.update({"dice": 0.5}, case_id="precomputed")  # or add a finished row
        acc.compute()["dice"]  # {"mean": ..., "std": ..., "n_valid": ..., "n": ...}
        acc.per_case()         # [{"case_id": ..., "dice": ..., ...}, ...]

    Undefined values are NaN: they are excluded from mean/std but counted in ``n`` (so
    ``n - n_valid`` says how many cases were undefined) — never silently turned into 0.
    ``std`` is the population standard deviation (ddof=0) of the valid values.

    Args:
        connectivity, skeleton_method, skeleton_backend: passed to :func:`evaluate_case` for
            every ``update(pred, target)`` (defaults: 8/26 foreground connectivity, the
            ``"thin"`` skeleton rule, ``"auto"`` implementation).
    """

    def __init__(self, *, connectivity: Optional[int] = None, skeleton_method: str = "thin",
                 skeleton_backend: str = "auto") -> None:
        self.connectivity = connectivity
        self.skeleton_method = skeleton_method
        self.skeleton_backend = skeleton_backend
        self._rows: list[dict[str, Any]] = []
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._rows)

    def reset(self) -> None:
        self._rows.clear()
        self._ids.clear()

    def update(self, pred: object, target: object = None, *, case_id: Optional[str] = None) -> dict[str, float]:
        """Add one case: ``update(pred, target, case_id=...)`` evaluates the pair with
        :func:`evaluate_case`; ``update(metrics_dict, case_id)`` adds a finished row.
        Returns the row's metrics."""
        if isinstance(pred, Mapping):
            if isinstance(target, str) and case_id is None:  # update(metrics_dict, "case-id")
                target, case_id = None, target
            if target is not None:
                raise TypeError(f"update(metrics_dict, case_id) takes no target mask, got {type(target).__name__}")
            metrics = {}
            for k, v in pred.items():
                if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float, np.number)):
                    raise TypeError(f"metric rows map names to numbers, got {k!r}: {type(v).__name__}")
                metrics[k] = float(v)
        else:
            if target is None:
                raise TypeError("update(pred, target, case_id=...) needs a target mask (or pass a metrics dict)")
            metrics = evaluate_case(pred, target, connectivity=self.connectivity,
                                    skeleton_method=self.skeleton_method, skeleton_backend=self.skeleton_backend)
        cid = str(case_id) if case_id is not None else f"case{len(self._rows):04d}"
        if cid in self._ids:
            raise ValueError(f"duplicate case_id {cid!r}")
        self._ids.add(cid)
        self._rows.append({"case_id": cid, **metrics})
        return metrics

    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for row in self._rows:
            for k in row:
                if k != "case_id":
                    names.setdefault(k, None)
        return list(names)

    def per_case(self) -> list[dict[str, Any]]:
        """One dict per case (``case_id`` first), in insertion order; missing metrics are NaN."""
        names = self.metric_names()
        return [{"case_id": r["case_id"], **{k: r.get(k, math.nan) for k in names}} for r in self._rows]

    def compute(self) -> dict[str, dict[str, float]]:
        """``{metric: {"mean", "std", "n_valid", "n"}}``; mean/std NaN when no case is valid."""
        out: dict[str, dict[str, float]] = {}
        for k in self.metric_names():
            v = np.array([r.get(k, math.nan) for r in self._rows], dtype=np.float64)
            valid = v[~np.isnan(v)]
            out[k] = {
                "mean": float(valid.mean()) if valid.size else math.nan,
                "std": float(valid.std()) if valid.size else math.nan,
                "n_valid": int(valid.size),
                "n": int(v.size),
            }
        return out


#: alias (MONAI-style name)
Evaluator = MetricAccumulator

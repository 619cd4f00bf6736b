"""Paired per-case comparison of each method with the baseline: bootstrap CI and Wilcoxon p.

A comparison of two training methods is paired: both are scored on the same test cases. For every
method and metric toposeg reports the mean of the per-case differences ``method - baseline``, a
percentile bootstrap 95 % confidence interval of that mean, and the two-sided Wilcoxon
signed-rank p-value (``scipy.stats.wilcoxon``). With several seeds, each case's value is first
averaged over the seeds of its method, so that cases, not seeds, are the statistical unit.

Rows are plain dicts with at least ``method``, ``case`` (a case identifier unique over folds, e.g.
``"fold0/12"``) and metric values; ``seed`` is optional. Undefined values (NaN/None) drop that case
from that metric's comparison and are counted in ``n_dropped``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, Path]


def _value(v: Any) -> float:
    if v is None or v == "":
        return math.nan
    return float(v)


def case_means(rows: Iterable[Mapping[str, Any]], metric: str) -> dict[str, dict[str, float]]:
    """``{method: {case: value averaged over seeds}}`` for one metric (NaN values are skipped)."""
    acc: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        v = _value(r.get(metric))
        if not math.isnan(v):
            acc[str(r["method"])][str(r["case"])].append(v)
    return {m: {c: float(np.mean(vs)) for c, vs in per.items()} for m, per in acc.items()}


def bootstrap_ci(diffs: Sequence[float], *, confidence: float = 0.95, n_boot: int = 10000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``diffs`` (resampling cases).

    Raises:
        ValueError: empty ``diffs`` or ``confidence`` outside (0, 1).
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        raise ValueError("bootstrap_ci needs at least one paired difference, got none")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def wilcoxon_p(diffs: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of ``diffs`` (1.0 when every difference is 0, NaN if empty)."""
    from scipy.stats import wilcoxon

    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        return math.nan
    if not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, alternative="two-sided").pvalue)


def paired_comparison(rows: Iterable[Mapping[str, Any]], *, baseline: str, metrics: Sequence[str],
                      confidence: float = 0.95, n_boot: int = 10000, seed: int = 0) -> dict[str, dict[str, dict]]:
    """``{method: {metric: {mean_diff, ci_low, ci_high, p_wilcoxon, n, n_dropped, diffs}}}``.

    ``diffs`` maps case -> ``method - baseline`` (seed-averaged values). Methods other than
    ``baseline`` found in ``rows`` are compared; cases missing in either method are dropped.

    Raises:
        KeyError: ``baseline`` not among the methods of ``rows``.
    """
    rows = list(rows)
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    if baseline not in methods:
        raise KeyError(f"baseline {baseline!r} not among the methods {methods}")
    out: dict[str, dict[str, dict]] = {}
    for metric in metrics:
        per = case_means(rows, metric)
        base = per.get(baseline, {})
        all_cases = {str(r["case"]) for r in rows}
        for m in methods:
            if m == baseline:
                continue
            mine = per.get(m, {})
            common = sorted(set(base) & set(mine))
            diffs = {c: mine[c] - base[c] for c in common}
            d = list(diffs.values())
            lo, hi = bootstrap_ci(d, confidence=confidence, n_boot=n_boot, seed=seed) if d else (math.nan, math.nan)
            out.setdefault(m, {})[metric] = {
                "mean_diff": float(np.mean(d)) if d else math.nan, "ci_low": lo, "ci_high": hi,
                "p_wilcoxon": wilcoxon_p(d), "n": len(d), "n_dropped": len(all_cases) - len(d), "diffs": diffs,
            }
    return out


def paired_markdown(result: Mapping[str, Mapping[str, Mapping[str, Any]]], metrics: Sequence[str], *,
                    baseline: str, digits: int = 3) -> str:
    """Markdown table: one row per method, ``Δ mean [CI low, CI high] (p)`` per metric."""
    lines = [f"| Method − {baseline} | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for method, per in result.items():
        cells = []
        for m in metrics:
            s = per.get(m)
            if not s or s["n"] == 0:
                cells.append("n/a")
                continue
            cells.append(f"{s['mean_diff']:+.{digits}f} [{s['ci_low']:+.{digits}f}, {s['ci_high']:+.{digits}f}] "
                         f"(p={s['p_wilcoxon']:.2g}, n={s['n']})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_figure(path: PathLike, result: Mapping[str, Mapping[str, Mapping[str, Any]]], metrics: Sequence[str], *,
                  baseline: str, title: Optional[str] = None) -> Path:
    """One panel per metric: one dot per case (``method - baseline``) per method, mean and CI bars."""
    from toposeg.reports._figure import pyplot, save

    methods = list(result)
    fig, axes = pyplot().subplots(1, len(metrics), figsize=(2.6 * len(metrics) + 1.0, 0.45 * len(methods) + 2.0),
                                  squeeze=False, constrained_layout=True)
    axes = axes.ravel()
    rng = np.random.default_rng(0)
    for ax, metric in zip(axes, metrics):
        for i, method in enumerate(methods):
            s = result[method].get(metric)
            if not s or s["n"] == 0:
                continue
            d = np.asarray(list(s["diffs"].values()))
            ax.scatter(d, i + rng.uniform(-0.18, 0.18, d.size), s=8, alpha=0.5, color="tab:blue", linewidths=0)
            ax.errorbar([s["mean_diff"]], [i], xerr=[[s["mean_diff"] - s["ci_low"]], [s["ci_high"] - s["mean_diff"]]],
                        fmt="D", color="black", markersize=4, capsize=3)
        ax.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods if ax is axes[0] else [])
        ax.set_ylim(-0.6, len(methods) - 0.4)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(title or f"Paired per-case difference to {baseline} (mean, 95 % bootstrap CI)", fontsize=9)
    return save(fig, path, dpi=120)

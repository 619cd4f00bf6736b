"""Result tables in the layout of the paper's Table 1: mean ± std per method, best in bold."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

# metric -> (column title, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "dice": ("Dice ↑", True),
    "iou": ("IoU ↑", True),
    "miou": ("mIoU ↑", True),
    "cldice": ("clDice ↑", True),
    "voi": ("VOI ↓", False),
    "are": ("ARE ↓", False),
    "betti0_error": ("β0 error ↓", False),
    "betti1_error": ("β1 error ↓", False),
    "betti2_error": ("β2 error ↓", False),
    "betti_sum": ("β0 + β1 error ↓", False),  # the selection score of toposeg.reports.selection
    "apls": ("APLS ↑", True),
    "betti_matching_error": ("Betti matching error ↓", False),
    "local_betti_error": ("local Betti error ↓", False),
    # the error decomposition (toposeg.metrics.component_errors): counts per case
    "spurious_components": ("spurious comp. ↓", False),
    "missing_components": ("missing comp. ↓", False),
    "split_components": ("split comp. ↓", False),
    "merged_components": ("merged comp. ↓", False),
    "spurious_holes": ("spurious holes ↓", False),
    "missing_holes": ("missing holes ↓", False),
    "split_holes": ("split holes ↓", False),
    "merged_holes": ("merged holes ↓", False),
}

Summary = Mapping[str, Mapping[str, float]]  # metric -> {"mean", "std", "n_valid"}


def markdown_table(results: Mapping[str, Summary], metrics: Sequence[str], *, digits: int = 3) -> str:
    """One row per method, ``mean ± std`` per metric, best mean of each column in bold (no bold
    with a single row: there is nothing to compare)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise KeyError(f"unknown metrics {unknown}; valid: {sorted(METRICS)}")
    best: dict[str, float] = {}
    for m in metrics:
        means = [s[m]["mean"] for s in results.values() if m in s and not math.isnan(s[m]["mean"])]
        if means:
            best[m] = max(means) if METRICS[m][1] else min(means)
    if len(results) < 2:
        best = {}
    lines = ["| Method | " + " | ".join(METRICS[m][0] for m in metrics) + " |",
             "|---|" + "---|" * len(metrics)]
    for method, summary in results.items():
        cells = []
        for m in metrics:
            if m not in summary or math.isnan(summary[m]["mean"]):
                cells.append("n/a")
                continue
            mean, std = summary[m]["mean"], summary[m]["std"]
            cell = f"{mean:.{digits}f} ± {std:.{digits}f}"
            cells.append(f"**{cell}**" if m in best and round(mean, digits) == round(best[m], digits) else cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

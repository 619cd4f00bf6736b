"""Cross-validation experiments: run every (config, fold), then write Table 1 and Fig. 5."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from toposeg.config import Config
from toposeg.reports.serialize import dumps, nan_if_none, write_rows
from toposeg.reports.tables import markdown_table

TABLE1_METRICS = ("dice", "miou", "voi", "are", "betti0_error", "betti1_error")


def parse_folds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2"`` -> [0, 2]."""
    folds: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.partition("-")
            folds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise ValueError(f"folds must look like '0-4' or '0,2,3', got {text!r}") from None
    if not folds:
        raise ValueError(f"no folds in {text!r}")
    return sorted(set(folds))


def collect(out: Path, names: Sequence[str], folds: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """``test_summary.json`` of each method and fold found under ``out``."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for k in folds:
            path = out / f"fold{k}" / name / "test_summary.json"
            if path.is_file():
                found.setdefault(name, []).append(json.loads(path.read_text()))
    return found


def table1(found: dict[str, list[dict[str, Any]]], metrics: Sequence[str] = TABLE1_METRICS) -> dict[str, Any]:
    """Per method: mean ± std over folds of the per-fold means (the paper's Table 1)."""
    from toposeg.metrics import MetricAccumulator

    summary = {}
    for name, runs in found.items():
        acc = MetricAccumulator()  # one row per fold: NaN-aware mean/std over folds
        for r in runs:
            acc.update({m: nan_if_none(r["mean"].get(m)) for m in metrics}, case_id=f"fold{r['fold']}")
        stats = acc.compute()
        summary[name] = {m: stats[m] for m in metrics}
    return summary


def write_table1(out: Path, found: dict[str, list[dict[str, Any]]], *, title: str = "") -> Path:
    summary = table1(found)
    folds = sorted({r["fold"] for runs in found.values() for r in runs})
    md = markdown_table(summary, TABLE1_METRICS)
    header = title or "Table 1"
    (out / "table1.md").write_text(
        f"# {header}\n\nMean ± std over folds {folds} of the per-fold test means "
        f"(whole images, no post-processing; validation split carved from the training folds).\n\n{md}")
    (out / "table1.json").write_text(dumps({"folds": folds, "summary": summary}, indent=1))
    with (out / "table1.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", *[f"{m}_{s}" for m in TABLE1_METRICS for s in ("mean", "std")], "n_folds"])
        for name, per in summary.items():
            w.writerow([name, *[f"{per[m][s]:.6g}" for m in TABLE1_METRICS for s in ("mean", "std")], len(found[name])])
    write_rows(out / "per_case.csv",
               [{"method": n, "fold": r["fold"], **row} for n, runs in found.items() for r in runs for row in r["per_case"]])
    return out / "table1.md"


def select_methods(configs: Sequence[Config], methods: str) -> list[Config]:
    """The configs named by ``methods`` (comma-separated config names or loss names).

    Raises:
        ValueError: a name that matches no config (listing the valid names), or an empty list.
    """
    wanted = [m.strip() for m in methods.split(",") if m.strip()]
    if not wanted:
        raise ValueError(f"--methods: no names in {methods!r}")
    valid = sorted({c.name for c in configs} | {c.method.loss for c in configs})
    unknown = [m for m in wanted if m not in valid]
    if unknown:
        raise ValueError(f"--methods: {', '.join(repr(m) for m in unknown)} match(es) none of the configs; "
                         f"valid names (config names and losses): {valid}")
    return [c for c in configs if c.name in wanted or c.method.loss in wanted]


def run_cv(configs: Sequence[Config], *, data_root: Optional[str], out: Path, folds: Sequence[int], seed: int,
           device: str, progress: bool = True, resume: bool = False, log: Callable[[str], None] = print) -> Path:
    """Run every config on every fold (finished ones are skipped), then write the tables and
    figure (rank 0 only under torchrun). Every config is checked before the first fold runs."""
    from toposeg.config import validate
    from toposeg.engine.protocol import _distributed, run_fold

    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"config names must be unique (they name the run folders), got {names}")
    for cfg in configs:
        validate(cfg)
        bad = [k for k in folds if not 0 <= k < cfg.data.folds]
        if bad:
            raise ValueError(f"--folds {bad} out of range for {cfg.name!r} (data.folds={cfg.data.folds}: "
                             f"folds 0-{cfg.data.folds - 1})")
    for cfg in configs:  # data, model and loss of every config checked before any training
        run_fold(cfg, data_root=data_root, out=out, fold=folds[0], seed=seed, device=device, progress=progress,
                 resume=resume, log=log, preflight_only=True)
    for k in folds:
        for cfg in configs:
            run_fold(cfg, data_root=data_root, out=out, fold=k, seed=seed, device=device, progress=progress,
                     resume=resume, log=log)
    if _distributed()[0] != 0:  # only rank 0 writes the tables and the figure
        return out / "table1.md"
    found = collect(out, names, folds)
    path = write_table1(out, found, title=f"Table 1: {configs[0].data.kind}")
    _figure5(out, configs, folds[0], data_root)
    log("\n" + path.read_text())
    log(f"wrote {path}, table1.csv, table1.json, per_case.csv and fig5.png in {out}")
    return path


def _figure5(out: Path, configs: Sequence[Config], fold: int, data_root: Optional[str]) -> None:
    """Image, ground truth and each method's prediction for the first test cases of ``fold``."""
    from toposeg.data import open_dataset
    from toposeg.data.splits import read_splits, select
    from toposeg.engine.protocol import PREDICTIONS
    from toposeg.reports.comparison import comparison_figure

    cfg = configs[0]
    cases = open_dataset(cfg.data.kind, data_root, **cfg.data.options)
    ids = getattr(cases, "ids", None) or [c.id for c in cases]
    test_ids = read_splits(out / "splits.json", ids)[fold]["test"]
    shown = [c for c in select(cases, test_ids[:2]) if c.label.ndim == 2]
    if not shown:
        return
    preds = {}
    for c in configs:
        path = out / f"fold{fold}" / c.name / PREDICTIONS
        if not path.is_file():
            return
        with np.load(path) as stored:
            if any(case.id not in stored.files for case in shown):
                return
            preds[c.name] = [stored[case.id].astype(bool) for case in shown]
    comparison_figure(out / "fig5.png", [c.image[0] for c in shown], [c.label for c in shown], preds,
                      titles=[c.id for c in shown])

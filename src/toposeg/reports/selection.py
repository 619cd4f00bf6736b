"""Choosing the recommended method on validation splits only (docs/results.md, "How the
recommended method is chosen").

Every fine-tuning run logs validation scores in ``log.jsonl`` (key ``"val"``); the last such entry
of a finished run is the final (equal-budget) checkpoint's score on that fold's validation
sections. :func:`validation_runs` reads them, :func:`choose` applies the written rule, and
:func:`write_validation` writes ``validation.md`` / ``validation.json`` next to Table 1. Test
scores are never read here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

#: validation metrics of the table (the rule uses dice, betti0_error, betti1_error, are)
VALIDATION_METRICS = ("dice", "are", "betti0_error", "betti1_error", "betti_sum", "voi", "cldice")
DICE_MARGIN = 0.01   # a candidate's mean validation Dice may be at most this much below the baseline's
TIE = 0.01           # relative: β0 + β1 errors within 1 % are a tie, broken by ARE
RULE = ("among the methods whose mean validation Dice is at most 0.01 below the baseline's, the lowest mean "
        "validation β0 error + β1 error (final checkpoint, all folds and seeds); ties within 1 % broken by the "
        "lower validation ARE")


def final_validation(log_file: Path, steps: Optional[int] = None) -> Optional[dict[str, float]]:
    """The ``"val"`` scores of the last validation entry of a stage's ``log.jsonl``, with
    ``betti_sum`` = β0 error + β1 error added; None when the file has none or (``steps`` given)
    when the last validation is not at step ``steps`` (the final checkpoint was not validated)."""
    last = None
    if not Path(log_file).is_file():
        return None
    for line in Path(log_file).read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            if "val" in entry:
                last = entry
    if last is None or (steps is not None and last.get("step") != steps):
        return None
    val = dict(last["val"])
    if "betti0_error" in val and "betti1_error" in val:
        val["betti_sum"] = val["betti0_error"] + val["betti1_error"]
    return val


def validation_runs(out: Path, names: Sequence[str], folds: Sequence[int], seeds: Sequence[int],
                    steps: Optional[dict[str, int]] = None) -> dict[str, list[dict[str, Any]]]:
    """Per method: ``{"seed", "fold", "val"}`` of every finished run (``test_summary.json``
    present) under ``out/seed{s}/fold{k}/{name}`` whose final checkpoint was validated.
    ``steps``: per method, the fine-tuning steps the last validation must be at (optional)."""
    from toposeg.engine.protocol import run_dir

    found: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for s in seeds:
            for k in folds:
                folder = run_dir(Path(out), s, k) / name
                if not (folder / "test_summary.json").is_file():
                    continue
                val = final_validation(folder / "log.jsonl", (steps or {}).get(name))
                if val is not None:
                    found.setdefault(name, []).append({"seed": s, "fold": k, "val": val})
    return found


def summarize(found: dict[str, list[dict[str, Any]]], metrics: Sequence[str] = VALIDATION_METRICS
              ) -> dict[str, dict[str, dict[str, float]]]:
    """Per method and metric: mean and std (ddof 0) over its runs, and n."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, runs in found.items():
        table[name] = {}
        for m in metrics:
            values = np.array([r["val"][m] for r in runs if r["val"].get(m) is not None], dtype=float)
            values = values[~np.isnan(values)]
            table[name][m] = ({"mean": float(values.mean()), "std": float(values.std()), "n": int(values.size)}
                              if values.size else {"mean": math.nan, "std": math.nan, "n": 0})
    return table


def choose(summary: dict[str, dict[str, dict[str, float]]], baseline: str) -> dict[str, Any]:
    """Apply the rule (:data:`RULE`) to a :func:`summarize` table.

    Returns ``{"method", "rule", "eligible", "excluded"}``: the chosen method, the rule's text, the
    eligible methods ranked best first, and the excluded ones with the reason.

    Raises:
        ValueError: ``baseline`` has no validation scores.
    """
    if baseline not in summary or math.isnan(summary[baseline]["dice"]["mean"]):
        raise ValueError(f"the baseline {baseline!r} has no validation scores; methods with scores: {sorted(summary)}")
    floor = summary[baseline]["dice"]["mean"] - DICE_MARGIN
    eligible, excluded = [], {}
    for name, per in summary.items():
        dice, score = per["dice"]["mean"], per["betti_sum"]["mean"]
        if math.isnan(dice) or math.isnan(score):
            excluded[name] = "no validation scores"
        elif dice < floor:
            excluded[name] = f"validation Dice {dice:.4f} < baseline's {floor + DICE_MARGIN:.4f} - {DICE_MARGIN}"
        else:
            eligible.append(name)
    eligible.sort(key=lambda n: summary[n]["betti_sum"]["mean"])
    best = eligible[0]
    ties = [n for n in eligible if summary[n]["betti_sum"]["mean"] <= summary[best]["betti_sum"]["mean"] * (1 + TIE)]
    chosen = min(ties, key=lambda n: (summary[n]["are"]["mean"], eligible.index(n)))
    return {"method": chosen, "rule": RULE, "eligible": eligible, "excluded": excluded}


def complete_methods(found: dict[str, list[dict[str, Any]]], baseline: str) -> tuple[list[str], dict[str, str]]:
    """The methods that have validation scores on every (seed, fold) the baseline has (the rule
    compares methods on the same folds and seeds only), and the others with the reason."""
    blocks = {(r["seed"], r["fold"]) for r in found.get(baseline, [])}
    complete, incomplete = [], {}
    for name, runs in found.items():
        have = {(r["seed"], r["fold"]) for r in runs}
        lacking = sorted(blocks - have)
        if lacking:
            incomplete[name] = ("no validation scores for " + ", ".join(f"seed {s} fold {k}" for s, k in lacking)
                                + " (unfinished run or no log.jsonl)")
        else:
            complete.append(name)
    return complete, incomplete


def write_validation(out: Path, names: Sequence[str], folds: Sequence[int], seeds: Sequence[int],
                     baseline: Optional[str], steps: Optional[dict[str, int]] = None,
                     log: Any = print) -> Optional[Path]:
    """Write ``validation.md`` and ``validation.json`` in ``out`` (final-checkpoint validation
    scores per method, mean ± std over runs, and, with a baseline, the rule's choice among the
    methods complete on the baseline's seeds and folds, see :func:`complete_methods`); returns
    the markdown path, or None when no run has validation scores. Runs without them and
    incomplete methods are named in the files and through ``log``."""
    from toposeg.reports.serialize import dumps
    from toposeg.reports.tables import markdown_table

    found = validation_runs(out, names, folds, seeds, steps)
    if not found:
        return None
    summary = summarize(found)
    n_runs = {name: len(found.get(name, [])) for name in names}
    choice, incomplete = None, {}
    if baseline is not None and baseline in summary:
        complete, incomplete = complete_methods(found, baseline)
        choice = choose({n: summary[n] for n in complete}, baseline)
        choice["incomplete"] = incomplete
    absent = [n for n in names if n not in found]
    md = [f"# Validation scores (final checkpoint)\n\nMean ± std over the finished runs (seeds × folds) of the "
          "scores on each fold's validation sections at the last fine-tuning step. The recommended method is "
          "chosen from these alone; test scores are in table1.md.\n",
          markdown_table(summary, VALIDATION_METRICS),
          "Runs per method: " + ", ".join(f"{n} {k}" for n, k in n_runs.items()) + ".\n"]
    if absent:
        md.append(f"No validation scores (unfinished runs, or no log.jsonl): {', '.join(absent)}.\n")
    if choice is not None:
        md.append(f"**Chosen by the rule** ({RULE}): **{choice['method']}**. Eligible, best first: "
                  f"{', '.join(choice['eligible'])}."
                  + (" Excluded: " + "; ".join(f"{n} ({why})" for n, why in choice["excluded"].items()) + "."
                     if choice["excluded"] else "")
                  + (" Not compared (not on every seed and fold of the baseline): "
                     + "; ".join(f"{n} ({why})" for n, why in incomplete.items()) + "." if incomplete else "") + "\n")
    for n, why in incomplete.items():
        log(f"validation: {n} left out of the choice: {why}")
    (Path(out) / "validation.md").write_text("\n".join(md))
    (Path(out) / "validation.json").write_text(dumps({"metrics": list(VALIDATION_METRICS), "summary": summary,
                                                      "n_runs": n_runs, "baseline": baseline, "choice": choice},
                                                     indent=1))
    return Path(out) / "validation.md"

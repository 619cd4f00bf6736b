"""Where do a method's extra components and loops come from, and what does it do to the gaps?

Reads the finished runs of a ``toposeg cv`` study folder and decomposes, for every
(method, seed, fold, test case), the final checkpoint's binary test prediction against the
ground truth -> ``diagnosis.json``, ``diagnosis.md``, ``components.png``, ``telemetry.png``,
``example.png`` in ``--out``.

Usage::

    python benchmarks/diagnose_study.py --runs runs/isbi2012_quick \\
        --data-root ../shared/data/isbi2012 --baseline unet \\
        --methods unet,cldice,skeleton_recall,thpm,phpm,shpm,shpm_plus --out /tmp/diag_isbi

Inputs (read only). ``RUNS/seed{S}/fold{K}/{method}/`` as written by ``toposeg cv``. A run is
*finished* when it holds both ``test_predictions.npz`` (the final, equal-budget checkpoint's
thresholded prediction, one bool array per test case id) and ``test_summary.json`` (written last,
atomically); unfinished runs are listed and skipped. The test case ids are the keys of the npz;
when ``RUNS/splits.json`` exists they must equal that fold's ``test`` ids (else ValueError).
Only (seed, fold) blocks in which *every* method read has finished are used, so every table cell
covers the same test cases; finished runs of incomplete blocks are listed as excluded.
Within one study folder every method of a (seed, fold) fine-tunes from the same pre-training
(``seed{S}/fold{K}/pretrain``, enforced by toposeg's stage identities), so "same seed and fold" is
"same pre-training". Ground-truth labels:
``toposeg.data.open_dataset(kind, data_root, **options)[i].label`` (bool, foreground True; ISBI
2012: the dark membranes) with ``kind`` = ``data.kind`` and ``options`` = ``data.options`` of the
runs' own ``config.yaml`` (the resolved config ``toposeg cv`` writes into every run folder; every
run read must agree, and ``--data-kind``, optional, must equal it), so synthetic labels are
generated with the study's ``n``, ``size`` and ``seed``. :func:`diagnose` takes a
``{case_id: label}`` mapping instead, so it runs without any dataset.

Definitions (numpy/scipy/scikit-image only; toposeg's dual connectivity: foreground
``ndim``-connected = 8 in 2D / 26 in 3D, background 1-connected = 4 / 6; everything outside the
image is background). Per case, prediction P and ground truth G:

1. *Components* = connected components of P. **spurious**: shares no pixel with G; **on-GT**:
   the others. Counted per size bin ``1-9, 10-99, 100-999, >=1000`` px; spurious ones also as
   **near** (nearest pixel <= ``NEAR_PX`` = 3 px from G, Euclidean: debris along a structure) and
   **far** (false structures). **skeleton_islands**: on-GT components < 100 px that contain a GT
   skeleton pixel and are, on every GT component they overlap, smaller than its largest predicted
   piece (an isolated fragment of a broken structure, e.g. skeleton pixels pushed up inside a
   gap). Over the components of G:
   **gt_split** = GT components overlapped by > 1 predicted component, **split_pieces** = sum of
   ``max(0, k - 1)`` over them (k = number of overlapping predicted components; equals toposeg's
   ``split_components``), **gt_missed** = GT components overlapped by none, **merged** = predicted
   components overlapping > 1 GT component.
2. *Holes* = bounded background components of P (not touching the image border). Counted per size
   bin ``1-9`` px (**pinholes**: what the paper's clean-up of holes < 10 px removes), ``10-99``,
   ``>=100``, and by place: **on GT foreground** when more than half of the hole's pixels are G
   foreground (a pinhole in a membrane), else **on GT background**; **pinholes_in_spurious**:
   pinholes all of whose neighbouring predicted pixels belong to spurious components (holes in
   debris).
3. *Gaps*: S = ``skimage.morphology.skeletonize(G)``; **missed skeleton pixels** = S & ~P; a
   **gap** is a connected run (foreground connectivity) of missed skeleton pixels. A gap is
   **breaking** when the predicted skeleton pixels adjacent to it (its foreground-connectivity
   neighbours in S & P) lie in >= 2 different components of P (the prediction is cut there),
   **bridged** when they lie in exactly one (the prediction connects around it, e.g. a pinhole on
   the skeleton, or a truncated branch end), **isolated** when none of them is predicted.
   Against the baseline's prediction B of the same (seed, fold, case): **closed** = baseline gaps
   all of whose pixels P covers; **opened** = gaps of P none of whose pixels B misses;
   **net_closed** = closed - opened; **closed_breaking** = closed gaps that were breaking in B,
   **opened_breaking** = opened gaps that are breaking in P. These are paired quantities; their
   mean over cases and a 95 % bootstrap CI are reported directly (no baseline row).

Aggregation (as toposeg's paired tables): each case's value is averaged over the seeds of its
method (cases ``fold{K}/{case_id}`` are the unit), then the mean over cases; the paired
difference method - baseline with its 95 % percentile bootstrap CI and Wilcoxon p comes from
:func:`toposeg.reports.paired.paired_comparison` (10 000 resamples, seed 0).

Telemetry: for every run whose ``log.jsonl`` has ``"hpm"`` entries (validation steps of HPM
losses, toposeg >= the telemetry commit), per method and step the median over runs of
``hard_pos``, ``hard_neg``, ``hard_fraction``, ``hpm_term``, ``grad_share`` (last entry wins when a
resumed run logged a step twice).

Consistency check: the script's own component/hole counts are compared with the per-case scores
toposeg stored in ``test_summary.json`` (``betti0_pred``, ``betti1_pred``, ``spurious_components``,
``missing_components``, ``split_components``); mismatches are reported in ``diagnosis.json``.

Errors: ValueError when RUNS has no finished run (names the folder), when ``--baseline`` is not
among the methods, when a requested method has no finished run (lists every method found), when a
prediction and its label differ in shape (names the run's npz and the case id), when the runs'
config.yaml files disagree on the data or ``--data-kind`` disagrees with them (names both); KeyError
when a case id has no label or the data kind is unknown; FileNotFoundError when a run has no
config.yaml. The command line also refuses, before any work, an ``--example-method`` that is not
read, a real data kind without ``--data-root``, an ``--out`` that is a file, lies inside
``--runs``, or exists non-empty without ``--overwrite``; it prints each of these errors as one line
``diagnose_study: error: ...`` on stderr and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
from scipy import ndimage

COMPONENT_BINS: tuple[tuple[int, Optional[int]], ...] = ((1, 9), (10, 99), (100, 999), (1000, None))
#: a spurious component whose nearest pixel is at most this far (px, Euclidean) from the GT is "near"
NEAR_PX = 3.0
HOLE_BINS: tuple[tuple[int, Optional[int]], ...] = ((1, 9), (10, 99), (100, None))
TELEMETRY_KEYS = ("hard_pos", "hard_neg", "hard_fraction", "hpm_term", "grad_share")
PREDICTIONS = "test_predictions.npz"
SUMMARY = "test_summary.json"
#: our key -> toposeg's per-case key in test_summary.json (consistency check)
CROSS_CHECK = {"pred_components": "betti0_pred", "holes": "betti1_pred", "spurious": "spurious_components",
               "gt_missed": "missing_components", "split_pieces": "split_components"}


def bin_name(lo: int, hi: Optional[int]) -> str:
    return f"{lo}_{hi}" if hi is not None else f"ge{lo}"


def bin_label(lo: int, hi: Optional[int]) -> str:
    return f"{lo}-{hi}" if hi is not None else f"≥{lo}"


def _bin_counts(sizes: np.ndarray, bins) -> list[int]:
    return [int(np.count_nonzero((sizes >= lo) & ((sizes <= hi) if hi is not None else True))) for lo, hi in bins]


def _structures(ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """(foreground, background) structuring elements: full (8/26) and face (4/6) connectivity."""
    return ndimage.generate_binary_structure(ndim, ndim), ndimage.generate_binary_structure(ndim, 1)


def _border_labels(labels: np.ndarray) -> np.ndarray:
    faces = [np.take(labels, i, axis=a).ravel() for a in range(labels.ndim) for i in (0, -1)]
    return np.unique(np.concatenate(faces))


def _check_pair(pred: np.ndarray, gt: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"{where}: prediction shape {pred.shape} != label shape {gt.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"{where}: expected a 2D or 3D mask, got shape {pred.shape}")
    return pred.astype(bool), gt.astype(bool)


# ----------------------------------------------------------------------------------------- per case
def component_stats(pred: np.ndarray, gt: np.ndarray, skel: Optional[np.ndarray] = None) -> dict[str, int]:
    """Predicted components by origin (spurious near/far, on-GT) and size bin; GT components
    split/missed; small skeleton islands (``skel``: the GT skeleton, computed when ``None``)."""
    fg, _ = _structures(pred.ndim)
    skel = gt_skeleton(gt) if skel is None else skel
    lp, n_p = ndimage.label(pred, fg)
    lg, n_g = ndimage.label(gt, fg)
    sizes = np.bincount(lp.ravel(), minlength=n_p + 1)[1:]
    on_gt = np.bincount(lp[gt], minlength=n_p + 1)[1:] > 0
    both = pred & gt
    pairs = np.unique(np.stack([lp[both], lg[both]]), axis=1) if both.any() else np.zeros((2, 0), np.int64)
    deg_g = np.bincount(pairs[1], minlength=n_g + 1)[1:]
    deg_p = np.bincount(pairs[0], minlength=n_p + 1)[1:]
    # distance (px, Euclidean) of every pixel to the GT foreground; a component's = its nearest pixel's
    if gt.any():
        dist = ndimage.distance_transform_edt(~gt)
        near = ndimage.minimum(dist, lp, np.arange(1, n_p + 1)) <= NEAR_PX if n_p else np.zeros(0, bool)
    else:
        near = np.zeros(n_p, bool)
    # skeleton islands: small on-GT pieces on the GT skeleton that are, on every GT component they
    # overlap, smaller than its largest predicted piece (a fragment of a broken structure)
    size_of = np.concatenate([[0], sizes])
    largest = np.zeros(n_g + 1, np.int64)
    np.maximum.at(largest, pairs[1], size_of[pairs[0]])
    smaller = size_of[pairs[0]] < largest[pairs[1]]
    fragment = (np.bincount(pairs[0], weights=smaller, minlength=n_p + 1)[1:] == deg_p) & on_gt
    on_skel = np.bincount(lp[skel], minlength=n_p + 1)[1:] > 0
    islands = fragment & (sizes < 100) & on_skel
    out = {"pred_components": int(n_p), "spurious": int(np.count_nonzero(~on_gt)),
           "spurious_near": int(np.count_nonzero(~on_gt & near)), "spurious_far": int(np.count_nonzero(~on_gt & ~near)),
           "on_gt": int(np.count_nonzero(on_gt)), "gt_components": int(n_g),
           "gt_split": int(np.count_nonzero(deg_g > 1)), "split_pieces": int(np.clip(deg_g - 1, 0, None).sum()),
           "gt_missed": int(np.count_nonzero(deg_g == 0)), "merged": int(np.count_nonzero(deg_p > 1)),
           "skeleton_islands": int(np.count_nonzero(islands)), "spurious_px": int(sizes[~on_gt].sum())}
    for (lo, hi), s, g in zip(COMPONENT_BINS, _bin_counts(sizes[~on_gt], COMPONENT_BINS),
                              _bin_counts(sizes[on_gt], COMPONENT_BINS)):
        out[f"spurious_{bin_name(lo, hi)}"] = s
        out[f"on_gt_{bin_name(lo, hi)}"] = g
    return out


def hole_masks(pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels of the background components of ``pred``, bool table ``bounded[label]``)."""
    _, bg = _structures(pred.ndim)
    lb, n_b = ndimage.label(~pred, bg)
    bounded = np.ones(n_b + 1, bool)
    bounded[0] = False
    bounded[_border_labels(lb)] = False
    return lb, bounded


def hole_stats(pred: np.ndarray, gt: np.ndarray) -> dict[str, int]:
    """Holes of ``pred`` by size bin and by place (on GT foreground / on GT background, majority)."""
    lb, bounded = hole_masks(pred)
    sizes = np.bincount(lb.ravel(), minlength=bounded.size)
    on_fg_px = np.bincount(lb[gt], minlength=bounded.size)
    ids = np.flatnonzero(bounded)
    s, on_fg = sizes[ids], 2 * on_fg_px[ids] > sizes[ids]
    out = {"holes": int(ids.size), "holes_on_fg": int(np.count_nonzero(on_fg)),
           "holes_on_bg": int(np.count_nonzero(~on_fg))}
    for (lo, hi), a, f, b in zip(HOLE_BINS, _bin_counts(s, HOLE_BINS), _bin_counts(s[on_fg], HOLE_BINS),
                                 _bin_counts(s[~on_fg], HOLE_BINS)):
        name = bin_name(lo, hi)
        out[f"holes_{name}"], out[f"holes_{name}_on_fg"], out[f"holes_{name}_on_bg"] = a, f, b
    out["pinholes"], out["pinholes_on_fg"], out["pinholes_on_bg"] = (out["holes_1_9"], out["holes_1_9_on_fg"],
                                                                     out["holes_1_9_on_bg"])
    # pinholes inside spurious components: every predicted component next to the pinhole is spurious
    fg, bg = _structures(pred.ndim)
    lp, n_p = ndimage.label(pred, fg)
    on_gt = np.bincount(lp[gt], minlength=n_p + 1) > 0
    pin = np.zeros(bounded.size, bool)
    pin[ids[s <= 9]] = True
    in_spurious = 0
    for h, box in enumerate(ndimage.find_objects(lb), start=1):
        if box is None or not pin[h]:
            continue
        grown = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box)
        hole = lb[grown] == h
        ring = ndimage.binary_dilation(hole, bg) & ~hole & pred[grown]
        in_spurious += int(not on_gt[lp[grown][ring]].any())
    out["pinholes_in_spurious"] = in_spurious
    return out


def gt_skeleton(gt: np.ndarray) -> np.ndarray:
    """``skimage.morphology.skeletonize`` of the ground truth (bool)."""
    from skimage.morphology import skeletonize

    return skeletonize(gt).astype(bool)


GAP_KINDS = ("breaking", "bridged", "isolated")
PAIRED_GAP_KEYS = ("closed", "opened", "net_closed", "closed_breaking", "opened_breaking")


def gap_runs(pred: np.ndarray, skel: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Gaps of ``pred`` on the skeleton ``skel``: (run labels, number of runs, kind index per run
    into :data:`GAP_KINDS`: 0 breaking, 1 bridged, 2 isolated)."""
    fg, _ = _structures(pred.ndim)
    lr, n_r = ndimage.label(skel & ~pred, fg)
    lp, _ = ndimage.label(pred, fg)
    kinds = np.zeros(n_r, np.int64)
    for r, box in enumerate(ndimage.find_objects(lr), start=1):
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        run = lr[grown] == r
        ring = ndimage.binary_dilation(run, fg) & ~run & skel[grown] & pred[grown]
        k = np.unique(lp[grown][ring]).size  # predicted components next to the gap
        kinds[r - 1] = 0 if k >= 2 else 1 if k == 1 else 2
    return lr, n_r, kinds


def gap_stats(pred: np.ndarray, skel: np.ndarray, base: Optional[np.ndarray] = None,
              base_runs: Optional[tuple] = None) -> dict[str, float]:
    """Missed skeleton pixels and gaps of ``pred``; closed/opened against ``base`` when given (else NaN).
    ``base_runs``: ``gap_runs(base, skel)`` when already computed (a cache; same result)."""
    missed = skel & ~pred
    lr, n_r, kinds = gap_runs(pred, skel)
    out: dict[str, float] = {"missed_skeleton_px": int(missed.sum()), "skeleton_px": int(skel.sum()),
                             "gaps": int(n_r), **{f"gaps_{k}": int(np.count_nonzero(kinds == i))
                                                 for i, k in enumerate(GAP_KINDS)}}
    if base is None:
        out.update({k: math.nan for k in PAIRED_GAP_KEYS})
        return out
    lb, n_b, base_kinds = gap_runs(base, skel) if base_runs is None else base_runs
    still = np.bincount(lb[missed], minlength=n_b + 1)[1:]  # per baseline gap: pixels pred still misses
    shared = np.bincount(lr[skel & ~base], minlength=n_r + 1)[1:]  # per pred gap: pixels base misses too
    closed, opened = still == 0, shared == 0
    out.update(closed=int(closed.sum()), opened=int(opened.sum()), net_closed=int(closed.sum() - opened.sum()),
               closed_breaking=int(np.count_nonzero(closed & (base_kinds == 0))),
               opened_breaking=int(np.count_nonzero(opened & (kinds == 0))))
    return out


def case_stats(pred: np.ndarray, gt: np.ndarray, *, skel: Optional[np.ndarray] = None,
               base: Optional[np.ndarray] = None, base_runs: Optional[tuple] = None,
               where: str = "case", base_where: Optional[str] = None) -> dict[str, float]:
    """All per-case counts of ``pred`` (bool, 2D or 3D) against ``gt``; ``base``: the baseline's prediction.
    ``where`` / ``base_where`` name ``pred`` / ``base`` in a shape-mismatch ValueError."""
    pred, gt = _check_pair(pred, gt, where)
    if base is not None:
        base, _ = _check_pair(base, gt, base_where or where + " (baseline)")
    skel = gt_skeleton(gt) if skel is None else skel
    return {**component_stats(pred, gt, skel), **hole_stats(pred, gt), **gap_stats(pred, skel, base, base_runs)}


# ------------------------------------------------------------------------------------------ reading
def find_runs(runs: Path, methods: Optional[Sequence[str]] = None) -> tuple[list[dict], list[str]]:
    """Finished runs ``[{method, seed, fold, path}]`` (sorted) and the unfinished run folders."""
    runs = Path(runs)
    if not runs.is_dir():
        raise ValueError(f"--runs {str(runs)!r} is not a folder")
    finished, unfinished = [], []
    for d in sorted(runs.glob("seed*/fold*/*")):
        ms, mf = re.fullmatch(r"seed(\d+)", d.parent.parent.name), re.fullmatch(r"fold(\d+)", d.parent.name)
        if not (d.is_dir() and ms and mf) or d.name == "pretrain":
            continue
        if methods is not None and d.name not in methods:
            continue
        if (d / PREDICTIONS).is_file() and (d / SUMMARY).is_file():
            finished.append({"method": d.name, "seed": int(ms.group(1)), "fold": int(mf.group(1)), "path": d})
        else:
            unfinished.append(str(d.relative_to(runs)))
    finished.sort(key=lambda r: (r["seed"], r["fold"], r["method"]))
    return finished, unfinished


def _split_test_ids(runs: Path) -> Optional[dict[int, list[str]]]:
    f = Path(runs) / "splits.json"
    if not f.is_file():
        return None
    folds = json.loads(f.read_text()).get("folds")
    return {k: [str(c) for c in fold["test"]] for k, fold in enumerate(folds)} if folds else None


def load_predictions(run: Mapping[str, Any]) -> dict[str, np.ndarray]:
    with np.load(Path(run["path"]) / PREDICTIONS) as z:
        return {k: z[k].astype(bool) for k in z.files}


def read_telemetry(path: Path) -> dict[int, dict[str, float]]:
    """``{step: hpm dict}`` of one ``log.jsonl`` (empty when it has no ``"hpm"`` entries)."""
    out: dict[int, dict[str, float]] = {}
    f = Path(path) / "log.jsonl"
    if not f.is_file():
        return out
    for line in f.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        entry = json.loads(line)
        if isinstance(entry.get("hpm"), dict) and "step" in entry:
            out[int(entry["step"])] = entry["hpm"]
    return out


def telemetry_medians(per_run: Mapping[str, Sequence[Mapping[int, Mapping[str, float]]]]) -> dict[str, dict]:
    """``{method: {step: {key: median over runs, "n_runs": n}}}`` for methods with telemetry."""
    out: dict[str, dict] = {}
    for method, logs in per_run.items():
        logs = [lg for lg in logs if lg]
        if not logs:
            continue
        steps = sorted({s for lg in logs for s in lg})
        table = {}
        for s in steps:
            entries = [lg[s] for lg in logs if s in lg]
            row: dict[str, float] = {"n_runs": len(entries)}
            for k in TELEMETRY_KEYS:
                vals = [float(e[k]) for e in entries if e.get(k) is not None]
                row[k] = float(np.median(vals)) if vals else math.nan
            table[s] = row
        out[method] = table
    return out


# ---------------------------------------------------------------------------------------- aggregate
def _mean_ci(values: Sequence[float]) -> dict[str, float]:
    from toposeg.reports.paired import bootstrap_ci

    v = [float(x) for x in values if not math.isnan(float(x))]
    if not v:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    lo, hi = bootstrap_ci(v)
    return {"mean": float(np.mean(v)), "ci_low": lo, "ci_high": hi, "n": len(v)}


def select_runs(runs: Path, baseline: str, methods: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """The runs :func:`diagnose` reads, checked: ``{"methods", "found", "finished", "unfinished",
    "incomplete"}`` (``finished``: the runs of the requested methods in (seed, fold) blocks where every
    one of them finished; ``found``: every method with a finished run, requested or not).

    Raises:
        ValueError: no finished run in ``runs`` (names it); ``baseline`` not among the methods;
            a requested method without a finished run (lists every method found); no seed/fold
            with every method finished.
    """
    runs = Path(runs)
    methods = list(dict.fromkeys(methods)) if methods else None
    if methods is not None and baseline not in methods:
        raise ValueError(f"--baseline {baseline!r} is not among the methods {methods}")
    every, unfinished_all = find_runs(runs)
    if not every:
        raise ValueError(f"no finished runs (seed*/fold*/<method>/ with {PREDICTIONS} and {SUMMARY}) "
                         f"in {str(runs)!r}" + (f" for methods {methods}" if methods else ""))
    found = sorted(dict.fromkeys(r["method"] for r in every), key=lambda m: (m != baseline, m))
    if methods is None:
        methods = found
        if baseline not in methods:
            raise ValueError(f"--baseline {baseline!r} is not among the methods {methods} found in {str(runs)!r}")
    missing = [m for m in methods if m not in found]
    if missing:
        raise ValueError(f"no finished run of method(s) {missing} in {str(runs)!r} (methods found: {found})")
    finished = [r for r in every if r["method"] in methods]
    unfinished = [u for u in unfinished_all if Path(u).name in methods]
    # only (seed, fold) blocks where every method finished: every cell then covers the same cases
    have = defaultdict(set)
    for r in finished:
        have[(r["seed"], r["fold"])].add(r["method"])
    complete = {sf for sf, ms in have.items() if set(methods) <= ms}
    if not complete:
        raise ValueError(f"no seed/fold in {str(runs)!r} has finished runs of every method {methods} "
                         f"(finished: {sorted((f'seed{s}/fold{k}', sorted(ms)) for (s, k), ms in have.items())})")
    incomplete = [f"seed{r['seed']}/fold{r['fold']}/{r['method']}" for r in finished
                  if (r["seed"], r["fold"]) not in complete]
    return {"methods": list(methods), "found": found, "finished": [r for r in finished if (r["seed"], r["fold"]) in complete],
            "unfinished": unfinished, "incomplete": incomplete}


def diagnose(runs: Path, labels: Mapping[str, np.ndarray], *, baseline: str,
             methods: Optional[Sequence[str]] = None, log=print) -> dict[str, Any]:
    """The whole diagnosis as a JSON-able dict (see the module docstring for every definition).

    Args:
        runs: the study folder (``seed{S}/fold{K}/{method}/``).
        labels: ``{case_id: bool array}`` ground truth of every test case id found.
        baseline: the method the others are paired with (its runs must exist).
        methods: methods to read (default: every method found, baseline included).
        log: progress printer (one line per run read).

    Raises:
        ValueError: no finished run in ``runs`` (names it); ``baseline`` not among the methods;
            a requested method without a finished run; no seed/fold with every method finished;
            npz ids differing from ``splits.json``; a prediction/label shape mismatch.
        KeyError: a test case id without a label.
    """
    from toposeg.reports.paired import case_means, paired_comparison

    runs = Path(runs)
    sel = select_runs(runs, baseline, methods)
    methods, finished, unfinished, incomplete = sel["methods"], sel["finished"], sel["unfinished"], sel["incomplete"]
    for name in incomplete:
        log(f"skip {name}: not every method of its seed and fold has finished")
    split_ids = _split_test_ids(runs)

    preds: dict[tuple[str, int, int], dict[str, np.ndarray]] = {}
    paths: dict[tuple[str, int, int], Path] = {}

    def where(key: tuple[str, int, int], cid: str) -> str:
        return f"{paths[key] / PREDICTIONS}, case {cid!r}"
    for run in finished:
        p = load_predictions(run)
        if split_ids is not None and run["fold"] in split_ids and sorted(p) != sorted(split_ids[run["fold"]]):
            raise ValueError(f"{run['path']}/{PREDICTIONS}: case ids {sorted(p)} differ from fold {run['fold']}'s "
                             f"test ids {sorted(split_ids[run['fold']])} in {runs / 'splits.json'}")
        preds[(run["method"], run["seed"], run["fold"])] = p
        paths[(run["method"], run["seed"], run["fold"])] = Path(run["path"])

    skeletons: dict[str, np.ndarray] = {}
    base_gaps: dict[tuple, tuple] = {}
    rows: list[dict[str, Any]] = []
    mismatches: list[dict[str, Any]] = []
    used = []
    tele_logs: dict[str, list] = defaultdict(list)
    for run in finished:
        m, s, k = run["method"], run["seed"], run["fold"]
        mine = preds[(m, s, k)]
        base = preds[(baseline, s, k)]  # complete blocks: the baseline's run exists
        summary = json.loads((Path(run["path"]) / SUMMARY).read_text())
        stored = {str(r.get("case_id")): r for r in summary.get("per_case", []) if isinstance(r, dict)}
        for cid in sorted(mine):
            if cid not in labels:
                raise KeyError(f"no ground-truth label for case id {cid!r} ({run['path']}/{PREDICTIONS}); "
                               f"labels hold {sorted(labels)[:10]}...")
            gt = np.asarray(labels[cid]).astype(bool)
            if cid not in skeletons:
                skeletons[cid] = gt_skeleton(gt)
            b = None if m == baseline else base.get(cid)
            here, there = where((m, s, k), cid), where((baseline, s, k), cid)
            _check_pair(mine[cid], gt, here)  # this run's prediction first, named by its own path
            if b is not None and (s, k, cid) not in base_gaps:
                base_gaps[(s, k, cid)] = gap_runs(_check_pair(b, gt, there)[0], skeletons[cid])
            st = case_stats(mine[cid], gt, skel=skeletons[cid], base=b, base_runs=base_gaps.get((s, k, cid)),
                            where=here, base_where=there)
            if m == baseline:
                st.update({key: math.nan for key in PAIRED_GAP_KEYS})
            rows.append({"method": m, "seed": s, "fold": k, "case": f"fold{k}/{cid}", "case_id": cid, **st})
            ref = stored.get(cid)
            if ref is not None:
                diff = {ours: (st[ours], ref[theirs]) for ours, theirs in CROSS_CHECK.items()
                        if theirs in ref and ref[theirs] is not None and float(ref[theirs]) != float(st[ours])}
                if diff:
                    mismatches.append({"run": f"seed{s}/fold{k}/{m}", "case_id": cid, "ours_vs_toposeg": diff})
        tele = read_telemetry(Path(run["path"]))
        tele_logs[m].append(tele)
        used.append({"method": m, "seed": s, "fold": k, "cases": sorted(mine),
                     "final_step": (summary.get("checkpoints", {}).get("final", {}) or {}).get("step"),
                     "telemetry_steps": len(tele)})
        log(f"read seed{s}/fold{k}/{m}: {len(mine)} test cases"
            + (f", HPM telemetry at {len(tele)} steps" if tele else ""))

    metrics = [k for k in rows[0] if k not in ("method", "seed", "fold", "case", "case_id", *PAIRED_GAP_KEYS)]
    means: dict[str, dict[str, float]] = defaultdict(dict)
    for metric in [*metrics, *PAIRED_GAP_KEYS]:
        for m, per in case_means(rows, metric).items():
            means[m][metric] = float(np.mean(list(per.values())))
    paired = paired_comparison(rows, baseline=baseline, metrics=metrics)
    gaps_vs = {}
    for m in methods:
        if m == baseline:
            continue
        gaps_vs[m] = {}
        for metric in PAIRED_GAP_KEYS:
            per = case_means([r for r in rows if r["method"] == m], metric).get(m, {})
            gaps_vs[m][metric] = {**_mean_ci(list(per.values())), "per_case": per}

    n_cases = {m: len({r["case"] for r in rows if r["method"] == m}) for m in methods}
    seeds = sorted({r["seed"] for r in rows})
    folds = sorted({r["fold"] for r in rows})
    return {
        "runs_folder": str(runs), "baseline": baseline, "methods": list(methods), "seeds": seeds, "folds": folds,
        "n_cases": n_cases, "runs_used": used, "runs_unfinished_skipped": unfinished,
        "runs_finished_excluded_incomplete_seed_fold": incomplete,
        "bins": {"components": [bin_label(*b) for b in COMPONENT_BINS], "holes": [bin_label(*b) for b in HOLE_BINS]},
        "metrics": metrics, "means": dict(means), "paired": paired, "gaps_vs_baseline": gaps_vs,
        "telemetry": telemetry_medians(tele_logs),
        "consistency_with_test_summary": {"checked": list(CROSS_CHECK), "n_mismatches": len(mismatches),
                                          "mismatches": mismatches[:50]},
        "per_case": rows,
    }


# ------------------------------------------------------------------------------------------ outputs
def _fmt(x: float, d: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"


def _delta(p: Mapping[str, Any], d: int = 1) -> str:
    if not p or p["n"] == 0:
        return ""
    return f"{p['mean_diff']:+.{d}f} [{p['ci_low']:+.{d}f}, {p['ci_high']:+.{d}f}]"


def markdown(result: Mapping[str, Any]) -> str:
    base, means, paired = result["baseline"], result["means"], result["paired"]
    cb = [bin_name(*b) for b in COMPONENT_BINS]
    blocks = sorted({f"seed{u['seed']}/fold{u['fold']}" for u in result["runs_used"]})
    hb = [bin_name(*b) for b in HOLE_BINS]
    lines = [f"# Diagnosis of {result['runs_folder']}", "",
             f"Final (equal-budget) checkpoint, raw predictions. Seeds {result['seeds']}, folds {result['folds']}; "
             f"cells: mean over test cases (each case averaged over seeds); Δ: paired difference to `{base}` "
             f"with its 95 % bootstrap CI. Runs used: {len(result['runs_used'])} "
             f"({', '.join(f'{m}: {n} cases' for m, n in result['n_cases'].items())}), every method in each of "
             f"{', '.join(blocks)}.", "",
             "## Predicted components by origin and size (px)", "",
             "| Method | components | spurious " + " | spurious ".join(bin_label(*b) for b in COMPONENT_BINS)
             + " | spurious near/far | on-GT | GT split | extra pieces | skeleton islands | GT missed | merged "
             "| Δ spurious | Δ components |", "|---|" + "---:|" * 14]
    for m in result["methods"]:
        v, p = means[m], paired.get(m, {})
        lines.append(f"| {m} | {_fmt(v['pred_components'])} | " + " | ".join(_fmt(v[f'spurious_{b}']) for b in cb)
                     + f" | {_fmt(v['spurious_near'])}/{_fmt(v['spurious_far'])} | {_fmt(v['on_gt'])} | "
                     f"{_fmt(v['gt_split'])} | {_fmt(v['split_pieces'])} | {_fmt(v['skeleton_islands'])} | "
                     f"{_fmt(v['gt_missed'])} | {_fmt(v['merged'])} | {_delta(p.get('spurious'))} | "
                     f"{_delta(p.get('pred_components'))} |")
    lines += ["", "## Holes of the prediction by size (px) and place (on GT foreground / background)", "",
              "| Method | holes | " + " | ".join(f"{bin_label(*b)} (fg/bg)" for b in HOLE_BINS)
              + " | pinholes in spurious | Δ pinholes (1-9) | Δ pinholes on fg | Δ holes |", "|---|" + "---:|" * 8]
    for m in result["methods"]:
        v, p = means[m], paired.get(m, {})
        lines.append(f"| {m} | {_fmt(v['holes'])} | " + " | ".join(
            f"{_fmt(v[f'holes_{b}'])} ({_fmt(v[f'holes_{b}_on_fg'])}/{_fmt(v[f'holes_{b}_on_bg'])})" for b in hb)
            + f" | {_fmt(v['pinholes_in_spurious'])} | {_delta(p.get('pinholes'))} | {_delta(p.get('pinholes_on_fg'))} | "
            f"{_delta(p.get('holes'))} |")
    lines += ["", f"## Ground-truth skeleton gaps, and gaps closed/opened against `{base}`", "",
              "| Method | missed skeleton px | gaps | breaking | bridged | isolated | closed (breaking) | opened "
              "(breaking) | net closed | Δ missed px | Δ gaps | Δ breaking |", "|---|" + "---:|" * 11]
    for m in result["methods"]:
        v, p, g = means[m], paired.get(m, {}), result["gaps_vs_baseline"].get(m)

        def ci(key: str) -> str:
            if not g or g[key]["n"] == 0:
                return ""
            s = g[key]
            return f"{s['mean']:.1f} [{s['ci_low']:.1f}, {s['ci_high']:.1f}]"

        def par(key: str) -> str:
            return f" ({ci(key)})" if ci(key) else ""
        lines.append(f"| {m} | {_fmt(v['missed_skeleton_px'])} | {_fmt(v['gaps'])} | {_fmt(v['gaps_breaking'])} | "
                     f"{_fmt(v['gaps_bridged'])} | {_fmt(v['gaps_isolated'])} | {ci('closed')}{par('closed_breaking')} | "
                     f"{ci('opened')}{par('opened_breaking')} | "
                     f"{ci('net_closed')} | {_delta(p.get('missed_skeleton_px'))} | {_delta(p.get('gaps'))} | "
                     f"{_delta(p.get('gaps_breaking'))} |")
    lines += ["", "## HPM telemetry (median over runs, per validation step)", ""]
    if not result["telemetry"]:
        lines.append("No run read has HPM telemetry in its log.jsonl (key \"hpm\").")
    else:
        lines += ["| Method | step | runs | " + " | ".join(TELEMETRY_KEYS) + " |", "|---|---:|---:|" + "---:|" * 5]
        for m, table in result["telemetry"].items():
            for step, row in table.items():
                lines.append(f"| {m} | {step} | {row['n_runs']} | "
                             + " | ".join(_fmt(row[k], 4 if k in ("hard_fraction", "hpm_term", "grad_share") else 0)
                                          for k in TELEMETRY_KEYS) + " |")
    c = result["consistency_with_test_summary"]
    lines += ["", f"Consistency with toposeg's stored per-case scores ({', '.join(c['checked'])}): "
                  f"{c['n_mismatches']} mismatching case(s).", ""]
    if result["runs_unfinished_skipped"]:
        lines += [f"Unfinished runs skipped: {', '.join(result['runs_unfinished_skipped'])}.", ""]
    if result["runs_finished_excluded_incomplete_seed_fold"]:
        lines += ["Finished runs left out because another method of their seed and fold has not finished: "
                  f"{', '.join(result['runs_finished_excluded_incomplete_seed_fold'])}.", ""]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def components_figure(result: Mapping[str, Any], path: Path) -> Path:
    plt = _pyplot()
    methods, means = result["methods"], result["means"]
    x = np.arange(len(methods))
    fig, (a, b) = plt.subplots(1, 2, figsize=(max(8, 1.5 * len(methods) + 4), 4.2), constrained_layout=True)
    bottom = np.zeros(len(methods))
    colours = plt.get_cmap("Reds")(np.linspace(0.85, 0.35, len(COMPONENT_BINS)))
    for (lo, hi), col in zip(COMPONENT_BINS, colours):
        v = np.array([means[m][f"spurious_{bin_name(lo, hi)}"] for m in methods])
        a.bar(x, v, bottom=bottom, color=col, label=f"spurious {bin_label(lo, hi)} px")
        bottom += v
    v = np.array([means[m]["split_pieces"] for m in methods])
    a.bar(x, v, bottom=bottom, color="tab:blue", label="on-GT fragments (extra pieces of split GT)")
    a.set_title("Predicted components beyond one per GT structure", fontsize=9)
    a.set_ylabel("per test case (mean)")
    bottom = np.zeros(len(methods))
    colours = plt.get_cmap("Blues")(np.linspace(0.9, 0.4, len(HOLE_BINS)))
    for (lo, hi), col in zip(HOLE_BINS, colours):
        for place, hatch in (("fg", ""), ("bg", "//")):
            v = np.array([means[m][f"holes_{bin_name(lo, hi)}_on_{place}"] for m in methods])
            b.bar(x, v, bottom=bottom, color=col, hatch=hatch, edgecolor="white",
                  label=f"holes {bin_label(lo, hi)} px, on GT {'foreground' if place == 'fg' else 'background'}")
            bottom += v
    b.set_title("Holes of the prediction by size and place", fontsize=9)
    for ax in (a, b):
        ax.set_xticks(x)
        ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
        ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def telemetry_figure(result: Mapping[str, Any], path: Path) -> Path:
    plt = _pyplot()
    tele = result["telemetry"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    if not tele:
        for ax in (a, b):
            ax.text(0.5, 0.5, "no HPM telemetry in the runs read", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
    for i, (m, table) in enumerate(tele.items()):
        steps = np.array(sorted(table))
        col = f"C{i}"
        a.plot(steps, [table[s]["grad_share"] for s in steps], "o-", color=col, label=m)
        b.plot(steps, [table[s]["hard_pos"] for s in steps], "o-", color=col, label=f"{m} |H_pos|")
        b.plot(steps, [table[s]["hard_neg"] for s in steps], "s--", color=col, label=f"{m} |H_neg|")
    if tele:
        a.set_title("gradient share ||∇ λ·HPM|| / ||∇ (BCE+Dice)|| (median over runs)", fontsize=9)
        b.set_title("hard pixels per training batch (median over runs)", fontsize=9)
        a.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        b.set_yscale("symlog", linthresh=10)
        for ax in (a, b):
            ax.set_xlabel("fine-tuning step")
            ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def pick_example(result: Mapping[str, Any], method: str) -> Optional[dict[str, Any]]:
    """The (seed, fold, case) where ``method`` has most predicted components more than the baseline."""
    base = {(r["seed"], r["fold"], r["case_id"]): r for r in result["per_case"] if r["method"] == result["baseline"]}
    best = None
    for r in result["per_case"]:
        if r["method"] != method or (r["seed"], r["fold"], r["case_id"]) not in base:
            continue
        add = r["pred_components"] - base[(r["seed"], r["fold"], r["case_id"])]["pred_components"]
        if best is None or add > best["added_components"]:
            best = {"method": method, "seed": r["seed"], "fold": r["fold"], "case_id": r["case_id"],
                    "added_components": int(add)}
    return best


def _debris(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(spurious-component pixels, pinhole pixels) of a 2D prediction."""
    fg, _ = _structures(pred.ndim)
    lp, n_p = ndimage.label(pred, fg)
    on_gt = np.bincount(lp[gt], minlength=n_p + 1) > 0
    spurious = ~on_gt[lp] & pred
    lb, bounded = hole_masks(pred)
    sizes = np.bincount(lb.ravel(), minlength=bounded.size)
    pin = bounded & (sizes <= 9)
    return spurious, pin[lb]


def example_figure(result: Mapping[str, Any], runs: Path, labels: Mapping[str, np.ndarray], path: Path,
                   method: str, images: Optional[Mapping[str, np.ndarray]] = None, crop: int = 192) -> Optional[dict]:
    """Image, GT, baseline and ``method`` predictions on the ``crop``² window with most of ``method``'s
    spurious components and pinholes (red: spurious components; cyan: pinholes < 10 px). 2D only."""
    ex = pick_example(result, method)
    if ex is None:
        return None
    plt = _pyplot()
    folder = Path(runs) / f"seed{ex['seed']}" / f"fold{ex['fold']}"
    cid = ex["case_id"]
    gt = np.asarray(labels[cid]).astype(bool)
    if gt.ndim != 2:
        return {**ex, "figure": "not drawn (3D)"}
    mp = load_predictions({"path": folder / method})[cid]
    bp = load_predictions({"path": folder / result["baseline"]})[cid]
    sp_m, pin_m = _debris(mp, gt)
    sp_b, pin_b = _debris(bp, gt)
    # window with the most spurious components + pinholes of the method (counted by their pixels' first hit)
    fg, _ = _structures(2)
    pts = np.zeros(gt.shape)
    for mask, conn in ((sp_m, fg), (pin_m, _structures(2)[1])):
        lab, n = ndimage.label(mask, conn)
        for c in ndimage.center_of_mass(mask, lab, range(1, n + 1)):
            pts[int(round(c[0])), int(round(c[1]))] += 1
    h, w = gt.shape
    ch, cw = min(crop, h), min(crop, w)
    integ = np.pad(pts.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, y0, x0 = -1.0, 0, 0
    for y in range(0, h - ch + 1, 8):
        for x in range(0, w - cw + 1, 8):
            s = integ[y + ch, x + cw] - integ[y, x + cw] - integ[y + ch, x] + integ[y, x]
            if s > best:
                best, y0, x0 = s, y, x
    win = (slice(y0, y0 + ch), slice(x0, x0 + cw))

    def overlay(pred, sp, pin):
        rgb = np.where(pred[..., None], 0.85, 0.0) * np.ones(3)
        rgb[sp] = (1.0, 0.1, 0.1)
        rgb[pin] = (0.0, 0.9, 0.9)
        return rgb[win]

    img = None
    if images is not None and cid in images:
        img = np.asarray(images[cid], dtype=float)
        img = img[0] if img.ndim == 3 else img
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.7), constrained_layout=True)
    n_sp = {k: ndimage.label(v, fg)[1] for k, v in (("b", sp_b), ("m", sp_m))}
    n_pin = {k: ndimage.label(v, _structures(2)[1])[1] for k, v in (("b", pin_b), ("m", pin_m))}
    panels = [(img[win] if img is not None else None, "image"), (gt[win], "ground truth"),
              (overlay(bp, sp_b, pin_b), f"{result['baseline']} (whole image: {n_sp['b']} spurious, {n_pin['b']} pinholes)"),
              (overlay(mp, sp_m, pin_m), f"{method} (whole image: {n_sp['m']} spurious, {n_pin['m']} pinholes)")]
    for ax, (data, title) in zip(axes, panels):
        if data is None:
            ax.text(0.5, 0.5, "no image", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(data, cmap="gray", interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    for ax, pin in ((axes[2], pin_b), (axes[3], pin_m)):  # ring each pinhole: a few pixels are hard to see
        lab, n = ndimage.label(pin[win], _structures(2)[1])
        if n:
            cy, cx = np.array(ndimage.center_of_mass(pin[win], lab, range(1, n + 1))).T
            ax.scatter(cx, cy, s=60, facecolors="none", edgecolors="cyan", linewidths=1.0)
        ax.set_xlim(-0.5, cw - 0.5)
        ax.set_ylim(ch - 0.5, -0.5)
    fig.suptitle(f"seed {ex['seed']} fold {ex['fold']} case {cid}, crop y {y0}:{y0 + ch}, x {x0}:{x0 + cw} "
                 f"({method} has {ex['added_components']:+d} components vs {result['baseline']}); "
                 "red: spurious components, cyan: pinholes < 10 px", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return {**ex, "crop": [y0, x0, ch, cw]}


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(float(x)) else float(x)
    return x


def write_outputs(result: dict[str, Any], out: Path, *, runs: Path, labels: Mapping[str, np.ndarray],
                  images: Optional[Mapping[str, np.ndarray]] = None, example_method: Optional[str] = None,
                  meta: Optional[dict] = None) -> dict[str, Path]:
    """diagnosis.json, diagnosis.md, components.png, telemetry.png, example.png in ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    others = [m for m in result["methods"] if m != result["baseline"]]
    if example_method is None:
        example_method = "shpm" if "shpm" in others else (others[0] if others else None)
    files = {"components": components_figure(result, out / "components.png"),
             "telemetry": telemetry_figure(result, out / "telemetry.png")}
    if example_method is not None:
        result["example"] = example_figure(result, runs, labels, out / "example.png", example_method, images)
        if result["example"] is not None:
            files["example"] = out / "example.png"
    if meta:
        result["meta"] = meta
    (out / "diagnosis.json").write_text(json.dumps(_jsonable(result), indent=1) + "\n")
    (out / "diagnosis.md").write_text(markdown(result))
    files.update(json=out / "diagnosis.json", md=out / "diagnosis.md")
    return files


def study_data(runs: Sequence[Mapping[str, Any]]) -> tuple[str, dict]:
    """``(data.kind, data.options)`` the runs were trained and tested on, from each run folder's
    ``config.yaml`` (the resolved config ``toposeg cv`` writes; read with
    :func:`toposeg.config.load_config`).

    Raises:
        FileNotFoundError: a run without ``config.yaml`` (names it).
        ValueError: two runs with different data kind or options (names both and their values).
    """
    from toposeg.config import load_config

    first: Optional[tuple[Path, str, dict]] = None
    for run in runs:
        f = Path(run["path"]) / "config.yaml"
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found: the study's dataset options are read from each run's "
                                    "config.yaml (written by toposeg cv)")
        cfg = load_config(f)
        kind, options = cfg.data.kind, dict(cfg.data.options)
        if first is None:
            first = (f, kind, options)
        elif (kind, options) != first[1:]:
            raise ValueError(f"the runs of the study disagree on their data: {first[0]} has data.kind {first[1]!r}, "
                             f"data.options {first[2]}; {f} has data.kind {kind!r}, data.options {options}")
    if first is None:
        raise ValueError("no run to read the data options from")
    return first[1], first[2]


def _check_out(out: Path, runs: Path, overwrite: bool) -> None:
    o, r = out.resolve(), runs.resolve()
    if o == r or r in o.parents:
        raise ValueError(f"--out {str(out)!r} lies inside --runs {str(runs)!r} (the study folder is read only)")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"--out {str(out)!r} exists and is not empty (pass --overwrite to write into it)")


def run(args: argparse.Namespace, argv: Optional[Sequence[str]]) -> int:
    from toposeg.data import open_dataset
    from toposeg.data.datasets import dataset_options
    from toposeg.data.synthetic import SYNTHETIC

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _meta import metadata

    _check_out(args.out, args.runs, args.overwrite)
    if args.data_kind is not None:
        dataset_options(args.data_kind)  # KeyError listing the valid kinds
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    sel = select_runs(args.runs, args.baseline, methods)  # every check on runs, methods and baseline
    if args.example_method is not None and args.example_method not in sel["methods"]:
        raise ValueError(f"--example-method {args.example_method!r} is not among the methods read {sel['methods']}")
    kind, options = study_data(sel["finished"])
    if args.data_kind is not None and args.data_kind != kind:
        raise ValueError(f"--data-kind {args.data_kind!r} disagrees with data.kind {kind!r} in the runs' config.yaml "
                         f"({sel['finished'][0]['path']}/config.yaml)")
    if args.data_root is None and kind not in SYNTHETIC:
        raise ValueError(f"data kind {kind!r} needs --data-root (the dataset folder)")
    ds = open_dataset(kind, args.data_root, **options)
    ids = list(ds.ids)

    class _Lazy(dict):  # read a case only when its label/image is asked for
        def __init__(self, what):
            super().__init__()
            self.what = what

        def __contains__(self, k):
            return k in ids

        def __missing__(self, k):
            if k not in ids:
                raise KeyError(k)
            case = ds[ids.index(k)]
            self[k] = getattr(case, self.what)
            return self[k]

        def __iter__(self):
            return iter(ids)

    labels, images = _Lazy("label"), _Lazy("image")
    result = diagnose(args.runs, labels, baseline=args.baseline, methods=methods)
    meta = metadata(data_kind=kind, data_options=options, data_root=args.data_root,
                    label_foreground=getattr(ds, "label_foreground", None),
                    command=" ".join(["python", "benchmarks/diagnose_study.py",
                                      *(sys.argv[1:] if argv is None else list(argv))]))
    files = write_outputs(result, args.out, runs=args.runs, labels=labels, images=images,
                          example_method=args.example_method, meta=meta)
    for f in files.values():
        print(f"wrote {f}")
    return 0


def main(argv: Optional[Iterable[str]] = None) -> int:
    """Command line; a bad input (ValueError, FileNotFoundError, KeyError) prints one line
    ``diagnose_study: error: ...`` on stderr and returns 2."""
    ap = argparse.ArgumentParser(prog="diagnose_study", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", required=True, type=Path, help="toposeg cv study folder (read only)")
    ap.add_argument("--data-kind", default=None,
                    help="toposeg dataset kind (default: data.kind of the runs' config.yaml; must agree with it)")
    ap.add_argument("--data-root", default=None, help="dataset folder (open_dataset's root; real data kinds)")
    ap.add_argument("--baseline", default="unet")
    ap.add_argument("--methods", default=None, help="comma-separated (default: every method found)")
    ap.add_argument("--example-method", default=None, help="method of example.png (default: shpm if read)")
    ap.add_argument("--out", required=True, type=Path, help="output folder (new or empty, outside --runs)")
    ap.add_argument("--overwrite", action="store_true", help="write into an existing non-empty --out")
    argv = list(argv) if argv is not None else None
    args = ap.parse_args(argv)
    try:
        return run(args, argv)
    except (ValueError, FileNotFoundError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and len(e.args) == 1 else e
        print(f"diagnose_study: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

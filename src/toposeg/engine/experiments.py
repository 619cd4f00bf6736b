"""Cross-validation experiments: run every (config, seed, fold), then write Table 1, the paired
differences to the baseline and Fig. 5."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from toposeg.config import Config, to_dict
from toposeg.engine.stage import _describe_diff
from toposeg.reports.serialize import dumps, nan_if_none, write_rows
from toposeg.reports.tables import markdown_table

TABLE1_METRICS = ("dice", "miou", "voi", "are", "betti0_error", "betti1_error", "betti_matching_error",
                  "local_betti_error")
#: the Table 1 blocks, headline first: (checkpoint, scoring, title)
BLOCKS = (
    ("final", "raw", "final checkpoint (equal budget), raw"),
    ("selected", "raw", "checkpoint selected on validation, raw"),
    ("final", "paper", "final checkpoint (equal budget), {paper}"),
    ("selected", "paper", "checkpoint selected on validation, {paper}"),
)


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


def collect(out: Path, names: Sequence[str], folds: Sequence[int], seeds: Sequence[int] = (0,)
            ) -> dict[str, list[dict[str, Any]]]:
    """``test_summary.json`` of each method, seed and fold found under ``out`` (``seed{s}/fold{k}/{name}``)."""
    from toposeg.engine.protocol import run_dir

    found: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for s in seeds:
            for k in folds:
                path = run_dir(out, s, k) / name / "test_summary.json"
                if path.is_file():
                    found.setdefault(name, []).append(_read_summary(path))
    return found


def _read_summary(path: Path) -> dict[str, Any]:
    """A run's ``test_summary.json``; ValueError naming the file when it is damaged."""
    try:
        run = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable test summary ({exc}); delete that run's folder to train it "
                         "again, or restore the file") from None
    if not isinstance(run, dict) or "fold" not in run or not ("checkpoints" in run or "mean" in run):
        raise ValueError(f"{path}: not a toposeg test summary (no 'fold' and scores); delete that run's folder "
                         "to train it again, or restore the file")
    return run


def _scores(run: dict[str, Any], checkpoint: str, scoring: str) -> Optional[dict[str, Any]]:
    """``{"mean", "per_case"}`` of one run for a checkpoint and scoring (None when not computed)."""
    if "checkpoints" not in run:  # a summary of the older layout (no test_format): the selected checkpoint, raw
        return {"mean": run["mean"], "per_case": run["per_case"]} if (checkpoint, scoring) == ("selected", "raw") else None
    return run["checkpoints"].get(checkpoint, {}).get(scoring)


def table1(found: dict[str, list[dict[str, Any]]], metrics: Sequence[str] = TABLE1_METRICS, *,
           checkpoint: str = "final", scoring: str = "raw") -> dict[str, Any]:
    """Per method: mean ± std over the runs (seeds × folds) of the per-run test means (the
    paper's Table 1, one (seed, fold) run per row), for one checkpoint and scoring. Methods
    without scores of that kind are left out."""
    from toposeg.metrics import MetricAccumulator

    summary = {}
    for name, runs in found.items():
        acc = MetricAccumulator()  # one row per (seed, fold): NaN-aware mean/std over runs
        for r in runs:
            sc = _scores(r, checkpoint, scoring)
            if sc is not None:
                acc.update({m: nan_if_none(sc["mean"].get(m)) for m in metrics},
                           case_id=f"seed{r.get('seed', 0)}/fold{r['fold']}")
        if len(acc):
            stats = acc.compute()
            summary[name] = {m: stats[m] for m in metrics}
    return summary


def paired_rows(found: dict[str, list[dict[str, Any]]], *, checkpoint: str = "final", scoring: str = "raw"
                ) -> list[dict[str, Any]]:
    """Per-case rows for :func:`toposeg.reports.paired.paired_comparison`: ``method``, ``case``
    (``fold{k}/{case id}``, unique over folds), ``seed``, ``fold`` and the metrics."""
    rows = []
    for name, runs in found.items():
        for r in runs:
            sc = _scores(r, checkpoint, scoring)
            for row in (sc or {}).get("per_case", []):
                rows.append({"method": name, "case": f"fold{r['fold']}/{row['case_id']}", "seed": r.get("seed", 0),
                             "fold": r["fold"], **{k: v for k, v in row.items() if k != "case_id"}})
    return rows


def find_baseline(configs: Sequence[Config], name: Optional[str] = None) -> Optional[str]:
    """The baseline of the paired comparison: ``name`` (a config name) if given, else the one
    config whose ``method.loss`` is ``bce_dice``; None when there is none.

    Raises:
        ValueError: ``name`` matches no config, or several configs use ``bce_dice`` (pass ``--baseline``).
    """
    names = [c.name for c in configs]
    if name is not None:
        if name not in names:
            raise ValueError(f"--baseline {name!r} is not one of the configs {names}")
        return name
    plain = [c.name for c in configs if c.method.loss == "bce_dice"]
    if len(plain) > 1:
        raise ValueError(f"several configs fine-tune with bce_dice ({plain}): pass --baseline NAME")
    return plain[0] if plain else None


def _block_title(title: str, paper: str) -> str:
    return title.format(paper=paper)


def write_table1(out: Path, found: dict[str, list[dict[str, Any]]], *, title: str = "",
                 baseline: Optional[str] = None, figure: bool = True) -> Path:
    """Write ``table1.md/.json/.csv``, ``per_case.csv``, ``paired.md/.json`` and ``paired.png``.

    Four blocks of Table 1 (:data:`BLOCKS`): the final (equal-budget) checkpoint raw -- the
    headline --, the checkpoint selected on validation raw, and both by the paper protocol (2D
    only; absent blocks say why). Each block: mean ± std over seeds × folds of the per-run test
    means and, with a ``baseline``, the paired per-case difference of every Table 1 metric to it
    (95 % bootstrap CI, Wilcoxon p; each case averaged over seeds first).
    """
    from toposeg.engine.protocol import PAPER_3D_NOTE, PAPER_LABEL
    from toposeg.reports.paired import paired_comparison, paired_figure, paired_markdown

    folds = sorted({r["fold"] for runs in found.values() for r in runs})
    seeds = sorted({r.get("seed", 0) for runs in found.values() for r in runs})
    header = title or "Table 1"
    parts = [f"# {header}\n\nMean ± std over {len(seeds)} seed(s) {seeds} × {len(folds)} fold(s) {folds} of the "
             "per-(seed, fold) test means (whole images; validation split carved from the training folds; "
             "the fold split is the same for every seed). Headline: the final checkpoint (equal budget: every "
             "method the same number of steps), scored raw (no post-processing).\n"]
    paired_md = [f"# Paired differences to {baseline}\n\nPer test case (all folds; each case's value averaged "
                 "over seeds first): method − baseline, mean with 95 % percentile-bootstrap CI and two-sided "
                 "Wilcoxon signed-rank p, n = cases. A negative difference favours the method for the error "
                 "metrics (VOI, ARE, β errors, Betti matching and local Betti errors), a positive one for Dice and "
                 "mIoU; a difference is resolved only when its interval excludes 0.\n"] if baseline else []
    blocks: dict[str, Any] = {}
    headline_paired = None
    for checkpoint, scoring, block_title in BLOCKS:
        label = _block_title(block_title, PAPER_LABEL)
        key = f"{checkpoint}/{scoring}"
        summary = table1(found, checkpoint=checkpoint, scoring=scoring)
        if not summary:
            note = PAPER_3D_NOTE if scoring == "paper" else "no scores"
            blocks[key] = {"title": label, "summary": {}, "note": note}
            parts.append(f"## {label}\n\n{note}.\n")
            continue
        n_runs = {name: sum(_scores(r, checkpoint, scoring) is not None for r in found[name]) for name in summary}
        block: dict[str, Any] = {"title": label, "summary": summary, "n_runs": n_runs}
        parts.append(f"## {label}\n\n{markdown_table(summary, TABLE1_METRICS)}")
        if baseline is not None and baseline in summary:
            rows = paired_rows(found, checkpoint=checkpoint, scoring=scoring)
            paired = paired_comparison(rows, baseline=baseline, metrics=TABLE1_METRICS)
            block["paired"] = paired
            md = paired_markdown(paired, TABLE1_METRICS, baseline=baseline)
            parts.append(f"Paired per-case difference to {baseline} (95 % bootstrap CI, Wilcoxon p):\n\n{md}")
            paired_md.append(f"## {label}\n\n{md}")
            if key == "final/raw":
                headline_paired = paired
        elif baseline is not None:
            parts.append(f"No paired comparison: the baseline {baseline!r} has no scores here.\n")
        blocks[key] = block
    if baseline is None:
        parts.append("No paired comparison: no baseline (no config fine-tunes with bce_dice; pass --baseline NAME).\n")
    (out / "table1.md").write_text("\n".join(parts))
    headline = blocks["final/raw"].get("summary", {})
    (out / "table1.json").write_text(dumps({"seeds": seeds, "folds": folds, "metrics": list(TABLE1_METRICS),
                                            "headline": "final/raw", "baseline": baseline, "summary": headline,
                                            "blocks": blocks}, indent=1))
    with (out / "table1.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["checkpoint", "scoring", "method", *[f"{m}_{s}" for m in TABLE1_METRICS for s in ("mean", "std")],
                    "n_runs"])
        for checkpoint, scoring, _ in BLOCKS:
            block = blocks[f"{checkpoint}/{scoring}"]
            for name, per in block["summary"].items():
                w.writerow([checkpoint, scoring, name,
                            *[f"{per[m][s]:.6g}" for m in TABLE1_METRICS for s in ("mean", "std")],
                            block["n_runs"][name]])
    write_rows(out / "per_case.csv",
               [{"method": n, "seed": r.get("seed", 0), "fold": r["fold"], "checkpoint": checkpoint,
                 "scoring": scoring, **row}
                for checkpoint, scoring, _ in BLOCKS for n, runs in found.items() for r in runs
                for row in ((_scores(r, checkpoint, scoring) or {}).get("per_case", []))])
    if baseline is not None:
        (out / "paired.md").write_text("\n".join(paired_md))
        (out / "paired.json").write_text(dumps({"baseline": baseline, "metrics": list(TABLE1_METRICS),
                                                "seeds": seeds, "folds": folds, "confidence": 0.95,
                                                "blocks": {k: {"title": b["title"], "paired": b.get("paired")}
                                                           for k, b in blocks.items()}}, indent=1))
        if figure and headline_paired:
            paired_figure(out / "paired.png", headline_paired, TABLE1_METRICS, baseline=baseline,
                          title=f"Final checkpoint, raw: per-case difference to {baseline} (mean, 95 % bootstrap CI)")
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


def run_cv(configs: Sequence[Config], *, data_root: Optional[str], out: Path, folds: Sequence[int],
           seed: Union[int, Sequence[int]] = 0, device: str = "cpu", progress: bool = True, resume: bool = False,
           baseline: Optional[str] = None, log: Callable[[str], None] = print, jobs: int = 1,
           report_only: bool = False) -> Path:
    """Run every config on every seed and fold (finished runs are reused), then write the tables
    and figures (rank 0 only under torchrun). Every config is checked before the first run.

    ``jobs``: runs at a time, each in its own process with one torch thread (see
    :func:`run_parallel`); 1 (default) runs them one after the other in this process.
    ``report_only``: train nothing; write the tables and figures from the finished runs found in
    ``out`` (runs copied from other machines need only their ``test_summary.json`` and test
    predictions), listing the (config, seed, fold) runs that are missing. Raises
    FileNotFoundError when none is found.

    ``seed``: one seed or a list (``seed{s}/`` folders; the fold split is the same for all).
    ``baseline``: the config name the paired differences compare with (default: the config
    whose loss is ``bce_dice``, see :func:`find_baseline`)."""
    from toposeg.config import validate
    from toposeg.engine.protocol import _distributed, check_layout, run_dir

    seeds = [seed] if isinstance(seed, int) else list(seed)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    if jobs > 1 and _distributed()[1] > 1:
        raise ValueError("jobs > 1 cannot be combined with torchrun (one process per GPU already runs each run)")
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative ints, got {seed!r}")
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"config names must be unique (they name the run folders), got {names}")
    for cfg in configs:
        validate(cfg)
        bad = [k for k in folds if not 0 <= k < cfg.data.folds]
        if bad:
            raise ValueError(f"--folds {bad} out of range for {cfg.name!r} (data.folds={cfg.data.folds}: "
                             f"folds 0-{cfg.data.folds - 1})")
    rules = sorted({c.train.select_metric for c in configs})
    if len(rules) > 1:
        raise ValueError(f"train.select_metric differs between the configs ({', '.join(f'{c.name}: {c.train.select_metric}' for c in configs)}); "
                         "the checkpoint-selection rule must be the same for every method of a comparison")
    base = find_baseline(configs, baseline)
    check_layout(out)
    _check_shared_pretraining(configs)
    if _distributed()[0] != 0:  # under torchrun rank 0 holds the folder's lock and writes the tables
        return _train(configs, data_root, out, folds, seeds, device, progress, resume, jobs, log)
    with study_lock(out):
        if report_only:
            _check_reported_runs(out, configs, folds, seeds)
        else:
            _train(configs, data_root, out, folds, seeds, device, progress, resume, jobs, log)
        missing = [f"{n} seed {s} fold {k}" for s in seeds for k in folds for n in names
                   if not (run_dir(out, s, k) / n / "test_summary.json").is_file()]
        found = collect(out, names, folds, seeds)
        if not found:
            raise FileNotFoundError(f"no finished runs of {names} (seeds {seeds}, folds {list(folds)}) "
                                    f"in {out}")
        if missing:
            log(f"{len(missing)} run(s) missing, the tables use the others: {', '.join(missing)}")
        for name in REPORT_FILES:  # nothing left from an earlier call with other configs
            (out / name).unlink(missing_ok=True)
        path = write_table1(out, found, title=f"Table 1: {configs[0].data.kind}", baseline=base)
        _validation(out, configs, folds, seeds, base, log)
        _figure5(out, configs, folds[0], data_root, seeds[0])
        if not report_only:
            log("\n" + path.read_text())
        log(f"wrote {', '.join(n for n in REPORT_FILES if (out / n).is_file())} in {out} "
            f"from {sum(len(r) for r in found.values())} finished run(s)")
        return path


def _train(configs: Sequence[Config], data_root: Optional[str], out: Path, folds: Sequence[int],
           seeds: Sequence[int], device: str, progress: bool, resume: bool, jobs: int,
           log: Callable[[str], None]) -> Path:
    from toposeg.engine.protocol import run_fold

    for cfg in configs:  # data, model and loss of every config checked before any training
        run_fold(cfg, data_root=data_root, out=out, fold=folds[0], seed=seeds[0], device=device, progress=progress,
                 resume=resume, log=log, preflight_only=True)
    if jobs > 1:
        run_parallel(configs, data_root=data_root, out=out, folds=folds, seeds=seeds, device=device,
                     resume=resume, jobs=jobs, log=log)
    else:
        for s in seeds:
            for k in folds:
                for cfg in configs:
                    run_fold(cfg, data_root=data_root, out=out, fold=k, seed=s, device=device, progress=progress,
                             resume=resume, log=log)
    return out / "table1.md"


#: the files a cv call writes in its output folder (removed first, so none is left from another call)
REPORT_FILES = ("table1.md", "table1.csv", "table1.json", "per_case.csv", "paired.md", "paired.json", "paired.png",
                "validation.md", "validation.json", "fig5.png")
LOCK = ".toposeg-cv.lock"


@contextlib.contextmanager
def study_lock(out: Path):
    """Hold ``out/.toposeg-cv.lock`` (process id and host) while a cv call works in ``out``: a
    second cv call on the same folder is refused (two would train the same stages at once and
    corrupt them). A lock left by a process that no longer runs on this host is taken over.

    Raises:
        FileExistsError: another live cv process (or one on another host) holds the folder.
    """
    import socket

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path, me = out / LOCK, f"{os.getpid()} {socket.gethostname()}"
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = path.read_text().split() if path.is_file() else []
            pid = int(holder[0]) if holder and holder[0].isdigit() else None
            host = holder[1] if len(holder) > 1 else "?"
            if pid is not None and host == socket.gethostname() and not _alive(pid):
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            raise FileExistsError(f"{out} is in use by another toposeg cv (process {pid} on {host}); wait for it to "
                                  f"end or use another --out (if no such process runs, delete {path})") from None
        with os.fdopen(fd, "w") as fh:
            fh.write(me + "\n")
        break
    else:  # the lock reappeared after every take-over of a stale one: another process is racing for it
        raise FileExistsError(f"{out} is in use by another toposeg cv (it took {path} while this one started); "
                              "wait for it to end or use another --out")
    try:
        yield
    finally:
        if path.is_file() and path.read_text().strip() == me:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _check_shared_pretraining(configs: Sequence[Config]) -> None:
    """The configs of one call share each fold's pre-training folder: refuse, before any work,
    configs whose pre-training settings differ (they need separate --out folders)."""
    from toposeg.engine.protocol import pretrain_identity

    first = pretrain_identity(configs[0], seed=0, fold=0)
    for cfg in configs[1:]:
        other = pretrain_identity(cfg, seed=0, fold=0)
        if other != first:
            raise ValueError(f"configs {configs[0].name!r} and {cfg.name!r} pre-train differently "
                             f"({_describe_diff(first, other)}), but the configs of one cv call share each "
                             "fold's pre-training: run them with separate --out folders")


def _check_reported_runs(out: Path, configs: Sequence[Config], folds: Sequence[int], seeds: Sequence[int]) -> None:
    """--report-only: every finished run in ``out`` must have been written by the given config
    (its ``config.yaml``, run-only keys aside), as a reused run must be."""
    from toposeg.config import load_config
    from toposeg.engine.protocol import RUN_ONLY, _drop, run_dir

    for cfg in configs:
        want = _drop(to_dict(cfg), RUN_ONLY)
        for s in seeds:
            for k in folds:
                folder = run_dir(out, s, k) / cfg.name
                if not (folder / "test_summary.json").is_file():
                    continue
                if not (folder / "config.yaml").is_file():
                    raise ValueError(f"{folder}: no config.yaml, so which configuration wrote this run is unknown; "
                                     "copy run folders whole (checkpoints may stay behind)")
                stored = _drop(to_dict(load_config(folder / "config.yaml")), RUN_ONLY)
                if stored != want:
                    raise ValueError(f"{folder} holds a run of a different configuration ({_describe_diff(stored, want)}); "
                                     f"report it with the config that wrote it, or use another --out")


def _run_task(cfg: Config, data_root: Optional[str], out: Path, fold: int, seed: int, device: str,
              resume: bool) -> tuple[float, bool]:
    """One (config, seed, fold) run in a worker process of :func:`run_parallel`; returns
    (seconds, whether the run was already finished and only reused)."""
    import time

    from toposeg.engine.protocol import run_dir, run_fold

    reused = (run_dir(out, seed, fold) / cfg.name / "test_summary.json").is_file()
    start = time.perf_counter()
    run_fold(cfg, data_root=data_root, out=out, fold=fold, seed=seed, device=device, progress=False,
             resume=resume, log=lambda s: None)
    return time.perf_counter() - start, reused


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_parallel(configs: Sequence[Config], *, data_root: Optional[str], out: Path, folds: Sequence[int],
                 seeds: Sequence[int], device: str, resume: bool, jobs: int,
                 log: Callable[[str], None] = print) -> None:
    """Run every (config, seed, fold) with ``jobs`` worker processes (spawned, one torch thread
    each; on CUDA they share the GPU). The first config of each (seed, fold) runs first, since it
    writes the fold's shared pre-training; the fold's other configs become ready once it has
    finished. Ready runs start in the order (config, seed, fold) of the arguments, so an
    interrupted call has finished the first configs on every seed and fold first. One line per
    finished or reused run (seconds, runs done / total). The first failure stops the start of new
    runs, waits for those running, and is raised; a worker that dies (killed, out of memory)
    raises ChildProcessError naming its run. SIGTERM to this process (main thread) is passed to
    the workers as SIGINT, so each saves its stage's ``last.pt`` and ends, and the call ends
    with KeyboardInterrupt. Finished runs stay on disk and are reused by the next call
    (``resume=True`` also continues interrupted ones)."""
    import multiprocessing as mp
    import signal
    import threading
    import time
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    total = len(configs) * len(seeds) * len(folds)
    start = time.perf_counter()
    done = 0
    ready = [(0, si, ki) for si in range(len(seeds)) for ki in range(len(folds))]  # indices into the arguments
    log(f"cv: {total} runs ({len(configs)} configs x {len(seeds)} seed(s) x {len(folds)} fold(s)), "
        f"up to {jobs} at a time in worker processes on {device}")
    error: Optional[BaseException] = None
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                               initargs=(1,))

    def stop(signum: int, frame: Any) -> None:  # SIGTERM: the workers save their stage and end, like Ctrl-C
        for proc in list(getattr(pool, "_processes", {}).values()):
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGINT)
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers: main thread only
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        running: dict[Any, tuple[int, int, int]] = {}
        while ready or running:
            ready.sort()
            while error is None and ready and len(running) < jobs:
                c, si, ki = task = ready.pop(0)
                running[pool.submit(_run_task, configs[c], data_root, out, folds[ki], seeds[si], device,
                                    resume)] = task
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                c, si, ki = running.pop(fut)
                where = f"{configs[c].name} seed {seeds[si]} fold {folds[ki]}"
                try:
                    seconds, reused = fut.result()
                except BrokenProcessPool:
                    error = error or ChildProcessError(
                        f"a worker process died while running {where} (killed, or out of memory); finished runs "
                        "are kept: run the same command with --resume to continue")
                    continue
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after the running ones end
                    log(f"cv: {where} FAILED: {type(exc).__name__}: {exc}")
                    error = error or exc
                    continue
                done += 1
                what = "reused (finished earlier)" if reused else f"done in {seconds:.0f} s"
                log(f"cv: {where} {what} ({done}/{total}, {time.perf_counter() - start:.0f} s elapsed)")
                if c == 0:
                    ready += [(other, si, ki) for other in range(1, len(configs))]
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        pool.shutdown(wait=True, cancel_futures=True)
    if error is not None:
        raise error


def _validation(out: Path, configs: Sequence[Config], folds: Sequence[int], seeds: Sequence[int],
                baseline: Optional[str], log: Callable[[str], None] = print) -> None:
    """``validation.md/.json``: final-checkpoint validation scores and the recommended method's
    choice by the written rule (:mod:`toposeg.reports.selection`); none when no run has any."""
    from toposeg.reports.selection import write_validation

    write_validation(out, [c.name for c in configs], folds, seeds, baseline,
                     steps={c.name: c.train.finetune.steps for c in configs}, log=log)


def _figure5(out: Path, configs: Sequence[Config], fold: int, data_root: Optional[str], seed: int = 0) -> None:
    """Image, ground truth and each method's prediction (final checkpoint) for the first test
    cases of ``fold`` of ``seed``; no figure when a method's predictions are missing there."""
    from toposeg.data import open_dataset
    from toposeg.data.splits import read_splits, select
    from toposeg.engine.protocol import PREDICTIONS, run_dir
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
        path = run_dir(out, seed, fold) / c.name / PREDICTIONS
        if not path.is_file():
            return
        with np.load(path) as stored:
            if any(case.id not in stored.files for case in shown):
                return
            preds[c.name] = [stored[case.id].astype(bool) for case in shown]
    comparison_figure(out / "fig5.png", [c.image[0] for c in shown], [c.label for c in shown], preds,
                      titles=[c.id for c in shown])

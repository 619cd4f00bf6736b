"""`toposeg cv`: k-fold cross-validation over several configs, then Table 1."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from toposeg.commands._common import add_experiment_flags, check_run_folder, resolve_device

HELP = ("Run the k-fold protocol for every config matching CONFIG_GLOB and every --seed (finished "
        "(seed, fold, method) runs are reused; folders OUT/seed{S}/fold{K}/{method}), then write "
        "table1.md/.csv/.json (final and validation-selected checkpoints, raw and paper protocol), "
        "paired.md/.json/.png (per-case differences to the baseline), validation.md/.json (validation scores "
        "and the selection rule's choice), per_case.csv and fig5.png. "
        "Example: toposeg cv 'configs/isbi2012_quick/*.yaml' --data-root DATA --out runs/isbi2012_quick --seed 0-2")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configs", metavar="CONFIG_GLOB",
                        help="quoted glob of config files, e.g. 'configs/isbi2012_quick/*.yaml'")
    add_experiment_flags(parser)
    parser.add_argument("--folds", default="0-4", help="folds to run, e.g. 0-4 or 0,2")
    parser.add_argument("--baseline", default=None, metavar="NAME",
                        help="config name the paired differences compare with (default: the config whose "
                             "method.loss is bce_dice)")
    parser.add_argument("--methods", default=None,
                        help="comma-separated config names or losses to keep, e.g. unet,shpm "
                             "(a name that matches no config is an error)")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: write the tables and figures from the finished runs in --out "
                             "(e.g. runs copied from other machines: test_summary.json and test predictions "
                             "suffice), listing the runs that are missing")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="runs at a time, each in its own process with one torch thread (on a GPU they "
                             "share it); a fold's first config runs first, since it writes the fold's shared "
                             "pre-training. Useful on many cores or a large GPU; 1 = one after the other")


def baseline_note(configs, kept, methods: str, baseline: Optional[str]) -> Optional[str]:
    """The warning when ``--methods`` leaves out the baseline (None when it keeps it).

    ``configs``: every config matched by the glob; ``kept``: those ``--methods`` selected. The
    baseline is ``--baseline`` if given, else the config that fine-tunes with ``bce_dice``
    (:func:`toposeg.engine.experiments.find_baseline`). Without it the tables are still written
    but hold no paired differences, and ``validation.md`` no choice of the selection rule: a
    warning, not an error.

    Raises:
        ValueError: ``--baseline NAME`` names a config that ``--methods`` left out (the paired
            comparison asked for cannot be made).
    """
    names = [c.name for c in kept]
    add = methods.strip().rstrip(",")
    if baseline is not None:
        if baseline in names or baseline not in [c.name for c in configs]:
            return None  # kept, or unknown: find_baseline names the valid configs
        raise ValueError(f"--baseline {baseline!r} is not among the configs kept by --methods {methods!r} "
                         f"({names}); add it: --methods {add},{baseline}")
    if any(c.method.loss == "bce_dice" for c in kept):
        return None
    plain = [c.name for c in configs if c.method.loss == "bce_dice"]
    if not plain:
        return None  # no baseline anywhere: the tables say so
    which = (f"the baseline {plain[0]!r} (the config that fine-tunes with bce_dice)" if len(plain) == 1 else
             f"every baseline candidate {plain} (configs that fine-tune with bce_dice)")
    how = (f"add it: --methods {add},{plain[0]}" if len(plain) == 1 else
           f"add one and name it: --methods {add},{plain[0]} --baseline {plain[0]}")
    return (f"warning: --methods {methods!r} leaves out {which}: the paired differences to the baseline "
            f"(table1.md, paired.md/.json/.png) and the selection rule's choice (validation.md) need it and will "
            f"be missing; {how}, or pass --baseline NAME for a kept config ({names})")


def run(args: argparse.Namespace) -> int:
    import glob
    from pathlib import Path

    from toposeg.commands.train import load_configs
    from toposeg.engine.distributed import distributed_session
    from toposeg.engine.experiments import parse_folds, run_cv, select_methods
    from toposeg.engine.protocol import parse_seeds

    paths = sorted(glob.glob(args.configs))
    if not paths:
        raise FileNotFoundError(f"no config files match {args.configs!r}")
    configs = load_configs(paths, args.set)
    note = None
    if args.methods is not None:
        kept = select_methods(configs, args.methods)
        note = baseline_note(configs, kept, args.methods, args.baseline)
        configs = kept
    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    check_run_folder(args.out, args.data_root)  # a file, or inside the read-only dataset: before any work
    if note:
        print(note, file=sys.stderr)
    folds = parse_folds(args.folds)
    seeds = parse_seeds(args.seed)
    with distributed_session(resolve_device(args.device)) as device:
        run_cv(configs, data_root=args.data_root, out=Path(args.out), folds=folds, seed=seeds,
               device=device, progress=not args.no_progress, resume=args.resume, baseline=args.baseline, jobs=args.jobs,
               report_only=args.report_only)
    return 0

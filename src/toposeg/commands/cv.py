"""`toposeg cv`: k-fold cross-validation over several configs, then Table 1."""

from __future__ import annotations

import argparse

from toposeg.commands._common import add_experiment_flags, resolve_device

HELP = ("Run the k-fold protocol for every config matching CONFIG_GLOB (finished folds are skipped), "
        "then write table1.md/.csv/.json, per_case.csv and fig5.png.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("configs", metavar="CONFIG_GLOB", help="e.g. 'configs/isbi2012_quick_*.yaml'")
    add_experiment_flags(parser)
    parser.add_argument("--folds", default="0-4", help="folds to run, e.g. 0-4 or 0,2")
    parser.add_argument("--methods", default=None,
                        help="comma-separated config names or losses to keep, e.g. unet,shpm")


def run(args: argparse.Namespace) -> int:
    import glob
    from pathlib import Path

    from toposeg.config import load_config
    from toposeg.engine.distributed import distributed_session
    from toposeg.engine.experiments import parse_folds, run_cv

    paths = sorted(glob.glob(args.configs))
    if not paths:
        raise FileNotFoundError(f"no config files match {args.configs!r}")
    configs = [load_config(p, args.set) for p in paths]
    if args.methods:
        wanted = {m.strip() for m in args.methods.split(",")}
        configs = [c for c in configs if c.name in wanted or c.method.loss in wanted
                   or c.name.rsplit("_", 1)[-1] in wanted]
        if not configs:
            raise ValueError(f"--methods {args.methods!r} matches none of the configs {paths}")
    with distributed_session(resolve_device(args.device)) as device:
        run_cv(configs, data_root=args.data_root, out=Path(args.out), folds=parse_folds(args.folds),
               seed=args.seed, device=device, progress=not args.no_progress, resume=args.resume)
    return 0

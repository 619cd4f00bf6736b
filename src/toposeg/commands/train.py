"""`toposeg train`: one fold of the paper's protocol from a config."""

from __future__ import annotations

import argparse

from toposeg.commands._common import add_experiment_flags, resolve_device

HELP = ("Pre-train a U-Net with BCE+Dice (shared per fold), fine-tune it with the config's loss, "
        "select the checkpoint on the validation split and evaluate it on the test split. "
        "Resumable; launch with torchrun for multi-GPU/multi-node.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (see configs/)")
    add_experiment_flags(parser)
    parser.add_argument("--fold", type=int, default=0, help="cross-validation fold")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toposeg.config import load_config
    from toposeg.engine.distributed import distributed_session
    from toposeg.engine.protocol import run_fold

    cfg = load_config(args.config, args.set)
    with distributed_session(resolve_device(args.device)) as device:
        run_fold(cfg, data_root=args.data_root, out=Path(args.out), fold=args.fold, seed=args.seed,
                 device=device, progress=not args.no_progress, resume=args.resume)
    return 0

"""`toposeg train`: one fold of the paper's protocol from a config."""

from __future__ import annotations

import argparse

from toposeg.commands._common import add_experiment_flags, check_run_folder, resolve_device

HELP = ("Check the config, data, model and loss (preflight), pre-train a U-Net with BCE+Dice (shared per "
        "seed and fold), fine-tune it with the config's loss, select a checkpoint on the validation split and "
        "evaluate the final and the selected checkpoint on the test split (OUT/seed{S}/fold{K}/{name}). Prints where it writes and the validation scores as it goes. "
        "Resumable; launch with torchrun for multi-GPU/multi-node (data.batch_size is per process).")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config (see configs/)")
    add_experiment_flags(parser)
    parser.add_argument("--fold", type=int, default=0, help="cross-validation fold")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (file, its bases, --set overrides, defaults) and exit")


def load_configs(paths, overrides):
    """Configs of ``paths`` with ``overrides``; an error names the file it came from."""
    from toposeg.config import load_config

    configs = []
    for path in paths:
        try:
            configs.append(load_config(path, overrides))
        except (KeyError, ValueError) as exc:
            msg = str(exc.args[0] if exc.args else exc)
            raise ValueError(msg if msg.startswith((f"{path}:", "--set ")) else f"{path}: {msg}") from None
    return configs


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toposeg.engine.distributed import distributed_session
    from toposeg.engine.protocol import parse_seeds, run_fold

    cfg = load_configs([args.config], args.set)[0]
    seeds = parse_seeds(args.seed)
    if args.print_config:
        import yaml

        from toposeg.config import to_dict

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    check_run_folder(args.out, args.data_root)  # a file, or inside the read-only dataset: before any work
    with distributed_session(resolve_device(args.device)) as device:
        for seed in seeds:
            run_fold(cfg, data_root=args.data_root, out=Path(args.out), fold=args.fold, seed=seed,
                     device=device, progress=not args.no_progress, resume=args.resume)
    return 0

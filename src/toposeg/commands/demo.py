"""`toposeg demo`: the main job on embedded synthetic data (CPU-friendly)."""

from __future__ import annotations

import argparse

from toposeg.commands._common import add_device, add_out, add_seed, resolve_device

HELP = ("Pre-train a U-Net on seeded synthetic vessel images, fine-tune it with BCE+Dice, with the paper's "
        "SHPM and with toposeg's recommended method for the same number of steps on the same batches, and "
        "compare Dice/IoU/Betti errors on held-out images.")


def configure(parser: argparse.ArgumentParser) -> None:
    from toposeg.engine.demo import DemoConfig

    d = DemoConfig()  # the one source of the demo's defaults
    add_out(parser, "toposeg-demo")
    add_seed(parser)
    add_device(parser)
    parser.add_argument("--size", type=int, default=d.size, help="synthetic image size (pixels)")
    parser.add_argument("--n-train", type=int, default=d.n_train, help="number of training images")
    parser.add_argument("--n-test", type=int, default=d.n_test, help="number of held-out test images")
    parser.add_argument("--pretrain-steps", type=int, default=d.pretrain_steps, help="pre-training steps (BCE+Dice)")
    parser.add_argument("--finetune-steps", type=int, default=d.finetune_steps,
                        help="fine-tuning steps, the same for the baseline, SHPM and the recommended method")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--recommended", metavar="LOSS", default=d.recommended,
                       help="fine-tune this loss (a name of the loss registry, e.g. cldice, shpm_plus; its default "
                            "parameters) as the third method instead of toposeg's recommendation for the dataset")
    which.add_argument("--no-recommended", action="store_true",
                       help="skip the third fine-tuning (only the baseline and the paper's SHPM)")
    parser.add_argument("--quick", action="store_true",
                        help="a run of seconds (tiny data, few steps) to check the installation")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toposeg.engine.demo import DemoConfig, run_demo

    options = dict(seed=args.seed, size=args.size, n_train=args.n_train, n_test=args.n_test,
                   pretrain_steps=args.pretrain_steps, finetune_steps=args.finetune_steps,
                   device=resolve_device(args.device), progress=not args.no_progress,
                   recommended=args.recommended, compare_recommended=not args.no_recommended)
    if args.quick:
        options.update(size=64, n_train=4, n_test=2, pretrain_steps=4, finetune_steps=2, patch=32,
                       batch_size=2, n_figure=2)
    run_demo(DemoConfig(**options), Path(args.out))  # DemoConfig rejects a bad --recommended before any work
    return 0

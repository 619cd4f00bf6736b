"""`toposeg demo`: the main job on embedded synthetic data (CPU-friendly)."""

from __future__ import annotations

import argparse

from toposeg.commands._common import add_device, add_out, add_seed, resolve_device

HELP = ("Pre-train a U-Net on seeded synthetic vessel images, fine-tune it with BCE+Dice, with the paper's "
        "SHPM and with toposeg's recommended method for the same number of steps on the same batches, and "
        "compare Dice/IoU/Betti errors on held-out images.")


# what --quick changes; each of the first five yields to its option when the user gives it
QUICK = dict(size=64, n_train=4, n_test=2, pretrain_steps=4, finetune_steps=2, patch=32, batch_size=2, n_figure=2)
FLAGS = dict(size="--size", n_train="--n-train", n_test="--n-test", pretrain_steps="--pretrain-steps",
             finetune_steps="--finetune-steps")


def configure(parser: argparse.ArgumentParser) -> None:
    from toposeg.engine.demo import DemoConfig

    d = DemoConfig()  # the one source of the demo's defaults
    add_out(parser, "toposeg-demo")
    add_seed(parser)
    add_device(parser)
    # None = not given: the DemoConfig default, or the --quick value with --quick (explicit flags win)
    parser.add_argument("--size", type=int, default=None,
                        help=f"synthetic image size (pixels), at least the patch size (default {d.size}; "
                             f"patches of {d.patch} px; --quick: {QUICK['size']}, patches of {QUICK['patch']} px)")
    parser.add_argument("--n-train", type=int, default=None,
                        help=f"number of training images (default {d.n_train}; --quick: {QUICK['n_train']})")
    parser.add_argument("--n-test", type=int, default=None,
                        help=f"number of held-out test images (default {d.n_test}; --quick: {QUICK['n_test']})")
    parser.add_argument("--pretrain-steps", type=int, default=None,
                        help=f"pre-training steps (BCE+Dice) (default {d.pretrain_steps}; "
                             f"--quick: {QUICK['pretrain_steps']})")
    parser.add_argument("--finetune-steps", type=int, default=None,
                        help="fine-tuning steps, the same for the baseline, SHPM and the recommended method "
                             f"(default {d.finetune_steps}; --quick: {QUICK['finetune_steps']})")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--recommended", metavar="LOSS", default=d.recommended,
                       help="fine-tune this loss (a name of the loss registry, e.g. cldice, shpm_plus; its default "
                            "parameters) as the third method instead of toposeg's recommendation for the dataset")
    which.add_argument("--no-recommended", action="store_true",
                       help="skip the third fine-tuning (only the baseline and the paper's SHPM)")
    parser.add_argument("--quick", action="store_true",
                        help="a run of seconds (tiny data, few steps) to check the installation: "
                             + ", ".join(f"{k}={v}" for k, v in QUICK.items())
                             + "; --size, --n-train, --n-test, --pretrain-steps and --finetune-steps given "
                               "explicitly override these values")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toposeg.engine.demo import DemoConfig, run_demo

    options = dict(QUICK) if args.quick else {}
    given = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    options.update(given)  # an explicit option wins over --quick
    patch = options.get("patch", DemoConfig.patch)
    size = options.get("size", DemoConfig.size)
    if size < patch:  # there is no --patch option: say what the user can change
        raise ValueError(f"--size must be at least the patch size {patch}, got --size {size} "
                         f"(--quick uses {QUICK['size']} px images with {QUICK['patch']} px patches)")
    options.update(seed=args.seed, device=resolve_device(args.device), progress=not args.no_progress,
                   recommended=args.recommended, compare_recommended=not args.no_recommended)
    try:
        config = DemoConfig(**options)  # rejects a bad --recommended before any work
    except ValueError as exc:  # name the option, not the DemoConfig field: "--n-test must be >= 1, got 0"
        message = str(exc)
        for name, flag in FLAGS.items():
            if message.startswith(f"{name} "):
                message = flag + message[len(name):]
                break
        raise ValueError(message) from None
    from toposeg.commands._common import check_out_path

    check_out_path(args.out)  # empty, a link loop or under a file: refused before any training
    run_demo(config, Path(args.out))
    return 0

"""`toposeg bench`: seconds per 100 training iterations per method (the paper's Table 2)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toposeg.commands._common import add_device, add_out, add_seed, resolve_device

HELP = "Time training steps per method (the paper's Table 2) and the miners alone; writes JSON + Markdown."


def configure(parser: argparse.ArgumentParser) -> None:
    add_out(parser, default="bench")
    add_device(parser)
    add_seed(parser)
    parser.add_argument("--dims", type=int, nargs="+", choices=[2, 3], default=[2, 3], help="spatial dims to time")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations per method (median, x100)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up iterations per method")
    parser.add_argument("--patch2d", type=int, nargs=2, default=[256, 256], metavar=("H", "W"))
    parser.add_argument("--patch3d", type=int, nargs=3, default=[72, 128, 128], metavar=("D", "H", "W"),
                        help="3D patch (the paper's 128x128x72; smaller is much faster on CPU)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--features", type=int, nargs=3, default=[32, 64, 128], help="U-Net channels per level")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="subset of: U-Net +clDice +THPM +PHPM +SHPM '+Skeleton Recall' (U-Net always runs)")
    parser.add_argument("--threshold", type=float, default=0.6,
                        help="mining threshold t of the HPM methods (the paper's 0.6)")
    parser.add_argument("--backend", default="auto", help="skeletonization backend")
    parser.add_argument("--mining-repeats", type=int, default=5)
    parser.add_argument("--markdown", action=argparse.BooleanOptionalAction, default=True,
                        help="also write losses.md next to losses.json")


def run(args: argparse.Namespace) -> int:
    from toposeg.benchmark import run_benchmark, to_markdown
    from toposeg.commands._common import check_out_path

    check_out_path(args.out)  # empty, a link loop or under a file: refused before the benchmark runs
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file; expected a folder")
    device = resolve_device(args.device)
    result = run_benchmark(
        tuple(dict.fromkeys(args.dims)), patches={2: args.patch2d, 3: args.patch3d}, iters=args.iters,
        warmup=args.warmup, batch_size=args.batch_size, device=device, methods=args.methods,
        features=args.features, threshold=args.threshold, backend=args.backend,
        mining_repeats=args.mining_repeats, seed=args.seed,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "losses.json").write_text(json.dumps(result, indent=2))
    md = to_markdown(result)
    if args.markdown:
        (out / "losses.md").write_text(md + "\n")
    print(md)
    print(f"wrote {out / 'losses.json'}" + (f" and {out / 'losses.md'}" if args.markdown else ""), file=sys.stderr)
    return 0

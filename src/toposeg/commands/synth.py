"""`toposeg synth`: write a synthetic dataset with known topology in the folder format."""

from __future__ import annotations

import argparse

from toposeg.commands._common import add_out, add_overwrite, add_seed, image_size

HELP = "Write a synthetic dataset with known topology in the folder format (image/, label/, betti.csv, preview.png)."


def configure(parser: argparse.ArgumentParser) -> None:
    from toposeg.data.synthetic import SYNTHETIC

    parser.add_argument("kind", choices=sorted(SYNTHETIC), help="generator")
    parser.add_argument("--n", type=int, default=16, help="number of cases")
    parser.add_argument("--size", type=image_size, default=128,
                        help="side in pixels (3D: an int s gives round(0.5625 s) x s x s) or DxHxW / HxW")
    add_seed(parser)
    add_out(parser, "synthetic")
    add_overwrite(parser)


def run(args: argparse.Namespace) -> int:
    from toposeg.data.synthetic import SyntheticCases
    from toposeg.data.writer import write_folder

    from toposeg.commands._common import check_output, staged_output

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    check_output(args.out, args.overwrite)
    cases = SyntheticCases(args.kind, args.n, size=args.size, seed=args.seed)
    with staged_output(args.out, args.overwrite) as tmp:  # image/ and label/ replace old ones whole
        write_folder(cases, tmp, overwrite=True)
    print(f"wrote {args.n} {args.kind} cases to {args.out} (image/, label/, betti.csv, preview.png)")
    return 0

"""``toposeg`` command line: one subcommand per module in :mod:`toposeg.commands`."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from toposeg import __version__
from toposeg.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toposeg",
        description="Topology-preserving segmentation of tubular structures (SHPM and rivals).",
    )
    parser.add_argument("--version", action="version", version=f"toposeg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.HELP,
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        command.configure(p)
        p.set_defaults(_run=command.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, TypeError, FileNotFoundError) as exc:
        print(f"toposeg {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

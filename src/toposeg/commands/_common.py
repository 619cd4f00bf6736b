"""Flags shared by subcommands and the placeholder for commands not built yet."""

from __future__ import annotations

import argparse
import sys


def add_out(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--out", default=default, help="output folder")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to compute; auto = cuda when available, else cpu")


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument("--seed", type=int, default=default, help="random seed")


def add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="config override (repeatable)")


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available on this machine")
    return name


def not_built(command: str, issue: int):
    """A ``run`` for a planned command: says so clearly and exits with status 3."""

    def run(args: argparse.Namespace) -> int:
        print(f"toposeg {command}: not built yet (planned, tracked in issue #{issue}).", file=sys.stderr)
        return 3

    return run

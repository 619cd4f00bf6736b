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


def add_experiment_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the commands that run the training protocol (train, cv)."""
    parser.add_argument("--data-root", default=None, help="dataset folder (not needed for synthetic kinds)")
    add_out(parser, "runs")
    add_seed(parser)
    add_device(parser)
    add_set(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run in --out (finished stages are always reused)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


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

"""`toposeg train` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Train a model from a config (pre-train, then fine-tune with a topology loss). [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("train", 7)

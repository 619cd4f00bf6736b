"""`toposeg predict` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Whole-image sliding-window prediction with a trained checkpoint. [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("predict", 5)

"""`toposeg evaluate` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Evaluate predicted masks against ground truth (Dice, clDice, Betti errors, VOI, ARE). [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("evaluate", 5)

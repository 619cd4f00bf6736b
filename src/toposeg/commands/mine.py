"""`toposeg mine` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Draw the hard pixels of THPM, PHPM and SHPM (the paper's Fig. 4). [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("mine", 4)

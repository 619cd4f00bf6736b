"""`toposeg cv` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Run the k-fold cross-validation protocol and write Table 1. [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("cv", 7)

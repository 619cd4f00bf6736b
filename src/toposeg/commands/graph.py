"""`toposeg graph` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Extract road/vessel graphs and plan routes on prediction vs ground truth (APLS). [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("graph", 8)

"""`toposeg bench` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Time training steps per method (the paper's Table 2). [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("bench", 7)

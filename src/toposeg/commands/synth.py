"""`toposeg synth` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Write a synthetic dataset with known topology in the folder format. [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("synth", 6)

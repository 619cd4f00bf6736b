"""`toposeg demo` (being built)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Run the main demo. [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("demo", 2)

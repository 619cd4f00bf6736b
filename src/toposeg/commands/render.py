"""`toposeg render` (planned)."""

import argparse

from toposeg.commands._common import not_built

HELP = "Export 3D masks as meshes (PLY/OBJ/STL) and draw a comparison panel. [not built yet]"


def configure(parser: argparse.ArgumentParser) -> None:
    pass


run = not_built("render", 8)

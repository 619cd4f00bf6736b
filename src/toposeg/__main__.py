"""``python -m toposeg ...``: the ``toposeg`` command without an installed entry point."""

import sys

from toposeg.cli import main

if __name__ == "__main__":
    sys.exit(main())

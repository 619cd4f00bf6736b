"""Table 2: seconds per 100 training iterations per loss, ratio to U-Net (same process).

    python benchmarks/losses.py                      # 2D 256^2 and 3D 72x128x128 (slow on CPU)
    python benchmarks/losses.py --patch3d 32 64 64 --iters 3

Writes benchmarks/results/losses.json (with metadata) and prints the Markdown tables that go
into docs/losses.md. All options are those of ``toposeg bench``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from toposeg.cli import main

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "results"
    argv = sys.argv[1:]
    if "--out" not in argv:
        argv = ["--out", str(out), "--no-markdown", *argv]
    sys.exit(main(["bench", *argv]))

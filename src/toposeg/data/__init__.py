"""Data: cases, synthetic generators with known topology, loaders."""

from toposeg.data.case import Case
from toposeg.data.synthetic import SYNTHETIC, make_synthetic

__all__ = ["Case", "SYNTHETIC", "make_synthetic"]

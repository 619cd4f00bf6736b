"""toposeg: topology-preserving segmentation of tubular structures.

Importing the package is cheap; subpackages (``toposeg.skeleton``, ``toposeg.mining``,
``toposeg.losses``, ``toposeg.metrics``, ``toposeg.models``, ``toposeg.data``) are imported
on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.3.0"

_SUBMODULES = (
    "skeleton", "topology", "mining", "losses", "metrics", "models", "data",
    "engine", "inference", "reports", "config",
)


def __getattr__(name: str) -> Any:  # lazy subpackages: ``import toposeg; toposeg.losses``
    if name in _SUBMODULES:
        return importlib.import_module(f"toposeg.{name}")
    raise AttributeError(f"module 'toposeg' has no attribute {name!r}")


__all__ = ["__version__", *_SUBMODULES]

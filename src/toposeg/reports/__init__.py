"""Tables and figures. Figure functions are imported on first use (matplotlib is not loaded
by ``import toposeg.reports``)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "hard_pixel_figure": "toposeg.reports.hard_pixels",
    "mine_hard_pixels": "toposeg.reports.hard_pixels",
    "comparison_figure": "toposeg.reports.comparison",
    "training_curves": "toposeg.reports.curves",
    "route_figure": "toposeg.reports.graph_figure",
    "component_panel": "toposeg.reports.mesh",
    "mask_to_mesh": "toposeg.reports.mesh",
    "save_mesh": "toposeg.reports.mesh",
    "overlay": "toposeg.reports.overlay",
    "markdown_table": "toposeg.reports.tables",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'toposeg.reports' has no attribute {name!r}")


__all__ = sorted(_LAZY)

"""Training engine: stages, protocol, checkpoints, distributed runs, the demo.

Submodules are imported on first use (``toposeg.engine.load_model`` imports torch then), so that
light modules such as the demo's config can be read without importing torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_checkpoint", "load_model", "save_checkpoint"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from toposeg.engine import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'toposeg.engine' has no attribute {name!r}")

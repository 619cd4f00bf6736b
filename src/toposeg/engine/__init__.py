"""Training engine: trainer, checkpoints."""

from toposeg.engine.checkpoint import load_checkpoint, load_model, save_checkpoint

__all__ = ["load_checkpoint", "load_model", "save_checkpoint"]

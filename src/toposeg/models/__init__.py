"""Segmentation networks returning logits, and the ``build_model`` registry."""

from toposeg.models.registry import MODELS, build_model
from toposeg.models.unet import UNet

__all__ = ["MODELS", "UNet", "build_model"]

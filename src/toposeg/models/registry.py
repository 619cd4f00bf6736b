"""Explicit model registry: ``build_model(name, **params)``."""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from toposeg.models.unet import UNet

MODELS: dict[str, Callable[..., nn.Module]] = {"unet": UNet}


def build_model(name: str, **params: Any) -> nn.Module:
    """Build a network returning logits, e.g. ``build_model("unet", spatial_dims=2)``."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; valid: {sorted(MODELS)}")
    return MODELS[name](**params)

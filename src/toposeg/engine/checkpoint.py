"""Checkpoints: the model's registry name and parameters travel with its weights.

Format (a ``torch.save`` dict): ``model`` (registry name), ``model_params`` (kwargs of
``build_model``), ``state_dict``, and optional ``extra`` (optimizer, scheduler, RNG, iteration,
config, ...). Writes are atomic: a temporary file is renamed over the target, so an interrupted
write never destroys the previous checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from toposeg.models import build_model

PathLike = Union[str, Path]
_KEYS = ("model", "model_params", "state_dict")


def save_checkpoint(path: PathLike, model: nn.Module, *, name: str, params: dict[str, Any],
                    extra: Optional[dict[str, Any]] = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"model": name, "model_params": dict(params), "state_dict": model.state_dict(), "extra": extra or {}}
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable toposeg checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or any(k not in payload for k in _KEYS):
        raise ValueError(f"{path}: not a toposeg checkpoint (expected keys {list(_KEYS)})")
    return payload


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") -> nn.Module:
    """Rebuild the model from a checkpoint and load its weights (eval mode)."""
    payload = load_checkpoint(path, map_location=device)
    model = build_model(payload["model"], **payload["model_params"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit model {payload['model']!r} {payload['model_params']}: {exc}") from exc
    return model.to(device).eval()

"""Checkpoints: the model's registry name, parameters and inference settings travel with its weights.

Format 2 (toposeg >= 0.2; a ``torch.save`` dict, read with ``weights_only=True``):

* ``format_version``: ``2``;
* ``model`` (registry name) and ``model_params`` (kwargs of :func:`toposeg.models.build_model`);
* ``state_dict``: the weights (never prefixed by a DistributedDataParallel wrapper);
* ``inference``: everything needed to predict like training scored its test cases, see
  :func:`inference_settings` (keys ``window``, ``overlap``, ``normalization``, ``hu_window``,
  ``threshold``, ``label_foreground``, ``spatial_dims``, ``in_channels``);
* ``extra``: optional training state (optimizer, scheduler, RNG, step, config, ...).

Format 1 (toposeg < 0.2: no ``format_version``, the previous U-Net without GroupNorm) is refused
with one clear ValueError: its weights do not fit the current network. Writes are atomic: a
temporary file is renamed over the target, so an interrupted write never destroys the previous
checkpoint.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

from toposeg.models import build_model

PathLike = Union[str, Path]
FORMAT_VERSION = 2
_KEYS = ("model", "model_params", "state_dict")
INFERENCE_KEYS = ("window", "overlap", "normalization", "hu_window", "threshold", "label_foreground",
                  "spatial_dims", "in_channels")
#: module-name prefixes of the format-1 U-Net (``enc.0.0.weight``, ``up.0.weight``, ``head.weight``)
_FORMAT1_PREFIXES = ("enc.", "dec.", "up.", "head.")


def format1_message(path: PathLike) -> str:
    return (f"{path}: checkpoint format 1 (toposeg < 0.2): retrain with this version (its U-Net "
            f"changed), or use it with toposeg < 0.2 (pip install 'toposeg<0.2'); this version "
            f"reads checkpoint format {FORMAT_VERSION}")


def inference_settings(*, spatial_dims: int, in_channels: int, window: Optional[Sequence[int]] = None,
                       overlap: float = 0.25, normalization: str = "zscore",
                       hu_window: Optional[Sequence[float]] = None, threshold: float = 0.5,
                       label_foreground: str = "nonzero") -> dict[str, Any]:
    """The ``inference`` dict of a checkpoint (plain lists, JSON-ready).

    Args:
        spatial_dims: 2 or 3. in_channels: image channels the model expects.
        window: sliding-window size per spatial axis (the training patch unless configured);
            None when unknown (the caller chooses).
        overlap: window overlap in ``[0, 1)``.
        normalization: ``toposeg.data.transforms.normalize`` mode applied per image.
        hu_window: ``(low, high)`` intensity clip before normalising (CT), or None.
        threshold: binarisation threshold of the foreground probability (0.5).
        label_foreground: the training data's label rule (``"nonzero"``, ``"bright"``,
            ``"dark"``; or the dataset's own rule, e.g. CREMI's ``"id-boundaries"``).

    Raises:
        ValueError: a value out of range, quoting it.
    """
    if spatial_dims not in (2, 3) or isinstance(spatial_dims, bool):
        raise ValueError(f"inference spatial_dims must be 2 or 3, got {spatial_dims!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"inference in_channels must be an int >= 1, got {in_channels!r}")
    if window is not None:
        window = [int(w) for w in window]
        if len(window) != spatial_dims or min(window) < 1:
            raise ValueError(f"inference window must be {spatial_dims} positive sizes, got {window!r}")
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"inference overlap must be in [0, 1), got {overlap!r}")
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"inference threshold must be in (0, 1), got {threshold!r}")
    if hu_window is not None:
        hu_window = [float(v) for v in hu_window]
        if len(hu_window) != 2 or not hu_window[0] < hu_window[1] or not all(map(math.isfinite, hu_window)):
            raise ValueError(f"inference hu_window must be (low, high) with low < high, got {hu_window!r}")
    return {"window": window, "overlap": float(overlap), "normalization": str(normalization),
            "hu_window": hu_window, "threshold": float(threshold), "label_foreground": str(label_foreground),
            "spatial_dims": int(spatial_dims), "in_channels": int(in_channels)}


def _default_inference(model: nn.Module, params: dict[str, Any]) -> dict[str, Any]:
    return inference_settings(spatial_dims=int(params.get("spatial_dims", getattr(model, "spatial_dims", 2))),
                              in_channels=int(params.get("in_channels", getattr(model, "in_channels", 1))))


def save_checkpoint(path: PathLike, model: nn.Module, *, name: str, params: dict[str, Any],
                    inference: Optional[dict[str, Any]] = None, extra: Optional[dict[str, Any]] = None) -> Path:
    """Write a format-2 checkpoint atomically; returns ``path``.

    ``model`` may be wrapped in DistributedDataParallel (its inner module is saved).
    ``inference`` defaults to :func:`inference_settings` of the model's spatial dims and input
    channels (window unknown: None); a given dict must hold exactly :data:`INFERENCE_KEYS`.
    """
    path = Path(path)
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    inference = _default_inference(model, params) if inference is None else dict(inference)
    if sorted(inference) != sorted(INFERENCE_KEYS):
        raise ValueError(f"inference must have the keys {list(INFERENCE_KEYS)}, got {sorted(inference)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, "model": name, "model_params": dict(params),
               "state_dict": model.state_dict(), "inference": inference, "extra": extra or {}}
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: PathLike, map_location: Union[str, torch.device] = "cpu") -> dict[str, Any]:
    """The payload of a format-2 checkpoint (see the module docstring).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a readable toposeg checkpoint; a format-1 checkpoint (toposeg < 0.2:
            "checkpoint format 1 (toposeg < 0.2): retrain, or ..."); a newer format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint" + (" (a folder: give the .pt file inside it)"
                                                                  if path.is_dir() else ""))
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable toposeg checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(payload, dict) or any(k not in payload for k in _KEYS):
        raise ValueError(f"{path}: not a toposeg checkpoint (expected keys {['format_version', *_KEYS]})")
    version = payload.get("format_version")
    if version is None:
        raise ValueError(format1_message(path))
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ValueError(f"{path}: checkpoint format {version!r}; this toposeg reads format {FORMAT_VERSION}"
                         + (" (a newer toposeg wrote it: upgrade)" if newer else ""))
    if "inference" not in payload or sorted(payload["inference"]) != sorted(INFERENCE_KEYS):
        raise ValueError(f"{path}: checkpoint format {FORMAT_VERSION} without a complete 'inference' dict "
                         f"(expected keys {list(INFERENCE_KEYS)})")
    payload.setdefault("extra", {})
    return payload


def load_state(model: nn.Module, payload: dict[str, Any], path: PathLike) -> nn.Module:
    """Load ``payload["state_dict"]`` into ``model`` (or into the module inside a DDP wrapper).

    Raises:
        ValueError: weights of the format-1 U-Net, or weights that do not fit the model.
    """
    target = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    state = payload["state_dict"]
    if any(k.startswith(_FORMAT1_PREFIXES) for k in state):
        raise ValueError(format1_message(path))
    try:
        target.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit model {payload['model']!r} {payload['model_params']}: "
                         f"{str(exc)[:600]}") from exc
    return model


def load_model(path: PathLike, device: Union[str, torch.device] = "cpu") -> nn.Module:
    """Rebuild the model from a checkpoint and load its weights (eval mode). The checkpoint's
    ``inference`` settings are in :func:`load_checkpoint`'s payload."""
    payload = load_checkpoint(path, map_location=device)
    model = build_model(payload["model"], **payload["model_params"])
    return load_state(model, payload, path).to(device).eval()

"""Typed experiment configs: YAML -> frozen dataclasses, strict keys, dotted overrides.

A config file may name a ``base`` file (relative to itself) whose values it overrides.
Run-specific values (fold, seed, data root, output folder) come from the command line.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

PathLike = Union[str, Path]


@dataclass(frozen=True)
class DataConfig:
    kind: str = "folder"                   # toposeg.data.open_dataset kind
    options: dict = field(default_factory=dict)  # loader options (never the data root)
    patch: tuple = (256, 256)              # (H, W) or (D, H, W)
    batch_size: int = 4
    foreground_oversampling: float = 0.5
    normalization: str = "zscore"          # zscore | minmax | none (per image and channel)
    hu_window: Optional[tuple] = None      # CT: clip to (low, high) Hounsfield units first
    folds: int = 5
    contiguous: bool = False               # serial sections: folds are contiguous blocks
    val_fraction: float = 0.2              # validation carved from the training folds
    num_workers: int = 0


@dataclass(frozen=True)
class ModelConfig:
    name: str = "unet"
    params: dict = field(default_factory=lambda: {"spatial_dims": 2, "in_channels": 1, "out_channels": 1})


@dataclass(frozen=True)
class StageConfig:
    steps: int = 1000
    lr: float = 0.01
    optimizer: str = "sgd"


@dataclass(frozen=True)
class TrainConfig:
    pretrain: StageConfig = StageConfig(steps=2000, lr=0.01)
    finetune: StageConfig = StageConfig(steps=1000, lr=0.001)
    val_every: int = 200                   # validation (and plateau scheduler) period, in steps
    select_metric: str = "betti1_error"    # best-checkpoint metric on the validation split
    plateau_patience: int = 2              # ReduceLROnPlateau patience, in validations
    plateau_factor: float = 0.5
    checkpoint_every: int = 200
    grad_clip: Optional[float] = None
    amp: str = "none"                      # none | bf16 | fp16 (CUDA only)


@dataclass(frozen=True)
class MethodConfig:
    loss: str = "shpm"                     # toposeg.losses.build_loss name for fine-tuning
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class InferenceConfig:
    window: Optional[tuple] = None         # None: the training patch
    overlap: float = 0.25
    threshold: float = 0.5


@dataclass(frozen=True)
class Config:
    name: str = "experiment"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    method: MethodConfig = MethodConfig()
    inference: InferenceConfig = InferenceConfig()


def _build(cls: type, values: Mapping[str, Any], where: str) -> Any:
    if not isinstance(values, Mapping):
        raise ValueError(f"{where or 'config'}: expected a mapping, got {type(values).__name__} {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in values if k not in names]
    if unknown:
        raise KeyError(f"{where or 'config'}: unknown key(s) {unknown}; valid: {names}")
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else key
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, path)
        else:
            kwargs[key] = _coerce(hint, value, path)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    optional = typing.get_origin(hint) is Union and type(None) in typing.get_args(hint)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{path}: may not be null")
    base = [a for a in typing.get_args(hint) if a is not type(None)][0] if optional else hint
    if base is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{path}: expected a list, got {value!r}")
        return tuple(value)
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base in (int, float, str, bool, dict) and not isinstance(value, base) or (base is int and isinstance(value, bool)):
        raise ValueError(f"{path}: expected {base.__name__}, got {type(value).__name__} {value!r}")
    return value


def _merge(base: dict, over: Mapping[str, Any]) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    import yaml

    if path in seen:
        raise ValueError(f"{path}: circular 'base' reference")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    return _merge(_read_yaml(path.parent / base, (*seen, path)), data) if base else data


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.finetune.steps=100"`` -> (["train", "finetune", "steps"], 100) (value parsed as YAML)."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override must look like key.path=value, got {item!r}")
    return key.strip().split("."), yaml.safe_load(raw)


def load_config(path: Optional[PathLike] = None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config (with its ``base`` chain) and apply ``key.path=value`` overrides."""
    data = _read_yaml(Path(path)) if path is not None else {}
    for item in overrides:
        keys, value = parse_override(item)
        patch: Any = value
        for k in reversed(keys):
            patch = {k: patch}
        data = _merge(data, patch)
    # merge over the defaults, so a partial section keeps the defaults of its own field
    # (e.g. ``train.finetune.steps`` alone keeps the fine-tuning lr of 0.001)
    return _build(Config, _merge(to_dict(Config()), data), "")


def to_dict(config: Config) -> dict:
    """Plain dict (YAML/JSON-ready) of a config; tuples become lists."""
    def plain(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x
    return plain(dataclasses.asdict(config))


def save_config(config: Config, path: PathLike) -> Path:
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    return path

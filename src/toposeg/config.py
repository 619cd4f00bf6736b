"""Typed experiment configs: YAML -> frozen dataclasses, strict keys, dotted overrides.

The dataclass defaults below are the paper's protocol and the single source of the defaults
(``configs/base.yaml`` sets nothing). A config file may name a ``base`` file (relative to itself)
whose values it overrides. Run-specific values (fold, seed, data root, output folder) come from
the command line. Every value is checked when the config is loaded (:func:`validate`); an error
names the key (``data.patch: ...``) and quotes the value received.
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
    batch_size: int = 4                    # per process: a torchrun job of W processes steps on W x batch_size
    foreground_oversampling: float = 0.5
    normalization: str = "zscore"          # zscore | minmax | none (per image and channel)
    hu_window: Optional[tuple] = None      # CT: clip to (low, high) Hounsfield units first
    folds: int = 5
    contiguous: Optional[bool] = None      # None: the dataset kind decides (serial sections -> contiguous)
    val_fraction: float = 0.2              # validation carved from the training folds


@dataclass(frozen=True)
class ModelConfig:
    name: str = "unet"
    params: dict = field(default_factory=lambda: {"spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                                                  "features": [32, 64, 128]})


@dataclass(frozen=True)
class StageConfig:
    steps: int = 1000
    lr: float = 0.01
    optimizer: str = "sgd"


@dataclass(frozen=True)
class TrainConfig:
    pretrain: StageConfig = StageConfig(steps=4000, lr=0.01)
    finetune: StageConfig = StageConfig(steps=2000, lr=0.001)
    val_every: int = 250                   # validation (and plateau scheduler) period, in steps
    select_metric: str = "betti1_error"    # best-checkpoint metric on the validation split
    plateau_patience: int = 2              # ReduceLROnPlateau patience, in validations
    plateau_factor: float = 0.5
    checkpoint_every: int = 200
    grad_clip: Optional[float] = None
    amp: str = "none"                      # none | bf16 | fp16 (CUDA only)
    target_skeleton: str = "patch"         # SHPM's ground-truth skeleton: "patch" (the paper) | "crop"
    tensorboard: bool = False              # also write the log's scalars for TensorBoard (extra [tensorboard])


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


def _yaml_error(exc: Exception) -> str:
    """One line for a YAML parse error: ``line L, column C: problem``."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def read_config_file(path: PathLike) -> dict:
    """The mapping of one YAML (or JSON) config file, without following its ``base``.

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: ``path`` is a folder; a binary file (e.g. an image: "not a YAML/JSON text
            file"); an empty file (0 bytes, or only comments and blank lines: "is empty"; a config
            that keeps every default is ``{}``); invalid YAML (one line: line, column, problem);
            a document that is not a mapping.
    """
    import yaml

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, expected a YAML config file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        if "\x00" in text:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a YAML/JSON text file (binary content, e.g. an image or a checkpoint); "
                         "a config is a YAML file such as configs/datasets/isbi2012.yaml") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML at {_yaml_error(exc)}") from None
    if data is None:
        if not any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
            what = "0 bytes" if not raw else "only comments and blank lines"
            raise ValueError(f"{path}: config file is empty ({what}); write {{}} for a config that keeps every "
                             "default")
        raise ValueError(f"{path}: a config must be a mapping, got null")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping, got {type(data).__name__} {data!r:.60}")
    return data


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if path in seen:
        raise ValueError(f"{path}: circular 'base' reference")
    data = read_config_file(path)
    base = data.pop("base", None)
    if not base:
        return data
    if not isinstance(base, str):
        raise ValueError(f"{path}: base must be a file name (relative to this file), got {base!r}")
    if not (path.parent / base).exists():
        raise FileNotFoundError(f"{path}: base {base}: no such config file ({path.parent / base})")
    return _merge(_read_yaml(path.parent / base, (*seen, path)), data)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.finetune.steps=100"`` -> (["train", "finetune", "steps"], 100) (value parsed as YAML)."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override must look like key.path=value, got {item!r}")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(f"--set {item}: the value is not valid YAML ({_yaml_error(exc)}); quote it or close its "
                         "brackets, e.g. data.patch=[128,128]") from None
    return key.strip().split("."), value


def _leaf_paths(cls: type = None, prefix: tuple = ()) -> list[tuple]:
    """Every settable key path of the config dataclasses, e.g. ``("train", "finetune", "steps")``."""
    cls = Config if cls is None else cls
    hints = typing.get_type_hints(cls)
    paths = []
    for f in dataclasses.fields(cls):
        path = (*prefix, f.name)
        paths += _leaf_paths(hints[f.name], path) if dataclasses.is_dataclass(hints[f.name]) else [path]
    return paths


def _override_hints(keys: list[str], data: Mapping[str, Any]) -> list[str]:
    """Key paths an unknown override ``keys`` probably meant: config keys that end like it, and
    ``method.params.X`` / ``model.params.X`` / ``data.options.X`` where ``X`` (its last part) is a
    parameter of the config's loss / model / dataset kind (else of any loss)."""
    from toposeg.data.datasets import DATASETS, dataset_options
    from toposeg.losses.registry import LOSSES
    from toposeg.models.registry import MODELS

    leaf = keys[-1]
    found = [".".join(p) for p in _leaf_paths() if p[-len(keys):] == tuple(keys)]
    found += [".".join(p) for p in _leaf_paths() if p[-1] == leaf and ".".join(p) not in found]

    def section(name: str) -> Mapping[str, Any]:
        value = data.get(name)
        return value if isinstance(value, Mapping) else {}

    loss = section("method").get("loss", MethodConfig.loss)
    losses = [loss] if loss in LOSSES else []
    if not any(leaf in parameter_names(LOSSES[n]) for n in losses):
        losses = sorted(LOSSES)
    if any(leaf in parameter_names(LOSSES[n]) for n in losses):
        found.append(f"method.params.{leaf}")
    model = section("model").get("name", ModelConfig.name)
    if model in MODELS and leaf in parameter_names(MODELS[model]):
        found.append(f"model.params.{leaf}")
    kind = section("data").get("kind", DataConfig.kind)
    if kind in DATASETS and leaf in dataset_options(kind):
        found.append(f"data.options.{leaf}")
    return [f for f in found if f.split(".") != keys][:4]


def _check_override_keys(item: str, keys: list[str], data: Mapping[str, Any]) -> None:
    """An override whose key path is not a config key: KeyError naming the override, the valid
    keys at the level where it went wrong and, where one fits, ``did you mean ...?``."""
    cls: Any = Config
    for depth, key in enumerate(keys):
        names = [f.name for f in dataclasses.fields(cls)]
        if key not in names:
            import difflib

            where = ".".join(keys[:depth])
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)  # a typo: finetun -> finetune
            hints = [".".join([*keys[:depth], close[0], *keys[depth + 1:]])] if close else []
            hints += [h for h in _override_hints(keys, data) if h not in hints]
            mean = f"; did you mean {' or '.join(hints)}?" if hints else ""
            level = f"{where}: valid keys" if where else "valid top-level sections"
            raise KeyError(f"--set {item}: unknown key {'.'.join(keys[:depth + 1])!r}{mean} ({level}: {names})")
        hint = typing.get_type_hints(cls)[key]
        if not dataclasses.is_dataclass(hint):
            return  # a value, or a free mapping (data.options, model.params, method.params)
        cls = hint


def load_config(path: Optional[PathLike] = None, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML config (with its ``base`` chain), apply ``key.path=value`` overrides, check it.

    An override of ``method.loss`` that changes the loss drops the file's ``method.params``
    (they belong to the file's loss): the new loss gets its defaults plus the ``method.params``
    given as overrides.

    Raises:
        FileNotFoundError, KeyError (unknown keys, listing the valid ones), ValueError (a bad
        value, naming its key), as :func:`validate`.
    """
    data = _read_yaml(Path(path)) if path is not None else {}
    file_loss = (data.get("method") or {}).get("loss") if isinstance(data.get("method"), Mapping) else None
    given_params: dict = {}  # method.params set by overrides
    for item in overrides:
        keys, value = parse_override(item)
        _check_override_keys(item, keys, data)
        patch: Any = value
        for k in reversed(keys):
            patch = {k: patch}
        data = _merge(data, patch)
        if keys[:2] == ["method", "params"]:
            params = patch["method"]["params"]  # not a mapping: _build names method.params and the value
            both = isinstance(params, Mapping) and isinstance(given_params, Mapping)
            given_params = _merge(given_params, params) if both else params
    method = data.get("method")
    if isinstance(method, Mapping) and method.get("loss", MethodConfig.loss) != (file_loss or MethodConfig.loss):
        data["method"] = {**method, "params": given_params}  # another loss: the file's params do not apply
    # merge over the defaults, so a partial section keeps the defaults of its own field
    # (e.g. ``train.finetune.steps`` alone keeps the fine-tuning lr of 0.001)
    config = _build(Config, _merge(to_dict(Config()), data), "")
    validate(config)
    return config


# ---------------------------------------------------------------- validation

AMP_MODES = ("none", "bf16", "fp16")
#: ``train.target_skeleton``: "patch" (skeleton of the training patch, recomputed every step: the
#: paper) or "crop" (crop of the whole-image skeleton, same crop and augmentation as the label)
TARGET_SKELETONS = ("patch", "crop")
#: losses whose ``target_skeleton=`` is a skeleton (Skeleton Recall's is a tube: not supported)
CROP_SKELETON_LOSSES = ("shpm", "shpm_plus")
#: fields added after runs existed: written by :func:`to_dict` only when they differ from this
#: value, so the identity (and ``config.yaml``) of every run made before them stays the same
OMITTED_AT_DEFAULT = {("train", "target_skeleton"): "patch", ("train", "tensorboard"): False}
#: metrics the validation split reports (toposeg.metrics.evaluate_case) usable for selection
SELECT_METRICS = ("dice", "iou", "miou", "cldice", "voi", "are", "betti0_error", "betti1_error", "betti2_error",
                  "euler_error")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(ok: bool, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"{key}: expected {expected}, got {value!r}")


def parameter_names(factory: Any) -> list[str]:
    """Keyword parameters a registry factory (a class or function) accepts."""
    import inspect

    params = inspect.signature(factory).parameters.values()
    return [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"]


def build_method_loss(loss: str, params: Mapping[str, Any], key: str = "method"):
    """``toposeg.losses.build_loss(loss, **params)`` with its errors turned into one ValueError
    naming ``{key}.loss`` / ``{key}.params``, the value received and the valid names."""
    from toposeg.losses import build_loss
    from toposeg.losses.registry import LOSSES

    if loss not in LOSSES:
        raise ValueError(f"{key}.loss: unknown loss {loss!r}; valid: {sorted(LOSSES)}")
    valid = parameter_names(LOSSES[loss])
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"{key}.params: unknown parameter(s) {unknown} for loss {loss!r}; valid: {valid}")
    try:
        return build_loss(loss, **params)
    except (TypeError, ValueError, KeyError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise ValueError(f"{key}.params of loss {loss!r} ({dict(params)}): {msg}") from None


def validate(config: Config) -> Config:
    """Check every value of ``config``; returns it. Raises ValueError naming the key
    (``data.patch: expected 2 or 3 positive ints, got ['abc', 12.5]``) and KeyError-free
    messages for unknown dataset kinds, models, losses and their parameters."""
    d, t, m, inf = config.data, config.train, config.model, config.inference
    _check(isinstance(config.name, str) and config.name.strip() != "" and not any(c in config.name for c in "/\\")
           and config.name not in (".", "..", "pretrain"),
           "name", "a non-empty folder name without '/' that is not 'pretrain' (the shared pre-training folder)",
           config.name)

    # model first: its spatial dims decide the shape of data.patch and inference.window
    from toposeg.models.registry import MODELS

    _check(m.name in MODELS, "model.name", f"one of {sorted(MODELS)}", m.name)
    valid = parameter_names(MODELS[m.name])
    unknown = sorted(set(m.params) - set(valid))
    if unknown:
        raise ValueError(f"model.params: unknown parameter(s) {unknown} for model {m.name!r}; valid: {valid}")
    try:
        model = MODELS[m.name](**m.params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model.params ({dict(m.params)}): {exc}") from None
    nd = int(getattr(model, "spatial_dims", m.params.get("spatial_dims", 2)))

    from toposeg.data.datasets import DATASETS, dataset_options
    from toposeg.data.transforms import NORMALIZATIONS

    _check(d.kind in DATASETS, "data.kind", f"one of {sorted(DATASETS)}", d.kind)
    unknown = sorted(set(d.options) - set(dataset_options(d.kind)))
    if unknown:
        raise ValueError(f"data.options: unknown option(s) {unknown} for data.kind {d.kind!r}; "
                         f"valid: {dataset_options(d.kind)} (the data root comes from --data-root)")
    hu = d.options.get("hu_window")
    if hu is not None:  # the loader's own CT window (imagecas) follows the same rule as data.hu_window
        _check(isinstance(hu, (list, tuple)) and len(hu) == 2 and all(map(_is_number, hu)) and hu[0] < hu[1],
               "data.options.hu_window", "[low, high] with low < high (or null)", hu)
    _check(len(d.patch) == nd and all(_is_int(v) and v >= 1 for v in d.patch), "data.patch",
           f"{nd} positive ints (the model has spatial_dims={nd})", list(d.patch))
    _check(_is_int(d.batch_size) and d.batch_size >= 1, "data.batch_size", "an int >= 1 (per process)", d.batch_size)
    _check(_is_number(d.foreground_oversampling) and 0 <= d.foreground_oversampling <= 1,
           "data.foreground_oversampling", "a number in [0, 1]", d.foreground_oversampling)
    _check(d.normalization in NORMALIZATIONS, "data.normalization", f"one of {list(NORMALIZATIONS)}", d.normalization)
    if d.hu_window is not None:
        _check(len(d.hu_window) == 2 and all(map(_is_number, d.hu_window)) and d.hu_window[0] < d.hu_window[1],
               "data.hu_window", "[low, high] with low < high (or null)", list(d.hu_window))
    _check(_is_int(d.folds) and d.folds >= 2, "data.folds", "an int >= 2", d.folds)
    _check(d.contiguous is None or isinstance(d.contiguous, bool), "data.contiguous",
           "true, false or null (null: the dataset kind decides)", d.contiguous)
    _check(_is_number(d.val_fraction) and 0 <= d.val_fraction < 1, "data.val_fraction", "a number in [0, 1)",
           d.val_fraction)

    from toposeg.engine.trainer import OPTIMIZERS

    for name, stage in (("pretrain", t.pretrain), ("finetune", t.finetune)):
        _check(_is_int(stage.steps) and stage.steps >= 1, f"train.{name}.steps", "an int >= 1", stage.steps)
        _check(_is_number(stage.lr) and stage.lr > 0, f"train.{name}.lr", "a number > 0", stage.lr)
        _check(stage.optimizer in OPTIMIZERS, f"train.{name}.optimizer", f"one of {sorted(OPTIMIZERS)}",
               stage.optimizer)
    _check(_is_int(t.val_every) and t.val_every >= 1, "train.val_every", "an int >= 1 (steps)", t.val_every)
    metrics = [k for k in SELECT_METRICS if nd == 3 or k != "betti2_error"]
    _check(t.select_metric in metrics, "train.select_metric", f"one of {metrics}", t.select_metric)
    _check(_is_int(t.plateau_patience) and t.plateau_patience >= 0, "train.plateau_patience", "an int >= 0",
           t.plateau_patience)
    _check(_is_number(t.plateau_factor) and 0 < t.plateau_factor < 1, "train.plateau_factor", "a number in (0, 1)",
           t.plateau_factor)
    _check(_is_int(t.checkpoint_every) and t.checkpoint_every >= 1, "train.checkpoint_every", "an int >= 1 (steps)",
           t.checkpoint_every)
    if t.grad_clip is not None:
        _check(_is_number(t.grad_clip) and t.grad_clip > 0, "train.grad_clip", "a number > 0 (or null)", t.grad_clip)
    _check(t.amp in AMP_MODES, "train.amp", f"one of {list(AMP_MODES)}", t.amp)
    _check(isinstance(t.tensorboard, bool), "train.tensorboard", "true or false", t.tensorboard)
    _check(t.target_skeleton in TARGET_SKELETONS, "train.target_skeleton", f"one of {list(TARGET_SKELETONS)}",
           t.target_skeleton)
    if t.target_skeleton == "crop" and config.method.loss not in CROP_SKELETON_LOSSES:
        raise ValueError(f"train.target_skeleton: 'crop' needs a loss that takes a ground-truth skeleton "
                         f"({list(CROP_SKELETON_LOSSES)}), got method.loss {config.method.loss!r}")

    build_method_loss(config.method.loss, config.method.params)

    if inf.window is not None:
        _check(len(inf.window) == nd and all(_is_int(v) and v >= 1 for v in inf.window), "inference.window",
               f"{nd} positive ints (or null: the training patch)", list(inf.window))
    _check(_is_number(inf.overlap) and 0 <= inf.overlap < 1, "inference.overlap", "a number in [0, 1)", inf.overlap)
    _check(_is_number(inf.threshold) and 0 < inf.threshold < 1, "inference.threshold", "a number in (0, 1)",
           inf.threshold)
    return config


def to_dict(config: Config) -> dict:
    """Plain dict (YAML/JSON-ready) of a config; tuples become lists. A field of
    :data:`OMITTED_AT_DEFAULT` is left out when it has that value (loading fills it back in)."""
    def plain(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x
    out = plain(dataclasses.asdict(config))
    for (*parents, leaf), default in OMITTED_AT_DEFAULT.items():
        node = out
        for key in parents:
            node = node[key]
        if node.get(leaf) == default:
            del node[leaf]
    return out


def save_config(config: Config, path: PathLike) -> Path:
    import yaml

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
    return path

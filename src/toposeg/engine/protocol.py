"""The paper's protocol for one fold, done honestly.

0. **Preflight**, before any training: the config is checked, the method's loss and the model
   are built, the splits must each hold a case, one case of every split is read, and one tiny
   forward pass and loss evaluation run on a training batch. A misspelt loss parameter or a
   wrong channel count fails here, not after pre-training.
1. Pre-train the model with BCE + Dice (shared by every method of the fold: ``fold{k}/pretrain``;
   its identity is :func:`pretrain_identity`).
2. Fine-tune from it with the method's loss (``fold{k}/{name}``); the baseline config fine-tunes
   with BCE + Dice for the same number of steps. ReduceLROnPlateau and best-checkpoint selection
   use the fold's validation split (carved from the training folds), never the test split.
3. Evaluate the best checkpoint on the test split at whole-image size (sliding window).

Every stage is resumable; a finished stage (or a finished test evaluation) is reused only when
it was written by the same configuration, otherwise it is refused naming the differing keys.

Batches under ``torchrun``: ``data.batch_size`` is the batch of **one process**; a job of ``W``
processes steps on ``W × batch_size`` samples (each rank its own disjoint share), and the world
size is part of each stage's identity.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from toposeg.config import Config, build_method_loss, save_config, to_dict, validate
from toposeg.data import Case
from toposeg.engine.checkpoint import FORMAT_VERSION, inference_settings, load_checkpoint, load_state
from toposeg.engine.stage import StageSpec, _describe_diff, run_stage, unwrap
from toposeg.engine.trainer import seed_everything
from toposeg.metrics import MetricAccumulator
from toposeg.reports.serialize import dumps, write_rows
from toposeg.reports.tables import METRICS

#: keys of the resolved config that do not change the shared pre-training (dotted paths)
PRETRAIN_EXCLUDED = ("name", "method", "inference", "train.finetune", "train.val_every", "train.select_metric",
                     "train.plateau_patience", "train.plateau_factor", "train.checkpoint_every")
#: keys that never change a stage's result (how often it is checkpointed)
RUN_ONLY = ("train.checkpoint_every",)
#: per method and fold: every test case's binary prediction (bool, the case's shape), by case id
PREDICTIONS = "test_predictions.npz"


def _distributed() -> tuple[int, int]:
    """(rank, world size) of a ``torchrun`` launch, (0, 1) otherwise."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def higher_is_better(metric: str) -> bool:
    if metric not in METRICS:
        raise KeyError(f"unknown selection metric {metric!r}; valid: {sorted(METRICS)}")
    return METRICS[metric][1]


def _drop(tree: dict, dotted: Sequence[str]) -> dict:
    out = json.loads(json.dumps(tree))
    for key in dotted:
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    return out


def pretrain_identity(cfg: Config, *, seed: int, fold: int, world_size: int = 1) -> dict[str, Any]:
    """What makes the shared pre-training of a fold: the whole resolved config minus
    :data:`PRETRAIN_EXCLUDED` (the method, fine-tuning, validation, selection and inference
    settings, the run name, the checkpoint period), plus seed, fold and world size. Every other
    field (data, model, ``train.pretrain``, ``grad_clip``, ``amp``, ...) is part of it, so a
    config that changes any of them gets refused instead of reusing another pre-training."""
    return {**_drop(to_dict(cfg), PRETRAIN_EXCLUDED), "seed": int(seed), "fold": int(fold),
            "world_size": int(world_size)}


def finetune_identity(cfg: Config, *, seed: int, fold: int, world_size: int = 1) -> dict[str, Any]:
    """The fine-tuning stage's identity: the whole resolved config (minus :data:`RUN_ONLY`) plus
    seed, fold and world size."""
    return {**_drop(to_dict(cfg), RUN_ONLY), "seed": int(seed), "fold": int(fold), "world_size": int(world_size)}


def label_foreground_of(cfg: Config, cases: object = None) -> str:
    """The training labels' foreground rule (``"nonzero"``, ``"bright"`` or ``"dark"``): what the
    dataset says (``cases.label_foreground``), else the config's ``data.options.foreground``,
    else the loader's default, else ``"nonzero"``. A derived label (CREMI membranes from
    neuron ids) is ``"nonzero"``: written as a mask file, its membranes are the non-zero pixels."""
    import inspect

    from toposeg.data.datasets import DATASETS
    from toposeg.data.labels import FOREGROUND_RULES

    for value in (getattr(cases, "label_foreground", None), cfg.data.options.get("foreground")):
        if value is not None:
            return value if value in FOREGROUND_RULES else "nonzero"
    param = inspect.signature(DATASETS[cfg.data.kind]).parameters.get("foreground")
    if param is not None and param.default in FOREGROUND_RULES:
        return param.default
    return "nonzero"


def inference_of(cfg: Config, label_foreground: str = "nonzero") -> dict[str, Any]:
    """The checkpoint ``inference`` dict of a config: window (``inference.window`` or the training
    patch), overlap, normalisation, HU window, threshold, label rule, spatial dims, channels."""
    params = cfg.model.params
    return inference_settings(
        spatial_dims=int(params.get("spatial_dims", 2)), in_channels=int(params.get("in_channels", 1)),
        window=list(cfg.inference.window or cfg.data.patch), overlap=cfg.inference.overlap,
        normalization=cfg.data.normalization, hu_window=cfg.data.hu_window, threshold=cfg.inference.threshold,
        label_foreground=label_foreground)


def predict_case(model: nn.Module, case: Case, cfg: Config, device: str) -> np.ndarray:
    """Foreground probability of a whole (normalised) case by sliding-window inference."""
    from toposeg.inference import sliding_window_predict

    window = cfg.inference.window or cfg.data.patch
    prob = sliding_window_predict(model, case.image, window=tuple(window), overlap=cfg.inference.overlap,
                                  device=device)
    return np.asarray(prob)[0]


def evaluate_cases(model: nn.Module, cases: Sequence[Case], cfg: Config, device: str,
                   keep: bool = False) -> tuple[MetricAccumulator, list[np.ndarray]]:
    """Metrics of every case (an accumulator) and, with ``keep``, every binary prediction."""
    from toposeg.data.transforms import normalize

    model.eval()
    acc, kept = MetricAccumulator(), []
    for case in cases:
        image = normalize(case.image, cfg.data.normalization, hu_window=cfg.data.hu_window)
        pred = predict_case(model, Case(case.id, image, case.label), cfg, device) > cfg.inference.threshold
        acc.update(pred, case.label, case_id=case.id)
        if keep:
            kept.append(pred)
    return acc, kept


def _means(acc: MetricAccumulator) -> dict[str, float]:
    """NaN-aware mean of every metric (NaN where no case is defined)."""
    return {k: s["mean"] for k, s in acc.compute().items()}


def check_run_folder(folder: Path) -> None:
    """Refuse a run folder written by toposeg < 0.2 (checkpoint format 1): its ``run.json`` has
    no ``format_version`` (or another one)."""
    info = folder / "run.json"
    if not info.is_file():
        return
    try:
        version = json.loads(info.read_text()).get("format_version")
    except (OSError, ValueError, AttributeError):
        version = None
    if version != FORMAT_VERSION:
        shown = "format 1 (toposeg < 0.2)" if version is None else f"format {version!r}"
        raise ValueError(f"{folder}: run folder of checkpoint {shown}: retrain into a new --out folder, or use "
                         f"the toposeg that wrote it (this one writes format {FORMAT_VERSION})")


def _write_run_info(folder: Path, identity: dict[str, Any], info: dict[str, Any]) -> None:
    """``config.yaml`` (the stage identity: for ``pretrain/`` the shared part of the config plus
    seed, fold and world size) and ``run.json`` (format version and run-specific values)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(identity, sort_keys=False))
    (folder / "run.json").write_text(json.dumps(info, indent=1))


def preflight(cfg: Config, model: nn.Module, splits: dict[str, list[Case]], device: str, seed: int = 0) -> nn.Module:
    """The checks that run before any training (returns the method's loss module).

    Builds the fine-tuning loss (unknown names/parameters: ValueError listing the valid ones),
    requires a training and a test case (and a validation case when ``data.val_fraction > 0``),
    checks the first case of each split (``splits``: part -> cases, one each is enough) against
    the model's input channels and spatial dims, and runs one forward pass of the model and one
    evaluation of the pre-training and fine-tuning losses on one training patch (no gradient
    step). Raises ValueError with what failed.
    """
    from toposeg.data.patches import PatchDataset
    from toposeg.losses import build_loss

    loss = build_method_loss(cfg.method.loss, cfg.method.params)
    params = cfg.model.params
    nd, channels = int(params.get("spatial_dims", 2)), int(params.get("in_channels", 1))
    for part, cases in splits.items():
        if not cases:
            if part == "val" and cfg.data.val_fraction == 0:
                continue
            raise ValueError(f"preflight: the {part} split of this fold is empty")
        case = cases[0]
        if case.image.ndim != nd + 1 or case.image.shape[0] != channels:
            raise ValueError(f"preflight: {part} case {case.id!r} has image shape {tuple(case.image.shape)}; the "
                             f"model takes {channels} channel(s) of {nd}D images (C, {', '.join('*' * nd)}): "
                             f"set model.params.in_channels / spatial_dims")
        if tuple(case.label.shape) != tuple(case.image.shape[1:]):
            raise ValueError(f"preflight: {part} case {case.id!r}: label shape {tuple(case.label.shape)} differs "
                             f"from the image's {tuple(case.image.shape[1:])}")
    net = unwrap(model)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            sample = PatchDataset(splits["train"][:1], cfg.data.patch, samples_per_epoch=1, seed=seed,
                                  fg_prob=cfg.data.foreground_oversampling, normalization=cfg.data.normalization,
                                  hu_window=cfg.data.hu_window)[0]
            image, label = sample["image"][None].to(device), sample["label"][None].to(device)
            logits = net(image)
            for name, fn in (("bce_dice (pre-training)", build_loss("bce_dice")),
                             (f"{cfg.method.loss} (method.loss)", loss)):
                value = float(fn(logits.float(), label))
                if not np.isfinite(value):
                    raise ValueError(f"preflight: loss {name} is {value} on the first training batch")
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"preflight: one forward pass and loss evaluation failed: {exc}") from exc
    finally:
        net.train(was_training)
    return loss


def run_fold(cfg: Config, *, data_root: Optional[str], out: Path, fold: int, seed: int = 0,
             device: str = "cpu", progress: bool = True, resume: bool = False,
             log: Callable[[str], None] = print, preflight_only: bool = False) -> dict[str, Any]:
    """Preflight, pre-train (or reuse), fine-tune, and test one fold; returns the test summary
    (``{}`` on ranks other than 0 of a torchrun job). ``preflight_only``: stop after the
    preflight (and the check of a finished run's configuration), returning ``{}``."""
    from toposeg.data import open_dataset
    from toposeg.data.patches import PatchDataset
    from toposeg.data.splits import get_fold, load_or_create_splits, select, serial_sections
    from toposeg.engine.batches import StepBatches
    from toposeg.losses import build_loss
    from toposeg.models import build_model

    validate(cfg)
    out = Path(out)
    rank, world = _distributed()
    is_main = rank == 0
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < cfg.data.folds:
        raise ValueError(f"fold must be an int in [0, {cfg.data.folds - 1}] (data.folds={cfg.data.folds}), got {fold!r}")
    method_dir = out / f"fold{fold}" / cfg.name
    pre_dir = out / f"fold{fold}" / "pretrain"
    for folder in (pre_dir, method_dir):
        check_run_folder(folder)
    pre_id = pretrain_identity(cfg, seed=seed, fold=fold, world_size=world)
    ft_id = finetune_identity(cfg, seed=seed, fold=fold, world_size=world)
    result_file = method_dir / "test_summary.json"
    if result_file.is_file():
        final = method_dir / "final.pt"
        stored = load_checkpoint(final)["extra"].get("config") if final.is_file() else None
        if stored != ft_id:
            raise ValueError(f"{method_dir} holds a finished run of a different configuration ("
                             f"{_describe_diff(stored or {}, ft_id)}); use another --out folder, delete it, "
                             "or run with the configuration that wrote it")
        if preflight_only:
            return {}
        log(f"{cfg.name} fold {fold}: already evaluated ({result_file}), skipping")
        return json.loads(result_file.read_text()) if is_main else {}

    cases = open_dataset(cfg.data.kind, data_root, **cfg.data.options)
    if len(cases) == 0:
        raise ValueError(f"no cases found for data kind {cfg.data.kind!r} under {data_root!r}")
    ids = getattr(cases, "ids", None) or [c.id for c in cases]
    contiguous = cfg.data.contiguous if cfg.data.contiguous is not None else serial_sections(cfg.data.kind, cases)
    if not is_main:  # rank 0 writes splits.json (once), the other ranks read it
        _barrier(world)
    folds = load_or_create_splits(out / "splits.json", ids, cfg.data.folds, seed=seed,
                                  val_fraction=cfg.data.val_fraction, contiguous=contiguous)
    if is_main:
        _barrier(world)
    split = get_fold(folds, fold)
    seed_everything(seed)
    params = dict(cfg.model.params)
    model = build_model(cfg.model.name, **params).to(device)
    loss = preflight(cfg, model, {part: select(cases, split[part][:1]) for part in ("train", "val", "test")},
                     device, seed)
    if preflight_only:
        log(f"{cfg.name} fold {fold}: preflight passed")
        return {}
    train, val, test = (select(cases, split[part]) for part in ("train", "val", "test"))
    rule = label_foreground_of(cfg, cases)
    inference = inference_of(cfg, rule)
    log(f"{cfg.name} fold {fold}: {len(train)} train / {len(val)} validation / {len(test)} test cases"
        f"{' (contiguous folds: serial sections)' if contiguous else ''}; writing to {method_dir} "
        f"(shared pre-training: {pre_dir})")

    def batches(steps: int, stage_seed: int) -> StepBatches:
        per_step = cfg.data.batch_size * world
        dataset = PatchDataset(train, cfg.data.patch, samples_per_epoch=max(steps, 1) * per_step,
                               fg_prob=cfg.data.foreground_oversampling, seed=stage_seed,
                               normalization=cfg.data.normalization, hu_window=cfg.data.hu_window)
        return StepBatches(dataset, cfg.data.batch_size, rank=rank, world_size=world)

    t = cfg.train
    pre_batches, ft_batches = batches(t.pretrain.steps, seed), batches(t.finetune.steps, seed + 1)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)

    info = {"format_version": FORMAT_VERSION, "toposeg": _version(), "fold": fold, "seed": seed,
            "data_root": None if data_root is None else str(data_root), "device": str(device), "world_size": world,
            "batch_size_per_process": cfg.data.batch_size, "global_batch_size": cfg.data.batch_size * world,
            "contiguous_folds": contiguous, "torch_threads": torch.get_num_threads()}
    if is_main:
        if not (pre_dir / "final.pt").is_file() or not (pre_dir / "run.json").is_file():
            _write_run_info(pre_dir, pre_id, info)  # a finished, shared pre-training keeps its own record
        save_config(cfg, method_dir / "config.yaml")
        (method_dir / "run.json").write_text(json.dumps(info, indent=1))

    common = dict(checkpoint_every=t.checkpoint_every, grad_clip=t.grad_clip, amp=t.amp, progress=progress,
                  model_name=cfg.model.name, model_params=params, inference=inference)
    pre = StageSpec(name=f"fold {fold} pre-train", steps=t.pretrain.steps, lr=t.pretrain.lr,
                    optimizer=t.pretrain.optimizer, config=pre_id, **common)
    run_stage(model, build_loss("bce_dice"), pre_batches, pre, pre_dir, device=device, is_main=is_main,
              resume=resume, log=log)
    _barrier(world)

    def validate_split(m: nn.Module) -> dict[str, float]:
        return _means(evaluate_cases(unwrap(m), val, cfg, device)[0])

    ft = StageSpec(name=f"fold {fold} fine-tune {cfg.name}", steps=t.finetune.steps, lr=t.finetune.lr,
                   optimizer=t.finetune.optimizer, val_every=t.val_every if val else 0,
                   select_metric=t.select_metric, higher_is_better=higher_is_better(t.select_metric),
                   plateau=True, plateau_patience=t.plateau_patience, plateau_factor=t.plateau_factor,
                   config=ft_id, **common)
    summary = run_stage(model, loss, ft_batches, ft, method_dir, validate=validate_split,
                        device=device, is_main=is_main, resume=resume, log=log)
    _barrier(world)
    if not is_main:
        _barrier(world)
        return {}

    best = method_dir / "best.pt"
    load_state(model, load_checkpoint(best, map_location=device), best)
    acc, preds = evaluate_cases(unwrap(model), test, cfg, device, keep=True)
    rows = acc.per_case()
    write_rows(method_dir / "test_per_case.csv", rows)
    tmp_npz = method_dir / (PREDICTIONS + ".tmp.npz")
    np.savez_compressed(tmp_npz, **{case.id: pred for case, pred in zip(test, preds)})
    os.replace(tmp_npz, method_dir / PREDICTIONS)
    result = {"method": cfg.name, "fold": fold, "seed": seed, "n_test": len(rows), "finetune": summary,
              "inference": inference, "mean": _means(acc), "per_case": rows}
    tmp = result_file.with_suffix(".tmp")
    tmp.write_text(dumps(result, indent=1))
    os.replace(tmp, result_file)
    shown = ("dice", "cldice", "betti0_error", "betti1_error", "voi", "are")
    log(f"{cfg.name} fold {fold}: test " + ", ".join(f"{k}={result['mean'][k]:.4f}" for k in shown if k in result["mean"]))
    log(f"{cfg.name} fold {fold}: wrote test_per_case.csv, test_summary.json and {PREDICTIONS} in {method_dir}")
    _barrier(world)
    return result


def _version() -> str:
    from toposeg import __version__

    return __version__


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()

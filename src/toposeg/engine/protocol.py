"""The paper's protocol for one fold, done honestly.

1. Pre-train the model with BCE + Dice (shared by every method of the fold: ``fold{k}/pretrain``).
2. Fine-tune from it with the method's loss (``fold{k}/{name}``); the baseline config fine-tunes
   with BCE + Dice for the same number of steps. ReduceLROnPlateau and best-checkpoint selection
   use the fold's validation split (carved from the training folds), never the test split.
3. Evaluate the best checkpoint on the test split at whole-image size (sliding window).

Every stage is resumable; a finished stage (or a finished test evaluation) is skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from toposeg.config import Config, save_config, to_dict
from toposeg.data import Case
from toposeg.engine.checkpoint import load_checkpoint
from toposeg.engine.stage import StageSpec, unwrap, run_stage
from toposeg.engine.trainer import seed_everything
from toposeg.metrics import MetricAccumulator
from toposeg.reports.serialize import dumps, write_rows
from toposeg.reports.tables import METRICS


def _distributed() -> tuple[int, int]:
    """(rank, world size) of a ``torchrun`` launch, (0, 1) otherwise."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def higher_is_better(metric: str) -> bool:
    if metric not in METRICS:
        raise KeyError(f"unknown selection metric {metric!r}; valid: {sorted(METRICS)}")
    return METRICS[metric][1]


def predict_case(model: nn.Module, case: Case, cfg: Config, device: str) -> np.ndarray:
    """Foreground probability of a whole case by sliding-window inference."""
    from toposeg.inference import sliding_window_predict

    window = cfg.inference.window or cfg.data.patch
    prob = sliding_window_predict(model, case.image, window=tuple(window), overlap=cfg.inference.overlap,
                                  device=device)
    return np.asarray(prob)[0]


def evaluate_cases(model: nn.Module, cases: Sequence[Case], cfg: Config, device: str,
                   keep: int = 0) -> tuple[MetricAccumulator, list[np.ndarray]]:
    """Metrics of every case (an accumulator) and the first ``keep`` binary predictions."""
    from toposeg.data.transforms import normalize

    model.eval()
    acc, kept = MetricAccumulator(), []
    for case in cases:
        image = normalize(case.image, cfg.data.normalization, hu_window=cfg.data.hu_window)
        pred = predict_case(model, Case(case.id, image, case.label), cfg, device) > cfg.inference.threshold
        acc.update(pred, case.label, case_id=case.id)
        if len(kept) < keep:
            kept.append(pred)
    return acc, kept


def _means(acc: MetricAccumulator) -> dict[str, float]:
    """NaN-aware mean of every metric (NaN where no case is defined)."""
    return {k: s["mean"] for k, s in acc.compute().items()}


def run_fold(cfg: Config, *, data_root: Optional[str], out: Path, fold: int, seed: int = 0,
             device: str = "cpu", progress: bool = True, resume: bool = False,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Pre-train (or reuse), fine-tune, and test one fold; returns the test summary."""
    from toposeg.data import open_dataset
    from toposeg.data.patches import PatchDataset
    from toposeg.data.splits import get_fold, load_or_create_splits, select
    from toposeg.engine.batches import StepBatches
    from toposeg.losses import build_loss
    from toposeg.models import build_model

    out = Path(out)
    rank, world = _distributed()
    is_main = rank == 0
    method_dir = out / f"fold{fold}" / cfg.name
    result_file = method_dir / "test_summary.json"
    if result_file.is_file():
        log(f"{cfg.name} fold {fold}: already evaluated ({result_file}), skipping")
        return json.loads(result_file.read_text())

    cases = open_dataset(cfg.data.kind, data_root, **cfg.data.options)
    if len(cases) == 0:
        raise ValueError(f"no cases found for data kind {cfg.data.kind!r} under {data_root!r}")
    ids = getattr(cases, "ids", None) or [c.id for c in cases]
    folds = load_or_create_splits(out / "splits.json", ids, cfg.data.folds, seed=seed,
                                  val_fraction=cfg.data.val_fraction, contiguous=cfg.data.contiguous)
    split = get_fold(folds, fold)
    train, val, test = (select(cases, split[part]) for part in ("train", "val", "test"))
    log(f"{cfg.name} fold {fold}: {len(train)} train / {len(val)} validation / {len(test)} test cases")
    if is_main:
        save_config(cfg, method_dir / "config.yaml")
        (method_dir / "run.json").write_text(json.dumps(
            {"fold": fold, "seed": seed, "data_root": str(data_root), "device": device, "world_size": world}, indent=1))

    seed_everything(seed)
    params = dict(cfg.model.params)
    model = build_model(cfg.model.name, **params).to(device)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)

    def batches(steps: int, stage_seed: int) -> StepBatches:
        dataset = PatchDataset(train, cfg.data.patch, samples_per_epoch=max(steps, 1) * cfg.data.batch_size,
                               fg_prob=cfg.data.foreground_oversampling, seed=stage_seed,
                               normalization=cfg.data.normalization, hu_window=cfg.data.hu_window)
        return StepBatches(dataset, cfg.data.batch_size, rank=rank, world_size=world)

    t = cfg.train
    common = dict(checkpoint_every=t.checkpoint_every, grad_clip=t.grad_clip, amp=t.amp, progress=progress,
                  model_name=cfg.model.name, model_params=params)
    shared = {"data": asdict(cfg.data), "model": asdict(cfg.model), "pretrain": asdict(t.pretrain),
              "seed": seed, "fold": fold}
    pre = StageSpec(name=f"fold {fold} pre-train", steps=t.pretrain.steps, lr=t.pretrain.lr,
                    optimizer=t.pretrain.optimizer, config=json.loads(json.dumps(shared)), **common)
    run_stage(model, build_loss("bce_dice"), batches(t.pretrain.steps, seed), pre, out / f"fold{fold}" / "pretrain",
              device=device, is_main=is_main, resume=resume, log=log)
    _barrier(world)

    def validate(m: nn.Module) -> dict[str, float]:
        return _means(evaluate_cases(unwrap(m), val, cfg, device)[0])

    ft = StageSpec(name=f"fold {fold} fine-tune {cfg.name}", steps=t.finetune.steps, lr=t.finetune.lr,
                   optimizer=t.finetune.optimizer, val_every=t.val_every if val else 0,
                   select_metric=t.select_metric, higher_is_better=higher_is_better(t.select_metric),
                   plateau=True, plateau_patience=t.plateau_patience, plateau_factor=t.plateau_factor,
                   config=json.loads(json.dumps({**to_dict(cfg), "seed": seed, "fold": fold})), **common)
    loss = build_loss(cfg.method.loss, **cfg.method.params)
    summary = run_stage(model, loss, batches(t.finetune.steps, seed + 1), ft, method_dir, validate=validate,
                        device=device, is_main=is_main, resume=resume, log=log)
    _barrier(world)
    if not is_main:
        return {}

    best = load_checkpoint(method_dir / "best.pt", map_location=device)
    unwrap(model).load_state_dict(best["state_dict"])
    acc, kept = evaluate_cases(unwrap(model), test, cfg, device, keep=2)
    rows = acc.per_case()
    write_rows(method_dir / "test_per_case.csv", rows)
    for case, pred in zip(test, kept):
        np.save(method_dir / f"test_pred_{case.id}.npy", np.packbits(pred))
    result = {"method": cfg.name, "fold": fold, "seed": seed, "n_test": len(rows), "finetune": summary,
              "mean": _means(acc), "per_case": rows}
    tmp = result_file.with_suffix(".tmp")
    tmp.write_text(dumps(result, indent=1))
    os.replace(tmp, result_file)
    shown = ("dice", "cldice", "betti0_error", "betti1_error", "voi", "are")
    log(f"{cfg.name} fold {fold}: test " + ", ".join(f"{k}={result['mean'][k]:.4f}" for k in shown if k in result["mean"]))
    return result


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()

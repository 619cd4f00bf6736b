"""One training stage (pre-training or fine-tuning) that can be killed and resumed.

Batches are a pure function of the step index (``batch_at(step)``), so a resumed run sees
exactly the batches an uninterrupted run would have seen. ``last.pt`` holds model, optimizer,
scheduler, RNG states, step, best validation score and history; it is written atomically every
``checkpoint_every`` steps, on Ctrl-C, and at the end. ``best.pt`` holds the best model by the
validation metric, ``final.pt`` the model after the last step (its presence marks the stage done).

HPM losses (``thpm``, ``phpm``, ``shpm``, ``shpm_plus``: any :class:`toposeg.losses.HPMLoss`)
add telemetry to the ``log.jsonl`` entry of every validation step (key ``"hpm"``, see
:func:`hpm_telemetry`); it is computed from that step's own training batch and forward pass
before the update, without touching gradients or random states, so training is unchanged.
A batch that carries ``"target_skeleton"`` (``StepBatches`` of a dataset built with
``skeleton=True``) passes it to the loss as ``target_skeleton=``.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from toposeg.engine.checkpoint import load_checkpoint, load_state, save_checkpoint
from toposeg.engine.trainer import build_optimizer
from toposeg.engine.tensorboard import ScalarLog
from toposeg.reports.serialize import dumps

Batch = dict[str, torch.Tensor]


@dataclass
class StageSpec:
    """Everything a stage needs besides the model."""

    name: str
    steps: int
    lr: float
    optimizer: str = "sgd"
    checkpoint_every: int = 200
    val_every: int = 0                      # 0: no validation
    select_metric: str = "dice"
    higher_is_better: bool = True
    plateau: bool = False                   # ReduceLROnPlateau on the validation metric
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    grad_clip: Optional[float] = None
    amp: str = "none"                       # none | bf16 | fp16 (CUDA only)
    progress: bool = True
    model_name: str = "unet"
    model_params: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # the stage's identity: a folder of another config is refused
    inference: Optional[dict] = None            # checkpoint "inference" settings (checkpoint.inference_settings)
    telemetry: bool = True                      # HPM losses: hard-set telemetry at validation steps (hpm_telemetry)
    tensorboard: bool = False                   # also write log.jsonl's scalars for TensorBoard (engine.tensorboard)


_SHOWN = ("dice", "cldice", "betti0_error", "betti1_error", "voi", "are")
_AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": (kind, keys.tolist(), pos, has_gauss, cached),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts (a key missing on one side counts)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                out.append(path)
            else:
                out += config_diff(old[key], new[key], path)
        return out
    return [] if old == new else [prefix or "(the whole config)"]


def _describe_diff(old: dict, new: dict, limit: int = 8) -> str:
    keys = config_diff(old, new)

    def get(d: Any, key: str) -> Any:
        for part in key.split("."):
            if not isinstance(d, dict) or part not in d:
                return "<absent>"
            d = d[part]
        return d

    shown = "; ".join(f"{k}: {get(old, k)!r} there, {get(new, k)!r} now" for k in keys[:limit])
    return shown + (f"; and {len(keys) - limit} more" if len(keys) > limit else "")


#: losses that accept ``target_skeleton=`` as a *skeleton* (Skeleton Recall's is a tube: refused)
SKELETON_LOSSES = ("SHPMLoss", "SHPMPlusLoss")


def _takes_skeleton(loss_fn: Any) -> bool:
    from toposeg.losses.hpm import SHPMLoss

    return isinstance(loss_fn, SHPMLoss)


def _wants_crop(spec: "StageSpec") -> bool:
    """The stage's identity says ``train.target_skeleton: crop``."""
    train = spec.config.get("train") if isinstance(spec.config, dict) else None
    return isinstance(train, dict) and train.get("target_skeleton") == "crop"


def hpm_telemetry(model: nn.Module, loss_fn: Any, logits: torch.Tensor, label: torch.Tensor,
                  target_skeleton: Optional[torch.Tensor] = None) -> Optional[dict[str, float]]:
    """Hard-set telemetry of one training batch for an HPM loss; ``None`` for any other loss.

    Mines exactly as ``loss_fn`` does (its miner, threshold, activation, miner options,
    ``hard_loss``, ``normalize`` and the given ``target_skeleton``) on ``logits`` (the batch's
    forward pass, ``(N, C, *S)``) against ``label``:

    * ``hard_pos``, ``hard_neg``, ``hard``, ``hard_fraction``, ``hpm_term``: from
      :func:`toposeg.losses.hpm_stats` (pixel counts over the whole batch; ``hpm_term`` is the
      *unweighted* term ``L_HPM``);
    * ``lam``: the loss's weight ``λ``;
    * ``grad_share``: :func:`toposeg.losses.gradient_share` of ``λ·L_HPM`` against BCE + Dice,
      ``||∇θ λ L_HPM|| / ||∇θ (BCE + Dice)||``, i.e. the term's share in the actual update
      (divide by ``lam`` for the unweighted ratio). 0.0 when the hard set is empty.

    Uses ``torch.autograd.grad`` with ``retain_graph=True`` (``.grad`` fields untouched, no
    random numbers drawn), so a later ``backward`` of the loss is unaffected.
    """
    from toposeg.losses.bce_dice import bce_dice_loss
    from toposeg.losses.hpm import HPMLoss, gradient_share, hpm_stats, hpm_term

    if not isinstance(loss_fn, HPMLoss):
        return None
    kw = dict(miner=loss_fn.miner, threshold=loss_fn.threshold, activation=loss_fn.activation,
              target_skeleton=target_skeleton, miner_options=dict(loss_fn.miner_options) or None,
              hard_loss=loss_fn.hard_loss, normalize=loss_fn.normalize)
    with warnings.catch_warnings():  # the loss itself already warned about these inputs
        warnings.simplefilter("ignore", UserWarning)
        stats = hpm_stats(logits.detach(), label, **kw)
        term = hpm_term(logits, label, reduction="mean", **kw)
        base = bce_dice_loss(logits, label, activation=loss_fn.activation, smooth=loss_fn.smooth)
    lam = float(loss_fn.lam)
    share = gradient_share(unwrap(model), base, lam * term)
    return {**stats, "lam": lam, "grad_share": share}


def _better(a: float, b: Optional[float], higher: bool) -> bool:
    if math.isnan(a):
        return False
    return b is None or (a > b if higher else a < b)


def run_stage(
    model: nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_at: Callable[[int], Batch],
    spec: StageSpec,
    stage_dir: Path,
    *,
    validate: Optional[Callable[[nn.Module], dict[str, float]]] = None,
    device: str | torch.device = "cpu",
    is_main: bool = True,
    resume: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train ``model`` in place for ``spec.steps`` steps.

    A finished stage (``final.pt``) is loaded and skipped. An interrupted one (``last.pt``
    without ``final.pt``) is continued with ``resume=True`` and refused otherwise.
    """
    from tqdm.auto import tqdm

    if spec.amp not in _AMP:
        raise ValueError(f"amp must be one of {sorted(_AMP)}, got {spec.amp!r}")
    stage_dir = Path(stage_dir)
    final, last = stage_dir / "final.pt", stage_dir / "last.pt"
    for path in (final, last):
        if path.is_file():
            stored = load_checkpoint(path)["extra"].get("config")
            if stored != spec.config:
                raise ValueError(f"{path} was written by a different configuration ("
                                 f"{_describe_diff(stored or {}, spec.config)}); use another output folder, "
                                 "delete it, or run with the configuration that wrote it")
    if final.is_file():
        payload = load_checkpoint(final, map_location=device)
        load_state(model, payload, final)
        log(f"{spec.name}: already done ({final}), skipping")
        return payload["extra"]["summary"]
    model.to(device)
    optimizer = build_optimizer(spec.optimizer, model, spec.lr)
    scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max" if spec.higher_is_better else "min",
        factor=spec.plateau_factor, patience=spec.plateau_patience) if spec.plateau else None)
    state: dict[str, Any] = {"step": 0, "best": None, "best_step": None, "history": []}
    if last.is_file() and not resume:
        step = load_checkpoint(last)["extra"]["state"]["step"]
        raise ValueError(f"{stage_dir} holds a run interrupted at step {step}; "
                         "pass --resume to continue it, or use another output folder")
    if last.is_file():
        payload = load_checkpoint(last, map_location=device)
        extra = payload["extra"]
        load_state(model, payload, last)
        optimizer.load_state_dict(extra["optimizer"])
        if scheduler is not None and extra.get("scheduler") is not None:
            scheduler.load_state_dict(extra["scheduler"])
        _set_rng_state(extra["rng"])
        state = extra["state"]
        log(f"{spec.name}: resuming from step {state['step']} ({last})")

    def write(path: Path, **more: Any) -> None:
        if is_main:
            extra = {"optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict() if scheduler is not None else None,
                     "rng": _rng_state(), "state": state, "config": spec.config, **more}
            save_checkpoint(path, unwrap(model), name=spec.model_name, params=spec.model_params,
                            inference=spec.inference, extra=extra)

    use_cuda_amp = _AMP[spec.amp] is not None and torch.device(device).type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_cuda_amp and spec.amp == "fp16" else None
    log_file = stage_dir / "log.jsonl"
    if is_main:
        stage_dir.mkdir(parents=True, exist_ok=True)
        # the log holds exactly the steps of the state we start from: a crash after the last
        # checkpoint leaves later steps in the file, which the resumed run is about to redo
        tmp = log_file.with_name(log_file.name + ".tmp")
        tmp.write_text("".join(dumps(entry) + "\n" for entry in state["history"]))
        os.replace(tmp, log_file)
        if state["step"] == 0:
            log(f"{spec.name}: {spec.steps} steps, writing to {stage_dir}")
    scalars = ScalarLog(stage_dir, enabled=spec.tensorboard and is_main)
    bar = tqdm(total=spec.steps, initial=state["step"], desc=spec.name, disable=not (spec.progress and is_main),
               dynamic_ncols=True)
    if log is print and not bar.disable:  # printed lines above the progress bar, not through it
        log = tqdm.write
    t0 = time.perf_counter()
    try:
        while state["step"] < spec.steps:
            model.train()
            step = state["step"]
            batch = batch_at(step)
            image, label = batch["image"].to(device), batch["label"].to(device)
            skel = batch.get("target_skeleton")
            extra_args = {} if skel is None else {"target_skeleton": skel.to(device)}
            if extra_args and not _takes_skeleton(loss_fn):
                raise ValueError(f"{spec.name}: the batch carries target_skeleton but loss "
                                 f"{type(loss_fn).__name__} does not take a skeleton (only {list(SKELETON_LOSSES)})")
            if not extra_args and _wants_crop(spec) and _takes_skeleton(loss_fn):
                raise ValueError(f"{spec.name}: train.target_skeleton is 'crop' but the batches carry no "
                                 "target_skeleton (build the PatchDataset with "
                                 "toposeg.engine.batches.skeleton_dataset_options)")
            is_val_step = validate is not None and bool(spec.val_every) and (
                (step + 1) % spec.val_every == 0 or step + 1 == spec.steps)
            optimizer.zero_grad(set_to_none=True)
            ctx = torch.autocast("cuda", dtype=_AMP[spec.amp]) if use_cuda_amp else contextlib.nullcontext()
            with ctx:
                logits = model(image)
            loss = loss_fn(logits.float(), label, **extra_args)
            telemetry = (hpm_telemetry(model, loss_fn, logits.float(), label, extra_args.get("target_skeleton"))
                         if is_val_step and spec.telemetry else None)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"{spec.name}: loss became {value} at step {step + 1}; stopping "
                    f"(last good checkpoint: {last if last.is_file() else 'none'})")
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if spec.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            state["step"] = step + 1
            entry: dict[str, Any] = {"step": step + 1, "loss": value, "lr": optimizer.param_groups[0]["lr"]}
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
            if telemetry is not None:
                entry["hpm"] = telemetry
            if is_val_step:
                metrics = validate(model)
                score = float(metrics[spec.select_metric])
                entry["val"] = metrics
                if scheduler is not None and not math.isnan(score):
                    scheduler.step(score)
                improved = _better(score, state["best"], spec.higher_is_better)
                if improved:
                    state["best"], state["best_step"] = score, state["step"]
                shown = [k for k in _SHOWN if k in metrics and k != spec.select_metric]
                if is_main:
                    log(f"{spec.name}: step {state['step']}/{spec.steps} validation {spec.select_metric}="
                        f"{score:.4f}{' (best so far)' if improved else ''}"
                        + "".join(f", {k}={float(metrics[k]):.4f}" for k in shown))
                if improved:
                    write(stage_dir / "best.pt")
            state["history"].append(entry)
            if is_main:
                with log_file.open("a") as fh:
                    fh.write(dumps(entry) + "\n")
                scalars.write(entry)
            if spec.checkpoint_every and state["step"] % spec.checkpoint_every == 0:
                write(last)
    except KeyboardInterrupt:
        write(last)
        log(f"{spec.name}: interrupted at step {state['step']}; resumable checkpoint {last}")
        raise
    finally:
        bar.close()
        scalars.close()
    summary = {"steps": state["step"], "best": state["best"], "best_step": state["best_step"],
               "select_metric": spec.select_metric, "seconds": time.perf_counter() - t0}
    write(last)
    if validate is None or state["best_step"] is None:
        write(stage_dir / "best.pt")
    write(final, summary=summary)
    if is_main:
        from toposeg.reports.curves import training_curves

        training_curves(state["history"], stage_dir / "curves.png", title=spec.name)
    return summary


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model

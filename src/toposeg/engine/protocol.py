"""The paper's protocol for one fold, done honestly.

0. **Preflight**, before any training: the config is checked, the method's loss and the model
   are built, the splits must each hold a case, one case of every split is read, and one tiny
   forward pass and loss evaluation run on a training batch. A misspelt loss parameter or a
   wrong channel count fails here, not after pre-training.
1. Pre-train the model with BCE + Dice (shared by every method of the same seed and fold:
   ``seed{s}/fold{k}/pretrain``; its identity is :func:`pretrain_identity`).
2. Fine-tune from it with the method's loss (``seed{s}/fold{k}/{name}``); the baseline config
   fine-tunes with BCE + Dice for the same number of steps. ReduceLROnPlateau and the selected
   checkpoint (``best.pt``, by ``train.select_metric``) use the fold's validation split (carved
   from the training folds), never the test split.
3. Evaluate on the test split at whole-image size (sliding window) **both** the final checkpoint
   (``final.pt``: the equal-budget one, the headline) and the checkpoint selected on validation
   (``best.pt``), each scored raw and, in 2D, by the paper protocol (:func:`paper_clean` applied
   to prediction and ground truth; labelled, for comparison with the paper only).

The seed (``--seed``) changes the network initialisation and the patch sampling; the fold split
is made once per output folder with the fixed :data:`SPLIT_SEED` (``splits.json``), so every seed
sees the same folds. Synthetic data carry their generator version in every stage's identity.

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
                     "train.plateau_patience", "train.plateau_factor", "train.checkpoint_every",
                     "train.target_skeleton", "train.tensorboard")
#: keys that never change a stage's result (how often it is checkpointed)
RUN_ONLY = ("train.checkpoint_every", "train.tensorboard")
#: per method and fold: every test case's binary prediction (bool, the case's shape), by case id,
#: of the final checkpoint (the selected checkpoint's: :data:`PREDICTIONS_SELECTED`)
PREDICTIONS = "test_predictions.npz"
PREDICTIONS_SELECTED = "test_predictions_selected.npz"
#: the fold split's seed: fixed, so that every training seed sees the same folds
SPLIT_SEED = 0
#: layout of ``test_summary.json`` (2: both checkpoints, raw and paper-protocol scores)
TEST_FORMAT = 2
#: the test checkpoints: name -> file. "final" (equal budget) is the headline.
CHECKPOINTS = {"final": "final.pt", "selected": "best.pt"}
#: the scorings: "raw" (no post-processing; the headline) and "paper" (2D only)
SCORINGS = ("raw", "paper")
PAPER_LABEL = ("paper protocol (objects < 100 px and holes < 10 px removed from prediction and ground truth; "
               "for comparison with the paper only)")
PAPER_3D_NOTE = "paper protocol: not computed (defined for 2D only; no official 3D rule is known)"


def run_dir(out: Path, seed: int, fold: int) -> Path:
    """The folder of one (seed, fold): ``out/seed{seed}/fold{fold}`` (always, also for one seed,
    so that a later multi-seed run reuses a single-seed one)."""
    return Path(out) / f"seed{int(seed)}" / f"fold{int(fold)}"


def check_layout(out: Path) -> None:
    """Refuse an output folder written by toposeg before per-seed folders (``out/fold{k}/``),
    saying how to move it (``out/seed{s}/fold{k}/``) so that its runs are reused."""
    out = Path(out)
    old = sorted(p.name for p in out.glob("fold[0-9]*") if p.is_dir()) if out.is_dir() else []
    if old:
        seeds = set()
        for p in out.glob("fold[0-9]*/*/run.json"):
            try:
                seeds.add(json.loads(p.read_text()).get("seed"))
            except (OSError, ValueError, AttributeError):
                pass
        seed = seeds.pop() if len(seeds) == 1 else "S"
        raise ValueError(f"{out} holds run folders of the layout before per-seed folders ({', '.join(old)}); "
                         f"move them to keep them: mkdir {out}/seed{seed} && mv {out}/fold* {out}/seed{seed}/ "
                         f"(seed{seed}: the --seed they were run with), or use another --out folder")


def parse_seeds(text: object) -> list[int]:
    """``--seed`` values: ``3`` / ``"3"`` -> [3]; ``"0,1,2"`` -> [0, 1, 2]; ``"0-2"`` -> [0, 1, 2].

    Raises:
        ValueError: anything else (quoting what was received), or a negative seed.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise ValueError(f"--seed must look like '0', '0,1,2' or '0-2', got {text!r}")
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            if sep and int(hi) < int(lo):
                raise ValueError
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise ValueError(f"--seed must look like '0', '0,1,2' or '0-2' (non-negative integers), got {text!r}") from None
    return sorted(set(seeds))


def data_version(cfg: Config) -> dict[str, str]:
    """``{"generator_version": ...}`` for a synthetic data kind (its generator's version, so that
    runs on data of another generator version are never reused), ``{}`` for files on disk."""
    from toposeg.data.synthetic import GENERATOR_VERSION

    version = GENERATOR_VERSION.get(cfg.data.kind)
    return {} if version is None else {"generator_version": str(version)}


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
    config that changes any of them gets refused instead of reusing another pre-training. A
    synthetic data kind adds its ``generator_version`` (:func:`data_version`)."""
    return {**_drop(to_dict(cfg), PRETRAIN_EXCLUDED), **data_version(cfg), "seed": int(seed), "fold": int(fold),
            "world_size": int(world_size)}


def finetune_identity(cfg: Config, *, seed: int, fold: int, world_size: int = 1) -> dict[str, Any]:
    """The fine-tuning stage's identity: the whole resolved config (minus :data:`RUN_ONLY`), the
    synthetic generator version (:func:`data_version`), seed, fold and world size."""
    return {**_drop(to_dict(cfg), RUN_ONLY), **data_version(cfg), "seed": int(seed), "fold": int(fold),
            "world_size": int(world_size)}


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


def predict_cases(model: nn.Module, cases: Sequence[Case], cfg: Config, device: str) -> list[np.ndarray]:
    """Binary prediction (bool, the case's shape) of every case: sliding window, ``inference.threshold``."""
    from toposeg.data.transforms import normalize

    model.eval()
    out = []
    for case in cases:
        image = normalize(case.image, cfg.data.normalization, hu_window=cfg.data.hu_window)
        out.append(predict_case(model, Case(case.id, image, case.label), cfg, device) > cfg.inference.threshold)
    return out


def score_predictions(preds: Sequence[np.ndarray], cases: Sequence[Case]) -> dict[str, Optional[dict[str, Any]]]:
    """Test scores of binary predictions against the cases' labels, per scoring.

    Returns ``{"raw": {"mean", "per_case"}, "paper": {"mean", "per_case"} or None}``: every metric
    of :func:`toposeg.metrics.evaluate_case` plus the error decomposition
    (:func:`toposeg.metrics.component_errors`, 8 counts) per case; ``mean`` is the NaN-aware mean
    over cases. ``raw`` scores the masks as they are. ``paper`` first applies
    :func:`toposeg.metrics.paper_protocol.paper_clean` (objects < 100 px removed, holes < 10 px
    filled) to the prediction **and** the ground truth; it is ``None`` unless every case is 2D.
    """
    from toposeg.metrics import component_errors, evaluate_case
    from toposeg.metrics.paper_protocol import paper_clean

    if len(preds) != len(cases):
        raise ValueError(f"score_predictions: {len(preds)} predictions for {len(cases)} cases")
    out: dict[str, Optional[dict[str, Any]]] = {}
    for scoring in SCORINGS:
        if scoring == "paper" and not all(np.ndim(c.label) == 2 for c in cases):
            out[scoring] = None
            continue
        acc = MetricAccumulator()
        for case, pred in zip(cases, preds):
            p, t = pred, case.label
            if scoring == "paper":
                p, t = paper_clean(p, name=f"prediction of {case.id}"), paper_clean(t, name=f"label of {case.id}")
            row = evaluate_case(p, t)
            row.update(component_errors(p, t))
            acc.update(row, case_id=case.id)
        out[scoring] = {"mean": _means(acc), "per_case": acc.per_case()}
    return out


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def evaluate_checkpoints(model: nn.Module, test: Sequence[Case], cfg: Config, device: str, method_dir: Path
                     ) -> dict[str, dict[str, Any]]:
    """Evaluate the final and the selected checkpoint of ``method_dir`` on ``test``.

    Writes per checkpoint ``test_per_case{_selected}.csv`` (raw) and, in 2D,
    ``test_per_case{_selected}_paper.csv``, and the binary predictions (:data:`PREDICTIONS`,
    :data:`PREDICTIONS_SELECTED`). Returns ``{"final": {"step", "raw", "paper"}, "selected": {...,
    "same_as_final"}}`` (``raw``/``paper`` as in :func:`score_predictions`). A selected checkpoint
    with the final weights is not evaluated twice.
    """
    results: dict[str, dict[str, Any]] = {}
    final_state: Optional[dict[str, torch.Tensor]] = None
    for name, filename in CHECKPOINTS.items():
        path = method_dir / filename
        payload = load_checkpoint(path, map_location=device)
        state = payload["extra"].get("state") or {}
        step = state.get("best_step") if name == "selected" else state.get("step")
        if name == "selected" and final_state is not None and _same_weights(
                {k: v.to("cpu") for k, v in payload["state_dict"].items()}, final_state):
            results[name] = {**results["final"], "step": step if step is not None else results["final"]["step"],
                             "same_as_final": True}
            preds = None
        else:
            load_state(model, payload, path)
            preds = predict_cases(unwrap(model), test, cfg, device)
            results[name] = {"step": step, **score_predictions(preds, test), "same_as_final": name == "final"}
        if name == "final":
            final_state = {k: v.to("cpu") for k, v in payload["state_dict"].items()}
            kept_final = preds
        suffix = "" if name == "final" else "_selected"
        for scoring in SCORINGS:
            scores = results[name][scoring]
            if scores is not None:
                write_rows(method_dir / f"test_per_case{suffix}{'' if scoring == 'raw' else '_' + scoring}.csv",
                           scores["per_case"])
        target = method_dir / (PREDICTIONS if name == "final" else PREDICTIONS_SELECTED)
        tmp_npz = target.with_name(target.name + ".tmp.npz")
        np.savez_compressed(tmp_npz, **{case.id: pred for case, pred in zip(test, preds if preds is not None
                                                                             else kept_final)})
        os.replace(tmp_npz, target)
    return results


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
    from toposeg.engine.batches import StepBatches, skeleton_dataset_options
    from toposeg.losses import build_loss
    from toposeg.models import build_model

    validate(cfg)
    out = Path(out)
    rank, world = _distributed()
    is_main = rank == 0
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < cfg.data.folds:
        raise ValueError(f"fold must be an int in [0, {cfg.data.folds - 1}] (data.folds={cfg.data.folds}), got {fold!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    check_layout(out)
    where = f"{cfg.name} seed {seed} fold {fold}"
    method_dir = run_dir(out, seed, fold) / cfg.name
    pre_dir = run_dir(out, seed, fold) / "pretrain"
    for folder in (pre_dir, method_dir):
        check_run_folder(folder)
    pre_id = pretrain_identity(cfg, seed=seed, fold=fold, world_size=world)
    ft_id = finetune_identity(cfg, seed=seed, fold=fold, world_size=world)
    result_file = method_dir / "test_summary.json"
    retest = False
    if result_file.is_file():
        final = method_dir / "final.pt"
        stored = load_checkpoint(final)["extra"].get("config") if final.is_file() else None
        if stored != ft_id:
            raise ValueError(f"{method_dir} holds a finished run of a different configuration ("
                             f"{_describe_diff(stored or {}, ft_id)}); use another --out folder, delete it, "
                             "or run with the configuration that wrote it")
        if preflight_only:
            return {}
        done = json.loads(result_file.read_text())
        if done.get("test_format") == TEST_FORMAT:
            log(f"{where}: already evaluated ({result_file}), skipping")
            return done if is_main else {}
        retest = True  # trained, but scored by an older toposeg: re-evaluate the test split only
        log(f"{where}: trained, test scores of an older layout: re-evaluating final and selected checkpoints")

    cases = open_dataset(cfg.data.kind, data_root, **cfg.data.options)
    if len(cases) == 0:
        raise ValueError(f"no cases found for data kind {cfg.data.kind!r} under {data_root!r}")
    ids = getattr(cases, "ids", None) or [c.id for c in cases]
    contiguous = cfg.data.contiguous if cfg.data.contiguous is not None else serial_sections(cfg.data.kind, cases)
    if not is_main:  # rank 0 writes splits.json (once), the other ranks read it
        _barrier(world)
    folds = load_or_create_splits(out / "splits.json", ids, cfg.data.folds, seed=SPLIT_SEED,
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
        log(f"{where}: preflight passed")
        return {}
    train, val, test = (select(cases, split[part]) for part in ("train", "val", "test"))
    rule = label_foreground_of(cfg, cases)
    inference = inference_of(cfg, rule)
    log(f"{where}: {len(train)} train / {len(val)} validation / {len(test)} test cases"
        f"{' (contiguous folds: serial sections)' if contiguous else ''}; writing to {method_dir} "
        f"(shared pre-training: {pre_dir})")

    def batches(steps: int, stage_seed: int, extra: Optional[dict] = None) -> StepBatches:
        per_step = cfg.data.batch_size * world
        dataset = PatchDataset(train, cfg.data.patch, samples_per_epoch=max(steps, 1) * per_step,
                               fg_prob=cfg.data.foreground_oversampling, seed=stage_seed,
                               normalization=cfg.data.normalization, hu_window=cfg.data.hu_window, **(extra or {}))
        return StepBatches(dataset, cfg.data.batch_size, rank=rank, world_size=world)

    t = cfg.train
    # fine-tuning batches carry the crop of the whole-image skeleton with train.target_skeleton "crop"
    pre_batches = batches(t.pretrain.steps, seed)
    ft_batches = batches(t.finetune.steps, seed + 1, skeleton_dataset_options(t.target_skeleton, loss))
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)

    info = {"format_version": FORMAT_VERSION, "toposeg": _version(), "fold": fold, "seed": seed,
            "split_seed": SPLIT_SEED, **data_version(cfg),
            "data_root": None if data_root is None else str(data_root), "device": str(device), "world_size": world,
            "batch_size_per_process": cfg.data.batch_size, "global_batch_size": cfg.data.batch_size * world,
            "contiguous_folds": contiguous, "torch_threads": torch.get_num_threads()}
    if is_main:
        if not (pre_dir / "final.pt").is_file() or not (pre_dir / "run.json").is_file():
            _write_run_info(pre_dir, pre_id, info)  # a finished, shared pre-training keeps its own record
        if not retest:  # a finished run keeps the record of how it was trained
            save_config(cfg, method_dir / "config.yaml")
            (method_dir / "run.json").write_text(json.dumps(info, indent=1))

    common = dict(checkpoint_every=t.checkpoint_every, grad_clip=t.grad_clip, amp=t.amp, progress=progress,
                  model_name=cfg.model.name, model_params=params, inference=inference, tensorboard=t.tensorboard)
    pre = StageSpec(name=f"seed {seed} fold {fold} pre-train", steps=t.pretrain.steps, lr=t.pretrain.lr,
                    optimizer=t.pretrain.optimizer, config=pre_id, **common)
    run_stage(model, build_loss("bce_dice"), pre_batches, pre, pre_dir, device=device, is_main=is_main,
              resume=resume, log=log)
    _barrier(world)

    def validate_split(m: nn.Module) -> dict[str, float]:
        return _means(evaluate_cases(unwrap(m), val, cfg, device)[0])

    ft = StageSpec(name=f"seed {seed} fold {fold} fine-tune {cfg.name}", steps=t.finetune.steps, lr=t.finetune.lr,
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

    scores = evaluate_checkpoints(model, test, cfg, device, method_dir)
    final, selected = scores["final"], scores["selected"]
    result = {"test_format": TEST_FORMAT, "method": cfg.name, "fold": fold, "seed": seed, "split_seed": SPLIT_SEED,
              **data_version(cfg), "n_test": len(test), "finetune": summary, "inference": inference,
              "select_metric": t.select_metric, "headline": "final", "paper_protocol": PAPER_LABEL
              if final["paper"] is not None else PAPER_3D_NOTE,
              "checkpoints": {name: {"step": s["step"], "same_as_final": s["same_as_final"],
                                     **{scoring: s[scoring] for scoring in SCORINGS}} for name, s in scores.items()},
              # the headline (final checkpoint, raw) also at the top level, as before
              "mean": final["raw"]["mean"], "per_case": final["raw"]["per_case"]}
    tmp = result_file.with_suffix(".tmp")
    tmp.write_text(dumps(result, indent=1))
    os.replace(tmp, result_file)
    shown = ("dice", "cldice", "betti0_error", "betti1_error", "voi", "are")
    for name, s in scores.items():
        log(f"{where}: test, {name} checkpoint (step {s['step']}), raw: "
            + ", ".join(f"{k}={s['raw']['mean'][k]:.4f}" for k in shown if k in s["raw"]["mean"]))
    log(f"{where}: wrote test_per_case*.csv, test_summary.json, {PREDICTIONS} and {PREDICTIONS_SELECTED} in "
        f"{method_dir}")
    _barrier(world)
    return result


def _version() -> str:
    from toposeg import __version__

    return __version__


def _barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()

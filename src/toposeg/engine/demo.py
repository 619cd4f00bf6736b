"""The demo: pre-train a U-Net, fine-tune it with BCE+Dice and with SHPM for the same number of
steps, evaluate both on held-out synthetic images at whole-image size, write table and figure.

Whole images are predicted like everywhere else in toposeg: z-scored as the training patches
were, then :func:`toposeg.inference.sliding_window_predict` with the training patch as the window
(overlap 0.25, Gaussian blending), binarised at 0.5."""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # the module top stays light: the CLI reads DemoConfig's defaults for --help
    import numpy as np
    import torch

    from toposeg.data import Case
    from toposeg.engine.batches import StepBatches
    from toposeg.metrics import MetricAccumulator

TABLE_METRICS = ("dice", "iou", "betti0_error", "betti1_error")


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    kind: str = "vessels2d"
    size: int = 128
    n_train: int = 24
    n_test: int = 8
    patch: int = 64
    batch_size: int = 8
    features: tuple[int, int, int] = (16, 32, 64)
    pretrain_steps: int = 500
    finetune_steps: int = 250
    pretrain_lr: float = 0.01
    finetune_lr: float = 0.001
    lam: float = 0.5
    threshold: float = 0.6  # SHPM binarisation threshold t (the paper's 0.6)
    n_figure: int = 3
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("size", "n_train", "n_test", "patch", "batch_size", "n_figure"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("pretrain_steps", "finetune_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.patch > self.size:
            raise ValueError(f"patch ({self.patch}) must not exceed the image size ({self.size})")


def _batches(cases: list[Case], cfg: DemoConfig, seed: int, steps: int) -> StepBatches:
    from toposeg.data.patches import PatchDataset
    from toposeg.engine.batches import StepBatches

    dataset = PatchDataset(cases, cfg.patch, samples_per_epoch=max(steps, 1) * cfg.batch_size, fg_prob=0.5,
                           seed=seed)
    return StepBatches(dataset, cfg.batch_size)


OVERLAP = 0.25
THRESHOLD = 0.5  # binarisation of the foreground probability (not the SHPM mining threshold)


def _evaluate(model: torch.nn.Module, cases: list[Case], cfg: DemoConfig) -> tuple[list[np.ndarray], MetricAccumulator]:
    from toposeg.data.transforms import normalize
    from toposeg.inference import sliding_window_predict
    from toposeg.metrics import MetricAccumulator

    model.to(cfg.device).eval()
    probs = [sliding_window_predict(model, normalize(c.image, "zscore"), window=(cfg.patch, cfg.patch),
                                    overlap=OVERLAP, device=cfg.device)[0] for c in cases]
    acc = MetricAccumulator()
    for p, c in zip(probs, cases):
        acc.update(p > THRESHOLD, c.label, case_id=c.id)
    return probs, acc


def run_demo(cfg: DemoConfig, out: Path, log: Callable[[str], None] = print) -> dict:
    """Run the whole demo; returns the results written to ``out/results.json``."""
    from toposeg.data import make_synthetic
    from toposeg.engine.checkpoint import inference_settings
    from toposeg.engine.stage import StageSpec, run_stage
    from toposeg.engine.trainer import seed_everything
    from toposeg.losses import build_loss
    from toposeg.models import build_model
    from toposeg.reports.comparison import comparison_figure
    from toposeg.reports.serialize import dumps
    from toposeg.reports.tables import markdown_table

    out = Path(out)
    for folder in ("pretrain", "finetune_bce_dice", "finetune_shpm"):  # a demo always starts afresh
        shutil.rmtree(out / folder, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    cases = make_synthetic(cfg.kind, cfg.n_train + cfg.n_test, size=cfg.size, seed=cfg.seed)
    train, test = cases[: cfg.n_train], cases[cfg.n_train:]
    log(f"data: {len(train)} training and {len(test)} held-out {cfg.kind} images of {cfg.size}x{cfg.size}")

    params = {"spatial_dims": 2, "in_channels": 1, "out_channels": 1, "features": list(cfg.features)}
    model = build_model("unet", **params)
    inference = inference_settings(spatial_dims=2, in_channels=1, window=(cfg.patch, cfg.patch), overlap=OVERLAP,
                                   normalization="zscore", threshold=THRESHOLD, label_foreground="nonzero")
    stage = partial(StageSpec, checkpoint_every=100, progress=cfg.progress, model_params=params, inference=inference,
                    config={**asdict(cfg), "progress": None, "device": None})
    run_stage(model, build_loss("bce_dice"), _batches(train, cfg, cfg.seed, cfg.pretrain_steps),
              stage("pre-train U-Net (BCE+Dice)", cfg.pretrain_steps, cfg.pretrain_lr), out / "pretrain",
              device=cfg.device, log=log)
    pretrained = copy.deepcopy(model.state_dict())

    methods = [  # (row, stage folder, fine-tuning loss)
        ("U-Net (pre-trained)", None, None),
        ("U-Net, fine-tuned BCE+Dice", "finetune_bce_dice", build_loss("bce_dice")),
        ("U-Net + SHPM", "finetune_shpm", build_loss("shpm", lam=cfg.lam, threshold=cfg.threshold)),
    ]
    results, probs, per_case, seconds = {}, {}, {}, {}
    for name, folder, loss in methods:
        model.load_state_dict(pretrained)
        start = time.perf_counter()
        if loss is not None:  # both fine-tunings see the same batches for the same number of steps
            run_stage(model, loss, _batches(train, cfg, cfg.seed + 1, cfg.finetune_steps),
                      stage(f"fine-tune: {name}", cfg.finetune_steps, cfg.finetune_lr), out / folder,
                      device=cfg.device, log=log)
        seconds[name] = time.perf_counter() - start
        probs[name], acc = _evaluate(model, test, cfg)
        results[name], per_case[name] = acc.compute(), acc.per_case()

    table = markdown_table(results, TABLE_METRICS)
    (out / "table.md").write_text(
        f"# toposeg demo: {cfg.kind}, {cfg.n_test} held-out images, mean ± std\n\n{table}"
    )
    shown = test[: cfg.n_figure]
    base, ours = "U-Net, fine-tuned BCE+Dice", "U-Net + SHPM"
    comparison_figure(
        out / "figure.png", [c.image[0] for c in shown], [c.label for c in shown],
        {label: [p > 0.5 for p in probs[k][: len(shown)]] for label, k in (("BCE+Dice", base), ("+SHPM", ours))},
        {f"SHPM hard px, {label}": [_shpm_masks(p, c.label) for p, c in zip(probs[k], shown)]
         for label, k in (("BCE+Dice", base), ("+SHPM", ours))},
        titles=[c.id for c in shown],
    )
    payload = {
        "config": asdict(cfg),
        "summary": results,
        "per_case": per_case,
        "fine_tune_seconds": seconds,
        "total_seconds": time.perf_counter() - t0,
    }
    (out / "results.json").write_text(dumps(payload, indent=2))
    log("\n" + table)
    log(f"wrote {out / 'table.md'}, {out / 'results.json'} and {out / 'figure.png'} "
        f"({payload['total_seconds']:.0f} s)")
    return payload


def _shpm_masks(prob: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SHPM hard pixels of a prediction at the evaluation threshold 0.5 (what the figure shows)."""
    import torch

    from toposeg.mining import shpm

    pos, neg = shpm(torch.from_numpy(prob)[None, None], torch.from_numpy(label)[None, None], threshold=0.5)
    return pos[0, 0].numpy(), neg[0, 0].numpy()

"""The demo: pre-train a U-Net, then fine-tune copies of the same pre-trained weights with BCE+Dice
(the fair baseline), with the paper's SHPM and with the method toposeg recommends for the dataset
kind (:func:`toposeg.recommend.recommended`), each for the same number of steps on the same
batches; evaluate every model on held-out synthetic images at whole-image size, write table and
figure.

Whole images are predicted like everywhere else in toposeg: z-scored as the training patches
were, then :func:`toposeg.inference.sliding_window_predict` with the training patch as the window
(overlap 0.25, Gaussian blending), binarised at 0.5.

The recommended loss is fine-tuned only when it differs from both other fine-tunings: a
recommendation equal to ``bce_dice`` or to the paper's SHPM with the same parameters (defaults
filled in, see :func:`same_loss`) marks that row as the recommended one instead of training the
same loss twice."""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:  # the module top stays light: the CLI reads DemoConfig's defaults for --help
    import numpy as np
    import torch

    from toposeg.data import Case
    from toposeg.engine.batches import StepBatches
    from toposeg.metrics import MetricAccumulator
    from toposeg.recommend import Recommendation

TABLE_METRICS = ("dice", "iou", "betti0_error", "betti1_error")


PRETRAINED = "U-Net (pre-trained)"
BASELINE = "U-Net, fine-tuned BCE+Dice"
PAPER = "U-Net + SHPM (paper)"


@dataclass(frozen=True)
class DemoConfig:
    """Settings of :func:`run_demo` (``toposeg demo`` exposes most of them as options).

    Sizes are pixels, steps are optimizer steps (one batch of ``batch_size`` patches each); the
    pre-training and all fine-tunings use SGD at the given constant learning rates. ``lam`` and
    ``threshold`` are the paper's SHPM weight λ and binarisation threshold t (the row
    "U-Net + SHPM (paper)"). ``recommended``: the registry name (``toposeg.losses.LOSSES``) of the
    third fine-tuning, with that loss's default parameters; ``None`` (default) takes
    :func:`toposeg.recommend.recommended` of ``kind`` with its parameters. ``compare_recommended=False``
    skips the third fine-tuning (the recommendation is still recorded).

    Raises:
        ValueError: a size or count < 1, negative steps, ``patch > size``, or ``recommended`` not a
            registry loss name (the message lists the valid names).
    """

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
    recommended: Optional[str] = None  # override of toposeg.recommend.recommended(kind): a loss registry name
    compare_recommended: bool = True   # False: no third fine-tuning

    def __post_init__(self) -> None:
        for name in ("size", "n_train", "n_test", "patch", "batch_size", "n_figure"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("pretrain_steps", "finetune_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.patch > self.size:
            raise ValueError(f"patch ({self.patch}) must not exceed the image size ({self.size})")
        if self.recommended is not None:  # only then import torch: the CLI builds a default config for --help
            from toposeg.losses import LOSSES

            if self.recommended not in LOSSES:
                raise ValueError(f"unknown loss {self.recommended!r} for the recommended method (--recommended); "
                                 f"valid: {sorted(LOSSES)}")


def describe_loss(name: str, params: dict[str, Any]) -> str:
    """``"cldice"``, or ``"shpm_plus(lam=1.0, threshold=0.5)"`` with parameters (keys sorted)."""
    if not params:
        return name
    return f"{name}(" + ", ".join(f"{k}={params[k]!r}" for k in sorted(params)) + ")"


def resolved_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Every constructor parameter of registry loss ``name``, defaults filled in for those not in
    ``params``. Raises KeyError for an unknown name and TypeError for an unknown parameter (from
    :func:`toposeg.losses.build_loss`'s rules)."""
    import inspect

    from toposeg.losses import LOSSES

    if name not in LOSSES:
        raise KeyError(f"unknown loss {name!r}; valid: {sorted(LOSSES)}")
    signature = inspect.signature(LOSSES[name])
    try:
        bound = signature.bind(**params)
    except TypeError:
        valid = [p for p in signature.parameters if p not in ("self", "args", "kwargs")]
        raise TypeError(f"unknown parameter(s) {sorted(set(params) - set(valid))} for loss {name!r}; "
                        f"valid: {valid}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def same_loss(a: tuple[str, dict[str, Any]], b: tuple[str, dict[str, Any]]) -> bool:
    """Whether two ``(registry name, params)`` pairs build the same loss: the same name and the
    same parameters once defaults are filled in (``("shpm", {})`` equals
    ``("shpm", {"lam": 0.5, "threshold": 0.6})``). Different registry names are different losses,
    even where one only changes the other's defaults (``shpm_plus``)."""
    return a[0] == b[0] and resolved_params(*a) == resolved_params(*b)


def recommendation(cfg: DemoConfig) -> tuple[Recommendation, str]:
    """The demo's recommended method and where it came from: ``(Recommendation, source)`` with
    source ``"toposeg.recommend"`` (:func:`toposeg.recommend.recommended` of ``cfg.kind``) or
    ``"--recommended"`` (``cfg.recommended``: that loss with its default parameters)."""
    from toposeg.recommend import Recommendation, recommended

    chosen = recommended(cfg.kind)
    if cfg.recommended is None:
        return chosen, "toposeg.recommend"
    evidence = (f"chosen by the user (--recommended {cfg.recommended}, the loss's default parameters), not by "
                f"toposeg's study; toposeg recommends {describe_loss(chosen.loss, chosen.params)} for {cfg.kind} "
                f"({chosen.evidence})")
    return Recommendation(cfg.recommended, {}, evidence), "--recommended"


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


FOLDERS = {BASELINE: "finetune_bce_dice", PAPER: "finetune_shpm"}
RECOMMENDED_FOLDER = "finetune_recommended"


def run_demo(cfg: DemoConfig, out: Path, log: Callable[[str], None] = print) -> dict:
    """Run the whole demo; returns the results written to ``out/results.json``.

    One pre-training (BCE+Dice), then up to three fine-tunings, each from the same pre-trained
    weights, on the same batches (the same seed, ``cfg.seed + 1``, and the global RNGs re-seeded
    before each), for ``cfg.finetune_steps`` steps at ``cfg.finetune_lr``:

    - "U-Net, fine-tuned BCE+Dice" (the fair baseline: more training, no topology term),
    - "U-Net + SHPM (paper)" (``shpm`` with ``lam=cfg.lam``, ``threshold=cfg.threshold``),
    - "U-Net + <loss> (recommended)", ``<loss>`` from :func:`describe_loss` of
      :func:`recommendation` — only when that loss differs from both others (:func:`same_loss`)
      and ``cfg.compare_recommended``; a recommendation equal to one of them marks that row
      instead (``— recommended`` in the table, ``recommended.same_as`` in the results).

    Every model, and the pre-trained one, is scored on ``cfg.n_test`` held-out images.

    Writes under ``out``: ``table.md`` (mean ± std over the held-out images per method, then one
    line naming the recommended method and its evidence sentence), ``results.json`` (``config``,
    ``summary``, ``per_case``, ``recommended``: loss, params, evidence, source, row, same_as,
    separate_fine_tuning; ``fine_tune_seconds`` per fine-tuned row; ``total_seconds``),
    ``figure.png`` (image, ground truth, each fine-tuned prediction, SHPM hard pixels of the
    baseline and of SHPM) and a stage folder per training: ``pretrain/``, ``finetune_bce_dice/``,
    ``finetune_shpm/``, ``finetune_recommended/`` — all four deleted at the start (a demo always
    starts afresh).

    Raises:
        KeyError / TypeError: the recommendation's loss name / parameters are not accepted by
            :func:`toposeg.losses.build_loss` — raised before any training or file is written.
    """
    from toposeg.data import make_synthetic
    from toposeg.engine.checkpoint import inference_settings
    from toposeg.engine.stage import StageSpec, run_stage
    from toposeg.engine.trainer import seed_everything
    from toposeg.losses import build_loss
    from toposeg.models import build_model
    from toposeg.reports.comparison import comparison_figure
    from toposeg.reports.serialize import dumps
    from toposeg.reports.tables import markdown_table

    rec, source = recommendation(cfg)
    specs = {BASELINE: ("bce_dice", {}), PAPER: ("shpm", {"lam": cfg.lam, "threshold": cfg.threshold})}
    rec_spec = (rec.loss, dict(rec.params))
    same_as = next((row for row, spec in specs.items() if same_loss(rec_spec, spec)), None)
    folders = dict(FOLDERS)
    if same_as is not None:
        rec_row: Optional[str] = same_as
    elif cfg.compare_recommended:
        rec_row = f"U-Net + {describe_loss(*rec_spec)} (recommended)"
        specs[rec_row], folders[rec_row] = rec_spec, RECOMMENDED_FOLDER
    else:
        rec_row = None
    losses = {row: build_loss(name, **params) for row, (name, params) in specs.items()}  # errors before training

    out = Path(out)
    for folder in ("pretrain", *FOLDERS.values(), RECOMMENDED_FOLDER):  # a demo always starts afresh
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

    results, probs, per_case, seconds = {}, {}, {}, {}
    probs[PRETRAINED], acc = _evaluate(model, test, cfg)
    results[PRETRAINED], per_case[PRETRAINED] = acc.compute(), acc.per_case()
    for row, loss in losses.items():  # every fine-tuning: the same weights, batches, RNG state and steps
        model.load_state_dict(pretrained)
        seed_everything(cfg.seed + 1)
        start = time.perf_counter()
        run_stage(model, loss, _batches(train, cfg, cfg.seed + 1, cfg.finetune_steps),
                  stage(f"fine-tune: {row}", cfg.finetune_steps, cfg.finetune_lr), out / folders[row],
                  device=cfg.device, log=log)
        seconds[row] = time.perf_counter() - start
        probs[row], acc = _evaluate(model, test, cfg)
        results[row], per_case[row] = acc.compute(), acc.per_case()

    shown_rows = {row: f"{row} — recommended" if row == same_as else row for row in results}
    table = markdown_table({shown_rows[row]: summary for row, summary in results.items()}, TABLE_METRICS)
    note = _recommendation_note(cfg, rec, rec_row, same_as)
    (out / "table.md").write_text(
        f"# toposeg demo: {cfg.kind}, {cfg.n_test} held-out images, mean ± std\n\n{table}\n{note}\n"
    )
    shown = test[: cfg.n_figure]
    columns = {"BCE+Dice": BASELINE, "+SHPM (paper)": PAPER}
    if rec_row is not None and same_as is None:
        columns[f"+{rec.loss}\n(recommended)"] = rec_row
    columns = {(f"{label}\n= recommended" if row == same_as else label): row for label, row in columns.items()}
    comparison_figure(
        out / "figure.png", [c.image[0] for c in shown], [c.label for c in shown],
        {label: [p > THRESHOLD for p in probs[row][: len(shown)]] for label, row in columns.items()},
        {f"SHPM hard px, {label}": [_shpm_masks(p, c.label) for p, c in zip(probs[row], shown)]
         for label, row in (("BCE+Dice", BASELINE), ("+SHPM", PAPER))},
        titles=[c.id for c in shown],
    )
    payload = {
        "config": asdict(cfg),
        "summary": results,
        "per_case": per_case,
        "recommended": {"loss": rec.loss, "params": dict(rec.params), "evidence": rec.evidence, "source": source,
                        "row": rec_row, "same_as": same_as,
                        "separate_fine_tuning": rec_row is not None and same_as is None},
        "fine_tune_seconds": seconds,
        "total_seconds": time.perf_counter() - t0,
    }
    (out / "results.json").write_text(dumps(payload, indent=2))
    log("\n" + table + "\n" + note)
    log(f"wrote {out / 'table.md'}, {out / 'results.json'} and {out / 'figure.png'} "
        f"({payload['total_seconds']:.0f} s)")
    return payload


def _recommendation_note(cfg: DemoConfig, rec: Recommendation, row: Optional[str], same_as: Optional[str]) -> str:
    """The line under the table: which method is recommended, where it is in the table, the evidence."""
    what = f"`{describe_loss(rec.loss, rec.params)}`"
    if same_as is not None:
        where = f"the same loss as the row “{same_as}”, so it is trained once"
    elif row is not None:
        where = (f"the row “{row}”, fine-tuned from the same pre-trained weights on the same batches for the same "
                 f"{cfg.finetune_steps} steps as the other fine-tunings")
    else:
        where = "not fine-tuned in this run (--no-recommended)"
    evidence = rec.evidence.strip() or "none given"
    stop = "" if evidence.endswith(".") else "."
    return f"Recommended for {cfg.kind}: {what}, {where}. Evidence: {evidence}{stop}"


def _shpm_masks(prob: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SHPM hard pixels of a prediction at the evaluation threshold 0.5 (what the figure shows)."""
    import torch

    from toposeg.mining import shpm

    pos, neg = shpm(torch.from_numpy(prob)[None, None], torch.from_numpy(label)[None, None], threshold=0.5)
    return pos[0, 0].numpy(), neg[0, 0].numpy()

"""Per-iteration cost of the toposeg nnU-Net trainers against plain ``nnUNetTrainer``.

nnU-Net's own benchmark trainers need CUDA, so this script times the iterations itself: one
synthetic 2D vessel dataset converted with ``toposeg nnunet convert``, planned and preprocessed
by nnU-Net (2d configuration; its patch and batch size), then for every trainer the same
pre-fetched batches go through ``trainer.train_step`` (forward, nnU-Net's Dice + CE with deep
supervision + the topology term, backward, SGD step). Trainers are timed round-robin in one
process with a rotating order (load changes on a shared machine hit all of them), after
warm-up rounds; reported: the median seconds per iteration and the median over rounds of the
ratio to ``nnUNetTrainer`` in the same round; the term's forward time is also taken inside
every timed step ("term in training") and, once more, alone on the plain network's output after
the rounds. The ground-truth skeletons (SHPM, Skeleton
Recall) are computed on the fly in the loss, every iteration. Data loading and augmentation
(identical for all trainers, in background workers in real training) are not timed.

    python benchmarks/nnunet.py --threads 1            # writes benchmarks/results/nnunet.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _meta import metadata, write_json  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="side of the synthetic 2D images (= nnU-Net's patch)")
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds")
    ap.add_argument("--rounds", type=int, default=10, help="timed rounds (one iteration per trainer each)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/nnunet.json)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from toposeg.data import open_dataset
    from toposeg.nnunet.convert import convert_dataset

    work = Path(tempfile.mkdtemp(prefix="toposeg-nnunet-bench-"))
    raw, pre, res = work / "raw", work / "pre", work / "res"
    name = "Dataset902_ToposegBench"
    convert_dataset(open_dataset("vessels2d", n=args.cases, size=args.size, seed=0), raw / name, label_name="vessel")
    env = dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre), nnUNet_results=str(res),
               nnUNet_n_proc_DA="1", nnUNet_def_n_proc="1")
    bindir = Path(sys.executable).parent
    subprocess.run([str(bindir / "nnUNetv2_plan_and_preprocess"), "-d", "902", "-c", "2d", "-np", "1"], env=env,
                   check=True, capture_output=True)
    os.environ.update({k: env[k] for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")})
    os.environ["nnUNet_n_proc_DA"] = "0"

    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from toposeg.nnunet.trainers import TRAINERS

    plans = json.loads((pre / name / "nnUNetPlans.json").read_text())
    dataset_json = json.loads((pre / name / "dataset.json").read_text())
    classes = {"nnUNetTrainer": nnUNetTrainer, **TRAINERS}
    trainers = {}
    for key, cls in classes.items():
        torch.manual_seed(0)
        t = cls(dict(plans, continue_training=False), "2d", 0, dataset_json, device=torch.device("cpu"))
        t.on_train_start()
        t.on_train_epoch_start()
        trainers[key] = t
    loader = trainers["nnUNetTrainer"].dataloader_train
    batches = [next(loader) for _ in range(args.warmup + args.rounds)]
    b0 = batches[0]
    patch = list(b0["data"].shape[2:])
    batch_size = int(b0["data"].shape[0])

    names = list(trainers)
    times: dict[str, list[float]] = {k: [] for k in names}
    # time the term inside each training step too (forward only; its backward is in the step time)
    term_calls: dict[str, list[float]] = {k: [] for k in names[1:]}

    def timed(key, forward):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            out = forward(*a, **kw)
            term_calls[key].append(time.perf_counter() - t0)
            return out
        return wrapper

    for key in names[1:]:
        trainers[key].loss.term.forward = timed(key, trainers[key].loss.term.forward)
    for r, batch in enumerate(batches):
        order = names[r % len(names):] + names[: r % len(names)]
        for key in order:
            t0 = time.perf_counter()
            trainers[key].train_step(batch)
            dt = time.perf_counter() - t0
            if r >= args.warmup:
                times[key].append(dt)
            elif key in term_calls:
                term_calls[key].clear()
        print(f"round {r + 1}/{len(batches)}: " + ", ".join(f"{k[13:] or 'plain'} {times[k][-1]:.2f}s"
                                                             for k in names if times[k]), flush=True)
    in_training_ms = {k: 1000 * statistics.median(v) for k, v in term_calls.items() if v}
    # the term alone (forward, no gradient) on the full-resolution output of the plain network
    plain = trainers["nnUNetTrainer"]
    with torch.no_grad():
        out0 = plain.network(batches[-1]["data"])[0]
    target0 = batches[-1]["target"][0]
    term_ms = {}
    for key in names[1:]:
        term = trainers[key].loss.term
        term.forward = type(term).forward.__get__(term)  # unwrapped
        for _ in range(args.warmup):
            term(out0, target0)
        samples = []
        for _ in range(max(3, args.rounds // 2)):
            t0 = time.perf_counter()
            term(out0, target0)
            samples.append(time.perf_counter() - t0)
        term_ms[key] = 1000 * statistics.median(samples)
    base = times["nnUNetTrainer"]
    rows = []
    for key in names:
        med = statistics.median(times[key])
        paired = statistics.median(a / b for a, b in zip(times[key], base))
        ms = term_ms.get(key)
        tr = in_training_ms.get(key)
        share = None if tr is None else tr / 1000 / statistics.median(base)
        rows.append({"trainer": key, "s_per_iter": med, "ratio_paired": paired,
                     "ratio_of_medians": med / statistics.median(base), "term_ms_in_training": tr,
                     "term_share_of_plain_step": share, "term_ms_alone_trained_plain_output": ms,
                     "times": times[key]})
        print(f"{key:30s} {med:8.3f} s/iter  {paired:5.2f}x (paired)  {med / statistics.median(base):5.2f}x"
              + ("" if tr is None else f"  term in training {tr:7.1f} ms = {100 * share:5.1f}% of a plain step,"
                 f" alone {ms:6.1f} ms"))
    payload = {
        "benchmark": "nnunet trainers, seconds per train_step",
        "command": "python benchmarks/nnunet.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "setup": {"dataset": f"vessels2d x{args.cases}, {args.size}x{args.size}", "configuration": "2d",
                  "patch": patch, "batch_size": batch_size, "warmup_rounds": args.warmup,
                  "timed_rounds": args.rounds, "deep_supervision": True,
                  "gt_skeleton": "on the fly in the loss (torch backend, every iteration)"},
        "meta": metadata("cpu", nnunetv2=_version("nnunetv2")),
        "results": rows,
    }
    write_json("nnunet", payload, args.out)
    return 0


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    sys.exit(main())

"""Speed of toposeg's sliding window against MONAI's ``sliding_window_inference`` (CPU).

Both run the same small U-Net-sized model (toposeg's ``unet``) on the same image with the same
window, overlap 0.25 and Gaussian blending (sigma_scale 0.125), batch of 4 windows, sigmoid per
window; medians over repeats after a warm-up, interleaved so that machine load hits both alike.
Sizes are chosen so that both place the windows at the same starts. Needs ``monai``.
Writes benchmarks/results/sliding_window.json.

    python benchmarks/sliding_window.py [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _meta import metadata, write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from monai.inferers import sliding_window_inference

    from toposeg.inference import sliding_window_predict
    from toposeg.models import build_model

    torch.set_num_threads(1)
    cases = {
        "2d_512x512_window_128": (2, (1, 1, 512, 512), (128, 128)),
        "3d_40x160x160_window_16x64x64": (3, (1, 1, 40, 160, 160), (16, 64, 64)),
    }
    results = {}
    for name, (nd, shape, window) in cases.items():
        torch.manual_seed(0)
        model = build_model("unet", spatial_dims=nd, in_channels=1, out_channels=1).eval()
        x = torch.randn(shape)

        def ours():
            return sliding_window_predict(model, x, window=window, overlap=0.25, batch_size=4)

        def theirs():
            with torch.no_grad():
                return sliding_window_inference(x, window, 4, lambda w: torch.sigmoid(model(w)), overlap=0.25,
                                                mode="gaussian", sigma_scale=0.125)

        a, b = ours(), theirs()  # warm-up, and how far the two blends are apart (floors differ)
        t_ours, t_theirs = [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ours()
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs()
            t_theirs.append(time.perf_counter() - t0)
        results[name] = {"toposeg_s": statistics.median(t_ours), "monai_s": statistics.median(t_theirs),
                         "max_abs_difference": float((a - b).abs().max()), "repeats": args.repeats}
        r = results[name]
        print(f"{name}: toposeg {r['toposeg_s']:.2f} s, MONAI {r['monai_s']:.2f} s, "
              f"max |difference| {r['max_abs_difference']:.3g}")
    import monai

    meta = metadata(timer="time.perf_counter, median, interleaved, after 1 warm-up", monai=monai.__version__)
    write_json("sliding_window", {"meta": meta, "results": results}, args.out)


if __name__ == "__main__":
    main()

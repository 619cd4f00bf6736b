"""`toposeg mine`: draw the hard pixels of THPM, PHPM and SHPM (the paper's Fig. 4)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from toposeg.commands._common import add_device, resolve_device

HELP = "Draw the hard pixels of THPM, PHPM and SHPM (the paper's Fig. 4)."
LABEL_RULES = ("nonzero", "bright", "dark")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="image/volume file (png, tif, nii, nii.gz, npy)")
    parser.add_argument("--label", required=True, help="ground-truth file, same spatial shape as the image")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--prediction", help="probability map file (float in [0, 1], or 8/16-bit scaled, or binary)")
    src.add_argument("--checkpoint", help="model checkpoint (toposeg train); the model predicts the whole image")
    parser.add_argument("--out", required=True, help="output figure (.png)")
    parser.add_argument("--threshold", type=float, default=0.5, help="binarisation threshold t (the paper's configs: 0.6)")
    parser.add_argument("--label-foreground", choices=LABEL_RULES, default="nonzero",
                        help="foreground of the label: nonzero pixels, bright ones (>= half the range), "
                             "or dark ones (ISBI membranes)")
    parser.add_argument("--dims", type=int, nargs="+", default=None,
                        help="PHPM homology dimensions (default: 0 1 in 2D, 0 in 3D)")
    parser.add_argument("--backend", default="auto", help="skeletonization backend for SHPM")
    parser.add_argument("--grow", type=int, default=0, help="dilate drawn hard pixels by N pixels (display only)")
    add_device(parser)


def _binarize_label(label: np.ndarray, rule: str, path: str) -> np.ndarray:
    from toposeg.data.labels import binarize

    if label.ndim == 3 and label.shape[-1] in (3, 4) and Path(path).suffix.lower() in (".png", ".jpg", ".jpeg"):
        label = label[..., 0]  # grey mask saved as RGB(A)
    return binarize(label, rule, name=path)


def _as_probabilities(pred: np.ndarray, path: str) -> np.ndarray:
    if pred.dtype == bool:
        return pred.astype(np.float32)
    if np.issubdtype(pred.dtype, np.integer):
        vals = np.unique(pred)
        if np.isin(vals, (0, 1)).all():
            return pred.astype(np.float32)
        if pred.dtype in (np.uint8, np.uint16):
            return pred.astype(np.float32) / np.iinfo(pred.dtype).max
        raise ValueError(f"{path}: integer prediction of dtype {pred.dtype} is neither binary nor 8/16-bit")
    pred = pred.astype(np.float32)
    if not np.isfinite(pred).all() or pred.min() < 0 or pred.max() > 1:
        raise ValueError(f"{path}: prediction must hold probabilities in [0, 1], got values in "
                         f"[{np.nanmin(pred):.4g}, {np.nanmax(pred):.4g}] (pass sigmoid(logits))")
    return pred


def _image_channels_first(image: np.ndarray, shape: tuple[int, ...], path: str) -> np.ndarray:
    if image.shape == shape:
        return image[None]
    if image.ndim == len(shape) + 1 and image.shape[1:] == shape:
        return image
    if image.ndim == len(shape) + 1 and image.shape[:-1] == shape and image.shape[-1] in (3, 4):
        return np.moveaxis(image[..., :3], -1, 0)
    raise ValueError(f"{path}: image shape {image.shape} does not match the label shape {shape}")


def _predict(checkpoint: str, image: np.ndarray, device: str) -> np.ndarray:
    """Whole-image sliding-window prediction (z-scored input, the training default)."""
    from toposeg.data.transforms import normalize
    from toposeg.engine.checkpoint import load_model
    from toposeg.inference import sliding_window_predict

    model = load_model(checkpoint, device)
    x = normalize(image.astype(np.float32), "zscore")
    expected = getattr(model, "in_channels", x.shape[0])
    if x.shape[0] != expected:
        raise ValueError(f"{checkpoint}: the model expects {expected} input channel(s), the image has {x.shape[0]}")
    window = (256, 256) if x.ndim == 3 else (128, 128, 128)
    multi = getattr(model, "head", None) is not None and model.head.out_channels > 1
    prob = sliding_window_predict(model, x, window=window, device=device,
                                  activation="softmax" if multi else "sigmoid")
    return np.asarray(prob[1 if multi else 0], dtype=np.float32)  # first foreground class


def run(args: argparse.Namespace) -> int:
    from toposeg.io import read_array
    from toposeg.reports.hard_pixels import hard_pixel_figure

    if Path(args.out).suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {args.out!r}")
    label = _binarize_label(read_array(args.label), args.label_foreground, args.label)
    if label.ndim not in (2, 3):
        raise ValueError(f"{args.label}: label must be 2D or 3D, got shape {label.shape}")
    image = _image_channels_first(read_array(args.image), label.shape, args.image)
    if args.prediction is not None:
        prob = _as_probabilities(read_array(args.prediction), args.prediction)
        if prob.shape != label.shape:
            raise ValueError(f"{args.prediction}: prediction shape {prob.shape} does not match the label shape {label.shape}")
    else:
        prob = _predict(args.checkpoint, image, resolve_device(args.device))
    out = hard_pixel_figure(image, label, prob, args.out, threshold=args.threshold, dims=args.dims,
                            backend=args.backend, grow=args.grow)
    print(f"wrote {out}", file=sys.stderr)
    return 0

"""`toposeg mine`: draw the hard pixels of THPM, PHPM and SHPM (the paper's Fig. 4).

The mining threshold ``t`` defaults to the paper's 0.6 (the HPM methods' default everywhere).
With ``--checkpoint`` the whole image is predicted with the checkpoint's inference settings
(window, overlap, normalisation, HU window) and its label polarity is the default of
``--label-foreground``. All inputs are read and checked before the figure is drawn; the figure
appears whole or not at all; an ``--out`` that names one of the input files is refused.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Optional

import numpy as np

from toposeg.commands._common import add_device, add_label_foreground, add_overwrite, resolve_device

HELP = "Draw the hard pixels of THPM, PHPM and SHPM (the paper's Fig. 4)."
MINING_THRESHOLD = 0.6  # toposeg.mining.DEFAULT_MINING_THRESHOLD, the paper's t (kept import-free for --help)
PANEL_PIXELS = 450  # a figure panel is 3 inches at 150 dpi


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="image/volume file (png, tif, nii, nii.gz, npy)")
    parser.add_argument("--label", required=True, help="ground-truth file, same spatial shape as the image")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--prediction", help="probability map file (float in [0, 1], or 8/16-bit scaled, or binary)")
    src.add_argument("--checkpoint", help="model checkpoint (toposeg train); the model predicts the whole image "
                                          "with the checkpoint's inference settings")
    parser.add_argument("--out", required=True, help="output figure (.png)")
    add_overwrite(parser)
    parser.add_argument("--threshold", type=float, default=MINING_THRESHOLD,
                        help="mining threshold t (p_t = p > t), the same for the three miners; default: the "
                             "paper's 0.6")
    add_label_foreground(parser, "the label",
                         "default: the checkpoint's (the training data's polarity), else nonzero")
    parser.add_argument("--dims", type=int, nargs="+", default=None,
                        help="PHPM homology dimensions (default: 0 1 in 2D, 0 in 3D)")
    parser.add_argument("--backend", default="auto", help="skeletonization backend for SHPM")
    parser.add_argument("--grow", type=int, default=None,
                        help="dilate drawn hard pixels by N pixels (display only); default: enough for one "
                             "pixel to stay visible once the image is scaled to its panel (0 up to 225 px, 1 up "
                             "to 675 px, e.g. 512x512, 2 up to 1125 px, ...)")
    add_device(parser)


def default_grow(shape: tuple[int, ...], panel_pixels: int = PANEL_PIXELS) -> int:
    """Dilation that keeps a single hard pixel at least 2 display pixels wide once an image of
    ``shape`` (its largest in-plane side) is drawn ``panel_pixels`` wide: the smallest ``g >= 0``
    with ``(2 g + 1) * panel_pixels / side >= 2``."""
    side = max(shape[-2:])
    return max(0, math.ceil((2 * side / panel_pixels - 1) / 2))


def _binarize_label(label: np.ndarray, rule: str, path: str) -> np.ndarray:
    """The label's foreground by ``rule``; a colour image is refused as in train/evaluate/graph."""
    from toposeg.data.labels import binarize
    from toposeg.io import grey_mask

    return binarize(grey_mask(label, path, "label"), rule, name=path)


def _as_probabilities(pred: np.ndarray, path: str) -> np.ndarray:
    """Probabilities of a prediction file (:func:`toposeg.io.prediction_probabilities`)."""
    from toposeg.io import grey_mask, prediction_probabilities

    return prediction_probabilities(grey_mask(pred, path, "prediction"), path)


def _image_channels_first(image: np.ndarray, shape: tuple[int, ...], path: str) -> np.ndarray:
    if image.shape == shape:
        return image[None]
    if image.ndim == len(shape) + 1 and image.shape[1:] == shape:
        return image
    if image.ndim == len(shape) + 1 and image.shape[:-1] == shape and image.shape[-1] in (3, 4):
        return np.moveaxis(image[..., :3], -1, 0)
    raise ValueError(f"{path}: image shape {image.shape} does not match the label shape {shape}")


def _predict(model, inference: dict, image: np.ndarray, device: str, checkpoint: str) -> np.ndarray:
    """Whole-image sliding-window prediction with the checkpoint's inference settings."""
    from toposeg.commands._common import model_layout, window_for
    from toposeg.data.transforms import normalize
    from toposeg.inference import sliding_window_predict

    nd, in_ch = model_layout(model)
    if image.ndim - 1 != nd:
        raise ValueError(f"{checkpoint}: the model is {nd}D, the image {image.ndim - 1}D")
    if image.shape[0] != in_ch:
        raise ValueError(f"{checkpoint}: the model expects {in_ch} input channel(s), the image has {image.shape[0]}")
    x = normalize(image.astype(np.float32), inference.get("normalization") or "zscore",
                  hu_window=inference.get("hu_window"))
    window, _ = window_for(None, inference, nd)
    multi = getattr(model, "head", None) is not None and getattr(model.head, "out_channels", 1) > 1
    prob = sliding_window_predict(model, x, window=window, overlap=float(inference.get("overlap", 0.25)),
                                  device=device, activation="softmax" if multi else "sigmoid")
    return np.asarray(prob[1 if multi else 0], dtype=np.float32)  # first foreground class


def run(args: argparse.Namespace) -> int:
    from toposeg._checks import check_threshold
    from toposeg.commands._common import (check_apart, check_output, load_checkpoint_model,
                                          read_input, resolve_label_foreground, staged_file,
                                          warn_foreground_fraction)
    from toposeg.io import check_finite, check_real
    from toposeg.reports.hard_pixels import hard_pixel_figure

    if Path(args.out).suffix.lower() != ".png":
        raise ValueError(f"--out must be a .png file, got {args.out!r}")
    check_apart(args.out, {"--image": args.image, "--label": args.label, "--prediction": args.prediction,
                           "--checkpoint": args.checkpoint}, files=True)
    check_output(args.out, args.overwrite, file=True)
    try:
        check_threshold(args.threshold)
    except ValueError as exc:
        raise ValueError(f"--{exc}") from None
    from toposeg.skeleton.api import BACKENDS

    if args.backend not in ("auto", *BACKENDS):
        raise ValueError(f"--backend: unknown skeleton backend {args.backend!r}; valid: {['auto', *BACKENDS]}")
    if args.grow is not None and args.grow < 0:
        raise ValueError(f"--grow must be >= 0, got {args.grow}")
    model, inference, device = None, {}, None
    if args.checkpoint is not None:
        device = resolve_device(args.device)
        model, inference = load_checkpoint_model(args.checkpoint, device)
    rule, rule_from = resolve_label_foreground(args.label_foreground,
                                               (inference.get("label_foreground"), str(args.checkpoint)))
    label = _binarize_label(read_input(args.label, "--label"), rule, args.label)
    if label.ndim not in (2, 3):
        raise ValueError(f"{args.label}: label must be 2D or 3D, got shape {label.shape}")
    warn_foreground_fraction(label, rule, f"label {args.label}")
    image = check_finite(_image_channels_first(check_real(read_input(args.image, "--image"), f"--image {args.image}"),
                                               label.shape, args.image),
                         f"--image {args.image}", "image", "finite intensities (a NaN spreads through the network)",
                         unit="pixels" if label.ndim == 2 else "voxels")
    if args.prediction is not None:
        prob = _as_probabilities(read_input(args.prediction, "--prediction"), args.prediction)
        if prob.shape != label.shape:
            raise ValueError(f"{args.prediction}: prediction shape {prob.shape} does not match the label shape {label.shape}")
    else:
        prob = _predict(model, inference, image, device, args.checkpoint)
    grow: Optional[int] = default_grow(label.shape) if args.grow is None else args.grow
    with staged_file(args.out, args.overwrite) as tmp:
        hard_pixel_figure(image, label, prob, tmp, threshold=args.threshold, dims=args.dims,
                          backend=args.backend, grow=grow)
    print(f"wrote {args.out} (threshold {args.threshold:g}, label foreground {rule} from {rule_from}, "
          f"grow {grow})", file=sys.stderr)
    return 0

"""`toposeg predict`: whole-image sliding-window prediction with a trained checkpoint.

For every input image/volume writes ``<stem>_prob.<ext>`` (probabilities) and
``<stem>_mask.<ext>`` (binary mask, probability > threshold) in the input's format: PNG (the
probability as 8-bit 0..255, the mask as 0/255), TIFF (float32 / uint8 0-1), NIfTI (float32 /
uint8 0-1, the input's affine kept), NumPy ``.npy``. JPEG inputs are written as PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toposeg.commands._common import add_device, add_out

HELP = ("Whole-image sliding-window prediction with a trained checkpoint: writes probability maps "
        "(*_prob) and binary masks (*_mask) in the input's format.")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="FILE", help="checkpoint written by toposeg train")
    parser.add_argument("--input", required=True, metavar="DIR_OR_FILE", help="an image/volume or a folder of them")
    add_out(parser, "toposeg-pred")
    parser.add_argument("--window", type=int, nargs="+", default=None,
                        help="window size, one value or one per spatial axis (default 256 in 2D, 128 in 3D; "
                             "clipped to the image)")
    parser.add_argument("--overlap", type=float, default=0.25, help="fraction of overlap between windows, in [0, 1)")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    parser.add_argument("--blend", default="gaussian", choices=["gaussian", "constant"], help="window blending")
    parser.add_argument("--flips", action="store_true", help="test-time augmentation with all spatial flips")
    parser.add_argument("--threshold", type=float, default=0.5, help="mask = probability > threshold")
    parser.add_argument("--normalize", default="zscore", choices=["zscore", "minmax", "none"],
                        help="per-image intensity normalisation (use the one the model was trained with)")
    parser.add_argument("--hu-window", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="clip intensities (CT Hounsfield units) before normalising")
    add_device(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _model_layout(model) -> tuple[int, int]:
    """(spatial_dims, in_channels) from the model's first convolution."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            return (2 if isinstance(m, nn.Conv2d) else 3), m.in_channels
    raise ValueError("cannot tell the model's spatial dims: it has no Conv2d/Conv3d layer")


def _inputs(path: Path) -> list[Path]:
    from toposeg.io import EXTENSIONS, extension

    if path.is_file():
        if extension(path) not in EXTENSIONS:
            raise ValueError(f"--input {path}: unsupported file type {extension(path)!r}; supported: "
                             f"{', '.join(EXTENSIONS)}")
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"--input {path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and extension(p) in EXTENSIONS)
    if not files:
        raise ValueError(f"--input {path}: no image files ({', '.join(EXTENSIONS)})")
    return files


def to_channels_first(arr, spatial_dims: int, in_channels: int, path: Path):
    """``(C, *S)`` from ``(*S)``, ``(C, *S)`` or channels-last 2D ``(H, W, C)``."""
    import numpy as np

    shape = arr.shape
    if arr.ndim == spatial_dims:
        arr = arr[None]
    elif arr.ndim == spatial_dims + 1:
        if spatial_dims == 2 and arr.shape[0] != in_channels and arr.shape[-1] in (in_channels, 4):
            arr = np.moveaxis(arr, -1, 0)
            if arr.shape[0] == 4 and in_channels == 3:  # RGBA -> RGB
                arr = arr[:3]
    else:
        raise ValueError(f"{path}: the model is {spatial_dims}D but the file holds an array of shape {arr.shape}")
    if arr.shape[0] != in_channels:
        raise ValueError(f"{path}: the model expects {in_channels} channel(s), the file has shape {shape}")
    return arr


def _write(path: Path, array, like: Path) -> Path:
    """``write_array``, keeping the NIfTI affine/header of the input file."""
    from toposeg.io import extension, write_array

    if extension(path) in (".nii", ".nii.gz"):
        import nibabel as nib

        ref = nib.load(str(like))
        img = nib.Nifti1Image(array, ref.affine, header=ref.header)
        img.set_data_dtype(array.dtype)
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(img, str(path))
        return path
    return write_array(path, array)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from toposeg._checks import check_threshold
    from toposeg.commands._common import resolve_device
    from toposeg.data.transforms import normalize
    from toposeg.engine.checkpoint import load_model
    from toposeg.inference import sliding_window_predict
    from toposeg.io import extension, read_array, stem

    check_threshold(args.threshold)
    device = resolve_device(args.device)
    files = _inputs(Path(args.input))
    model = load_model(args.checkpoint, device)
    nd, in_ch = _model_layout(model)
    if args.window is None:
        window = (256,) * 2 if nd == 2 else (128,) * 3
    elif len(args.window) == 1:
        window = (args.window[0],) * nd
    elif len(args.window) == nd:
        window = tuple(args.window)
    else:
        raise ValueError(f"--window takes 1 or {nd} sizes for a {nd}D model, got {args.window}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in tqdm(files, desc="predict", unit="image", disable=args.no_progress):
        image = to_channels_first(read_array(f), nd, in_ch, f)
        image = normalize(image.astype(np.float32), args.normalize, hu_window=args.hu_window)
        prob = sliding_window_predict(model, torch.from_numpy(image), window=window, overlap=args.overlap,
                                      batch_size=args.batch_size, blend=args.blend, flips=args.flips,
                                      device=device, activation="sigmoid")
        if prob.shape[0] != 1:
            raise ValueError(f"toposeg predict writes one foreground map; the model has {prob.shape[0]} "
                             "output channels")
        prob = prob[0].numpy()
        mask = prob > args.threshold
        ext = extension(f)
        ext = ".png" if ext in (".jpg", ".jpeg") else ext
        if ext == ".png":
            prob_out = np.round(prob * 255).astype(np.uint8)
        else:
            prob_out = prob.astype(np.float32)
        name = stem(f)
        written.append(_write(out / f"{name}_prob{ext}", prob_out, f))
        written.append(_write(out / f"{name}_mask{ext}", mask.astype(np.uint8) * (255 if ext == ".png" else 1), f))
    print(f"wrote {len(written)} files ({len(files)} inputs) to {out}")
    return 0

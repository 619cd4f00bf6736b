"""`toposeg predict`: whole-image sliding-window prediction with a trained checkpoint.

For every input image/volume writes ``<stem>_prob.<ext>`` (probabilities) and
``<stem>_mask.<ext>`` (binary mask, probability > threshold) in the input's format: PNG (the
probability as 8-bit 0..255, the mask as 0/255), TIFF (float32 / uint8 0-1), NIfTI (float32 /
uint8 0-1, the input's affine kept), NumPy ``.npy``. JPEG inputs are written as PNG.

Settings (window, overlap, normalisation, HU window, threshold) come from the checkpoint, which
records what training used to score its test cases; a flag overrides one. ``predict.json`` next
to the outputs records what was used (and the label polarity of the training data), so that
``toposeg evaluate`` scores the outputs as training did. Every input is read and checked before
any prediction, and the outputs appear all at once (or not at all).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toposeg.commands._common import add_device, add_out, add_overwrite

HELP = ("Whole-image sliding-window prediction with a trained checkpoint: writes probability maps "
        "(*_prob), binary masks (*_mask) in the input's format, and predict.json (the settings used).")

RECORD = "predict.json"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="FILE", help="checkpoint written by toposeg train")
    parser.add_argument("--input", required=True, metavar="DIR_OR_FILE", help="an image/volume or a folder of them")
    add_out(parser, "toposeg-pred")
    add_overwrite(parser)
    parser.add_argument("--window", type=int, nargs="+", default=None,
                        help="window size, one value or one per spatial axis (default: the checkpoint's, i.e. "
                             "what training used for its test scores; else 256 in 2D, 128 in 3D; clipped to the image)")
    parser.add_argument("--overlap", type=float, default=None,
                        help="fraction of overlap between windows, in [0, 1) (default: the checkpoint's, else 0.25)")
    parser.add_argument("--batch-size", type=int, default=4, help="windows per forward pass")
    parser.add_argument("--blend", default="gaussian", choices=["gaussian", "constant"], help="window blending")
    parser.add_argument("--flips", action="store_true", help="test-time augmentation with all spatial flips")
    parser.add_argument("--threshold", type=float, default=None,
                        help="mask = probability > threshold (default: the checkpoint's, else 0.5)")
    parser.add_argument("--normalize", default=None, choices=["zscore", "minmax", "none"],
                        help="per-image intensity normalisation (default: the checkpoint's, else zscore)")
    parser.add_argument("--hu-window", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="clip intensities (CT Hounsfield units) before normalising (default: the checkpoint's)")
    add_device(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _inputs(path: Path) -> list[Path]:
    from toposeg.io import EXTENSIONS, extension, image_files

    if path.is_dir():
        return image_files(path, "--input")
    if not path.exists():
        raise FileNotFoundError(f"--input {path}: no such file or folder")
    if extension(path) not in EXTENSIONS:
        raise ValueError(f"--input {path}: unsupported file type {extension(path)!r}; supported: "
                         f"{', '.join(EXTENSIONS)}")
    return [path]


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


def output_names(path: Path) -> tuple[str, str]:
    """``(probability file, mask file)`` written for the input ``path``: ``<stem>_prob.<ext>`` and
    ``<stem>_mask.<ext>`` in the input's format (JPEG as PNG)."""
    from toposeg.io import extension, stem

    ext = extension(path)
    ext = ".png" if ext in (".jpg", ".jpeg") else ext
    return f"{stem(path)}_prob{ext}", f"{stem(path)}_mask{ext}"


def check_not_overwritten(out: Path, files: list[Path], checkpoint: str) -> None:
    """Refuse (ValueError, before any prediction) an output path that is one of the inputs (an
    image, through a symbolic link too, or the checkpoint): writing it would replace the input.
    Paths are compared after resolving links, the written name itself not (a link there is
    replaced, not its target)."""
    folder = Path(out).resolve()
    inputs = {Path(checkpoint).resolve(): ("--checkpoint", Path(checkpoint))}
    inputs.update({f.resolve(): ("--input", f) for f in files})
    for f in files:
        for name in (*output_names(f), RECORD):
            hit = inputs.get(folder / name)
            if hit is not None:
                flag, source = hit
                raise ValueError(f"--out {out}: the output {name} (of {f.name}) is the {flag} file {source}; it "
                                 "would be overwritten: choose another --out folder")


def resolve_settings(args: argparse.Namespace, inference: dict, nd: int, in_ch: int) -> tuple[dict, dict]:
    """``(settings, source of each)`` from the flags, the checkpoint's inference settings and
    the fallback defaults (256² / 128³ window, overlap 0.25, zscore, no HU window, 0.5)."""
    from toposeg._checks import check_threshold
    from toposeg.commands._common import setting, window_for
    from toposeg.data.transforms import NORMALIZATIONS

    for key, have in (("spatial_dims", nd), ("in_channels", in_ch)):
        if inference.get(key) is not None and int(inference[key]) != have:
            raise ValueError(f"{args.checkpoint}: checkpoint records {key}={inference[key]} but its model has {have}")
    window, w_src = window_for(args.window, inference, nd)
    overlap, o_src = setting(args.overlap, inference, "overlap", 0.25, "--overlap")
    norm, n_src = setting(args.normalize, inference, "normalization", "zscore", "--normalize")
    hu, h_src = setting(args.hu_window, inference, "hu_window", None, "--hu-window", none_is_a_value=True)
    threshold, t_src = setting(args.threshold, inference, "threshold", 0.5, "--threshold")
    check_threshold(threshold)
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r} ({o_src})")
    if norm not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {list(NORMALIZATIONS)}, got {norm!r} ({n_src})")
    if hu is not None and (len(hu) != 2 or not float(hu[0]) < float(hu[1])):
        raise ValueError(f"HU window must be LOW HIGH with LOW < HIGH, got {list(hu)} ({h_src})")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    settings = {"window": list(window), "overlap": float(overlap), "normalization": norm,
                "hu_window": None if hu is None else [float(v) for v in hu], "threshold": float(threshold),
                "batch_size": args.batch_size, "blend": args.blend, "flips": bool(args.flips),
                "spatial_dims": nd, "in_channels": in_ch}
    sources = {"window": w_src, "overlap": o_src, "normalization": n_src, "hu_window": h_src, "threshold": t_src}
    return settings, sources


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from toposeg import __version__
    from toposeg.commands._common import (check_apart, check_output, load_checkpoint_model, model_layout,
                                          resolve_device, staged_output, thread_settings)
    from toposeg.data.transforms import normalize
    from toposeg.inference import sliding_window_predict
    from toposeg.io import check_finite, check_real, read_array, stem
    from toposeg.reports.serialize import dumps

    check_apart(args.out, {"--input": args.input, "--checkpoint": args.checkpoint})
    check_output(args.out, args.overwrite)
    files = _inputs(Path(args.input))
    check_not_overwritten(Path(args.out), files, args.checkpoint)
    device = resolve_device(args.device)
    model, inference = load_checkpoint_model(args.checkpoint, device)
    nd, in_ch = model_layout(model)
    settings, sources = resolve_settings(args, inference, nd, in_ch)
    names = [stem(f) for f in files]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"--input: several files share a name {dup}; their outputs would collide")
    for f in files:  # every input is readable, finite and fits the model before any work
        check_finite(to_channels_first(check_real(read_array(f), f), nd, in_ch, f), f, "image", "finite intensities",
                     "pixels" if nd == 2 else "voxels")

    written = []
    with staged_output(args.out, args.overwrite) as tmp:
        for f in tqdm(files, desc="predict", unit="image", disable=args.no_progress):
            image = to_channels_first(read_array(f), nd, in_ch, f)
            image = normalize(image.astype(np.float32), settings["normalization"], hu_window=settings["hu_window"])
            prob = sliding_window_predict(model, torch.from_numpy(image), window=tuple(settings["window"]),
                                          overlap=settings["overlap"], batch_size=settings["batch_size"],
                                          blend=settings["blend"], flips=settings["flips"], device=device,
                                          activation="sigmoid")
            if prob.shape[0] != 1:
                raise ValueError(f"toposeg predict writes one foreground map; the model has {prob.shape[0]} "
                                 "output channels")
            prob = check_finite(prob[0].numpy(), f, "probability map of the model", "finite probabilities (the "
                                "network overflowed on this image: check its intensities and --normalize)")
            mask = prob > settings["threshold"]
            prob_name, mask_name = output_names(f)
            png = prob_name.endswith(".png")
            prob_out = np.round(prob * 255).astype(np.uint8) if png else prob.astype(np.float32)
            for name, array in ((prob_name, prob_out), (mask_name, mask.astype(np.uint8) * (255 if png else 1))):
                _write(tmp / name, array, f)
                written.append(name)
        record = {
            "toposeg_version": __version__,
            "checkpoint": str(Path(args.checkpoint).resolve()),
            "input": str(Path(args.input).resolve()),
            "settings": settings,
            "settings_from": sources,
            "threshold": settings["threshold"],
            "label_foreground": inference.get("label_foreground"),
            "device": device,
            "threads": thread_settings(),
            "outputs": written,
        }
        (tmp / RECORD).write_text(dumps(record, indent=2) + "\n")
    print(f"wrote {len(written)} files ({len(files)} inputs) and {RECORD} to {args.out}")
    return 0

"""Sliding-window whole-image prediction for 2D images and 3D volumes of any size.

The image stays on the CPU; windows are cut, sent to the model's device in batches, and their
outputs are brought back and blended into CPU accumulators, so device memory is bounded by
``batch_size`` windows whatever the image size.

Blending: each window's output is weighted by an importance map (``"gaussian"``: a separable
Gaussian with sigma = ``sigma_scale`` × window size, centre 1, each axis floored at ``1e-3`` so
every pixel keeps a positive weight; ``"constant"``: uniform weights), summed, and divided by the summed
weights. Windows are spread evenly with a stride of at most ``window × (1 − overlap)``, the last
one flush with the image end, so no padding value ever enters the model. A dimension smaller than
the window is processed whole (the window is clipped to the image).

Test-time augmentation (``flips``): the prediction is averaged over spatial flips of each window
(flipped back before averaging); ``True`` = all 2^d combinations of the spatial axes.

toposeg keeps this implementation rather than depending on MONAI (MONAI 1.6 needs torch >= 2.8,
toposeg supports torch >= 2.1); ``tests/test_inference.py`` checks parity with
``monai.inferers.sliding_window_inference``: the same window starts where MONAI's fixed stride
divides ``size - window``, equal results with ``blend="constant"`` and with Gaussian weights
above the floors; the two differ only in the Gaussian floor (MONAI clamps the product of the
axis weights at 1e-3, toposeg each axis) and in window placement on other sizes (MONAI moves
only the last window). See docs/evaluation.md.
"""

from __future__ import annotations

import itertools
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from toposeg._checks import describe

ArrayOrTensor = Union[np.ndarray, torch.Tensor]
BLENDS = ("gaussian", "constant")
ACTIVATIONS: dict[str, Optional[Callable[[torch.Tensor], torch.Tensor]]] = {
    "sigmoid": torch.sigmoid,
    "softmax": lambda x: torch.softmax(x, dim=1),
    "none": None,
}


def _as_tuple(value: Union[int, Sequence[int]], nd: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * nd
    elif isinstance(value, (tuple, list)) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                  for v in value):
        out = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {value!r}")
    if len(out) != nd or any(v < 1 for v in out):
        raise ValueError(f"{name} must be {nd} positive sizes for {nd}D images, got {value!r}")
    return out


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start offsets of windows of length ``window`` covering ``[0, size)``.

    The number of windows is the smallest that keeps the stride at most
    ``window × (1 − overlap)``; the windows are then spread evenly, the first flush with the
    start and the last flush with the end (so the actual overlap is at least ``overlap``, and
    no window ends just before the image end). ``window >= size`` gives the single start 0.
    """
    if window >= size:
        return [0]
    step = max(1, int(round(window * (1.0 - overlap))))
    n = -(-(size - window) // step) + 1
    stride = (size - window) / (n - 1)
    return [int(round(i * stride)) for i in range(n)]


def importance_map(window: Sequence[int], blend: str = "gaussian", sigma_scale: float = 0.125,
                   floor: float = 1e-3) -> torch.Tensor:
    """Blending weights of one window (float32, shape ``window``)."""
    if blend not in BLENDS:
        raise KeyError(f"unknown blend {blend!r}; valid: {list(BLENDS)}")
    if blend == "constant":
        return torch.ones(tuple(window), dtype=torch.float32)
    w = torch.ones((), dtype=torch.float64)
    for n in window:
        x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2.0
        sigma = max(sigma_scale * n, 1e-6)
        g = torch.exp(-0.5 * (x / sigma) ** 2)
        # the floor is applied per axis (not to the product), so that along an image border,
        # where every window is at its edge in one axis, the other axes still decide the blend
        w = w[..., None] * (g / g.max()).clamp_min(floor)
    return w.to(torch.float32)


def _flip_sets(flips: Union[bool, Sequence[Sequence[int]]], nd: int) -> list[tuple[int, ...]]:
    if flips is False or flips is None:
        return [()]
    if flips is True:
        axes = range(nd)
        return [c for r in range(nd + 1) for c in itertools.combinations(axes, r)]
    out: list[tuple[int, ...]] = [()]
    for f in flips:
        f = tuple(int(a) for a in f)
        if any(a < 0 or a >= nd for a in f):
            raise ValueError(f"flip axes are spatial axes 0..{nd - 1}, got {f!r}")
        if f not in out:
            out.append(f)
    return out


def _model_spatial_dims(model: object) -> Optional[int]:
    """2 or 3 from the first convolution of an ``nn.Module``; None when unknown."""
    if isinstance(model, torch.nn.Module):
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                return 2
            if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)):
                return 3
    return None


@torch.no_grad()
def sliding_window_predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    image: ArrayOrTensor,
    *,
    window: Union[int, Sequence[int]],
    overlap: float = 0.25,
    batch_size: int = 4,
    blend: str = "gaussian",
    sigma_scale: float = 0.125,
    flips: Union[bool, Sequence[Sequence[int]]] = False,
    device: Union[str, torch.device, None] = None,
    activation: Optional[str] = "sigmoid",
    progress: bool = False,
) -> ArrayOrTensor:
    """Predict a whole image/volume with a model trained on windows.

    Args:
        model: callable ``(B, C, *window) -> (B, K, *window)`` (e.g. an ``nn.Module`` in eval
            mode; its mode is not changed here).
        image: ``(C, *S)`` or ``(N, C, *S)`` tensor or ndarray, ``len(S) == len(window)``.
        window: window size per spatial axis (clipped to the image where it is larger). An
            int is used for every axis; the number of spatial axes then comes from the model's
            convolutions (Conv2d/Conv3d) when it is an ``nn.Module``, else it is 2 — pass a
            3-tuple for volumes with other callables.
        overlap: fraction of a window shared with its neighbour, in ``[0, 1)``.
        batch_size: windows per forward pass.
        blend: ``"gaussian"`` or ``"constant"``.
        sigma_scale: Gaussian sigma as a fraction of the window size.
        flips: test-time flips: False, True (all combinations), or a list of spatial-axis
            tuples, e.g. ``[(0,), (1,)]`` (the unflipped pass is always included).
        device: where the windows are sent (default: the device of the model's first
            parameter, else CPU); the model must already live there. Stitching is always on
            the CPU.
        activation: ``"sigmoid"`` (default), ``"softmax"`` (over channels) or ``None``/
            ``"none"``, applied to each window before blending.
        progress: show a tqdm bar over batches.

    Returns:
        float32 outputs ``(K, *S)`` or ``(N, K, *S)`` (like the input), a CPU tensor for tensor
        inputs and an ndarray for ndarray inputs.
    """
    if not callable(model):
        raise TypeError(f"model must be callable, got {describe(model)}")
    is_numpy = isinstance(image, np.ndarray)
    if is_numpy:
        x = torch.from_numpy(np.ascontiguousarray(image))
    elif isinstance(image, torch.Tensor):
        x = image.detach()
    else:
        raise TypeError(f"image must be a torch.Tensor or numpy.ndarray, got {describe(image)}")
    model_nd = _model_spatial_dims(model)
    if isinstance(window, (int, np.integer)) and not isinstance(window, bool):
        nd = model_nd or 2
    elif isinstance(window, (tuple, list)):
        nd = len(window)
    else:
        raise TypeError(f"window must be an int or a sequence of ints, got {window!r}")
    if nd not in (2, 3):
        raise ValueError(f"window must have 2 or 3 sizes (2D or 3D), got {window!r}")
    if model_nd is not None and nd != model_nd:
        raise ValueError(f"window {window!r} is {nd}D but the model's convolutions are {model_nd}D")
    if x.ndim == nd + 1:
        batched = False
        x = x[None]
    elif x.ndim == nd + 2:
        batched = True
    else:
        raise ValueError(
            f"image must be (C, *S) or (N, C, *S) with {nd} spatial dims for window {window!r}, "
            f"got shape {tuple(x.shape)}"
        )
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"image must be a real-valued numeric array, got dtype {x.dtype}")
    if not isinstance(overlap, (int, float)) or isinstance(overlap, bool) or not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be a number in [0, 1), got {overlap!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    act_name = "none" if activation is None else activation
    if act_name not in ACTIVATIONS:
        raise KeyError(f"unknown activation {activation!r}; valid: {list(ACTIVATIONS)} or None")
    act = ACTIVATIONS[act_name]
    flip_sets = _flip_sets(flips, nd)

    if device is None:
        param = next(iter(model.parameters()), None) if isinstance(model, torch.nn.Module) else None
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)

    x = x.to("cpu", torch.float32)
    spatial = tuple(x.shape[2:])
    win = tuple(min(w, s) for w, s in zip(_as_tuple(window, nd, "window"), spatial))
    weight = importance_map(win, blend, sigma_scale)
    starts = list(itertools.product(*(window_starts(s, w, overlap) for s, w in zip(spatial, win))))
    slices = [(n, tuple(slice(a, a + w) for a, w in zip(st, win))) for n in range(x.shape[0]) for st in starts]

    out: Optional[torch.Tensor] = None
    norm = torch.zeros((x.shape[0], 1, *spatial), dtype=torch.float32)
    batches = range(0, len(slices), batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="windows", unit="batch", leave=False)
    for b0 in batches:
        chunk = slices[b0:b0 + batch_size]
        xb = torch.stack([x[n][(slice(None), *sl)] for n, sl in chunk]).to(device)
        pred = None
        for f in flip_sets:
            dims = [a + 2 for a in f]
            xi = torch.flip(xb, dims) if dims else xb
            yi = model(xi)
            if not isinstance(yi, torch.Tensor) or yi.ndim != nd + 2 or tuple(yi.shape[2:]) != win \
                    or yi.shape[0] != xb.shape[0]:
                raise ValueError(
                    f"model must map windows {tuple(xb.shape)} to (B, K, *{win}), got "
                    f"{describe(yi)}"
                )
            yi = yi.float()
            if act is not None:
                yi = act(yi)
            if dims:
                yi = torch.flip(yi, dims)
            pred = yi if pred is None else pred + yi
        pred = (pred / len(flip_sets)).to("cpu")
        if out is None:
            out = torch.zeros((x.shape[0], pred.shape[1], *spatial), dtype=torch.float32)
        for k, (n, sl) in enumerate(chunk):
            out[n][(slice(None), *sl)] += pred[k] * weight
            norm[n][(slice(None), *sl)] += weight
    if out is None:  # pragma: no cover - there is always at least one window
        raise RuntimeError("no window was predicted")
    out /= norm
    if not batched:
        out = out[0]
    return out.numpy() if is_numpy else out

"""The U-Net of the SHPM paper's official code (a pytorch-3dunet derivative), for 2D and 3D.

Architecture with the default ``features=(32, 64, 128)`` (three resolution levels, two
max-poolings):

* **encoder level** ``i``: (2×2(×2) max-pooling, except at level 0) then a double convolution
  ``norm → conv 3×3(×3) without bias → ReLU`` twice. The first convolution gives
  ``max(features[i] // 2, c_in)`` channels, the second ``features[i]``.
* **decoder level** (one per pooling): nearest-neighbour upsampling to the skip connection's
  size, concatenation ``[skip, upsampled]`` along channels, then the same double convolution
  (both convolutions give the level's ``features`` channels).
* **head**: a 1×1(×1) convolution (with bias) to ``out_channels`` logits.

The normalisation comes *before* each convolution (the official ``"gcr"`` order), so it
normalises the convolution's input channels: ``GroupNorm`` with 8 groups, 1 group when the layer
has fewer than 8 channels (a channel count ≥ 8 that is not a multiple of 8 gets the largest
group count ≤ 8 that divides it). With one input channel the 2D network has 328,531 parameters.

The paper's text speaks of "3 encoder + 3 decoder blocks"; the official code (and this class)
has 3 encoder double convolutions, 2 decoder double convolutions and the 1×1 head. See
docs/training.md.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
NORMS = ("group", "batch", "instance")


def group_count(channels: int, groups: int = 8) -> int:
    """GroupNorm groups for ``channels``: ``groups`` (8), 1 below 8 channels, else the largest
    divisor of ``channels`` that is ``<= groups``."""
    if channels < groups:
        return 1
    g = groups
    while channels % g:
        g -= 1
    return g


def _norm(kind: str, spatial_dims: int, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(group_count(channels), channels)
    if kind == "batch":
        return {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[spatial_dims](channels)
    return {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}[spatial_dims](channels, affine=True)


class DoubleConv(nn.Sequential):
    """``(norm → conv → ReLU)`` × 2. ``encoder=True``: the first conv gives
    ``max(cout // 2, cin)`` channels (the official encoder rule), else ``cout``."""

    def __init__(self, spatial_dims: int, cin: int, cout: int, norm: str, *, encoder: bool) -> None:
        mid = max(cout // 2, cin) if encoder else cout
        conv = _CONV[spatial_dims]
        super().__init__(
            _norm(norm, spatial_dims, cin), conv(cin, mid, 3, padding=1, bias=False), nn.ReLU(inplace=True),
            _norm(norm, spatial_dims, mid), conv(mid, cout, 3, padding=1, bias=False), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net ``(N, in_channels, *S)`` → logits ``(N, out_channels, *S)`` (float32).

    Args:
        spatial_dims: 2 (``S = (H, W)``) or 3 (``S = (D, H, W)``).
        in_channels / out_channels: input channels and output logit channels (>= 1).
        features: channels of each resolution level; ``len(features)`` levels and
            ``len(features) - 1`` max-poolings (default: the paper's 32-64-128).
        norm: ``"group"`` (default, as the official code: works with a batch of 1),
            ``"batch"`` or ``"instance"``.

    Any input size works whose spatial sizes are at least ``2 ** (levels - 1)`` (4 by default);
    the decoder upsamples to each skip connection's exact size, so odd sizes need no padding.

    Raises:
        ValueError: bad ``spatial_dims``, ``norm``, ``features`` or channel counts (the message
            quotes the value); in ``forward``, an input of the wrong rank, channel count or a
            spatial size below ``2 ** (levels - 1)``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (32, 64, 128),
        norm: str = "group",
    ) -> None:
        super().__init__()
        if isinstance(spatial_dims, bool) or spatial_dims not in _CONV:
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {list(NORMS)}, got {norm!r}")
        if (not isinstance(features, (list, tuple)) or len(features) < 2
                or any(isinstance(f, bool) or not isinstance(f, int) or f < 1 for f in features)):
            raise ValueError(f"features must be two or more positive channel counts (one per level), got {features!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        feats = [int(f) for f in features]
        d = spatial_dims
        self.spatial_dims, self.in_channels, self.out_channels = d, in_channels, out_channels
        self.features, self.norm = tuple(feats), norm
        self.encoders = nn.ModuleList()
        cin = in_channels
        for f in feats:
            self.encoders.append(DoubleConv(d, cin, f, norm, encoder=True))
            cin = f
        self.pool = _POOL[d](2)
        self.decoders = nn.ModuleList(
            DoubleConv(d, feats[i] + feats[i + 1], feats[i], norm, encoder=False)
            for i in reversed(range(len(feats) - 1))
        )
        self.final_conv = _CONV[d](feats[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet(spatial_dims={self.spatial_dims}, in_channels={self.in_channels}) expects input "
                f"(N, {self.in_channels}, {', '.join('*' * self.spatial_dims)}), got shape {tuple(x.shape)}"
            )
        smallest = 2 ** (len(self.features) - 1)
        if min(x.shape[2:]) < smallest:
            raise ValueError(f"UNet with {len(self.features)} levels needs spatial sizes >= {smallest}, "
                             f"got shape {tuple(x.shape)}")
        skips = []
        for i, block in enumerate(self.encoders):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()  # the deepest level feeds the decoder directly
        for block in self.decoders:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[2:], mode="nearest")
            x = block(torch.cat([skip, x], dim=1))
        return self.final_conv(x)

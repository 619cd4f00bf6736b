"""The paper's U-Net: 3 encoder + 3 decoder double-convolution blocks, concatenation skips.

One class for 2D and 3D; the conv/pool/norm operations are picked by ``spatial_dims``.
Inputs of any size are padded to a multiple of 8 and the output is cropped back.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_UP = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_NORMS = {
    "batch": {2: nn.BatchNorm2d, 3: nn.BatchNorm3d},
    "instance": {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d},
}


class DoubleConv(nn.Sequential):
    def __init__(self, spatial_dims: int, cin: int, cout: int, norm: str) -> None:
        conv, nrm = _CONV[spatial_dims], _NORMS[norm][spatial_dims]
        super().__init__(
            conv(cin, cout, 3, padding=1, bias=False), nrm(cout, affine=True), nn.ReLU(inplace=True),
            conv(cout, cout, 3, padding=1, bias=False), nrm(cout, affine=True), nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net for ``(N, in_channels, *S)`` → logits ``(N, out_channels, *S)``.

    Args:
        spatial_dims: 2 or 3.
        in_channels / out_channels: input channels and output logit channels.
        features: channels of the three levels (the paper's 32-64-128).
        norm: ``"batch"`` or ``"instance"``.
    """

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        features: Sequence[int] = (32, 64, 128),
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if spatial_dims not in _CONV:
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {sorted(_NORMS)}, got {norm!r}")
        if len(features) != 3 or any(int(f) < 1 for f in features):
            raise ValueError(f"features must be three positive channel counts, got {features!r}")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels and out_channels must be >= 1, got {in_channels}, {out_channels}")
        f1, f2, f3 = (int(f) for f in features)
        d = spatial_dims
        self.spatial_dims = d
        self.in_channels = in_channels
        self.enc = nn.ModuleList([DoubleConv(d, in_channels, f1, norm), DoubleConv(d, f1, f2, norm), DoubleConv(d, f2, f3, norm)])
        self.pool = _POOL[d](2)
        self.up = nn.ModuleList([_UP[d](f3, f3, 2, stride=2), _UP[d](f3, f2, 2, stride=2), _UP[d](f2, f1, 2, stride=2)])
        self.dec = nn.ModuleList([DoubleConv(d, 2 * f3, f3, norm), DoubleConv(d, 2 * f2, f2, norm), DoubleConv(d, 2 * f1, f1, norm)])
        self.head = _CONV[d](f1, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet(spatial_dims={self.spatial_dims}, in_channels={self.in_channels}) expects input "
                f"(N, {self.in_channels}, {', '.join('*' * self.spatial_dims)}), got shape {tuple(x.shape)}"
            )
        size = x.shape[2:]
        pad = [p for s in reversed(size) for p in (0, (-s) % 8)]
        if any(pad):
            x = F.pad(x, pad, mode="replicate" if x.ndim <= 5 else "constant")
        skips = []
        for block in self.enc:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        for up, block, skip in zip(self.up, self.dec, reversed(skips)):
            x = block(torch.cat([up(x), skip], dim=1))
        x = self.head(x)
        return x[(..., *(slice(0, s) for s in size))]

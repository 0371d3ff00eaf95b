"""Late fusion of modalities: one encoder per input channel, fused features, one decoder.

``late-fusion-unet`` (what [`medseg.dl.network.build_net`][] builds for a plan with
``fusion: "late"``) gives every modality (input channel) its own small encoder: the same
architecture (two 3x3 convolutions, normalisation and leaky ReLU per level, stride-2
down-sampling), separate weights, half the plan's widths. At each level, the skip levels
and the bottleneck, the modalities' features are concatenated and fused by a 1x1
convolution to the plan's width; one U-Net decoder (up-sampling, concatenation with the
fused skip, two convolutions) maps them to class logits. Early fusion (the default) simply
stacks the modalities as input channels of one network.

Examples
--------
>>> import torch
>>> from medseg.nets import create_net
>>> net = create_net("late-fusion-unet", spatial_dims=2, in_channels=2, out_channels=3, channels=(8, 16, 32))
>>> net.eval()(torch.zeros(1, 2, 32, 32)).shape
torch.Size([1, 3, 32, 32])
>>> len(net.encoders)
2
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from medseg.errors import ConfigError

__all__ = ["LateFusionUNet", "late_fusion_unet"]


def _conv(dims: int) -> type[nn.Module]:
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _norm_layer(dims: int, norm: str, c: int) -> nn.Module:
    norm = norm.lower()
    if norm == "batch":
        return nn.BatchNorm2d(c) if dims == 2 else nn.BatchNorm3d(c)
    if norm == "instance":
        return nn.InstanceNorm2d(c, affine=True) if dims == 2 else nn.InstanceNorm3d(c, affine=True)
    raise ConfigError(f"unknown norm '{norm}'; choose instance or batch")


class _Block(nn.Sequential):
    """Two 3x3 convolutions with normalisation and leaky ReLU; the first may stride."""

    def __init__(self, dims: int, cin: int, cout: int, norm: str, stride: int = 1) -> None:
        conv = _conv(dims)
        super().__init__(conv(cin, cout, 3, stride=stride, padding=1), _norm_layer(dims, norm, cout),
                         nn.LeakyReLU(0.01, inplace=True),
                         conv(cout, cout, 3, padding=1), _norm_layer(dims, norm, cout),
                         nn.LeakyReLU(0.01, inplace=True))


class _Encoder(nn.Module):
    """One modality's encoder: a block per level, stride 2 from the second level on."""

    def __init__(self, dims: int, widths: Sequence[int], norm: str) -> None:
        super().__init__()
        self.levels = nn.ModuleList()
        cin = 1
        for i, w in enumerate(widths):
            self.levels.append(_Block(dims, cin, w, norm, stride=1 if i == 0 else 2))
            cin = w

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for block in self.levels:
            x = block(x)
            feats.append(x)
        return feats


class LateFusionUNet(nn.Module):
    """A U-Net with one encoder per modality, fused by 1x1 convolutions at every level.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels : int
        Number of modalities (one encoder each).
    out_channels : int
        Number of classes.
    channels : sequence of int
        The fused (and decoder) widths per level, coarsest last; each encoder uses half
        of them (at least 4).
    norm : str
        ``"instance"`` or ``"batch"``.

    Examples
    --------
    >>> net = LateFusionUNet(3, 2, 2, (4, 8))
    >>> net.eval()(torch.zeros(1, 2, 8, 8, 8)).shape
    torch.Size([1, 2, 8, 8, 8])
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 channels: Sequence[int] = (16, 32, 64, 128), norm: str = "instance") -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ConfigError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if in_channels < 1 or out_channels < 2:
            raise ConfigError(f"need in_channels >= 1 and out_channels >= 2, got {in_channels} and {out_channels}")
        ch = [int(c) for c in channels]
        if len(ch) < 2 or min(ch) < 1:
            raise ConfigError(f"channels needs at least two positive widths (one per level), got {list(channels)}")
        enc = [max(4, c // 2) for c in ch]
        conv = _conv(spatial_dims)
        self.spatial_dims = spatial_dims
        self.encoders = nn.ModuleList(_Encoder(spatial_dims, enc, norm) for _ in range(in_channels))
        self.fuse = nn.ModuleList(conv(in_channels * e, c, 1) for e, c in zip(enc, ch))
        self.decoder = nn.ModuleList(_Block(spatial_dims, ch[i + 1] + ch[i], ch[i], norm)
                                     for i in range(len(ch) - 2, -1, -1))
        self.head = conv(ch[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, out_channels, *spatial)`` of ``x`` ``(N, in_channels, *spatial)``."""
        per_mod = [enc(x[:, m:m + 1]) for m, enc in enumerate(self.encoders)]
        fused = [f(torch.cat([feats[level] for feats in per_mod], dim=1)) for level, f in enumerate(self.fuse)]
        y = fused[-1]
        mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
        for j, block in enumerate(self.decoder):
            skip = fused[-2 - j]
            y = nn.functional.interpolate(y, size=skip.shape[2:], mode=mode, align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        return self.head(y)


def late_fusion_unet(*, spatial_dims: int, in_channels: int, out_channels: int,
                     channels: Sequence[int] = (16, 32, 64, 128), norm: str = "instance", **_: Any) -> nn.Module:
    """The ``late-fusion-unet`` factory of [`medseg.nets.NETS`][]: a `LateFusionUNet`.

    Parameters
    ----------
    spatial_dims, in_channels, out_channels, channels, norm
        As `LateFusionUNet`; other keywords of [`medseg.nets.create_net`][] are ignored.

    Returns
    -------
    LateFusionUNet

    Examples
    --------
    >>> len(late_fusion_unet(spatial_dims=2, in_channels=3, out_channels=2, channels=(4, 8)).encoders)
    3
    """
    return LateFusionUNet(spatial_dims, in_channels, out_channels, channels, norm=norm)

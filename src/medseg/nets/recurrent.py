"""Recurrent U-Nets: ``r2unet`` (recurrent residual convolutions) and ``unet-convlstm`` (a 2D
U-Net per slice with a convolutional LSTM across the slices).

``r2unet`` (Alom et al. 2018, R2U-Net) replaces each U-Net block by a recurrent residual
unit: a 1x1 convolution to the level's width, then two recurrent convolutions, each applied
``t + 1`` times to its input plus its previous output (``t = 2``), added back to the 1x1
output. 2D and 3D; max-pooling down, up-sampling and a 3x3 convolution up.

``unet-convlstm`` is for volumes processed slice by slice: it takes 3D patches ``(z, y, x)``,
runs a 2D U-Net encoder on every slice, and at the bottleneck a bidirectional convolutional
LSTM carries information along ``z`` (forward and backward states summed by a 1x1
convolution), before a 2D decoder per slice. A window's slices form one sequence, so it
is a fixed-input network: inference runs windows of exactly the training patch.

Examples
--------
>>> import torch
>>> net = R2UNet(2, 1, 2, (4, 8, 16))
>>> net.eval()(torch.zeros(1, 1, 16, 16)).shape
torch.Size([1, 2, 16, 16])
>>> SliceConvLSTMUNet(1, 2, (4, 8, 16)).eval()(torch.zeros(1, 1, 3, 16, 16)).shape
torch.Size([1, 2, 3, 16, 16])
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from medseg.errors import ConfigError

__all__ = ["ConvLSTMCell", "R2UNet", "SliceConvLSTMUNet"]


def _layers(dims: int, norm: str) -> tuple[type[nn.Module], Callable[[int], nn.Module]]:
    conv: type[nn.Module] = nn.Conv2d if dims == 2 else nn.Conv3d
    if norm == "batch":
        bn = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        return conv, lambda c: bn(c)
    if norm == "instance":
        inorm = nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d
        return conv, lambda c: inorm(c, affine=True)
    raise ConfigError(f"unknown norm '{norm}'; choose instance or batch")


class _Recurrent(nn.Module):
    """``x1 = f(x); x1 = f(x + x1)`` ``t`` more times (one shared convolution ``f``)."""

    def __init__(self, dims: int, c: int, t: int, norm: str) -> None:
        super().__init__()
        conv, nrm = _layers(dims, norm)
        self.t = t
        self.conv = nn.Sequential(conv(c, c, 3, padding=1), nrm(c), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv(x)
        for _ in range(self.t):
            x1 = self.conv(x + x1)
        return x1


class _RRCNN(nn.Module):
    """Recurrent residual unit: 1x1 convolution, two recurrent convolutions, residual sum."""

    def __init__(self, dims: int, cin: int, cout: int, t: int, norm: str) -> None:
        super().__init__()
        conv, _ = _layers(dims, norm)
        self.conv_1x1 = conv(cin, cout, 1)
        self.rcnn = nn.Sequential(_Recurrent(dims, cout, t, norm), _Recurrent(dims, cout, t, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_1x1(x)
        return x + self.rcnn(x)


class R2UNet(nn.Module):
    """Recurrent residual U-Net (R2U-Net), 2D or 3D.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels, out_channels : int
    channels : sequence of int
        Widths per level (coarsest last); the patch must divide by ``2 ** (len - 1)``.
    t : int
        Recurrent steps of each recurrent convolution (2 in the paper).
    norm : str
        ``"instance"`` or ``"batch"``.
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 channels: Sequence[int] = (16, 32, 64, 128), t: int = 2, norm: str = "instance") -> None:
        super().__init__()
        ch = [int(c) for c in channels]
        conv, nrm = _layers(spatial_dims, norm)
        self.down = nn.ModuleList()
        cin = in_channels
        for c in ch:
            self.down.append(_RRCNN(spatial_dims, cin, c, t, norm))
            cin = c
        self.pool = nn.MaxPool2d(2) if spatial_dims == 2 else nn.MaxPool3d(2)
        self.mode = "bilinear" if spatial_dims == 2 else "trilinear"
        self.up_conv = nn.ModuleList()
        self.up = nn.ModuleList()
        for i in range(len(ch) - 2, -1, -1):
            self.up_conv.append(nn.Sequential(conv(cin, ch[i], 3, padding=1), nrm(ch[i]), nn.ReLU(inplace=True)))
            self.up.append(_RRCNN(spatial_dims, 2 * ch[i], ch[i], t, norm))
            cin = ch[i]
        self.head = conv(cin, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, out_channels, *spatial)``."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for j, (upc, block) in enumerate(zip(self.up_conv, self.up)):
            x = upc(nn.functional.interpolate(x, scale_factor=2.0, mode=self.mode, align_corners=False))
            x = block(torch.cat([skips[-2 - j], x], dim=1))
        return self.head(x)


class ConvLSTMCell(nn.Module):
    """A convolutional LSTM cell (Shi et al. 2015): the four gates from one 3x3 convolution
    of the input and the hidden state.

    Parameters
    ----------
    cin, hidden : int
        Input and state channels.
    """

    def __init__(self, cin: int, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(cin + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``(h, c)`` from input ``x`` ``(N, cin, H, W)`` and state ``(h, c)``."""
        h, c = state
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def _block2d(cin: int, cout: int, norm: str) -> nn.Sequential:
    _, nrm = _layers(2, norm)
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nrm(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nrm(cout), nn.ReLU(inplace=True))


class SliceConvLSTMUNet(nn.Module):
    """2D U-Net per slice with a bidirectional ConvLSTM across the slices at the bottleneck.

    Parameters
    ----------
    in_channels, out_channels : int
    channels : sequence of int
        Widths per level (coarsest last); in-plane sizes must divide by ``2 ** (len - 1)``.
    norm : str
        ``"instance"`` or ``"batch"`` (per slice).

    Notes
    -----
    Input ``(N, C, Z, Y, X)``; every slice ``z`` runs through the encoder, the bottleneck
    features of the ``Z`` slices are a sequence for the LSTM (both directions), and each
    slice is decoded with its own skips.
    """

    def __init__(self, in_channels: int, out_channels: int, channels: Sequence[int] = (16, 32, 64, 128),
                 norm: str = "instance") -> None:
        super().__init__()
        ch = [int(c) for c in channels]
        self.down = nn.ModuleList()
        cin = in_channels
        for c in ch:
            self.down.append(_block2d(cin, c, norm))
            cin = c
        self.pool = nn.MaxPool2d(2)
        self.fwd = ConvLSTMCell(cin, cin)
        self.bwd = ConvLSTMCell(cin, cin)
        self.fuse = nn.Conv2d(3 * cin, cin, 1)
        self.up = nn.ModuleList()
        for i in range(len(ch) - 2, -1, -1):
            self.up.append(_block2d(cin + ch[i], ch[i], norm))
            cin = ch[i]
        self.head = nn.Conv2d(cin, out_channels, 1)

    def _lstm(self, feats: torch.Tensor, z: int) -> torch.Tensor:
        """Bidirectional ConvLSTM over ``z`` of ``(N*Z, C, h, w)`` bottleneck features (the batch
        axis stays symbolic: an ONNX export keeps a dynamic batch)."""
        shape = tuple(int(v) for v in feats.shape[1:])
        seq = feats.reshape((-1, z) + shape)
        zero = torch.zeros_like(seq[:, 0])
        outs_f, outs_b = [], []
        h, c = zero, zero
        for k in range(z):
            h, c = self.fwd(seq[:, k], (h, c))
            outs_f.append(h)
        h, c = zero, zero
        for k in range(z - 1, -1, -1):
            h, c = self.bwd(seq[:, k], (h, c))
            outs_b.append(h)
        rnn = torch.cat([torch.stack(outs_f, 1), torch.stack(outs_b[::-1], 1)], dim=2)
        rnn = rnn.reshape((-1, 2 * shape[0]) + shape[1:])
        return self.fuse(torch.cat([feats, rnn], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, out_channels, Z, Y, X)``."""
        c, z = int(x.shape[1]), int(x.shape[2])
        s = x.transpose(1, 2).reshape((-1, c) + tuple(int(v) for v in x.shape[3:]))
        skips = []
        for i, block in enumerate(self.down):
            s = block(s if i == 0 else self.pool(s))
            skips.append(s)
        s = self._lstm(s, z)
        for j, block in enumerate(self.up):
            skip = skips[-2 - j]
            s = nn.functional.interpolate(s, scale_factor=2.0, mode="bilinear", align_corners=False)
            s = block(torch.cat([s, skip], dim=1))
        out = self.head(s)
        return out.reshape((-1, z) + tuple(int(v) for v in out.shape[1:])).transpose(1, 2)

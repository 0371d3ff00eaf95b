"""Network factory: the :data:`NETS` registry and :func:`create_net`.

Networks are built from MONAI where MONAI has them (``unet``: residual-unit U-Net;
``dynunet``: the nnU-Net-style network with deep supervision) and from our own small
module for ``classic-unet``, the tutorial topology (32-64-128-128 feature maps,
two-convolution blocks, max-pooling, up-sampling + concatenation, softmax head). Also from
MONAI: ``attention-unet`` (attention gates on the skips), ``segresnet`` (residual encoder),
``unet++`` (nested skips) and ``swin-unetr`` (a Swin transformer encoder), 2D and 3D.

Every factory takes the same core keywords: ``spatial_dims`` (2 or 3), ``in_channels``,
``out_channels`` (number of classes), ``channels`` (feature maps per level, coarsest
last) and ``norm`` (``"instance"`` or ``"batch"``). Networks return logits of shape
``(N, out_channels, *spatial)`` in eval mode; ``dynunet`` in train mode with deep
supervision returns ``(N, n_heads, out_channels, *spatial)`` as MONAI does.

Examples
--------
>>> import torch
>>> net = create_net("unet", spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32))
>>> net.eval()(torch.zeros(1, 1, 32, 32)).shape
torch.Size([1, 2, 32, 32])
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from medseg.errors import ConfigError
from medseg.registry import Registry

__all__ = ["NETS", "create_net", "net_divisor", "register_net"]

NETS: Registry[Callable[..., nn.Module]] = Registry("network")


def register_net(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a network factory to :data:`NETS` under ``name``.

    Parameters
    ----------
    name : str
        The name ``create_net`` (and a plan's ``net``) use.

    Returns
    -------
    callable
        The decorator; it returns the factory unchanged.

    Examples
    --------
    >>> @register_net("tiny")                                       # doctest: +SKIP
    ... def _tiny(*, spatial_dims, in_channels, out_channels, **_):
    ...     return nn.Conv2d(in_channels, out_channels, 1)
    >>> create_net("tiny", spatial_dims=2, in_channels=1, out_channels=2)  # doctest: +SKIP
    """
    return NETS.register(name)


def _check(spatial_dims: int, in_channels: int, out_channels: int, channels: Sequence[int]) -> None:
    if spatial_dims not in (2, 3):
        raise ConfigError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if in_channels < 1 or out_channels < 2:
        raise ConfigError(f"need in_channels >= 1 and out_channels >= 2 (background + classes), "
                          f"got {in_channels} and {out_channels}")
    if len(channels) < 2 or any(int(c) < 1 for c in channels):
        raise ConfigError(f"channels needs at least two positive widths (one per level), got {list(channels)}")


def _norm(norm: str) -> Any:
    norm = norm.lower()
    if norm == "instance":
        return ("instance", {"affine": True})
    if norm == "batch":
        return "batch"
    raise ConfigError(f"unknown norm '{norm}'; choose instance or batch")


@register_net("unet")
def _unet(*, spatial_dims: int, in_channels: int, out_channels: int,
          channels: Sequence[int] = (16, 32, 64, 128), num_res_units: int = 2, norm: str = "instance",
          dropout: float = 0.0, **_: Any) -> nn.Module:
    """MONAI ``UNet`` with residual units and stride-2 convolutions."""
    from monai.networks.nets import UNet

    _check(spatial_dims, in_channels, out_channels, channels)
    chans = tuple(int(c) for c in channels)
    return UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                channels=chans, strides=(2,) * (len(chans) - 1), num_res_units=num_res_units,
                norm=_norm(norm), dropout=dropout)


@register_net("dynunet")
def _dynunet(*, spatial_dims: int, in_channels: int, out_channels: int,
             channels: Sequence[int] = (32, 64, 128, 256), strides: Sequence[Any] | None = None,
             kernels: Sequence[Any] | None = None, deep_supervision: bool = True, deep_supr_num: int = 1,
             norm: str = "instance", **_: Any) -> nn.Module:
    """MONAI ``DynUNet`` (nnU-Net's network): per-level kernels/strides, deep supervision."""
    from monai.networks.nets import DynUNet

    _check(spatial_dims, in_channels, out_channels, channels)
    n = len(channels)
    strides = list(strides) if strides is not None else [1] + [2] * (n - 1)
    kernels = list(kernels) if kernels is not None else [3] * n
    if len(strides) != n or len(kernels) != n:
        raise ConfigError(f"dynunet needs one stride and one kernel per level ({n}), "
                          f"got {len(strides)} and {len(kernels)}")
    deep_supr_num = max(1, min(int(deep_supr_num), n - 2)) if n > 2 else 1
    return DynUNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                   kernel_size=kernels, strides=strides, upsample_kernel_size=strides[1:],
                   filters=[int(c) for c in channels], norm_name=_norm(norm),
                   deep_supervision=bool(deep_supervision) and n > 2, deep_supr_num=deep_supr_num,
                   res_block=True)


class _DoubleConv(nn.Sequential):
    def __init__(self, dims: int, cin: int, cout: int, norm: str) -> None:
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        if norm == "batch":
            nrm: Callable[[int], nn.Module] = nn.BatchNorm2d if dims == 2 else nn.BatchNorm3d
        else:
            nrm = (lambda c: nn.InstanceNorm2d(c, affine=True)) if dims == 2 else (
                lambda c: nn.InstanceNorm3d(c, affine=True))
        super().__init__(conv(cin, cout, 3, padding=1), nrm(cout), nn.ReLU(inplace=True),
                         conv(cout, cout, 3, padding=1), nrm(cout), nn.ReLU(inplace=True))


class ClassicUNet(nn.Module):
    """The tutorial U-Net: two-conv blocks, max-pool down, upsample + concat up.

    Returns logits in training mode and softmax probabilities in eval mode when
    ``softmax_head`` is true (the tutorial's head); medseg's trainer and predictor use
    logits, so they build it with ``softmax_head=False``.

    Parameters
    ----------
    spatial_dims : int
        2 or 3.
    in_channels, out_channels : int
    channels : sequence of int
        Widths per level, default (32, 64, 128, 128).
    norm : str
        ``"batch"`` or ``"instance"``.
    softmax_head : bool
        Softmax output in eval mode (the tutorial's head).
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int,
                 channels: Sequence[int] = (32, 64, 128, 128), norm: str = "batch",
                 softmax_head: bool = False) -> None:
        super().__init__()
        _check(spatial_dims, in_channels, out_channels, channels)
        ch = [int(c) for c in channels]
        self.softmax_head = softmax_head
        self.down = nn.ModuleList()
        cin = in_channels
        for c in ch:
            self.down.append(_DoubleConv(spatial_dims, cin, c, norm))
            cin = c
        self.pool = nn.MaxPool2d(2) if spatial_dims == 2 else nn.MaxPool3d(2)
        self.up = nn.ModuleList()
        mode = "bilinear" if spatial_dims == 2 else "trilinear"
        self.upsample = nn.Upsample(scale_factor=2, mode=mode, align_corners=False)
        for i in range(len(ch) - 2, -1, -1):
            self.up.append(_DoubleConv(spatial_dims, cin + ch[i], ch[i], norm))
            cin = ch[i]
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.head = conv(cin, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, out_channels, *spatial)`` (probabilities with ``softmax_head`` in eval mode)."""
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for j, block in enumerate(self.up):
            skip = skips[-2 - j]
            x = nn.functional.interpolate(x, size=skip.shape[2:], mode=self.upsample.mode, align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        out = self.head(x)
        if self.softmax_head and not self.training:
            out = torch.softmax(out, dim=1)
        return out


@register_net("classic-unet")
def _classic(*, spatial_dims: int, in_channels: int, out_channels: int,
             channels: Sequence[int] = (32, 64, 128, 128), norm: str = "batch",
             softmax_head: bool = False, **_: Any) -> nn.Module:
    return ClassicUNet(spatial_dims, in_channels, out_channels, channels, norm=norm, softmax_head=softmax_head)


@register_net("attention-unet")
def _attention(*, spatial_dims: int, in_channels: int, out_channels: int,
               channels: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.0, **_: Any) -> nn.Module:
    """MONAI ``AttentionUnet`` (Oktay et al. 2018): attention gates on the skip connections."""
    from monai.networks.nets import AttentionUnet

    _check(spatial_dims, in_channels, out_channels, channels)
    chans = tuple(int(c) for c in channels)
    return AttentionUnet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                         channels=chans, strides=(2,) * (len(chans) - 1), dropout=dropout)


@register_net("segresnet")
def _segresnet(*, spatial_dims: int, in_channels: int, out_channels: int,
               channels: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.0, **_: Any) -> nn.Module:
    """MONAI ``SegResNet`` (Myronenko 2018): residual encoder, light decoder; widths double from
    ``channels[0]``, one level per entry of ``channels``."""
    from monai.networks.nets import SegResNet

    _check(spatial_dims, in_channels, out_channels, channels)
    n, width = len(channels), int(channels[0])
    groups = max(g for g in (8, 4, 2, 1) if width % g == 0)
    return SegResNet(spatial_dims=spatial_dims, init_filters=width, in_channels=in_channels,
                     out_channels=out_channels, dropout_prob=dropout or None,
                     norm=("GROUP", {"num_groups": groups}), blocks_down=tuple([1] + [2] * (n - 2) + [4]),
                     blocks_up=(1,) * (n - 1))


class _FirstOutput(nn.Module):
    """Wraps a network that returns a list of outputs (deep supervision heads): the first."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[0] if isinstance(out, (list, tuple)) else out


@register_net("unet++")
def _unetpp(*, spatial_dims: int, in_channels: int, out_channels: int,
            channels: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.0, **_: Any) -> nn.Module:
    """MONAI ``BasicUNetPlusPlus`` (Zhou et al. 2018): nested dense skip pathways; always five
    levels (patches are multiples of 16), widths from ``channels`` (doubled past its end)."""
    from monai.networks.nets import BasicUNetPlusPlus

    _check(spatial_dims, in_channels, out_channels, channels)
    widths = [int(c) for c in channels][:5]
    while len(widths) < 5:
        widths.append(widths[-1] * 2)
    return _FirstOutput(BasicUNetPlusPlus(spatial_dims=spatial_dims, in_channels=in_channels,
                                          out_channels=out_channels, features=(*widths, widths[0]),
                                          dropout=dropout))


@register_net("swin-unetr")
def _swin(*, spatial_dims: int, in_channels: int, out_channels: int,
          channels: Sequence[int] = (24, 48, 96, 192), dropout: float = 0.0, **_: Any) -> nn.Module:
    """MONAI ``SwinUNETR`` (Hatamizadeh et al. 2022): a shifted-window transformer encoder with a
    convolutional decoder; ``channels[0]`` rounded to a multiple of 12 is its feature size;
    patches are multiples of 32."""
    from monai.networks.nets import SwinUNETR

    _check(spatial_dims, in_channels, out_channels, channels)
    feature = max(12, 12 * round(int(channels[0]) / 12))
    return SwinUNETR(in_channels=in_channels, out_channels=out_channels, feature_size=feature,
                     spatial_dims=spatial_dims, drop_rate=dropout)


#: networks whose down-sampling does not follow the number of levels in ``channels``
_FIXED_DIVISOR = {"unet++": 16, "swin-unetr": 32}


def create_net(name: str, **kw: Any) -> nn.Module:
    """Build the registered network ``name``.

    Parameters
    ----------
    name : str
        A name of :data:`NETS` (``unet``, ``dynunet``, ``classic-unet``, ``attention-unet``,
        ``segresnet``, ``unet++``, ``swin-unetr``).
    **kw
        ``spatial_dims``, ``in_channels``, ``out_channels``, ``channels``, ``norm`` and the
        factory's own options (see the module docstring).

    Returns
    -------
    torch.nn.Module
        Maps ``(N, in_channels, *spatial)`` to logits ``(N, out_channels, *spatial)``.

    Raises
    ------
    ConfigError
        An unknown name (with the nearest registered one) or invalid sizes.
    """
    factory = NETS.get(name)
    return factory(**kw)


def net_divisor(name: str, channels: Sequence[int]) -> int:
    """Patch sizes must be multiples of this for the network's down-sampling to be exact.

    Parameters
    ----------
    name : str
        The network's name.
    channels : sequence of int
        Its widths, one per level.

    Returns
    -------
    int
        ``2 ** (len(channels) - 1)``, or the network's own (``unet++``: 16, ``swin-unetr``: 32)
        when larger.

    Examples
    --------
    >>> net_divisor("unet", (16, 32, 64, 128))
    8
    >>> net_divisor("swin-unetr", (24, 48, 96, 192))
    32
    """
    return max(2 ** (len(channels) - 1), _FIXED_DIVISOR.get(name, 1))

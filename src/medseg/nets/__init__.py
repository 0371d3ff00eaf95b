"""Network factory: the `NETS` registry and `create_net`.

Networks are built from MONAI where MONAI has them (``unet``: residual-unit U-Net;
``dynunet``: the nnU-Net-style network with deep supervision) and from our own small
module for ``classic-unet``, the tutorial topology (32-64-128-128 feature maps,
two-convolution blocks, max-pooling, up-sampling + concatenation, softmax head). Also from
MONAI: ``attention-unet`` (attention gates on the skips), ``segresnet`` (residual encoder),
``unet++`` (nested skips), ``swin-unetr`` (a Swin transformer encoder) and ``unetr`` (a
vision transformer encoder, built for one input size: the plan's patch), 2D and 3D. Encoder
U-Nets with ImageNet-classification encoders in the segmentation-models-pytorch layout
(``smp-unet:resnet34``, ``smp-unet:efficientnet-b0``, ``smp-unet:mobilenet_v2``; 2D only;
[`medseg.nets.encoders`][], weights by ``--pretrained``: [`medseg.nets.pretrained`][]), and
the recurrent options ([`medseg.nets.recurrent`][]): ``r2unet`` (recurrent residual units, 2D
and 3D) and ``unet-convlstm`` (a 2D U-Net per slice with a ConvLSTM across the slices; 3D
patches). `net_info` says what each takes (`NetInfo`: dimensions, patch divisor,
fixed input size, pretrainable encoder, size).

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
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medseg.errors import ConfigError
from medseg.registry import Registry

__all__ = ["NETS", "NetInfo", "check_net_dims", "create_net", "net_divisor", "net_info", "nets_for", "register_net"]

NETS: Registry[Callable[..., nn.Module]] = Registry("network")
"""Every network factory by its ``--net`` name; `create_net` builds from it and `register_net` adds
to it."""


@dataclass(frozen=True)
class NetInfo:
    """What a network of `NETS` can take (``medseg methods unet`` lists it).

    Attributes
    ----------
    dims : tuple of int
        Spatial dimensionalities it is built for (2, 3 or both).
    divisor : int
        Patch sizes must be multiples of this (0: ``2 ** (levels - 1)`` of its ``channels``).
    fixed_input : bool
        Built for one input size (the plan's patch): inference runs windows of exactly that size.
    encoder : bool
        Has an ``encoder`` submodule that ``--pretrained`` loads published weights into.
    params : int
        Approximate parameter count at its default width (2D where it supports 2D, one
        input channel, two classes).
    summary : str
        One line for listings.
    no_onnx : str
        Why it cannot be exported to ONNX (empty: it can).
    """

    dims: tuple[int, ...] = (2, 3)
    divisor: int = 0
    fixed_input: bool = False
    encoder: bool = False
    params: int = 0
    summary: str = ""
    no_onnx: str = ""


_INFO: dict[str, NetInfo] = {}


def register_net(name: str, info: NetInfo | None = None,
                 ) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a network factory to `NETS` under ``name``.

    Parameters
    ----------
    name : str
        The name ``create_net`` (and a plan's ``net``) use.
    info : NetInfo, optional
        What it can take (default: 2D and 3D, divisor from its levels).

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
    _INFO[name] = info or NetInfo()
    return NETS.register(name)


def net_info(name: str) -> NetInfo:
    """The `NetInfo` of the registered network ``name``.

    Raises
    ------
    ConfigError
        An unknown name (with the nearest registered one).

    Examples
    --------
    >>> net_info("unetr").fixed_input, net_info("smp-unet:resnet34").dims
    (True, (2,))
    """
    NETS.get(name)  # unknown names: the registry's "did you mean"
    return _INFO.get(name, NetInfo())


def nets_for(dims: int) -> list[str]:
    """The networks that take ``dims``-dimensional data (``--net`` choices; ``late-fusion-unet``,
    chosen by ``--fusion late``, left out).

    Examples
    --------
    >>> "smp-unet:resnet34" in nets_for(2), "smp-unet:resnet34" in nets_for(3)
    (True, False)
    """
    return [n for n in NETS.names() if dims in net_info(n).dims and n != "late-fusion-unet"]


def check_net_dims(name: str, dims: int) -> None:
    """Refuse a network that cannot take ``dims``-dimensional data, naming those that can.

    Raises
    ------
    ConfigError
        ``--net NAME is 2D-only; for 3D data choose one of: ...``.

    Examples
    --------
    >>> check_net_dims("unet", 3)
    """
    have = net_info(name).dims
    if dims not in have:
        only = "/".join(f"{d}D" for d in have)
        raise ConfigError(f"--net {name} is {only}-only; for {dims}D data choose one of: {', '.join(nets_for(dims))}")


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


@register_net("unet", NetInfo(params=402761, summary="MONAI residual-unit U-Net"))
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


@register_net("dynunet", NetInfo(params=1970372, summary="nnU-Net network (MONAI DynUNet), deep supervision"))
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


@register_net("classic-unet", NetInfo(params=1211106, summary="the tutorial U-Net: two-conv blocks, max-pool"))
def _classic(*, spatial_dims: int, in_channels: int, out_channels: int,
             channels: Sequence[int] = (32, 64, 128, 128), norm: str = "batch",
             softmax_head: bool = False, **_: Any) -> nn.Module:
    return ClassicUNet(spatial_dims, in_channels, out_channels, channels, norm=norm, softmax_head=softmax_head)


@register_net("attention-unet", NetInfo(params=493990, summary="attention gates on the skips (MONAI)"))
def _attention(*, spatial_dims: int, in_channels: int, out_channels: int,
               channels: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.0, **_: Any) -> nn.Module:
    """MONAI ``AttentionUnet`` (Oktay et al. 2018): attention gates on the skip connections."""
    from monai.networks.nets import AttentionUnet

    _check(spatial_dims, in_channels, out_channels, channels)
    chans = tuple(int(c) for c in channels)
    return AttentionUnet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                         channels=chans, strides=(2,) * (len(chans) - 1), dropout=dropout)


@register_net("segresnet", NetInfo(params=1576402, summary="residual encoder, light decoder (MONAI)"))
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


@register_net("unet++", NetInfo(params=2282840, divisor=16, summary="nested dense skips (MONAI BasicUNetPlusPlus)"))
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


@register_net("swin-unetr", NetInfo(
    params=6302228, divisor=32, summary="Swin transformer encoder (MONAI)",
    no_onnx="torch's ONNX exporter loses the channel count in its shifted-window reshapes (instance norm of "
            "unknown channel size), at fixed sizes too"))
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


@register_net("unetr", NetInfo(params=10718658, divisor=16, fixed_input=True,
                               summary="ViT encoder on 16-voxel patches (MONAI UNETR)"))
def _unetr(*, spatial_dims: int, in_channels: int, out_channels: int,
           channels: Sequence[int] = (16, 32, 64, 128), patch_size: Sequence[int] | None = None,
           norm: str = "instance", dropout: float = 0.0, **_: Any) -> nn.Module:
    """MONAI ``UNETR`` (Hatamizadeh et al. 2021): a 12-layer vision transformer on 16-voxel
    patches, a convolutional decoder from its 3rd, 6th, 9th and 12th layers. Built for one input
    size, ``patch_size`` (the plan's; multiples of 16): feature size ``channels[0]``, hidden size
    ``2 * channels[-1]`` (a multiple of 8 heads), MLP 4x hidden."""
    from monai.networks.nets import UNETR

    _check(spatial_dims, in_channels, out_channels, channels)
    if not patch_size or len(patch_size) != spatial_dims or any(int(p) % 16 or int(p) < 16 for p in patch_size):
        raise ConfigError(f"unetr is built for one input size: give a patch of {spatial_dims} multiples of 16, "
                          f"got {list(patch_size or [])}")
    heads = 8
    hidden = max(heads, heads * round(2 * int(channels[-1]) / heads))
    return UNETR(in_channels=in_channels, out_channels=out_channels, img_size=tuple(int(p) for p in patch_size),
                 feature_size=int(channels[0]), hidden_size=hidden, mlp_dim=4 * hidden, num_heads=heads,
                 norm_name=_norm(norm), dropout_rate=dropout, spatial_dims=spatial_dims)


def _encoder_unet(encoder: str) -> Callable[..., nn.Module]:
    def factory(*, spatial_dims: int, in_channels: int, out_channels: int,
                channels: Sequence[int] = (16, 32, 64, 128, 256), **_: Any) -> nn.Module:
        from medseg.nets.encoders import EncoderUNet  # deferred: the encoders load on first use

        _check(spatial_dims, in_channels, out_channels, channels)
        check_net_dims(f"smp-unet:{encoder}", spatial_dims)
        dec = [int(c) for c in channels][::-1][:5]
        while len(dec) < 5:
            dec.append(max(8, dec[-1] // 2))
        return EncoderUNet(encoder, in_channels, out_channels, decoder_channels=dec)
    factory.__doc__ = (f"U-Net on a {encoder} encoder (segmentation-models-pytorch layout, 2D): "
                       "decoder widths from ``channels`` reversed (five, halved past its end).")
    return factory


for _enc, _what, _size in (("resnet34", "ResNet-34", 24430242), ("efficientnet-b0", "EfficientNet-B0", 5838878),
                           ("mobilenet_v2", "MobileNet-V2", 6628514)):
    register_net(f"smp-unet:{_enc}", NetInfo(dims=(2,), divisor=32, encoder=True, params=_size,
                                             summary=f"{_what} encoder U-Net (smp layout, --pretrained)"))(
        _encoder_unet(_enc))


@register_net("r2unet", NetInfo(params=609570, summary="recurrent residual U-Net (R2U-Net, t=2)"))
def _r2unet(*, spatial_dims: int, in_channels: int, out_channels: int,
            channels: Sequence[int] = (16, 32, 64, 128), norm: str = "instance", **_: Any) -> nn.Module:
    """[`R2UNet`][medseg.nets.recurrent.R2UNet]: recurrent residual convolutional units, ``t = 2``."""
    from medseg.nets.recurrent import R2UNet  # deferred: loaded on first use

    _check(spatial_dims, in_channels, out_channels, channels)
    return R2UNet(spatial_dims, in_channels, out_channels, channels, t=2, norm=norm.lower())


@register_net("unet-convlstm", NetInfo(params=2898034, dims=(3,), fixed_input=True,
                                       summary="2D U-Net per slice, ConvLSTM across slices"))
def _unet_convlstm(*, spatial_dims: int, in_channels: int, out_channels: int,
                   channels: Sequence[int] = (16, 32, 64, 128), norm: str = "instance", **_: Any) -> nn.Module:
    """[`SliceConvLSTMUNet`][medseg.nets.recurrent.SliceConvLSTMUNet]: volumes as sequences of slices (3D patches)."""
    from medseg.nets.recurrent import SliceConvLSTMUNet  # deferred: loaded on first use

    _check(spatial_dims, in_channels, out_channels, channels)
    check_net_dims("unet-convlstm", spatial_dims)
    return SliceConvLSTMUNet(in_channels, out_channels, channels, norm=norm.lower())



def create_net(name: str, **kw: Any) -> nn.Module:
    """Build the registered network ``name``.

    Parameters
    ----------
    name : str
        A name of `NETS` (``unet``, ``dynunet``, ``classic-unet``, ``attention-unet``,
        ``segresnet``, ``unet++``, ``swin-unetr``, ``unetr``, ``smp-unet:resnet34``,
        ``smp-unet:efficientnet-b0``, ``smp-unet:mobilenet_v2``, ``r2unet``, ``unet-convlstm``;
        `net_info` tells which dimensions each takes).
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
    return max(2 ** (len(channels) - 1), net_info(name).divisor)


# late fusion of modalities: one encoder per input channel (medseg.nets.fusion)
from medseg.nets.fusion import late_fusion_unet  # noqa: E402

register_net("late-fusion-unet")(late_fusion_unet)

_INFO["late-fusion-unet"] = NetInfo(params=364130, summary="one encoder per modality (--fusion late; 2+ channels)")

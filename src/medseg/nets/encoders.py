"""Encoder U-Nets (2D): ResNet-34, EfficientNet-B0 and MobileNet-V2 encoders with a U-Net decoder.

``smp-unet:resnet34``, ``smp-unet:efficientnet-b0`` and ``smp-unet:mobilenet_v2`` follow
segmentation-models-pytorch's ``Unet``: an ImageNet classification encoder (without its
classifier) whose features at strides 2, 4, 8, 16 and 32 feed a decoder of up-sampling,
concatenation and two 3x3 convolution-batch-norm-ReLU blocks per level, then a 3x3
segmentation head. segmentation-models-pytorch itself cannot be used here: it imports
torchvision, which has no build for this torch; so the encoders are written out with the
parameter names of the state dicts that published weights use, and such a file loads by
name ([`medseg.nets.pretrained.load_pretrained`][]):

- ResNet-34 and MobileNet-V2: torchvision's layout (``conv1.weight``, ``bn1.*``,
  ``layer1.0.conv1.weight``, ...; ``features.0.0.weight``, ``features.1.conv.0.0.weight``, ...),
  which segmentation-models-pytorch's ``resnet34`` and ``mobilenet_v2`` encoders keep under
  ``encoder.``;
- EfficientNet-B0: timm's ``efficientnet_b0`` layout (``conv_stem.weight``, ``bn1.*``,
  ``blocks.0.0.conv_dw.weight``, ...), also segmentation-models-pytorch's
  ``timm-efficientnet-b0`` under ``encoder.``.

The network's own keys are ``encoder.*`` (those layouts), ``decoder.*`` and
``segmentation_head.*``. Patches must be multiples of 32.

Examples
--------
>>> import torch
>>> net = EncoderUNet("resnet34", in_channels=1, out_channels=2, decoder_channels=(32, 16, 8, 8, 8))
>>> net.eval()(torch.zeros(1, 1, 64, 64)).shape
torch.Size([1, 2, 64, 64])
>>> "encoder.layer1.0.conv1.weight" in net.state_dict()
True
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from medseg.errors import ConfigError

__all__ = ["ENCODERS", "EncoderUNet", "EfficientNetB0Encoder", "MobileNetV2Encoder", "ResNet34Encoder"]


# ---------------------------------------------------------------- ResNet-34 (torchvision layout)
class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idt = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + idt)


class ResNet34Encoder(nn.Module):
    """torchvision's ResNet-34 without ``fc``: features at strides 2 (64), 4 (64), 8 (128),
    16 (256) and 32 (512)."""

    out_channels = (64, 64, 128, 256, 512)

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(64, 64, 3, 1)
        self.layer2 = self._layer(64, 128, 4, 2)
        self.layer3 = self._layer(128, 256, 6, 2)
        self.layer4 = self._layer(256, 512, 3, 2)

    @staticmethod
    def _layer(cin: int, cout: int, n: int, stride: int) -> nn.Sequential:
        return nn.Sequential(*[_BasicBlock(cin if j == 0 else cout, cout, stride if j == 0 else 1) for j in range(n)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five feature maps, finest first."""
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        return [f1, f2, f3, f4, self.layer4(f4)]


# ---------------------------------------------------------------- MobileNet-V2 (torchvision layout)
def _cna(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's ``Conv2dNormActivation``: conv (no bias), batch norm, ReLU6."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class _InvertedResidualV2(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = [] if expand == 1 else [_cna(cin, hidden, 1)]
        layers += [_cna(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Encoder(nn.Module):
    """torchvision's MobileNet-V2 ``features`` (no classifier): features at strides 2 (16),
    4 (24), 8 (32), 16 (96) and 32 (1280), as segmentation-models-pytorch splits them."""

    out_channels = (16, 24, 32, 96, 1280)
    _stages = (2, 4, 7, 14, 19)  # features[a:b] ends of each stage

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [_cna(in_channels, 32, 3, 2)]
        cin = 32
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)]:
            for j in range(n):
                layers.append(_InvertedResidualV2(cin, c, s if j == 0 else 1, t))
                cin = c
        layers.append(_cna(cin, 1280, 1))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five feature maps, finest first."""
        out, start = [], 0
        for end in self._stages:
            for i in range(start, end):
                x = self.features[i](x)
            out.append(x)
            start = end
        return out


# ---------------------------------------------------------------- EfficientNet-B0 (timm layout)
class _SqueezeExcite(nn.Module):
    def __init__(self, c: int, rd: int) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(c, rd, 1)
        self.act1 = nn.SiLU(inplace=True)
        self.conv_expand = nn.Conv2d(rd, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.conv_expand(self.act1(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(s)


class _BNAct(nn.BatchNorm2d):
    """timm's ``BatchNormAct2d`` (batch norm then SiLU; the keys of ``BatchNorm2d``)."""

    def __init__(self, c: int, act: bool = True) -> None:
        super().__init__(c)
        self.act = nn.SiLU(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))


class _DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and cin == cout
        self.conv_dw = nn.Conv2d(cin, cin, k, stride, k // 2, groups=cin, bias=False)
        self.bn1 = _BNAct(cin)
        self.se = _SqueezeExcite(cin, max(1, round(cin * 0.25)))
        self.conv_pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2 = _BNAct(cout, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(self.se(self.bn1(self.conv_dw(x)))))
        return x + y if self.has_skip else y


class _InvertedResidualEff(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_skip = stride == 1 and cin == cout
        self.conv_pw = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = _BNAct(mid)
        self.conv_dw = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.bn2 = _BNAct(mid)
        self.se = _SqueezeExcite(mid, max(1, round(cin * 0.25)))
        self.conv_pwl = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = _BNAct(cout, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.bn2(self.conv_dw(self.bn1(self.conv_pw(x)))))
        y = self.bn3(self.conv_pwl(y))
        return x + y if self.has_skip else y


class EfficientNetB0Encoder(nn.Module):
    """timm's ``efficientnet_b0`` without its head (``conv_head``, ``bn2``, ``classifier``):
    features at strides 2 (32), 4 (24), 8 (40), 16 (112) and 32 (320), as
    segmentation-models-pytorch's ``timm-efficientnet-b0`` splits them."""

    out_channels = (32, 24, 40, 112, 320)

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.conv_stem = nn.Conv2d(in_channels, 32, 3, 2, 1, bias=False)
        self.bn1 = _BNAct(32)
        stages: list[nn.Module] = [nn.Sequential(_DepthwiseSeparable(32, 16, 3, 1))]
        cin = 16
        for n, k, s, c in [(2, 3, 2, 24), (2, 5, 2, 40), (3, 3, 2, 80), (3, 5, 1, 112), (4, 5, 2, 192),
                           (1, 3, 1, 320)]:
            blocks = []
            for j in range(n):
                blocks.append(_InvertedResidualEff(cin, c, k, s if j == 0 else 1, 6))
                cin = c
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five feature maps, finest first."""
        f1 = self.bn1(self.conv_stem(x))
        f2 = self.blocks[1](self.blocks[0](f1))
        f3 = self.blocks[2](f2)
        f4 = self.blocks[4](self.blocks[3](f3))
        return [f1, f2, f3, f4, self.blocks[6](self.blocks[5](f4))]


ENCODERS: dict[str, type[nn.Module]] = {"resnet34": ResNet34Encoder, "efficientnet-b0": EfficientNetB0Encoder,
                                        "mobilenet_v2": MobileNetV2Encoder}
"""Encoder name -> class."""


# ---------------------------------------------------------------- U-Net decoder (smp layout)
def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _DecoderBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(cin + cskip, cout)
        self.conv2 = _conv_bn_relu(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class _Decoder(nn.Module):
    def __init__(self, enc_channels: Sequence[int], dec_channels: Sequence[int]) -> None:
        super().__init__()
        enc = list(enc_channels)[::-1]  # coarsest first
        ins = [enc[0]] + list(dec_channels[:-1])
        skips = enc[1:] + [0]
        self.blocks = nn.ModuleList(_DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, dec_channels))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        feats = feats[::-1]
        x = feats[0]
        for i, block in enumerate(self.blocks):
            x = block(x, feats[i + 1] if i + 1 < len(feats) else None)
        return x


class EncoderUNet(nn.Module):
    """A U-Net on a classification encoder (segmentation-models-pytorch's ``Unet``), 2D.

    Parameters
    ----------
    encoder : str
        ``"resnet34"``, ``"efficientnet-b0"`` or ``"mobilenet_v2"`` (`ENCODERS`).
    in_channels, out_channels : int
        Input channels (the first convolution is built for them; pretrained RGB weights are
        adapted when loaded) and classes.
    decoder_channels : sequence of int
        Five decoder widths, coarsest first (segmentation-models-pytorch: 256, 128, 64, 32, 16).

    Raises
    ------
    ConfigError
        An unknown encoder or not five decoder widths.
    """

    divisor = 32

    def __init__(self, encoder: str, in_channels: int, out_channels: int,
                 decoder_channels: Sequence[int] = (256, 128, 64, 32, 16)) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ConfigError(f"unknown encoder '{encoder}'; choose one of: {', '.join(ENCODERS)}")
        if len(decoder_channels) != 5 or any(int(c) < 1 for c in decoder_channels):
            raise ConfigError(f"the encoder U-Net needs five positive decoder widths, got {list(decoder_channels)}")
        self.encoder_name = encoder
        self.encoder = ENCODERS[encoder](in_channels)
        dec = [int(c) for c in decoder_channels]
        self.decoder = _Decoder(self.encoder.out_channels, dec)  # type: ignore[arg-type]
        self.segmentation_head = nn.Sequential(nn.Conv2d(dec[-1], out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, out_channels, H, W)``; ``H`` and ``W`` multiples of 32."""
        return self.segmentation_head(self.decoder(self.encoder(x)))

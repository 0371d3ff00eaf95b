"""``--pretrained PATH``: a local state dict loaded into a network's encoder by name and shape.

A file saved with ``torch.save`` (read with ``weights_only=True``: nothing is unpickled but
tensors) holding a state dict, bare or wrapped as ``{"state_dict": ...}`` or
``{"model": ...}``; keys in torchvision's or timm's layout (``conv1.weight``,
``layer1.0.bn1.running_mean``, ``conv_stem.weight``) or segmentation-models-pytorch's
(``encoder.conv1.weight``), also behind ``module.`` (DataParallel) or ``backbone.``
prefixes. Each tensor of the network's encoder (the ``encoder.`` part of a network that has
one, e.g. ``smp-unet:resnet34``) is taken from the file when a key matches; a first
convolution made for RGB (3 input channels) is adapted to another channel count as
segmentation-models-pytorch does (one channel: the sum over RGB; more: RGB repeated, scaled
by ``3 / channels``). Nothing matching is an error, not a silent random start.

Examples
--------
>>> import torch, tempfile, os
>>> from medseg.nets import create_net
>>> net = create_net("smp-unet:resnet34", spatial_dims=2, in_channels=3, out_channels=2, channels=(8, 8, 8, 8))
>>> f = os.path.join(tempfile.mkdtemp(), "r34.pt")
>>> torch.save({k[len("encoder."):]: v for k, v in net.state_dict().items() if k.startswith("encoder.")}, f)
>>> load_pretrained(net, f).summary()
'pretrained: 216 tensors matched, 0 missing, 0 with another shape'
"""
from __future__ import annotations

import logging
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medseg.errors import ConfigError, InputError

log = logging.getLogger(__name__)

__all__ = ["PretrainedReport", "load_pretrained", "read_state_dict"]

_PREFIXES = ("module.", "encoder.", "backbone.", "model.")


@dataclass
class PretrainedReport:
    """What `load_pretrained` did.

    Attributes
    ----------
    matched : list of str
        Encoder keys set from the file.
    missing : list of str
        Encoder keys the file does not have (they keep their random start).
    shape : list of str
        Encoder keys the file has with another shape (not loaded).
    adapted : list of str
        Matched first-convolution keys whose input channels were adapted from RGB.
    unused : int
        Tensors of the file that fit no encoder key (e.g. a classifier).
    """

    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    shape: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    unused: int = 0

    def summary(self) -> str:
        """The one line ``pretrained: N tensors matched, M missing, K with another shape``."""
        s = (f"pretrained: {len(self.matched)} tensors matched, {len(self.missing)} missing, "
             f"{len(self.shape)} with another shape")
        if self.adapted:
            s += f" ({', '.join(self.adapted)} adapted from 3 input channels)"
        return s


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a saved state dict (unwrapped from ``state_dict``/``model`` keys).

    Parameters
    ----------
    path : str or Path
        A ``torch.save`` file (``.pt``, ``.pth``, ``.bin``, ``.ckpt``).

    Returns
    -------
    dict
        Key -> tensor.

    Raises
    ------
    InputError
        No such file, or not a torch file of tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"--pretrained {p}: no such file")
    try:
        obj: Any = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"--pretrained {p}: not a torch state dict file ({msg[:200]})") from None
    for _ in range(3):  # {"state_dict": {...}}, {"model": {...}}, {"model": {"state_dict": ...}}
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in ("state_dict", "model", "model_state_dict", "net") if k in obj), None)
            if isinstance(inner, dict):
                obj = inner
                continue
        break
    if not isinstance(obj, dict):
        raise InputError(f"--pretrained {p}: holds a {type(obj).__name__}, not a state dict")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise InputError(f"--pretrained {p}: holds no tensors")
    return tensors


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for pre in _PREFIXES:
            if key.startswith(pre):
                key, changed = key[len(pre):], True
    return key


def _adapt_first_conv(w: torch.Tensor, cin: int) -> torch.Tensor:
    """An RGB first-layer weight ``(out, 3, ...)`` for ``cin`` input channels (smp's rule)."""
    if cin == 1:
        return w.sum(dim=1, keepdim=True)
    reps = -(-cin // w.shape[1])
    return torch.cat([w] * reps, dim=1)[:, :cin] * (w.shape[1] / cin)


def load_pretrained(net: nn.Module, path: str | Path) -> PretrainedReport:
    """Load a local state dict into ``net``'s encoder by name and shape (in place).

    Parameters
    ----------
    net : torch.nn.Module
        A network of [`medseg.nets.NETS`][]; its ``encoder`` submodule when it has one,
        else the whole network, is what the file is matched against.
    path : str or Path
        The state dict file (see the module docstring for the layouts understood).

    Returns
    -------
    PretrainedReport
        Its `summary` is also logged.

    Raises
    ------
    InputError
        The file cannot be read as a state dict.
    ConfigError
        No tensor of the file matches the encoder.
    """
    sub = getattr(net, "encoder", None)
    enc: nn.Module = sub if isinstance(sub, nn.Module) else net
    own = enc.state_dict()
    file = read_state_dict(path)
    by_name: dict[str, torch.Tensor] = {}
    for k, v in file.items():
        by_name.setdefault(_strip(k), v)
    rep = PretrainedReport()
    new: dict[str, torch.Tensor] = {}
    first = next((k for k, v in own.items() if v.ndim >= 3 and k.endswith("weight")), None)  # the first conv
    for k, v in own.items():
        src = by_name.get(_strip(k))
        if src is None:
            rep.missing.append(k)
            continue
        if k == first and src.ndim == v.ndim and src.shape[1] == 3 and v.shape[1] != 3 and \
                src.shape[0] == v.shape[0] and src.shape[2:] == v.shape[2:]:
            src = _adapt_first_conv(src.to(v.dtype), int(v.shape[1]))
            rep.adapted.append(k)
        if tuple(src.shape) != tuple(v.shape):
            rep.shape.append(k)
            continue
        new[k] = src.to(dtype=v.dtype)
        rep.matched.append(k)
    used = {_strip(k) for k in rep.matched}
    rep.unused = sum(1 for k in by_name if k not in used)
    if not rep.matched:
        what = "the encoder" if enc is not net else "the network"
        raise ConfigError(f"--pretrained {path}: none of its {len(file)} tensors matches {what} by name and "
                          f"shape (e.g. file key '{next(iter(file))}', network key '{next(iter(own), '')}'); "
                          "give a torchvision/timm/segmentation-models-pytorch state dict of the same encoder")
    with torch.no_grad():
        for k, v in new.items():
            own[k].copy_(v)
    log.info("%s", rep.summary())
    return rep

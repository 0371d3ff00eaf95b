"""Single 3D windows at full speed on the CPU: ``Conv3d`` layers that always run oneDNN.

PyTorch picks its unfold-based ``slow_conv3d`` for a single sample whose ``C x D x H`` is
small (a heuristic made for 2D), which made every window of a small 3D patch run one at a
time 2.7x slower. `onednn_conv3d` gives the predictor a copy of a network whose
``Conv3d`` layers are `OneDnnConv3d`.

Examples
--------
>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3))
>>> fast = onednn_conv3d(net)
>>> fast is not net or not torch.backends.mkldnn.is_available()
True
"""
from __future__ import annotations

import copy
from typing import Any

import torch

__all__ = ["OneDnnConv3d", "onednn_conv3d"]


def _compiling() -> bool:
    """Whether ``torch.compile`` is tracing (it lowers convolutions itself)."""
    fn = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(fn()) if fn is not None else False


class OneDnnConv3d(torch.nn.Conv3d):
    """A ``Conv3d`` that always runs oneDNN (mkldnn) on the CPU in float32.

    PyTorch picks its unfold-based ``slow_conv3d`` for a single sample whose
    ``C x D x H`` is small (a heuristic made for 2D): every window of a small 3D patch run one
    at a time — one window per image, as for MSD Hippocampus, or a validation case — then
    costs 2.7x more (82 vs 30 ms for a 16-32-64-128 U-Net on 48x64x48, 2 threads). Results
    agree to float rounding (~1e-5). With gradients enabled, on other devices and dtypes,
    and under ``torch.compile`` it is an ordinary ``Conv3d``.

    It takes the arguments of ``torch.nn.Conv3d`` (instances are made by `onednn_conv3d`,
    which changes the class of existing layers).
    """

    def _conv_forward(self, input, weight, bias):  # noqa: A002 - torch's signature
        if (input.device.type == "cpu" and input.dtype == torch.float32 and self.padding_mode == "zeros"
                and not torch.is_grad_enabled() and not isinstance(self.padding, str) and not _compiling()):
            return torch.ops.aten.mkldnn_convolution(input, weight, bias, self.padding, self.stride, self.dilation,
                                                     self.groups)
        return super()._conv_forward(input, weight, bias)


def onednn_conv3d(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` whose ``Conv3d`` layers run oneDNN for single samples.

    Parameters
    ----------
    net : torch.nn.Module
        Left as it is (it may be training).

    Returns
    -------
    torch.nn.Module
        A deep copy with `OneDnnConv3d` layers, or ``net`` itself when it has no
        ``Conv3d`` or this torch has no oneDNN.
    """
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.aten, "mkldnn_convolution")):
        return net
    if not any(type(m) is torch.nn.Conv3d for m in net.modules()):
        return net
    net = copy.deepcopy(net, memo=_detached_outputs(net))
    for m in net.modules():
        if type(m) is torch.nn.Conv3d:
            m.__class__ = OneDnnConv3d
    return net


def _detached_outputs(net: torch.nn.Module) -> dict[int, Any]:
    """A deepcopy memo mapping tensors a module keeps from its last forward pass (MONAI's DynUNet
    keeps its deep-supervision heads in a list) to detached copies: deepcopy refuses tensors that
    are part of an autograd graph."""
    memo: dict[int, Any] = {}
    for m in net.modules():
        for value in vars(m).values():
            items = value if isinstance(value, (list, tuple)) else [value]
            for t in items:
                if torch.is_tensor(t) and t.grad_fn is not None:
                    memo[id(t)] = t.detach().clone()
    return memo

"""The ONNX Runtime backend of the predictor: a network exported to ONNX in memory and run
with ONNX Runtime on the CPU (:class:`OnnxNet`). Needs the optional ``onnx`` and
``onnxruntime`` packages (:func:`onnx_available`).

Examples
--------
>>> isinstance(onnx_available(), bool)
True
"""
from __future__ import annotations

import importlib.util
import io
import warnings

import numpy as np
import torch

from medseg.dl.plan import Plan
from medseg.errors import require

__all__ = ["OnnxNet", "onnx_available"]


def onnx_available() -> bool:
    """Whether the ``onnx`` and ``onnxruntime`` packages are installed (nothing is imported).

    Returns
    -------
    bool
    """
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


class OnnxNet:
    """A network exported to ONNX (in memory) and run with ONNX Runtime on the CPU.

    Called like the network: ``(N, C, *P)`` float32 tensor -> logits ``(N, K, *P)``, with
    dynamic batch and spatial sizes. ONNX Runtime uses as many threads as torch.

    Parameters
    ----------
    net : torch.nn.Module
        In eval mode, on the CPU.
    plan : Plan
        Input channels, dimensionality and patch size (the export's example input).

    Raises
    ------
    DependencyError
        ``onnx`` or ``onnxruntime`` is not installed.
    """

    def __init__(self, net: torch.nn.Module, plan: Plan) -> None:
        ort = require("onnxruntime", purpose="the onnx inference backend")
        require("onnx", purpose="the onnx inference backend")
        x = torch.zeros((1, plan.in_channels) + tuple(plan.patch_size))
        axes = {0: "batch", **{i + 2: f"s{i}" for i in range(plan.dims)}}
        buf = io.BytesIO()
        net = net.to(memory_format=torch.contiguous_format)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter notes on instance norm in eval mode
            torch.onnx.export(net, (x,), buf, input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": axes, "logits": axes}, opset_version=17, dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = torch.get_num_threads()
        so.inter_op_num_threads = 1
        # no busy-waiting between calls: the windows' stitching runs in torch threads in
        # between, which a spinning pool slowed by ~25 % on a 2-core CPU
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        self.session = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"image": np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)

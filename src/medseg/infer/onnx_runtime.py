"""The ONNX Runtime side of medseg: a network exported to ONNX in memory and run with ONNX
Runtime on the CPU (`OnnxNet`, the predictor's ``backend="onnx"``), the graph export
(`export_graph`) and where an exported file's preprocessing description lies
(`sidecar_path`). Needs the optional ``onnx`` and ``onnxruntime`` packages
(`onnx_available`).

Examples
--------
>>> isinstance(onnx_available(), bool)
True
>>> sidecar_path("models/net.onnx").name
'net.onnx.json'
"""
from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.dl.plan import Plan
from medseg.errors import require
from medseg.nets import net_info

__all__ = ["ONNX_FORMAT", "OnnxNet", "export_graph", "onnx_available", "sidecar_path"]

ONNX_FORMAT = "medseg-onnx"
"""The ``format`` of the preprocessing description written beside an exported graph."""


def sidecar_path(onnx_file: str | Path) -> Path:
    """The preprocessing description beside an exported graph: ``NAME.onnx.json``.

    Parameters
    ----------
    onnx_file : str or Path

    Returns
    -------
    Path
    """
    p = Path(onnx_file)
    return p.with_name(p.name + ".json")


def _session_options(ort: Any) -> Any:
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.inter_op_num_threads = 1
    # no busy-waiting between calls: the windows' stitching runs in torch threads in
    # between, which a spinning pool slowed by ~25 % on a 2-core CPU
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def export_graph(net: torch.nn.Module, plan: Plan, *, dynamic: bool = True, opset: int = 17) -> bytes:
    """The ONNX graph of ``net`` (input ``image`` ``(N, C, *P)``, output ``logits`` ``(N, K, *P)``).

    Parameters
    ----------
    net : torch.nn.Module
        In eval mode, on the CPU.
    plan : Plan
        Input channels, dimensionality and patch size (the example input).
    dynamic : bool
        Dynamic batch and spatial sizes; else the spatial sizes are the plan's patch
        (the batch stays dynamic).
    opset : int
        ONNX opset version.

    Returns
    -------
    bytes
        The serialised model.

    Raises
    ------
    RuntimeError, ValueError, TypeError
        What the exporter raises for a network it cannot trace.
    """
    x = torch.zeros((1, plan.in_channels) + tuple(int(p) for p in plan.patch_size))
    axes: dict[int, str] = {0: "batch"}
    if dynamic:
        axes.update({i + 2: f"s{i}" for i in range(plan.dims)})
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter notes on instance norm in eval mode (exported correctly)
        torch.onnx.export(net, (x,), buf, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": axes, "logits": axes}, opset_version=opset, dynamo=False)
    return buf.getvalue()


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
        if net_info(plan.net).no_onnx:  # the predictor falls back to torch
            raise RuntimeError(f"{plan.net} does not export to ONNX: {net_info(plan.net).no_onnx}")
        net = net.to(memory_format=torch.contiguous_format)
        graph = export_graph(net, plan, dynamic=not net_info(plan.net).fixed_input)
        self.session = ort.InferenceSession(graph, _session_options(ort), providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"image": np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)

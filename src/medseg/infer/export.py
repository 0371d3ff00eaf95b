"""ONNX export of a trained fold network (for deployment with ONNX Runtime).

Examples
--------
>>> export_onnx("model_dir", "net.onnx", fold=0)       # doctest: +SKIP
PosixPath('net.onnx')
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from medseg.contract import read_model_info
from medseg.dl.network import load_fold_net
from medseg.dl.plan import plan_from_dict
from medseg.errors import DependencyError, ModelError
from medseg.io.atomic import atomic_path

__all__ = ["export_onnx"]


def export_onnx(model_dir: str | Path, out: str | Path, *, fold: int | None = None,
                checkpoint: str = "last", opset: int = 17) -> Path:
    """Export one fold's network of a ``unet`` model folder to ONNX (written atomically).

    The graph takes the preprocessed input ``(N, C, *spatial)`` (see ``plan.json`` for
    normalisation and spacing) with dynamic batch and spatial sizes, and returns logits
    ``(N, K, *spatial)``; spatial sizes must be multiples of ``2 ** (len(channels) - 1)``.

    Parameters
    ----------
    model_dir : str or Path
        A ``unet`` model folder.
    out : str or Path
        The ``.onnx`` file to write.
    fold : int, optional
        The fold to export (default: the first trained one).
    checkpoint : str
        ``"last"`` or ``"best"``.
    opset : int
        ONNX opset version.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    DependencyError
        The ``onnx`` package is not installed.
    ModelError
        Not a ``unet`` model folder, or the fold was not trained.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
    except ImportError:
        raise DependencyError("ONNX export needs the 'onnx' package: pip install onnx") from None
    d = Path(model_dir)
    info = read_model_info(d)
    if "plan" not in info:
        raise ModelError(f"{d}: not a unet model folder (no plan in model.json)")
    plan = plan_from_dict(info["plan"])
    folds = list(info.get("folds", [0]))
    k = folds[0] if fold is None else fold
    if k not in folds:
        raise ModelError(f"fold {k} was not trained in {d}; trained: {folds}")
    net = load_fold_net(d / f"fold_{k}", plan, "cpu", f"checkpoint_{checkpoint}.pt")
    x = torch.zeros((1, plan.in_channels) + tuple(plan.patch_size))
    axes = {0: "batch", **{i + 2: f"s{i}" for i in range(plan.dims)}}
    out = Path(out)
    with atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter notes on instance norm in eval mode (exported correctly)
        torch.onnx.export(net, (x,), str(tmp), input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": axes, "logits": axes}, opset_version=opset, dynamo=False)
    return out

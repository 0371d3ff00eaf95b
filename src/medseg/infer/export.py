"""ONNX export of a trained fold network with its preprocessing (``medseg export``), and the
exported model applied to images (`OnnxModel`, ``medseg predict NAME.onnx IN OUT``).

Beside the graph ``NAME.onnx`` goes ``NAME.onnx.json``: the plan (per-channel normalisation,
target spacing, patch size, classes) and the inference settings of the model folder (window
and overlap, Gaussian weighting, mirroring axes, temperature, post-processing), so that
``medseg predict NAME.onnx IN OUT`` (`OnnxModel`) — or any
ONNX Runtime user who follows the description — reproduces ``medseg predict MODEL_DIR IN OUT``.

The graph takes the preprocessed input ``(N, C, *spatial)`` and returns logits
``(N, K, *spatial)``, with a dynamic batch; the spatial sizes are dynamic (multiples of the
network's divisor) where the traced graph is verified to give the network's result at
another size than the patch, else fixed to the patch (networks built for one input size,
``unetr``, ``unet-convlstm``, and those whose trace bakes sizes in, ``swin-unetr``).

Examples
--------
>>> export_onnx("model_dir", "net.onnx", fold=0)       # doctest: +SKIP
PosixPath('net.onnx')
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.contract import check_input, label_like, read_model_info
from medseg.dl.network import load_fold_net
from medseg.dl.plan import Plan, plan_from_dict
from medseg.errors import ConfigError, DependencyError, InputError, ModelError, require
from medseg.image import Image
from medseg.infer.onnx_runtime import ONNX_FORMAT, _session_options, export_graph, sidecar_path
from medseg.infer.predictor import Predictor
from medseg.io.atomic import atomic_path
from medseg.nets import net_divisor, net_info
from medseg.postprocess import apply_rules

log = logging.getLogger(__name__)

__all__ = ["OnnxModel", "OnnxParams", "export_onnx", "onnx_graph"]

#: largest difference in logits between ONNX Runtime and torch for a graph to count as correct
TOLERANCE = 1e-3


def _agrees(graph: bytes, net: torch.nn.Module, shapes: list[tuple[int, ...]]) -> str:
    """Why ONNX Runtime's results on ``shapes`` (batch 2) differ from ``net``'s ("" when they agree)."""
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - any runtime refusal means the graph is unusable
        return f"ONNX Runtime cannot load the graph ({str(exc).splitlines()[0][:200]})"
    gen = torch.Generator().manual_seed(0)
    for shape in shapes:
        x = torch.randn((2,) + shape, generator=gen)
        with torch.no_grad():
            ref = net(x).numpy()
        try:
            out = sess.run(None, {"image": x.numpy()})[0]
        except Exception as exc:  # noqa: BLE001 - the graph fails at this size
            return f"fails at {'x'.join(map(str, shape[1:]))} ({str(exc).splitlines()[0][:200]})"
        if out.shape != ref.shape:
            return f"gives shape {out.shape} for {ref.shape} at {'x'.join(map(str, shape[1:]))}"
        err = float(np.abs(out - ref).max())
        if not err <= TOLERANCE:
            return f"differs from the network by {err:.2g} at {'x'.join(map(str, shape[1:]))}"
    return ""


def onnx_graph(net: torch.nn.Module, plan: Plan, *, opset: int = 17) -> tuple[bytes, bool]:
    """The verified ONNX graph of a plan's network and whether its spatial sizes are dynamic.

    A dynamic graph is checked against the network at the patch and one divisor larger on
    every axis; one that differs (or a network built for one input size) is exported for the
    patch size instead, and checked there.

    Parameters
    ----------
    net : torch.nn.Module
        In eval mode, on the CPU.
    plan : Plan
    opset : int

    Returns
    -------
    (bytes, bool)
        The serialised graph; True when its spatial sizes are dynamic.

    Raises
    ------
    ModelError
        The network cannot be exported (the message names why).
    """
    why_not = net_info(plan.net).no_onnx
    if why_not:
        raise ModelError(f"network '{plan.net}' cannot be exported to ONNX: {why_not}; predict with the model folder")
    patch = tuple(int(p) for p in plan.patch_size)
    c = int(plan.in_channels)
    reasons = []
    if not net_info(plan.net).fixed_input:
        div = net_divisor(plan.net, plan.channels)
        try:
            graph = export_graph(net, plan, dynamic=True, opset=opset)
            why = _agrees(graph, net, [(c,) + patch, (c,) + tuple(p + div for p in patch)])
        except (RuntimeError, ValueError, TypeError) as exc:
            why = f"export with dynamic sizes failed ({str(exc).strip().splitlines()[0][:200]})"
        if not why:
            return graph, True
        reasons.append(why)
        log.info("%s: the graph with dynamic sizes %s; exporting for the patch size %s", plan.net, why,
                 "x".join(map(str, patch)))
    try:
        graph = export_graph(net, plan, dynamic=False, opset=opset)
        why = _agrees(graph, net, [(c,) + patch])
    except (RuntimeError, ValueError, TypeError) as exc:
        why = f"export failed ({str(exc).strip().splitlines()[0][:200]})"
    if why:
        reasons.append(why)
        raise ModelError(f"network '{plan.net}' cannot be exported to ONNX: {'; '.join(reasons)}")
    return graph, False


def _description(info: dict[str, Any], plan: Plan, *, fold: int, checkpoint: str, dynamic: bool,
                 onnx_name: str, model_dir: Path) -> dict[str, Any]:
    """The preprocessing and inference description written beside the graph."""
    mirror = list(plan.mirror_axes) if getattr(plan, "aug_strength", 1.0) >= 0.5 else []
    window = str(info.get("inference_window", "patch"))
    if net_info(plan.net).fixed_input or not dynamic:
        window = "patch"
    return {
        "format": ONNX_FORMAT, "format_version": 1, "onnx": onnx_name, "model": str(model_dir), "fold": fold,
        "checkpoint": checkpoint, "net": plan.net,
        "input": {"name": "image", "shape": ["N", plan.in_channels] + (["*"] * plan.dims if dynamic else
                                                                        list(plan.patch_size)),
                  "dtype": "float32", "dynamic_spatial": dynamic,
                  "spatial_multiple": net_divisor(plan.net, plan.channels) if dynamic else None},
        "output": {"name": "logits", "shape": ["N", plan.n_classes, "*spatial"], "activation": "softmax over axis 1 "
                   "of logits / temperature"},
        "preprocessing": {
            "axes": "channel first, then spatial axes in NumPy order ((y, x) or (z, y, x))",
            "order": "normalise each channel, then resample to target_spacing",
            "normalisation": list(plan.normalisation), "ct_stats": [list(s) for s in plan.ct_stats],
            "zscore": "per image and channel: (x - mean) / max(std, 1e-6)",
            "ct": "per channel: (clip(x, lo, hi) - mean) / max(std, 1e-6) with ct_stats (lo, hi, mean, std)",
            "target_spacing": list(plan.target_spacing),
            "resampling": "unless every spacing / target_spacing is within 1 % of 1: "
                          "scipy.ndimage.zoom(order=3, mode='nearest', grid_mode=True) by spacing / target_spacing; "
                          "probabilities go back with linear interpolation (align_corners=False), renormalised",
            "channel_names": list(plan.channel_names)},
        "inference": {"patch_size": list(plan.patch_size), "window": window, "overlap": 0.5,
                      "blend": "gaussian, sigma 0.125 of the window", "padding": "constant 0",
                      "tta": bool(mirror), "mirror_axes": mirror,
                      "temperature": float(info.get("temperature", 1.0))},
        "class_names": dict(plan.class_names), "postprocessing": info.get("postprocessing"),
        "plan": plan.to_json(),
    }


def export_onnx(model_dir: str | Path, out: str | Path, *, fold: int | None = None,
                checkpoint: str = "last", opset: int = 17) -> Path:
    """Export one fold's network of a ``unet`` model folder to ONNX with its preprocessing.

    Writes ``out`` (the graph) and ``out + ".json"`` (the description
    `OnnxModel` reads), both atomically.

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
        The ``onnx`` or ``onnxruntime`` package is not installed.
    ModelError
        Not a ``unet`` model folder, the fold was not trained, or the network cannot be
        exported (the message names why).
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401  (the export is verified with it)
    except ImportError:
        raise DependencyError("ONNX export needs the 'onnx' and 'onnxruntime' packages: "
                              "pip install onnx onnxruntime") from None
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
    graph, dynamic = onnx_graph(net, plan, opset=opset)
    out = Path(out)
    desc = _description(info, plan, fold=k, checkpoint=checkpoint, dynamic=dynamic, onnx_name=out.name, model_dir=d)
    if desc["inference"]["window"] != str(info.get("inference_window", "patch")):
        log.warning("the ONNX graph runs windows of the patch size %s; the model folder uses %s windows, so "
                    "`medseg predict %s` matches it with --window patch", "x".join(map(str, plan.patch_size)),
                    info.get("inference_window"), d)
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(graph)
    with atomic_path(sidecar_path(out)) as tmp:
        Path(tmp).write_text(json.dumps(desc, indent=2))
    return out


class _SessionNet(torch.nn.Module):
    """An ONNX Runtime session called like a network (for the predictor's windows)."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"image": np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)


@dataclass(frozen=True)
class OnnxParams:
    """Prediction options of an exported model (``medseg predict model.onnx ...`` flags); the
    defaults are those the export recorded, i.e. what ``medseg predict MODEL_DIR`` does.

    Parameters
    ----------
    tta, overlap, window, temperature, postprocess
        See each field's ``help``.
    """

    tta: bool = field(default=True, metadata={"help": "mirroring test-time augmentation (along the axes the "
                                                      "export recorded; none when training showed few flips)"})
    overlap: float | None = field(default=None, metadata={
        "help": "sliding-window overlap fraction (default: the export's)"})
    window: str = field(default="auto", metadata={
        "help": "'auto' (the export's: the model's inference_window), 'patch' or 'image' (a graph exported for one "
                "input size always runs patch windows)"})
    temperature: bool = field(default=True, metadata={"help": "divide the logits by the exported temperature"})
    postprocess: bool = field(default=True, metadata={"help": "apply the exported post-processing rules"})


class OnnxModel:
    """An exported model (``NAME.onnx`` + ``NAME.onnx.json``) as a segmenter.

    The same windows, Gaussian weighting, mirroring, temperature, resampling and
    post-processing as the model folder's predictor, the network run by ONNX Runtime.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file written by [`medseg.infer.export.export_onnx`][].
    params : OnnxParams or dict, optional
        Prediction options.

    Raises
    ------
    ModelError
        No graph, or no (or a corrupt) preprocessing description beside it.
    DependencyError
        ``onnxruntime`` is not installed.
    """

    name = "onnx"
    family = "dl"

    def __init__(self, path: str | Path, params: OnnxParams | dict[str, Any] | None = None) -> None:
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"{p}: no such ONNX file")
        side = sidecar_path(p)
        if not side.is_file():
            raise ModelError(f"{p}: its preprocessing description {side.name} is missing (medseg export writes "
                             "both files; keep them together)")
        try:
            info = json.loads(side.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"{side}: corrupt preprocessing description ({exc})") from None
        if not isinstance(info, dict) or info.get("format") != ONNX_FORMAT or "plan" not in info:
            raise ModelError(f"{side}: not a medseg ONNX preprocessing description")
        self.params = params if isinstance(params, OnnxParams) else OnnxParams(**dict(params or {}))
        self.info = info
        self.plan = plan_from_dict(info["plan"])
        inf = info.get("inference", {})
        window = self.params.window if self.params.window != "auto" else str(inf.get("window", "patch"))
        if not info.get("input", {}).get("dynamic_spatial", True):
            window = "patch"
        ort = require("onnxruntime", purpose="ONNX models")
        session = ort.InferenceSession(str(p), _session_options(ort), providers=["CPUExecutionProvider"])
        temperature = float(inf.get("temperature", 1.0)) if self.params.temperature else 1.0
        overlap = float(inf.get("overlap", 0.5)) if self.params.overlap is None else self.params.overlap
        tta = self.params.tta and bool(inf.get("tta", True))
        self.predictor = Predictor([_SessionNet(session)], self.plan, tta=tta, overlap=overlap, device="cpu",
                                   backend="torch", window=window, compile="off", temperature=temperature)

    def _check(self, image: Image | np.ndarray) -> Image:
        img = check_input(image)
        if len(img.spacing) != self.plan.dims:
            raise InputError(f"this model segments {self.plan.dims}D images; got a {len(img.spacing)}D image")
        return img

    def predict_proba(self, image: Image) -> Image:
        """Class probabilities ``(K, *image.shape)`` on ``image``'s grid."""
        return self.predictor.predict_proba(self._check(image))

    def __call__(self, image: Image) -> Image:
        """The label map of ``image`` (with the exported post-processing rules)."""
        img = self._check(image)
        lab = np.argmax(self.predictor.predict_proba(img).array, axis=0).astype(np.uint8)
        if self.params.postprocess:
            lab = apply_rules(lab, self.info.get("postprocessing"))
        return label_like(img, lab, method="unet")

    @classmethod
    def from_tokens(cls, path: str | Path, tokens: list[str] | tuple[str, ...] = ()) -> OnnxModel:
        """The model with options given as ``--name value`` tokens (``medseg predict``).

        Raises
        ------
        ConfigError
            An unknown or invalid option.
        """
        from medseg.config.tokens import params_from_tokens  # deferred: only the CLI needs it

        params, rest = params_from_tokens(OnnxParams, list(tokens), what="an ONNX model")
        if rest:
            raise ConfigError(f"unknown option {rest[0]} for an ONNX model")
        return cls(path, params)

"""The predictor behind ``medseg predict`` for deep-learning models.

Windows of the training patch size are run in batches under ``torch.inference_mode``
through MONAI's :func:`~monai.inferers.sliding_window_inference` with Gaussian
weighting. Mirroring test-time augmentation averages the
softmax over flips; several fold networks are averaged likewise. Probabilities are
resampled back to the input grid when the plan resampled the image.

Memory: the whole-image tensors are few — the inferer's output (with its weight map), one
running sum, one mirrored copy; the softmax and the averaging work in place. On a GPU the
windows always run there, and the stitching moves to CPU memory when those copies would
not fit in half the GPU's free memory (so a large CT volume does not run the GPU out of
memory). A single "image" window is bounded by ``max_window_voxels``.
"""
from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from medseg.image import Image
from medseg.train.data import preprocess

log = logging.getLogger(__name__)

__all__ = ["WINDOW_TOLERANCE", "Predictor", "keep_largest_component", "postprocess"]

#: ``medseg train`` keeps whole-image windows when their mean validation Dice is at most this
#: much below that of training-size windows (see :class:`Predictor`'s ``window``)
WINDOW_TOLERANCE = 0.001


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of a boolean ``mask`` (any dimensionality)."""
    lab, n = ndi.label(mask)
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def postprocess(labels: np.ndarray, rules: Mapping[str, str] | None) -> np.ndarray:
    """Apply per-class rules ``{"1": "largest"}`` to a label map (others left unchanged)."""
    if not rules:
        return labels
    out = labels.copy()
    for cls, rule in rules.items():
        if rule == "largest":
            c = int(cls)
            m = labels == c
            if m.any():
                out[m & ~keep_largest_component(m)] = 0
    return out


def _softmax_(t: torch.Tensor) -> torch.Tensor:
    """Softmax over the class axis (1), in place: no second full-size tensor."""
    t.sub_(t.amax(dim=1, keepdim=True)).exp_()
    return t.div_(t.sum(dim=1, keepdim=True))


class Predictor:
    """Class probabilities from one or more trained networks of one plan.

    Parameters
    ----------
    nets : networks (eval mode is set here), one per fold.
    plan : the model's :class:`~medseg.train.plan.Plan`.
    tta : average over mirrored inputs along the plan's mirror axes (only when the plan's
        ``aug_strength`` is at least 0.5, i.e. training showed mirrored inputs often).
    overlap : window overlap fraction (0 <= overlap < 1).
    sw_batch_size : windows per forward pass; default from the patch size.
    device : "cpu", "cuda" or "auto".
    channels_last : on CPU, convert the networks (in place) to channels-last memory layout
        (off by default: measured slower than the default layout with 2 threads, 0.41 vs
        0.35 s per DRIVE image with 128x128 windows and 0.17 vs 0.14 s with one whole-image
        window; ``benchmarks/results/dl.md``).
    window : "patch" — windows of the training patch size (nnU-Net's way), or "image" —
        one window over the whole (padded) image when it has at most ``max_window_voxels``
        voxels, else the largest windows under that bound. With instance normalisation a
        window's statistics then cover more context than in training, so
        ``medseg train`` measures both on the validation cases and keeps "image" only where
        its Dice is within ``WINDOW_TOLERANCE`` of "patch" (it needs far fewer voxels:
        DRIVE 565x584 with 128x128 patches at overlap 0.25 runs 36 windows = 1.7x the
        image's voxels).
    max_window_voxels : memory bound of one "image" window (default 2**21 voxels).
    backend : "torch", "onnx" to run the windows with ONNX Runtime on the CPU (each network
        is exported once, in memory; needs the ``onnx`` and ``onnxruntime`` packages), or
        "auto": onnx on the CPU with one torch thread when both packages are installed,
        torch otherwise (``benchmarks/bench_dl_infer.py`` on DRIVE: one thread, whole-image
        window, 0.230 s ONNX Runtime vs 0.258 s torch per image; two threads 0.148 vs 0.141 s).
    """

    def __init__(self, nets: Sequence[torch.nn.Module], plan, *, tta: bool = True, overlap: float = 0.5,
                 sw_batch_size: int | None = None, device: str = "auto", channels_last: bool = False,
                 backend: str = "torch", window: str = "patch", max_window_voxels: int | None = None) -> None:
        from medseg.errors import ConfigError

        if window not in ("patch", "image"):
            raise ConfigError(f"unknown inference window '{window}'; choose patch or image")
        if not 0 <= overlap < 1:
            raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
        if backend not in ("torch", "onnx", "auto"):
            raise ConfigError(f"unknown inference backend '{backend}'; choose auto, torch or onnx")
        self.device = torch.device(resolve_device(device))
        if backend == "auto":
            one_thread = torch.get_num_threads() == 1
            backend = "onnx" if self.device.type == "cpu" and one_thread and _onnx_available() else "torch"
        if backend == "onnx" and self.device.type != "cpu":
            raise ConfigError("the onnx backend runs on the CPU; use --device cpu or the torch backend")
        self.nets = [n.to(self.device).eval() for n in nets]
        self._onnx = None
        if backend == "onnx":
            try:
                self._onnx = [_OnnxNet(n, plan) for n in self.nets]
            except (RuntimeError, ValueError, TypeError) as exc:  # exporter/runtime limits of this network
                log.warning("ONNX Runtime backend unavailable for this network (%s); using torch", exc)
        if self._onnx is not None:
            self._fmt = None
        elif self.device.type == "cpu" and channels_last:
            fmt = torch.channels_last if plan.dims == 2 else torch.channels_last_3d
            self.nets = [n.to(memory_format=fmt) for n in self.nets]
            self._fmt = fmt
        else:
            self._fmt = None
        self.plan = plan
        self.tta = tta
        self.overlap = overlap
        self.window = window
        self.max_window_voxels = int(max_window_voxels or 2 ** 21)
        vox = float(np.prod(plan.patch_size))
        self.sw_batch_size = sw_batch_size or max(1, int(2 ** 18 // vox) if plan.dims == 2 else int(2 ** 19 // vox))

    def _mirrors(self) -> list[tuple[int, ...]]:
        # mirroring TTA only for networks trained with flips at least half the time
        # (a short schedule's weak augmentation rarely showed them mirrored inputs)
        if not self.tta or getattr(self.plan, "aug_strength", 1.0) < 0.5:
            return [()]
        axes = [a + 2 for a in self.plan.mirror_axes]
        return [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]

    @torch.inference_mode()
    def probabilities(self, array: np.ndarray) -> np.ndarray:
        """Softmax ``(K, *spatial)`` for a preprocessed ``(C, *spatial)`` array."""
        from monai.inferers import sliding_window_inference

        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None].to(self.device)
        run = self._onnx or self.nets
        if self._fmt is not None:
            fmt = self._fmt
            run = [lambda t, n=n: n(t.contiguous(memory_format=fmt)) for n in self.nets]
        patch = self.window_size(tuple(x.shape[2:]))
        bs = self.sw_batch_size if self.window == "patch" else max(1, self.sw_batch_size * int(
            np.prod(self.plan.patch_size)) // int(np.prod(patch)))
        single = self.window == "image" and all(w >= s for w, s in zip(patch, x.shape[2:]))
        if single:  # centred like MONAI's padding of an image smaller than the window
            extra = [w - s for w, s in zip(patch, x.shape[2:])]
            pad = [v for e in reversed(extra) for v in (e // 2, e - e // 2)]
            crop = (slice(None), slice(None)) + tuple(slice(e // 2, e // 2 + s) for e, s in zip(extra, x.shape[2:]))
        acc = None
        n = 0
        use_amp = self.device.type == "cuda"
        out_device = self._output_device(x)
        for net in run:
            for flip in self._mirrors():
                xi = torch.flip(x, flip) if flip else x
                with torch.autocast(self.device.type, enabled=use_amp):
                    if single:  # one window: pad with zeros as the inferer does, run, crop
                        logits = net(F.pad(xi, pad) if any(pad) else xi)[crop]
                    else:
                        logits = sliding_window_inference(xi, patch, bs, net, overlap=self.overlap,
                                                          mode="gaussian", sigma_scale=0.125,
                                                          padding_mode="constant", sw_device=self.device,
                                                          device=out_device)
                del xi
                p = _softmax_(logits.float().to(out_device))
                del logits
                if flip:
                    p = torch.flip(p, flip)
                if acc is None:
                    acc = p
                else:
                    acc.add_(p)
                del p
                n += 1
        if n > 1:
            acc.div_(n)
        return np.ascontiguousarray(acc[0].cpu().numpy())

    def _output_device(self, x: torch.Tensor) -> torch.device:
        """Where the whole-image logits and probabilities live: the GPU when about four
        full-size copies (the inferer's output and weights, the running sum, a mirrored
        copy) fit in half its free memory, else the CPU (the windows still run on the GPU)."""
        if self.device.type != "cuda":
            return self.device
        need = 4 * 4 * self.plan.n_classes * int(np.prod(x.shape[2:]))
        free, _ = torch.cuda.mem_get_info(self.device)
        if need <= free // 2:
            return self.device
        log.info("volume of %s voxels: stitching the windows in CPU memory (%.1f GB needed, %.1f GB free "
                 "on the GPU)", "x".join(map(str, x.shape[2:])), need / 1e9, free / 1e9)
        return torch.device("cpu")

    def window_size(self, shape: tuple[int, ...]) -> list[int]:
        """The sliding-window size for a preprocessed image of spatial ``shape``."""
        patch = [int(p) for p in self.plan.patch_size]
        if self.window == "patch":
            return patch
        from medseg.nets import net_divisor

        div = net_divisor(self.plan.net, self.plan.channels)
        win = [max(p, -(-int(s) // div) * div) for p, s in zip(patch, shape)]  # whole image, padded
        while int(np.prod(win)) > self.max_window_voxels:  # too large: halve the longest axis
            ax = int(np.argmax([w / p for w, p in zip(win, patch)]))
            if win[ax] <= patch[ax]:
                break
            win[ax] = max(patch[ax], -(-(win[ax] // 2) // div) * div)
        return win

    def predict_proba(self, image: Image) -> Image:
        """Channel-first class probabilities ``(K, *image.shape)`` on ``image``'s grid."""
        a, f = preprocess(image, self.plan)
        p = self.probabilities(a)
        if f is not None:
            t = torch.from_numpy(p)[None]
            mode = "bilinear" if self.plan.dims == 2 else "trilinear"
            p = F.interpolate(t, size=tuple(image.shape), mode=mode, align_corners=False)[0].numpy()
            p = p / np.clip(p.sum(0, keepdims=True), 1e-6, None)
        return Image(p.astype(np.float32), image.spacing, image.origin, image.direction, dict(image.meta))

    def predict(self, image: Image, postprocessing: Mapping[str, str] | None = None) -> np.ndarray:
        """Label map ``(*image.shape)`` (uint8) for ``image``."""
        p = self.predict_proba(image).array
        lab = np.argmax(p, axis=0).astype(np.uint8)
        return postprocess(lab, postprocessing)


def resolve_device(device: str) -> str:
    from medseg.errors import ConfigError

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested but no CUDA GPU is available; use --device cpu")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ConfigError(f"unknown device '{device}'; choose auto, cpu or cuda")
    return device


def _onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


class _OnnxNet:
    """A network exported to ONNX (in memory) and run with ONNX Runtime: ``(N,C,*P) -> logits``."""

    def __init__(self, net: torch.nn.Module, plan) -> None:
        import io

        from medseg.errors import require

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
        so.log_severity_level = 3
        self.session = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"image": np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)

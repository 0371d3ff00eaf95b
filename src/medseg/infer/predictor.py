"""The predictor behind ``medseg predict`` for deep-learning models.

Windows of the training patch size, spread evenly over the image (nnU-Net's layout, see
:func:`window_overlaps`), are run in batches under ``torch.inference_mode`` through MONAI's
:func:`~monai.inferers.sliding_window_inference` with Gaussian weighting. Mirroring test-time augmentation averages the
softmax over flips; several fold networks are averaged likewise. Probabilities are
resampled back to the input grid when the plan resampled the image.

Memory: the whole-image tensors are few — the inferer's output (with its weight map), one
running sum, one mirrored copy; the softmax and the averaging work in place. On a GPU the
windows always run there, and the stitching moves to CPU memory when those copies would
not fit in half the GPU's free memory (so a large CT volume does not run the GPU out of
memory). A single "image" window is bounded by ``max_window_voxels``.

Speed: with ``compile="auto"`` (what ``medseg predict`` uses) a window shape that has kept the
CPU busy for :data:`COMPILE_AFTER_S` seconds of eager forward passes is compiled with
``torch.compile`` and runs compiled from then on (1.3-1.5x faster per window on a 2-core
CPU, 2D and 3D; compiling takes 10-20 s once per shape and process), so a long job — a
large volume, a folder of same-size images — gains and a short one never waits for a
compiler (``benchmarks/bench_dl_infer.py``).
"""
from __future__ import annotations

import itertools
import logging
import time
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from medseg.image import Image
from medseg.train.data import preprocess

log = logging.getLogger(__name__)

__all__ = ["COMPILE_AFTER_S", "WINDOW_TOLERANCE", "Predictor", "keep_largest_component", "postprocess",
           "window_overlaps"]

#: under ``compile="auto"`` a window shape is compiled once this many seconds of eager
#: forward passes have been spent on it. Compiling a U-Net takes 10-20 s on a 2-core CPU the
#: first time and ~5 s once torch's on-disk compile cache has it, and then saves 25-35 % of
#: every pass: a job long enough to get here loses at most a third of its time to the
#: compiler, and one of a few minutes (a large volume, a folder) gains it back
COMPILE_AFTER_S = 60.0

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


def _compiling() -> bool:
    """Whether ``torch.compile`` is tracing (it lowers convolutions itself)."""
    fn = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(fn()) if fn is not None else False


class _OneDnnConv3d(torch.nn.Conv3d):
    """A ``Conv3d`` that always runs oneDNN (mkldnn) on the CPU in float32.

    PyTorch picks its unfold-based ``slow_conv3d`` for a single sample whose
    ``C x D x H`` is small (a heuristic made for 2D): every window of a small 3D patch run one
    at a time — one window per image, as for MSD Hippocampus, or a validation case — then
    costs 2.7x more (82 vs 30 ms for a 16-32-64-128 U-Net on 48x64x48, 2 threads). Results
    agree to float rounding (~1e-5)."""

    def _conv_forward(self, input, weight, bias):  # noqa: A002 - torch's signature
        if (input.device.type == "cpu" and input.dtype == torch.float32 and self.padding_mode == "zeros"
                and not torch.is_grad_enabled() and not isinstance(self.padding, str) and not _compiling()):
            return torch.ops.aten.mkldnn_convolution(input, weight, bias, self.padding, self.stride, self.dilation,
                                                     self.groups)
        return super()._conv_forward(input, weight, bias)


def _onednn_conv3d(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` whose ``Conv3d`` layers run oneDNN for single samples (see
    :class:`_OneDnnConv3d`); ``net`` itself is left as it is (it may be training)."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.aten, "mkldnn_convolution")):
        return net
    if not any(type(m) is torch.nn.Conv3d for m in net.modules()):
        return net
    import copy

    net = copy.deepcopy(net)
    for m in net.modules():
        if type(m) is torch.nn.Conv3d:
            m.__class__ = _OneDnnConv3d
    return net


def window_overlaps(shape: Sequence[int], window: Sequence[int], overlap: float) -> list[float]:
    """Per-axis overlaps for MONAI's sliding window that lay the windows out evenly.

    Along each axis the windows are about the fewest whose neighbours overlap by at least
    ``overlap`` (a fraction of the window), ``n = ceil((L - W) / (W (1 - overlap))) + 1``,
    spread evenly over ``[0, L - W]`` (nnU-Net's step computation). MONAI steps by whole
    voxels, ``int(W (1 - overlap))``; the returned fraction makes that step
    ``ceil((L - W) / (n - 1))``, so it runs those windows (fewer where rounding the step up
    to a whole voxel allows, the overlap then short of ``overlap`` by under one voxel), the
    last one flush with the image's edge. Axes no longer than the window get 0 (one window,
    padded)."""
    out = []
    for length, win in zip(shape, window):
        length, win = int(length), int(win)
        if length <= win:
            out.append(0.0)
            continue
        n = int(np.ceil((length - win) / (win * (1.0 - overlap)))) + 1
        step = -(-(length - win) // (n - 1))
        out.append(max(0.0, 1.0 - (step + 0.5) / win))  # int(win * (1 - o)) == step
    return out


class _TieredNet:
    """A network run eagerly that switches to ``torch.compile`` per input shape.

    ``mode`` "on" compiles each window shape on first sight, "auto" once the eager passes on
    that shape took :data:`COMPILE_AFTER_S` seconds, "off" never. Shapes are keyed without
    the batch axis: a smaller last batch is zero-padded to the compiled batch (samples are
    independent: instance/batch statistics are per window in eval mode) — or run eagerly
    when under two thirds full, where padding would cost more than the compiled speed-up
    saves — and a larger one is run in chunks, so each window shape compiles once. Where compiling fails (no C++
    compiler, an operator the compiler does not support) one warning is logged and the
    network runs eagerly from then on. Compiled results differ from eager ones by float
    rounding only (~1e-5 on logits); ``compile="off"`` keeps results bit-reproducible. The
    compiled graph holds a frozen copy of the weights: a network changed after its first
    compiled pass needs a new predictor."""

    def __init__(self, net: torch.nn.Module, mode: str) -> None:
        self.net = net
        self.mode = mode
        self.eager_s: dict[tuple[int, ...], float] = {}
        self.batch: dict[tuple[int, ...], int] = {}  # compiled shapes -> their batch size
        self.compile_s: dict[tuple[int, ...], float] = {}
        self._compiled = None
        self._failed = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape[1:])
        bs = self.batch.get(key)
        if bs is not None:
            n = x.shape[0]
            if n == bs:
                return self._run(x)
            if 3 * n < 2 * bs:  # a short last batch: padding would cost more than compiling saves
                return self.net(x)
            if n < bs:
                pad = x.new_zeros((bs - n,) + key)
                return self._run(torch.cat([x, pad]))[:n]
            return torch.cat([self(x[i:i + bs]) for i in range(0, n, bs)])
        t = time.perf_counter()
        y = self.net(x)
        if self.mode != "off" and not self._failed:
            self.eager_s[key] = self.eager_s.get(key, 0.0) + time.perf_counter() - t
            if self.mode == "on" or self.eager_s[key] >= COMPILE_AFTER_S:
                self._compile(x)
        return y

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The compiled network; compilations it triggers freeze the weights into the graph
        (Inductor's ``freezing``: constant folding and prepacked oneDNN convolutions — without
        it a single 3D window ran at uncompiled single-sample speed, 70-80 vs 20 ms)."""
        import torch._inductor.config as inductor_config

        with inductor_config.patch(freezing=True):
            return self._compiled(x)

    def _compile(self, x: torch.Tensor) -> None:
        key = tuple(x.shape[1:])
        t = time.perf_counter()
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.net, dynamic=False)
            self._run(x)  # compiles now, so that a failure shows here and not mid-image
        except Exception as e:  # noqa: BLE001 - any failure means: stay eager
            self._failed = True
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            log.warning("torch.compile is not available for inference here (%s); running uncompiled", msg)
            return
        self.compile_s[key] = time.perf_counter() - t
        self.batch[key] = int(x.shape[0])
        log.info("network compiled for %s windows of %s in %.0f s", x.shape[0], "x".join(map(str, key[1:])),
                 self.compile_s[key])


class Predictor:
    """Class probabilities from one or more trained networks of one plan.

    Parameters
    ----------
    nets : networks (eval mode is set here), one per fold.
    plan : the model's :class:`~medseg.train.plan.Plan`.
    tta : average over mirrored inputs along the plan's mirror axes (only when the plan's
        ``aug_strength`` is at least 0.5, i.e. training showed mirrored inputs often).
    overlap : the least overlap between neighbouring windows, as a fraction of the window
        (0 <= overlap < 1). As in nnU-Net, the number of windows along an axis is the fewest
        with at least that overlap, and they are spread evenly, so the image's far edge gets no
        narrower seam than the others (MONAI's fixed step leaves seams of a few pixels, or
        none at overlap 0: on DRIVE at overlap 0, the same 25 windows spread evenly scored F1
        +0.0055 and +0.0013 over MONAI's layout with two models; ``benchmarks/results/dl.md``).
        See :func:`window_overlaps`.
    sw_batch_size : windows per forward pass; default 2**17 voxels in 2D (8 windows of 128x128:
        fastest of 2-16 on a 2-core CPU, compiled or not), 2**19 in 3D; on a GPU up to 2**20
        (2D) / 2**22 (3D) voxels as its free memory allows.
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
    compile : "off" (default here), "on" or "auto" — ``torch.compile`` the networks for the
        torch backend: "on" compiles each window shape on first use, "auto" (``medseg
        predict``'s default, on the CPU) once eager passes on a shape took
        :data:`COMPILE_AFTER_S` seconds; see :class:`_TieredNet`.
    backend : "torch", "onnx" to run the windows with ONNX Runtime on the CPU (each network
        is exported once, in memory; needs the ``onnx`` and ``onnxruntime`` packages), or
        "auto": onnx on the CPU with one torch thread when both packages are installed,
        torch otherwise (``benchmarks/bench_dl_infer.py`` on DRIVE: one thread, whole-image
        window, 0.230 s ONNX Runtime vs 0.258 s torch per image; two threads 0.148 vs 0.141 s).
    """

    def __init__(self, nets: Sequence[torch.nn.Module], plan, *, tta: bool = True, overlap: float = 0.5,
                 sw_batch_size: int | None = None, device: str = "auto", channels_last: bool = False,
                 backend: str = "torch", window: str = "patch", max_window_voxels: int | None = None,
                 compile: str = "off") -> None:
        from medseg.errors import ConfigError

        if window not in ("patch", "image"):
            raise ConfigError(f"unknown inference window '{window}'; choose patch or image")
        if not 0 <= overlap < 1:
            raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
        if backend not in ("torch", "onnx", "auto"):
            raise ConfigError(f"unknown inference backend '{backend}'; choose auto, torch or onnx")
        if compile not in ("off", "on", "auto"):
            raise ConfigError(f"--compile must be auto, on or off, got {compile!r}")
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
        if self._onnx is None and self.device.type == "cpu":
            self.nets = [_onednn_conv3d(n) for n in self.nets]
        if compile == "auto" and self.device.type != "cpu":
            compile = "off"  # measured on the CPU only; "on" compiles anywhere
        self._tiered = None
        if self._onnx is None and compile != "off":
            self._tiered = [_TieredNet(n, compile) for n in self.nets]
        self.plan = plan
        self.tta = tta
        self.overlap = overlap
        self.window = window
        self.max_window_voxels = int(max_window_voxels or 2 ** 21)
        vox = float(np.prod(plan.patch_size))
        self.sw_batch_size = sw_batch_size or max(1, int(self._batch_voxels(plan.dims) // vox))

    def _batch_voxels(self, dims: int) -> int:
        """Voxels per forward pass: 2**17 (2D) / 2**19 (3D) on the CPU (fastest on a 2-core
        CPU); on a GPU as many as about 2 KiB per voxel of its free memory allows, between
        2**19 and 2**22 (3D) or 2**18 and 2**20 (2D) — one 64x128x128 window per pass left an
        H100 idle between launches (0.197 vs 0.137 s for MONAI with 4 windows a pass)."""
        if self.device.type != "cuda":
            return 2 ** 17 if dims == 2 else 2 ** 19
        lo, hi = (2 ** 18, 2 ** 20) if dims == 2 else (2 ** 19, 2 ** 22)
        try:
            free, _ = torch.cuda.mem_get_info(self.device)
        except RuntimeError:  # pragma: no cover - a device that cannot report its memory
            return lo
        return int(min(hi, max(lo, free // 2048)))

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
        run = self._onnx or self._tiered or self.nets
        if self._fmt is not None:
            fmt = self._fmt
            run = [lambda t, n=n: n(t.contiguous(memory_format=fmt)) for n in run]
        patch = self.window_size(tuple(x.shape[2:]))
        bs = self.sw_batch_size if self.window == "patch" else max(1, self.sw_batch_size * int(
            np.prod(self.plan.patch_size)) // int(np.prod(patch)))
        single = self.window == "image" and all(w >= s for w, s in zip(patch, x.shape[2:]))
        if single:  # centred like MONAI's padding of an image smaller than the window
            extra = [w - s for w, s in zip(patch, x.shape[2:])]
            pad = [v for e in reversed(extra) for v in (e // 2, e - e // 2)]
            crop = (slice(None), slice(None)) + tuple(slice(e // 2, e // 2 + s) for e, s in zip(extra, x.shape[2:]))
        overlaps = window_overlaps(tuple(x.shape[2:]), patch, self.overlap)
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
                        logits = sliding_window_inference(xi, patch, bs, net, overlap=overlaps,
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
        # no busy-waiting between calls: the windows' stitching runs in torch threads in
        # between, which a spinning pool slowed by ~25 % on a 2-core CPU
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        self.session = ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"image": np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)

"""The predictor behind ``medseg predict`` for deep-learning models.

Windows of the training patch size, spread evenly over the image (nnU-Net's layout, see
[`window_overlaps`][medseg.infer.windows.window_overlaps]), are run in batches under
``torch.inference_mode`` through MONAI's `sliding_window_inference`
with Gaussian weighting. Mirroring test-time augmentation averages the softmax over flips;
several fold networks are averaged likewise. Probabilities are resampled back to the
input grid when the plan resampled the image. A temperature (fitted on the validation cases
at the end of training, ``model.json``'s ``temperature``) divides each network's logits
before the softmax.

Uncertainty (`Predictor.predict_uncertainty`, ``medseg predict --uncertainty``) comes
from running sums over the ensemble members (each fold network on each mirroring), never
from the members held at once: besides the probability sum, one per-fold probability sum
(with several folds) and three spatial maps, from which follow the predictive entropy of the
ensemble, the mutual information (entropy minus the members' mean entropy: their
disagreement), and the spread of the class probabilities between folds and between mirrors
(law of total variance). No planned network has dropout, so there is no MC dropout.

Memory: the whole-image tensors are few — the inferer's output (with its weight map), one
running sum, one mirrored copy; the softmax and the averaging work in place. On a GPU the
windows always run there, and the stitching moves to CPU memory when those copies would
not fit in half the GPU's free memory (so a large CT volume does not run the GPU out of
memory). A single "image" window is bounded by ``max_window_voxels``. A label map of a 3D
volume whose stitching buffers would exceed ``max_stitch_bytes`` (1 GiB by default) is
predicted in z-slabs, each with the whole volume's windows over it (`Predictor.predict`):
``medseg predict`` on a 512x512x1000 int16 volume then peaked at 2.2 GB of RSS instead of 6.3
(``benchmarks/bench_dl_memory.py --ct-volume``). A volume the plan resamples runs likewise in
slabs of the input, each resampled on its own (2.6 GB of RSS instead of 6.3 with
``--ct-volume --ct-spacing 1,1,1``). Probabilities and uncertainty maps still take
whole-volume arrays.

Speed: with ``compile="auto"`` (what ``medseg predict`` uses) a window shape that has kept the
CPU busy for [`COMPILE_AFTER_S`][medseg.infer.tiered.COMPILE_AFTER_S] seconds of eager forward passes is
compiled with ``torch.compile`` and runs compiled from then on (1.3-1.5x faster per window on
a 2-core CPU, 2D and 3D; compiling takes 10-20 s once per shape and process), so a long job —
a large volume, a folder of same-size images — gains and a short one never waits for a
compiler (``benchmarks/bench_dl_infer.py``; [`medseg.infer.tiered`][]). Single 3D windows
run oneDNN convolutions on the CPU ([`medseg.infer.onednn`][]); ``backend="onnx"`` runs the
windows with ONNX Runtime ([`medseg.infer.onnx_runtime`][]).

Examples
--------
>>> import numpy as np, torch
>>> from medseg.dl.network import build_net
>>> from medseg.dl.plan import Plan
>>> plan = Plan(dims=2, patch_size=(32, 32), channels=(4, 8, 16), num_res_units=1)
>>> _ = torch.manual_seed(0)
>>> predictor = Predictor([build_net(plan)], plan, tta=False, device="cpu")
>>> predictor.probabilities(np.zeros((1, 50, 40), np.float32)).shape
(2, 50, 40)
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from scipy import ndimage as ndi

from medseg.dl.device import resolve_device
from medseg.dl.plan import Plan
from medseg.dl.preprocessing import normalise, preprocess, zoom_factors
from medseg.errors import ConfigError
from medseg.image import Image
from medseg.infer.onednn import onednn_conv3d
from medseg.infer.onnx_runtime import OnnxNet, onnx_available
from medseg.infer.tiered import TieredNet
from medseg.infer.windows import window_overlaps
from medseg.nets import net_divisor, net_info
from medseg.postprocess import apply_rules

log = logging.getLogger(__name__)

__all__ = ["MAX_STITCH_BYTES", "Predictor", "UNCERTAINTY_MAPS", "argmax_labels"]

MAX_STITCH_BYTES = 2 ** 30
"""The default bound of `Predictor.predict`'s whole-volume stitching buffers, K + 1 float32 per
voxel (the inferer's output and weight map): 1 GiB, e.g. 89 M voxels with two classes (a
512x512x340 volume); larger 3D volumes run in z-slabs."""

UNCERTAINTY_MAPS = ("entropy", "mutual_information", "fold_spread", "mirror_spread")
"""The per-voxel maps of `Predictor.predict_uncertainty`, in order: predictive entropy of the
ensemble over log K (0 certain .. 1 uniform); mutual information between the prediction and the
member (nats over log K); spread of the class probabilities between fold networks and between
mirrorings, ``sqrt(sum_k Var p_k / 2)`` (for two classes the standard deviation of the
foreground probability; 0 with one fold / no mirroring)."""


def argmax_labels(prob: np.ndarray, *, block: int = 2 ** 22) -> np.ndarray:
    """``np.argmax(prob, axis=0).astype(np.uint8)`` without its int64 full-size intermediate.

    The argmax runs over blocks of about ``block`` voxels along the first spatial axis (a
    512x512x1000 volume would otherwise take 2 GB of int64 indices); the result is the same.

    Parameters
    ----------
    prob : ndarray, shape (K, *spatial)
    block : int
        Voxels per block.

    Returns
    -------
    ndarray of uint8, shape (*spatial)

    Examples
    --------
    >>> p = np.random.default_rng(0).random((3, 5, 4, 4))
    >>> bool((argmax_labels(p, block=16) == np.argmax(p, axis=0)).all())
    True
    """
    out = np.empty(prob.shape[1:], np.uint8)
    step = max(1, block // max(1, int(np.prod(prob.shape[2:]))))
    for z in range(0, prob.shape[1], step):
        out[z:z + step] = np.argmax(prob[:, z:z + step], axis=0)
    return out


def _softmax_(t: torch.Tensor) -> torch.Tensor:
    """Softmax over the class axis (1), in place: no second full-size tensor."""
    t.sub_(t.amax(dim=1, keepdim=True)).exp_()
    return t.div_(t.sum(dim=1, keepdim=True))


def _entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) over the class axis (1) of probabilities ``p``: one spatial map."""
    return -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)


class Predictor:
    """Class probabilities from one or more trained networks of one plan.

    Parameters
    ----------
    nets : sequence of torch.nn.Module
        The networks, one per fold (eval mode is set here).
    plan : Plan
        The model's [`Plan`][medseg.dl.plan.Plan].
    tta : bool
        Average over mirrored inputs along the plan's mirror axes (only when the plan's
        ``aug_strength`` is at least 0.5, i.e. training showed mirrored inputs often).
    overlap : float
        The least overlap between neighbouring windows, as a fraction of the window
        (0 <= overlap < 1). As in nnU-Net, the number of windows along an axis is the fewest
        with at least that overlap, and they are spread evenly, so the image's far edge gets no
        narrower seam than the others (MONAI's fixed step leaves seams of a few pixels, or
        none at overlap 0: on DRIVE at overlap 0, the same 25 windows spread evenly scored F1
        +0.0055 and +0.0013 over MONAI's layout with two models; ``benchmarks/results/dl.md``).
        See [`window_overlaps`][medseg.infer.windows.window_overlaps].
    sw_batch_size : int, optional
        Windows per forward pass; default 2**17 voxels in 2D (8 windows of 128x128: fastest
        of 2-16 on a 2-core CPU, compiled or not), 2**19 in 3D; on a GPU up to 2**20 (2D) /
        2**22 (3D) voxels as its free memory allows.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    channels_last : bool
        On CPU, convert the networks (in place) to channels-last memory layout (off by
        default: measured slower than the default layout with 2 threads, 0.41 vs 0.35 s per
        DRIVE image with 128x128 windows and 0.17 vs 0.14 s with one whole-image window;
        ``benchmarks/results/dl.md``).
    backend : str
        ``"torch"``, ``"onnx"`` to run the windows with ONNX Runtime on the CPU (each
        network is exported once, in memory; needs the ``onnx`` and ``onnxruntime``
        packages), or ``"auto"``: onnx on the CPU with one torch thread when both packages
        are installed, torch otherwise (``benchmarks/bench_dl_infer.py`` on DRIVE: one
        thread, whole-image window, 0.230 s ONNX Runtime vs 0.258 s torch per image; two
        threads 0.148 vs 0.141 s).
    window : str
        ``"patch"`` — windows of the training patch size (nnU-Net's way; always for a network
        built for one input size, `medseg.nets.NetInfo.fixed_input`), or ``"image"`` —
        one window over the whole (padded) image when it has at most ``max_window_voxels``
        voxels, else the largest windows under that bound. With instance normalisation a
        window's statistics then cover more context than in training, so ``medseg train``
        measures both on the validation cases and keeps "image" only where its Dice is
        within [`WINDOW_TOLERANCE`][medseg.infer.validation.WINDOW_TOLERANCE] of "patch" (it needs far
        fewer voxels: DRIVE 565x584 with 128x128 patches at overlap 0.25 runs 36 windows =
        1.7x the image's voxels).
    max_window_voxels : int, optional
        Memory bound of one "image" window (default 2**21 voxels).
    compile : str
        ``"off"`` (default here), ``"on"`` or ``"auto"`` — ``torch.compile`` the networks for
        the torch backend: "on" compiles each window shape on first use, "auto" (``medseg
        predict``'s default, on the CPU) once eager passes on a shape took
        [`COMPILE_AFTER_S`][medseg.infer.tiered.COMPILE_AFTER_S] seconds; see
        [`TieredNet`][medseg.infer.tiered.TieredNet].
    temperature : float
        Divides each network's logits before the softmax (temperature scaling; 1 leaves
        them as they are). The argmax, so the label map, is the same for one network.
    max_stitch_bytes : int, optional
        Memory bound of the whole-volume stitching buffers of a label-map prediction
        (`predict`; default `MAX_STITCH_BYTES`): a 3D volume whose buffers would
        need more runs in z-slabs (see `predict`), resampled to the plan's spacing or not.

    Raises
    ------
    ConfigError
        An unknown window, backend or compile mode, an overlap outside [0, 1), the onnx
        backend on a GPU, or a temperature that is not positive.
    """

    def __init__(self, nets: Sequence[torch.nn.Module], plan: Plan, *, tta: bool = True, overlap: float = 0.5,
                 sw_batch_size: int | None = None, device: str = "auto", channels_last: bool = False,
                 backend: str = "torch", window: str = "patch", max_window_voxels: int | None = None,
                 compile: str = "off", temperature: float = 1.0, max_stitch_bytes: int | None = None) -> None:
        if not (np.isfinite(temperature) and temperature > 0):
            raise ConfigError(f"the temperature must be a positive number, got {temperature}")
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
            backend = "onnx" if self.device.type == "cpu" and one_thread and onnx_available() else "torch"
        if backend == "onnx" and self.device.type != "cpu":
            raise ConfigError("the onnx backend runs on the CPU; use --device cpu or the torch backend")
        if window == "image" and net_info(plan.net).fixed_input:
            window = "patch"  # a network built for one input size (unetr) runs windows of exactly that size
        self.nets = [n.to(self.device).eval() for n in nets]
        self._onnx = None
        if backend == "onnx":
            try:
                self._onnx = [OnnxNet(n, plan) for n in self.nets]
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
            self.nets = [onednn_conv3d(n) for n in self.nets]
        if compile == "auto" and self.device.type != "cpu":
            compile = "off"  # measured on the CPU only; "on" compiles anywhere
        self._tiered = None
        if self._onnx is None and compile != "off":
            self._tiered = [TieredNet(n, compile) for n in self.nets]
        self.plan = plan
        self.temperature = float(temperature)
        self.tta = tta
        self.overlap = overlap
        self.window = window
        self.max_window_voxels = int(max_window_voxels or 2 ** 21)
        self.max_stitch_bytes = int(max_stitch_bytes or MAX_STITCH_BYTES)
        #: slabs the last `predict` ran (0: the whole volume at once)
        self.last_slabs = 0
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
        """Class probabilities of a preprocessed array.

        Parameters
        ----------
        array : ndarray, shape (C, *spatial)
            In the plan's space ([`preprocess`][medseg.dl.preprocessing.preprocess]).

        Returns
        -------
        ndarray of float32, shape (K, *spatial)
            Softmax, averaged over networks and mirrorings.
        """
        return self._ensemble(array, stats=False)[0]

    @torch.inference_mode()
    def probabilities_and_uncertainty(self, array: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Class probabilities of a preprocessed array and the ensemble's uncertainty maps.

        Parameters
        ----------
        array : ndarray, shape (C, *spatial)
            In the plan's space.

        Returns
        -------
        probabilities : ndarray of float32, shape (K, *spatial)
            As `probabilities`.
        maps : dict
            ``{name: float32 ndarray (*spatial)}`` for the `UNCERTAINTY_MAPS`.
        """
        prob, maps = self._ensemble(array, stats=True)
        assert maps is not None
        return prob, maps

    def _ensemble(self, array: np.ndarray, *, stats: bool, window: list[int] | None = None,
                  overlaps: list[float] | None = None, mirrors: list[tuple[int, ...]] | None = None
                  ) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
        x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None].to(self.device)
        run = self._onnx or self._tiered or self.nets
        if self._fmt is not None:
            fmt = self._fmt
            run = [lambda t, n=n: n(t.contiguous(memory_format=fmt)) for n in run]
        patch = window or self.window_size(tuple(x.shape[2:]))
        bs = self.sw_batch_size if self.window == "patch" else max(1, self.sw_batch_size * int(
            np.prod(self.plan.patch_size)) // int(np.prod(patch)))
        single = self.window == "image" and all(w >= s for w, s in zip(patch, x.shape[2:]))
        if single:  # centred like MONAI's padding of an image smaller than the window
            extra = [w - s for w, s in zip(patch, x.shape[2:])]
            pad = [v for e in reversed(extra) for v in (e // 2, e - e // 2)]
            crop = (slice(None), slice(None)) + tuple(slice(e // 2, e // 2 + s) for e, s in zip(extra, x.shape[2:]))
        overlaps = overlaps or window_overlaps(tuple(x.shape[2:]), patch, self.overlap)
        acc = None
        n = 0
        use_amp = self.device.type == "cuda"
        out_device = self._output_device(x)
        mirrors = mirrors or self._mirrors()
        n_folds = len(run)
        # running sums for the uncertainty: sum over members of sum_k p_k^2 and of their entropy,
        # the current fold's probability sum, and the sum over folds of sum_k (fold mean)_k^2
        sq_members = ent_members = sq_folds = None
        for net in run:
            fold_acc = None
            for flip in mirrors:
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
                z = logits.float().to(out_device)
                del logits
                if self.temperature != 1.0:
                    z.div_(self.temperature)
                p = _softmax_(z)
                if flip:
                    p = torch.flip(p, flip)
                if stats:
                    sq, ent = p.square().sum(dim=1), _entropy(p)
                    sq_members = sq if sq_members is None else sq_members.add_(sq)
                    ent_members = ent if ent_members is None else ent_members.add_(ent)
                    del sq, ent
                    if n_folds > 1:
                        fold_acc = p.clone() if fold_acc is None else fold_acc.add_(p)
                acc = p if acc is None else acc.add_(p)
                del p
                n += 1
            if stats and n_folds > 1:
                sq = fold_acc.div_(len(mirrors)).square_().sum(dim=1)
                sq_folds = sq if sq_folds is None else sq_folds.add_(sq)
                del fold_acc, sq
        if n > 1:
            acc.div_(n)
        maps = None
        if stats:
            log_k = float(np.log(max(2, self.plan.n_classes)))
            entropy = _entropy(acc)
            mean_sq = acc.square().sum(dim=1)
            within = sq_members / n  # E_members[sum_k p_k^2]
            folds_sq = sq_folds / n_folds if sq_folds is not None else within  # E_folds[sum_k mu_f,k^2]
            if n_folds == 1:
                folds_sq = mean_sq  # one fold: its mean is the ensemble mean, nothing between folds
            found = {"entropy": entropy / log_k,
                     "mutual_information": (entropy - ent_members / n).clamp_min_(0) / log_k,
                     "fold_spread": ((folds_sq - mean_sq).clamp_min_(0) / 2).sqrt_(),
                     "mirror_spread": ((within - folds_sq).clamp_min_(0) / 2).sqrt_()}
            maps = {k: np.ascontiguousarray(v[0].float().cpu().numpy()) for k, v in found.items()}
        return np.ascontiguousarray(acc[0].cpu().numpy()), maps

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
        """The sliding-window size for a preprocessed image of spatial ``shape``.

        Parameters
        ----------
        shape : tuple of int
            Spatial shape in the plan's space.

        Returns
        -------
        list of int
            The training patch size (``window="patch"``), or the padded image up to
            ``max_window_voxels`` (``window="image"``).
        """
        patch = [int(p) for p in self.plan.patch_size]
        if self.window == "patch":
            return patch
        div = net_divisor(self.plan.net, self.plan.channels)
        win = [max(p, -(-int(s) // div) * div) for p, s in zip(patch, shape)]  # whole image, padded
        while int(np.prod(win)) > self.max_window_voxels:  # too large: halve the longest axis
            ax = int(np.argmax([w / p for w, p in zip(win, patch)]))
            if win[ax] <= patch[ax]:
                break
            win[ax] = max(patch[ax], -(-(win[ax] // 2) // div) * div)
        return win

    def predict_proba(self, image: Image) -> Image:
        """Class probabilities on ``image``'s grid.

        Parameters
        ----------
        image : Image
            Shape ``([C,] *spatial)`` as the plan expects.

        Returns
        -------
        Image
            Float32 ``(K, *image.shape)``, channel-first, same geometry; sums to 1 per voxel.
        """
        a, f = preprocess(image, self.plan)
        p = self._to_grid(self.probabilities(a), image, f is not None)
        if f is not None:
            p = p / np.clip(p.sum(0, keepdims=True), 1e-6, None)
        return Image(p.astype(np.float32, copy=False), image.spacing, image.origin, image.direction, dict(image.meta))

    def _to_grid(self, p: np.ndarray, image: Image, resample: bool) -> np.ndarray:
        """Channel-first maps in the plan's space back on ``image``'s grid (when the plan resampled)."""
        if not resample:
            return p
        t = torch.from_numpy(np.ascontiguousarray(p, dtype=np.float32))[None]
        mode = "bilinear" if self.plan.dims == 2 else "trilinear"
        return F.interpolate(t, size=tuple(image.shape), mode=mode, align_corners=False)[0].numpy()

    def predict_uncertainty(self, image: Image) -> tuple[Image, dict[str, np.ndarray]]:
        """Class probabilities and uncertainty maps on ``image``'s grid.

        Parameters
        ----------
        image : Image
            Shape ``([C,] *spatial)`` as the plan expects.

        Returns
        -------
        probabilities : Image
            As `predict_proba`.
        maps : dict
            ``{name: float32 ndarray, shape image.shape}`` for the `UNCERTAINTY_MAPS`.

        Examples
        --------
        >>> import numpy as np, torch
        >>> from medseg.dl.network import build_net
        >>> from medseg.dl.plan import Plan
        >>> plan = Plan(dims=2, patch_size=(32, 32), channels=(4, 8, 16), num_res_units=1)
        >>> _ = torch.manual_seed(0)
        >>> nets = [build_net(plan), build_net(plan)]
        >>> predictor = Predictor(nets, plan, tta=False, device="cpu")
        >>> prob, maps = predictor.probabilities_and_uncertainty(np.zeros((1, 40, 36), np.float32))
        >>> sorted(maps), maps["entropy"].shape, float(maps["mirror_spread"].max())   # no mirroring: 0
        (['entropy', 'fold_spread', 'mirror_spread', 'mutual_information'], (40, 36), 0.0)
        """
        a, f = preprocess(image, self.plan)
        prob, maps = self.probabilities_and_uncertainty(a)
        names = list(maps)
        stacked = self._to_grid(np.concatenate([prob] + [maps[k][None] for k in names]), image, f is not None)
        k = prob.shape[0]
        p = stacked[:k]
        if f is not None:
            p = p / np.clip(p.sum(0, keepdims=True), 1e-6, None)
        out = {name: np.ascontiguousarray(stacked[k + i], dtype=np.float32) for i, name in enumerate(names)}
        return Image(p.astype(np.float32), image.spacing, image.origin, image.direction, dict(image.meta)), out

    @property
    def backend(self) -> str:
        """The engine the windows run on: ``"onnx"`` (ONNX Runtime) or ``"torch"`` (``"auto"`` resolved)."""
        return "onnx" if self._onnx is not None else "torch"

    def predict(self, image: Image, postprocessing: Mapping[str, str] | None = None) -> np.ndarray:
        """Label map of ``image``.

        Normally the argmax of `predict_proba`. A 3D volume whose whole-volume
        stitching buffers (K + 1 float32 per voxel) would exceed ``max_stitch_bytes`` and
        that the plan does not resample runs instead in slabs along its first axis: each slab
        is normalised on its own (with the whole volume's statistics) and run through the
        same networks and mirrorings, with margins of up to one window length so that the
        windows over it are exactly the whole volume's windows that touch its kept centre;
        only the centre's argmax is kept. No full-size float array is made besides the input
        itself; the label map is the only other full-size array (uint8). The labels equal
        the whole-volume ones up to float rounding (the z-score statistics are summed in
        another order; with mirroring along z, the members are summed in another order).

        A volume the plan resamples runs in slabs of the input likewise, above the same bound
        (counted on the larger of the input and the resampled volume): each slab, with a
        margin of up to one window in model space plus the cubic spline's support and
        prefilter (at most ``(window + 2) * input/model slice ratio + 10`` input slices a
        side), is resampled to the plan's spacing on its own, run, and its probabilities
        resampled back to the input grid (trilinear, as `predict_proba`) for the argmax
        of its kept centre. The windows are the whole volume's; the resampled slab differs
        from the whole volume's resampling only by the spline's boundary handling at the
        slab's ends, slices away from what is kept, so the labels match the whole-volume ones
        up to float rounding (identical on the phantoms of ``tests/dl/test_predictor_slabs.py``).

        Parameters
        ----------
        image : Image
        postprocessing : mapping, optional
            Per-class rules ([`medseg.postprocess.apply_rules`][]), e.g. ``model.json``'s
            ``postprocessing``.

        Returns
        -------
        ndarray of uint8, shape image.shape

        Examples
        --------
        >>> import numpy as np, torch
        >>> from medseg.dl.network import build_net
        >>> from medseg.dl.plan import Plan
        >>> from medseg.image import Image
        >>> plan = Plan(dims=3, patch_size=(16, 16, 16), channels=(4, 8), num_res_units=1, normalisation=("zscore",))
        >>> _ = torch.manual_seed(0)
        >>> predictor = Predictor([build_net(plan)], plan, tta=False, device="cpu", max_stitch_bytes=2 ** 16)
        >>> image = Image(np.random.default_rng(0).normal(size=(60, 20, 20)).astype(np.float32))
        >>> predictor.predict(image).shape, predictor.last_slabs     # 4 slabs of 15 slices (+ margins)
        ((60, 20, 20), 4)
        """
        slab = self._slab_length(image)
        self.last_slabs = 0
        resampled = self._resampled_slabs(image) if slab is None else None
        if slab is not None:
            lab = self._predict_slabs(image, slab)
        elif resampled is not None:
            lab = self._predict_resampled_slabs(image, *resampled)
        else:
            lab = argmax_labels(self.predict_proba(image).array)
        return apply_rules(lab, postprocessing)

    def _slab_length(self, image: Image) -> int | None:
        """The slab length (voxels along the first axis, margins included) under
        ``max_stitch_bytes``, or ``None`` to predict the whole volume at once."""
        plan = self.plan
        if plan.dims != 3 or image.ndim != 3 or image.n_channels != plan.in_channels:
            return None  # preprocess raises the input error
        if plan.target_spacing and zoom_factors(image.spacing, plan.target_spacing) is not None:
            return None
        shape = tuple(int(s) for s in image.shape)
        per_slice = (plan.n_classes + 1) * 4 * shape[1] * shape[2]
        if per_slice * shape[0] <= self.max_stitch_bytes:
            return None
        win = self.window_size(shape)
        if all(w >= s for w, s in zip(win, shape)):
            return None
        length = max(self.max_stitch_bytes // per_slice, 3 * win[0])  # at least a window and its margins
        return None if length >= shape[0] else int(length)

    def _predict_slabs(self, image: Image, length: int) -> np.ndarray:
        """Labels of a 3D volume slab by slab (see `predict`).

        Each slab's extent along z is chosen so that the windows over it are exactly the
        whole volume's windows that touch its kept centre (the slab starts and ends at window
        edges of the whole-volume layout, which is passed on): those voxels get the same
        stitched probabilities as in one pass over the volume. Mirrorings along z have their
        own layout (laid out from the far end), so they run on their own extent."""
        plan = self.plan
        src = image.array if image.has_channels else image.array[None]
        shape = tuple(int(s) for s in src.shape[1:])
        win = self.window_size(shape)
        overlaps = window_overlaps(shape, win, self.overlap)
        w, depth = win[0], shape[0]
        step = max(1, int(w * (1 - overlaps[0])))  # MONAI's scan interval along z
        starts = sorted({min(i * step, depth - w) for i in range(-(-(depth - w) // step) + 1)})
        layouts = {False: starts, True: sorted(depth - w - s for s in starts)}  # plain / mirrored along z
        mirrors = self._mirrors()
        groups = [(flip_z, [m for m in mirrors if (2 in m) == flip_z]) for flip_z in (False, True)]
        groups = [(f, g) for f, g in groups if g]
        n = -(-depth // max(1, length - 2 * w))
        core = -(-depth // n)
        stats = []  # per channel (lo, hi, mean, std): ``normalise``'s "ct" form of the whole volume's z-score
        for c in range(src.shape[0]):
            if c < len(plan.normalisation) and plan.normalisation[c] == "ct" and plan.ct_stats[c]:
                stats.append(tuple(plan.ct_stats[c]))
            else:
                mean, std = _mean_std(src[c], block=min(2 ** 22, max(1, length * shape[1] * shape[2] // 4)))
                stats.append((-np.inf, np.inf, mean, max(std, 1e-6)))
        kinds = ["ct"] * src.shape[0]
        log.info("volume of %s voxels: predicting labels in %d slabs of %d slices (and the margins their "
                 "windows need)", "x".join(map(str, shape)), n, core)
        out = np.empty(shape, np.uint8)
        for z0 in range(0, depth, core):
            z1 = min(depth, z0 + core)
            acc = None
            for flip_z, group in groups:
                lay = layouts[flip_z]
                a0 = min(s for s in lay if s + w > z0)
                a1 = max(s for s in lay if s < z1) + w
                x = normalise(src[:, a0:a1], kinds, stats)
                with torch.inference_mode():
                    prob = self._ensemble(x, stats=False, window=win, overlaps=overlaps, mirrors=group)[0]
                del x
                p = prob[:, z0 - a0:z1 - a0]
                if len(groups) > 1:  # the sum over all members (the argmax of their mean)
                    p *= len(group)
                acc = p if acc is None else np.add(acc, p, out=acc)
                del prob, p
            out[z0:z1] = argmax_labels(acc)
            del acc
            self.last_slabs += 1
        return out

    def _resampled_slabs(self, image: Image) -> tuple[tuple[float, ...], int, int] | None:
        """For a 3D volume the plan resamples and whose stitching buffers exceed
        ``max_stitch_bytes``: ``(zoom, length, margin)`` — the slab length and the margin on
        each side, in input slices; ``None`` to predict the whole volume at once."""
        plan = self.plan
        if plan.dims != 3 or image.ndim != 3 or image.n_channels != plan.in_channels or not plan.target_spacing:
            return None  # preprocess raises the input error
        f = zoom_factors(image.spacing, plan.target_spacing)
        if f is None:
            return None
        shape = tuple(int(s) for s in image.shape)
        model = tuple(int(round(s * z)) for s, z in zip(shape, f))  # ndi.zoom's output shape
        if min(model) < 1:
            return None
        # the stitching buffers (model space) and the probabilities on the input grid, K + 1 float32 a voxel
        per_slice = (plan.n_classes + 1) * 4 * max(shape[1] * shape[2], model[0] * model[1] * model[2] / shape[0])
        if per_slice * shape[0] <= self.max_stitch_bytes:
            return None
        win = self.window_size(model)
        if all(w >= s for w, s in zip(win, model)):
            return None
        # a kept input slice needs the model slices either side of it (linear back-resampling),
        # one full window beyond those, and the cubic spline's support (2 slices) and prefilter
        # (its influence decays as 0.268**n: 8 slices) in the input around them
        ratio = shape[0] / model[0]  # input slices per model slice
        margin = int(np.ceil((win[0] + 2) * ratio)) + 2 + _PREFILTER
        length = max(int(self.max_stitch_bytes // per_slice), 4 * margin)  # kept centre of at least 2 margins
        return None if length >= shape[0] else (f, length, margin)

    def _predict_resampled_slabs(self, image: Image, zoom: tuple[float, ...], length: int, margin: int) -> np.ndarray:
        """Labels of a 3D volume the plan resamples, slab by slab in the input's space (see `predict`).

        Each slab (its kept centre and ``margin`` slices either side) is normalised with the
        whole volume's statistics and resampled to the plan's spacing with the cubic spline of
        [`preprocess`][medseg.dl.preprocessing.preprocess], on the whole volume's model grid (the
        slices of the whole-volume resampling that fall inside it, up to the spline's boundary
        handling near the slab's ends, ``_PREFILTER`` slices beyond what is needed). The slab
        spans, in model space, the whole volume's windows over the model slices its kept
        centre interpolates from (as in `_predict_slabs`: at most one window beyond
        them); its class probabilities go back to the input grid by `_to_grid`'s
        trilinear interpolation, a few slices at a time, straight into the argmax of the kept
        centre. No array has K x the volume's voxels."""
        plan = self.plan
        src = image.array if image.has_channels else image.array[None]
        shape = tuple(int(s) for s in src.shape[1:])
        model = tuple(int(round(s * z)) for s, z in zip(shape, zoom))
        depth, mdepth = shape[0], model[0]
        win = self.window_size(model)
        rz = depth / mdepth  # input slices per model slice (ndi.zoom's grid mode)
        ry, rx = shape[1] / model[1], shape[2] / model[2]
        core = length - 2 * margin
        n = -(-depth // core)
        core = -(-depth // n)
        block = min(2 ** 22, max(1, length * shape[1] * shape[2] // 4))
        stats = []  # as _predict_slabs: the whole volume's z-score, in normalise's "ct" form
        for c in range(src.shape[0]):
            if c < len(plan.normalisation) and plan.normalisation[c] == "ct" and plan.ct_stats[c]:
                stats.append(tuple(plan.ct_stats[c]))
            else:
                mean, std = _mean_std(src[c], block=block)
                stats.append((-np.inf, np.inf, mean, max(std, 1e-6)))
        kinds = ["ct"] * src.shape[0]
        log.info("volume of %s voxels, resampled to %s: predicting labels in %d slabs of %d slices (and %d "
                 "slices of margin)", "x".join(map(str, shape)), "x".join(map(str, model)), n, core, margin)
        overlaps = window_overlaps(model, win, self.overlap)
        w = win[0]
        mstep = max(1, int(w * (1 - overlaps[0])))  # MONAI's scan interval along z, in model slices
        starts = sorted({min(i * mstep, mdepth - w) for i in range(-(-(mdepth - w) // mstep) + 1)})
        layouts = {False: starts, True: sorted(mdepth - w - s for s in starts)}  # plain / mirrored along z
        mirrors = self._mirrors()
        groups = [(flip_z, [m for m in mirrors if (2 in m) == flip_z]) for flip_z in (False, True)]
        groups = [(f, g) for f, g in groups if g]
        out = np.empty(shape, np.uint8)
        step = max(1, 2 ** 24 // max(1, plan.n_classes * 4 * shape[1] * shape[2]))  # back-resampled slices at once
        for z0 in range(0, depth, core):
            z1 = min(depth, z0 + core)
            # the model slices the kept input slices interpolate from (linear, align_corners=False) ...
            n0 = int(np.floor(max(0.0, (z0 + 0.5) / rz - 0.5)))
            n1 = min(mdepth, int(np.floor(max(0.0, (z1 - 0.5) / rz - 0.5))) + 2)
            # ... and the whole volume's windows over them (within a window of them)
            ext = {f: (min(s for s in layouts[f] if s + w > n0), max(s for s in layouts[f] if s < n1) + w)
                   for f, _ in groups}
            b0, b1 = min(e[0] for e in ext.values()), max(e[1] for e in ext.values())
            # the input slices the cubic spline of those model slices needs (support 2, prefilter _PREFILTER)
            a0 = max(0, int(np.floor((b0 + 0.5) * rz - 0.5)) - 1 - _PREFILTER)
            a1 = min(depth, int(np.floor((b1 - 0.5) * rz - 0.5)) + 3 + _PREFILTER)
            x = normalise(src[:, a0:a1], kinds, stats)
            offset = ((b0 + 0.5) * rz - 0.5 - a0, 0.5 * ry - 0.5, 0.5 * rx - 0.5)
            xm = np.empty((x.shape[0], b1 - b0) + model[1:], np.float32)
            for c in range(x.shape[0]):  # preprocess's ndi.zoom, on the whole volume's model grid
                ndi.affine_transform(x[c], np.array([rz, ry, rx]), offset=offset, output_shape=xm.shape[1:],
                                     output=xm[c], order=3, mode="nearest")
            del x
            acc = None
            for flip_z, group in groups:
                e0, e1 = ext[flip_z]
                with torch.inference_mode():
                    prob = self._ensemble(xm[:, e0 - b0:e1 - b0], stats=False, window=win, overlaps=overlaps,
                                          mirrors=group)[0]
                p = prob[:, n0 - e0:n1 - e0]
                if len(groups) > 1:  # the sum over all members (the argmax of their mean)
                    p *= len(group)
                acc = p if acc is None else np.add(acc, p, out=acc)
                del prob, p
            del xm
            t = torch.from_numpy(acc)
            for i0 in range(z0, z1, step):
                i1 = min(z1, i0 + step)
                src_z = np.maximum(0.0, (np.arange(i0, i1) + 0.5) / rz - 0.5)
                j = np.floor(src_z).astype(np.int64)
                jn = np.minimum(j + 1, mdepth - 1)
                wz = torch.from_numpy((src_z - j).astype(np.float32))[None, :, None, None]
                q = t[:, torch.from_numpy(j - n0)] * (1 - wz) + t[:, torch.from_numpy(jn - n0)] * wz
                if model[1:] != shape[1:]:  # (K, slices, *model plane) -> the input's plane
                    q = F.interpolate(q.transpose(0, 1), size=shape[1:], mode="bilinear",
                                      align_corners=False).transpose(0, 1)
                out[i0:i1] = argmax_labels(q.numpy())
                del q
            del t, acc
            self.last_slabs += 1
        return out


#: input slices beyond the cubic spline's support that a slab keeps for its prefilter
#: (the B-spline prefilter's influence decays as 0.268**n: 8 slices leave 3e-5)
_PREFILTER = 8


def _mean_std(a: np.ndarray, block: int = 2 ** 22) -> tuple[float, float]:
    """Mean and standard deviation of ``a``, in float64 over blocks of about ``block`` voxels
    along its first axis (no full-size float copy)."""
    step = max(1, block // max(1, int(np.prod(a.shape[1:]))))
    n, s, ss = 0, 0.0, 0.0
    mean0 = float(a[:step].mean(dtype=np.float64))  # shift for a stable sum of squares
    for z in range(0, a.shape[0], step):
        b = a[z:z + step].astype(np.float64)
        b -= mean0
        n += b.size
        s += float(b.sum())
        ss += float(np.square(b, out=b).sum())
    mean = s / n
    return mean0 + mean, float(np.sqrt(max(ss / n - mean * mean, 0.0)))

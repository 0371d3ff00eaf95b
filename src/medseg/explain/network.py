"""Saliency of a segmentation network for one structure: Grad-CAM, occlusion and integrated gradients.

All three explain the same quantity, the network's evidence for class ``K`` over the region
it predicts as ``K`` (the whole image when it predicts no ``K`` voxel; the result says so):

* the **target** of the gradient methods is ``T = sum over the region of (z_K - logsumexp_{j != K} z_j)``,
  the log-odds of class K against the others from the logits ``z`` (divided by the model's
  temperature), which does not saturate like a probability and is unchanged by adding a
  constant to every logit (for two classes it is ``z_1 - z_0``);
* **occlusion** measures the drop of the mean class-K probability over that region when a
  patch of the normalised input is set to 0 (the image's mean after the z-score; the
  patch slides with half-patch steps), averaged over the patches covering each voxel; the
  positive part (evidence for K) is kept.

The network sees the image as in ``medseg predict`` (the plan's normalisation and resampling
through [`medseg.dl.preprocessing.preprocess`][], the predictor's window size and padding),
windows laid out as [`window_overlaps`][medseg.infer.windows.window_overlaps] lays them and weighted
with MONAI's Gaussian importance map. The gradient of ``T`` with respect to the input is
computed window by window: each window's logits enter the stitched output with weight
``g_w / sum g``, so the sum of the windows' weighted backward passes is the exact gradient of
the stitched target while only one window's activations are held at a time (a large image
or volume costs memory of one window). Mirroring test-time augmentation is not used; fold
networks are summed (gradients, Grad-CAM) or averaged (probabilities, occlusion).

Grad-CAM (Selvaraju et al. 2017, for segmentation Vinogradova et al. 2020) weighs a
layer's feature maps by the spatial mean of ``dT/dA``, keeps the positive part and
up-samples it to the window; windows are stitched with the Gaussian weights. The default
layer is the last decoder convolution at full resolution (``layer="bottleneck"``: the
last convolution with the smallest output).
Integrated gradients (Sundararajan et al. 2017) integrate the gradient along the straight
path from the baseline 0 (the normalised image's mean) to the input with ``steps`` midpoint
steps and multiply by the input; the saliency is the absolute value summed over channels.

Every map is brought to the input's grid (linear interpolation when the plan resampled) and
scaled to [0, 1] by its maximum.

Examples
--------
>>> import numpy as np, torch
>>> from medseg.dl.network import build_net
>>> from medseg.dl.plan import Plan
>>> from medseg.image import Image
>>> from medseg.infer.predictor import Predictor
>>> plan = Plan(dims=2, patch_size=(32, 32), channels=(4, 8, 16), num_res_units=1, normalisation=("zscore",),
...             ct_stats=((),))
>>> _ = torch.manual_seed(0)
>>> ex = NetworkExplainer(Predictor([build_net(plan)], plan, tta=False, device="cpu"))
>>> res = ex.explain(Image(np.random.default_rng(0).normal(size=(40, 36)).astype(np.float32)), 1, "gradcam")
>>> res.saliency.shape, res.saliency.dtype.name, float(res.saliency.max()) <= 1.0
((40, 36), 'float32', True)
"""
from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medseg.dl.preprocessing import preprocess
from medseg.errors import ConfigError, InputError
from medseg.image import Image

log = logging.getLogger(__name__)

__all__ = ["NETWORK_METHODS", "NetworkExplainer", "Saliency", "conv_layers"]

NETWORK_METHODS = ("gradcam", "occlusion", "integrated-gradients")
"""The saliency methods for networks, the first the default."""

_CONV = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)


@dataclass
class Saliency:
    """A saliency map and what it explains.

    Attributes
    ----------
    saliency : ndarray of float32, shape image.shape
        In [0, 1], on the input's grid.
    labels : ndarray of uint8, shape image.shape
        The model's label map of the image (as ``medseg predict`` without mirroring).
    label : int
        The explained class.
    method : str
        One of `NETWORK_METHODS`.
    notes : list of str
        What the user should know (an empty region, the layer used, ...).
    details : dict
        Parameters used (layer, steps, patch), JSON-ready.
    """

    saliency: np.ndarray
    labels: np.ndarray
    label: int
    method: str
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def conv_layers(net: torch.nn.Module) -> list[str]:
    """Names of the convolution layers of ``net`` (candidates for Grad-CAM's ``layer``).

    Examples
    --------
    >>> conv_layers(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 1)))
    ['0', '2']
    """
    return [n for n, m in net.named_modules() if isinstance(m, _CONV)]


def _starts(length: int, win: int, overlap: float) -> list[int]:
    """Window starts along one axis: the fewest with at least ``overlap``, spread evenly
    (the layout [`medseg.infer.windows.window_overlaps`][] gives MONAI's inferer)."""
    if length <= win:
        return [0]
    n = int(np.ceil((length - win) / (win * (1.0 - overlap)))) + 1
    step = -(-(length - win) // (n - 1))
    starts = list(range(0, length - win, step)) + [length - win]
    return sorted(set(starts))


class NetworkExplainer:
    """Saliency maps of a trained network (its fold ensemble) for one class.

    Parameters
    ----------
    predictor : medseg.infer.predictor.Predictor
        The model's predictor (networks, plan, window, overlap, temperature); use
        ``tta=False``, ``backend="torch"`` and ``compile="off"``.
    layer : str
        Grad-CAM layer: ``"decoder"`` (default: the last convolution at full resolution
        before the output head), ``"bottleneck"`` (the last convolution with the smallest
        output) or a module name of `conv_layers`. On a U-Net the skip connections
        carry most of the evidence around the bottleneck: on a disc phantom 99.6 % of the
        decoder layer's Grad-CAM mass fell on the object against 20 % at the bottleneck.
    steps : int
        Integrated-gradients steps.
    patch : int or sequence of int, optional
        Occlusion patch in voxels of the plan's space (default an eighth of each axis, at
        least 2; a quarter in 3D).
    """

    def __init__(self, predictor: Any, *, layer: str = "decoder", steps: int = 16,
                 patch: int | Sequence[int] | None = None) -> None:
        if steps < 1:
            raise ConfigError(f"--steps must be at least 1, got {steps}")
        self.predictor = predictor
        self.plan = predictor.plan
        self.nets = list(predictor.nets)
        self.device = predictor.device
        self.temperature = float(getattr(predictor, "temperature", 1.0))
        self.layer = layer
        self.steps = int(steps)
        self.patch = patch
        if layer not in ("bottleneck", "decoder"):
            names = conv_layers(self.nets[0])
            if layer not in names:
                raise ConfigError(f"unknown Grad-CAM layer '{layer}'; choose decoder, bottleneck or one of: "
                                  + ", ".join(names))

    # ------------------------------------------------------------------ public
    def explain(self, image: Image, label: int, method: str = "gradcam") -> Saliency:
        """The saliency of class ``label`` on ``image``.

        Parameters
        ----------
        image : Image
            Shape ``([C,] *spatial)`` as the model expects.
        label : int
            A class of the model (1 .. n_classes - 1).
        method : str
            One of `NETWORK_METHODS`.

        Returns
        -------
        Saliency
        """
        if method not in NETWORK_METHODS:
            raise ConfigError(f"unknown explanation method '{method}'; choose {', '.join(NETWORK_METHODS)}")
        k = int(label)
        if not 0 <= k < self.plan.n_classes:
            raise InputError(f"label {k} is not a class of this model (classes 0..{self.plan.n_classes - 1})")
        a, zoom = preprocess(image, self.plan)
        x, crop = self._padded(a)
        wins = self._windows(tuple(x.shape[2:]))
        with torch.no_grad():
            logits = [self._stitch(net, x, wins) for net in self.nets]
        prob = torch.stack([torch.softmax(z / self.temperature, dim=1) for z in logits]).mean(0)
        region = (prob.argmax(dim=1, keepdim=True) == k)
        notes: list[str] = []
        inside = region[(slice(None), slice(None), *crop)]
        if not bool(inside.any()):
            notes.append(f"the model predicts no voxel of class {k} on this image: the target is the whole image")
            region = torch.zeros_like(region)
            region[(slice(None), slice(None), *crop)] = True
        else:
            outside = torch.ones_like(region)
            outside[(slice(None), slice(None), *crop)] = False
            region &= ~outside  # the padding is never part of the structure
        details: dict[str, Any] = {"target": "sum over the predicted region of the class log-odds"
                                   if method != "occlusion" else "mean class probability over the predicted region",
                                   "region_voxels": int(region.sum()), "folds": len(self.nets),
                                   "window": [int(w) for w in self._win], "windows": len(wins)}
        if method == "gradcam":
            sal = self._gradcam(x, wins, logits, region, k, details)
        elif method == "integrated-gradients":
            sal = self._integrated_gradients(x, wins, logits, region, k, details)
        else:
            sal = self._occlusion(x, wins, region, k, crop, details)
        sal = sal[tuple(crop)]
        if zoom is not None:
            t = torch.from_numpy(np.ascontiguousarray(sal, np.float32))[None, None]
            mode = "bilinear" if self.plan.dims == 2 else "trilinear"
            sal = F.interpolate(t, size=tuple(image.shape), mode=mode, align_corners=False)[0, 0].numpy()
        sal = np.clip(np.nan_to_num(sal.astype(np.float32)), 0, None)
        top = float(sal.max())
        if top > 0:
            sal /= top
        else:
            notes.append("the saliency is zero everywhere (no evidence found for this class)")
        labels = np.argmax(self.predictor.predict_proba(image).array, axis=0).astype(np.uint8)
        return Saliency(sal.astype(np.float32), labels, k, method, notes, details)

    # ------------------------------------------------------------------ windows
    def _padded(self, a: np.ndarray) -> tuple[torch.Tensor, list[slice]]:
        """The preprocessed array as ``(1, C, *S')``, padded (zeros, centred, like the
        predictor) to at least the window; and the crop back to ``S``."""
        shape = a.shape[1:]
        self._win = [int(w) for w in self.predictor.window_size(tuple(shape))]
        extra = [max(0, w - s) for w, s in zip(self._win, shape)]
        pad = [v for e in reversed(extra) for v in (e // 2, e - e // 2)]
        x = torch.from_numpy(np.ascontiguousarray(a, np.float32))[None].to(self.device)
        if any(pad):
            x = F.pad(x, pad)
        return x, [slice(e // 2, e // 2 + s) for e, s in zip(extra, shape)]

    def _windows(self, shape: tuple[int, ...]) -> list[tuple[slice, ...]]:
        starts = [_starts(s, w, self.predictor.overlap) for s, w in zip(shape, self._win)]
        from monai.data.utils import compute_importance_map

        self._g = compute_importance_map(self._win, mode="gaussian", sigma_scale=0.125, device=self.device)
        self._g = self._g.reshape(self._win).float()
        wins = [tuple(slice(s, s + w) for s, w in zip(st, self._win)) for st in itertools.product(*starts)]
        den = torch.zeros(shape, device=self.device)
        for w in wins:
            den[w] += self._g
        self._den = den
        return wins

    def _stitch(self, net: torch.nn.Module, x: torch.Tensor, wins: list[tuple[slice, ...]]) -> torch.Tensor:
        """Logits ``(1, K, *S)`` of ``net`` on ``x``, window by window, Gaussian-weighted."""
        out = torch.zeros((1, self.plan.n_classes, *x.shape[2:]), device=self.device)
        for w in wins:
            out[(slice(None), slice(None), *w)] += net(x[(slice(None), slice(None), *w)]).float() * self._g
        return out / self._den

    def _coefficients(self, z: torch.Tensor, region: torch.Tensor, k: int) -> torch.Tensor:
        """``dT/dz`` per voxel ``(1, K, *S)`` of the target on the stitched logits ``z``."""
        zt = z / self.temperature
        others = torch.cat([zt[:, :k], zt[:, k + 1:]], dim=1)
        sm = torch.softmax(others, dim=1)
        c = -torch.cat([sm[:, :k], torch.zeros_like(zt[:, :1]), sm[:, k:]], dim=1)
        c[:, k] = 1.0
        return c * region / self.temperature

    def _window_backward(self, net: torch.nn.Module, x: torch.Tensor, w: tuple[slice, ...],
                         coef: torch.Tensor) -> torch.Tensor | None:
        """Backward of ``sum coef * g / sum g * z_w`` for window ``w``: the input gradient
        on the window (or ``None`` when the window holds no target voxel)."""
        cw = coef[(slice(None), slice(None), *w)] * (self._g / self._den[w])
        if not bool(cw.abs().sum() > 0):
            return None
        xi = x[(slice(None), slice(None), *w)].detach().clone().requires_grad_(True)
        with torch.enable_grad():
            z = net(xi).float()
            (z * cw).sum().backward()
        return xi.grad

    # ------------------------------------------------------------------ methods
    def _resolve_layer(self, net: torch.nn.Module, x: torch.Tensor) -> str:
        """The module name of ``self.layer``: itself, or the bottleneck (last convolution with the
        smallest output) or the decoder (last convolution at full resolution before the head)."""
        if self.layer not in ("bottleneck", "decoder"):
            return self.layer
        sizes: dict[str, int] = {}
        chans: dict[str, int] = {}

        def record(name: str) -> Any:
            def hook(_m: Any, _i: Any, o: torch.Tensor) -> None:
                sizes.setdefault(name, int(np.prod(o.shape[2:])))
                chans.setdefault(name, int(o.shape[1]))
            return hook

        hooks = [m.register_forward_hook(record(n)) for n, m in net.named_modules() if isinstance(m, _CONV)]
        try:
            with torch.no_grad():
                net(x[(slice(None), slice(None), *[slice(0, w) for w in self._win])])
        finally:
            for h in hooks:
                h.remove()
        if not sizes:
            raise ConfigError("this network has no convolution layer for Grad-CAM; use --method occlusion or "
                              "integrated-gradients")
        if self.layer == "bottleneck":
            small = min(sizes.values())
            return [n for n, s in sizes.items() if s == small][-1]  # insertion order = execution order
        big = max(sizes.values())
        full = [n for n, s in sizes.items() if s == big]
        inner = [n for n in full if chans[n] != self.plan.n_classes]
        return (inner or full)[-1]

    def _gradcam(self, x, wins, logits, region, k, details) -> np.ndarray:
        total = torch.zeros(x.shape[2:], device=self.device)
        mode = "bilinear" if self.plan.dims == 2 else "trilinear"
        for net, z in zip(self.nets, logits):
            name = self._resolve_layer(net, x)
            details["layer"] = name
            module = dict(net.named_modules())[name]
            coef = self._coefficients(z, region, k)
            num = torch.zeros(x.shape[2:], device=self.device)
            for w in wins:
                store: dict[str, torch.Tensor] = {}

                def keep(_m, _i, o, store=store):
                    o.retain_grad()
                    store["a"] = o

                h = module.register_forward_hook(keep)
                try:
                    g = self._window_backward(net, x, w, coef)
                finally:
                    h.remove()
                if g is None or "a" not in store or store["a"].grad is None:
                    continue
                a, da = store["a"].detach(), store["a"].grad.detach()
                alpha = da.mean(dim=tuple(range(2, da.ndim)), keepdim=True)
                cam = torch.relu((alpha * a).sum(dim=1, keepdim=True))
                cam = F.interpolate(cam, size=tuple(self._win), mode=mode, align_corners=False)[0, 0]
                num[w] += cam * self._g
            total += num / self._den
        return total.cpu().numpy()

    def _input_gradient(self, x, wins, z, region, k, net) -> torch.Tensor:
        coef = self._coefficients(z, region, k)
        grad = torch.zeros_like(x)
        for w in wins:
            g = self._window_backward(net, x, w, coef)
            if g is not None:
                grad[(slice(None), slice(None), *w)] += g
        return grad

    def _integrated_gradients(self, x, wins, logits, region, k, details) -> np.ndarray:
        details["steps"] = self.steps
        details["baseline"] = "0 (the normalised image's mean)"
        total = torch.zeros_like(x)
        binary = self.plan.n_classes == 2  # then dT/dz does not depend on z
        for net, z in zip(self.nets, logits):
            acc = torch.zeros_like(x)
            for i in range(self.steps):
                xa = x * ((i + 0.5) / self.steps)
                if binary:
                    za = z
                else:
                    with torch.no_grad():
                        za = self._stitch(net, xa, wins)
                acc += self._input_gradient(xa, wins, za, region, k, net)
            total += x * acc / self.steps
        return total.abs().sum(dim=(0, 1)).cpu().numpy()

    def _occlusion(self, x, wins, region, k, crop, details) -> np.ndarray:
        dims = self.plan.dims
        shape = [c.stop - c.start for c in crop]
        if self.patch is None:
            frac = 8 if dims == 2 else 4
            patch = [max(2, math.ceil(s / frac)) for s in shape]
        else:
            patch = [int(self.patch)] * dims if np.isscalar(self.patch) else [int(p) for p in self.patch]
            if len(patch) != dims or min(patch) < 1:
                raise ConfigError(f"--patch must be one positive size or {dims} of them, got {self.patch}")
        stride = [max(1, p // 2) for p in patch]
        details.update(patch=patch, stride=stride, baseline="0 (the normalised image's mean)")
        starts = [sorted(set(list(range(c.start, c.stop - p, s)) + [max(c.start, c.stop - p)]))
                  for c, p, s in zip(crop, patch, stride)]
        n_pos = int(np.prod([len(s) for s in starts]))
        details["occlusions"] = n_pos
        mask = region[0, 0]
        n_region = float(mask.sum())
        # every window's logits once per network; an occlusion recomputes only the windows it touches
        with torch.no_grad():
            cache = [[net(x[(slice(None), slice(None), *w)]).float() for w in wins] for net in self.nets]

            def score(parts: list[list[torch.Tensor]]) -> float:
                p = 0.0
                for per_net in parts:
                    z = torch.zeros((1, self.plan.n_classes, *x.shape[2:]), device=self.device)
                    for w, zw in zip(wins, per_net):
                        z[(slice(None), slice(None), *w)] += zw * self._g
                    p = p + torch.softmax(z / self._den / self.temperature, dim=1)[0, k]
                return float((p / len(parts))[mask].sum()) / max(n_region, 1.0)

            base = score(cache)
            details["base_score"] = base
            drop = torch.zeros(x.shape[2:], device=self.device)
            count = torch.zeros(x.shape[2:], device=self.device)
            for pos in itertools.product(*starts):
                box = tuple(slice(s, s + p) for s, p in zip(pos, patch))
                hit = [i for i, w in enumerate(wins)
                       if all(b.start < ww.stop and ww.start < b.stop for b, ww in zip(box, w))]
                xo = x.clone()
                xo[(slice(None), slice(None), *box)] = 0.0
                batch = torch.cat([xo[(slice(None), slice(None), *wins[i])] for i in hit])
                parts = []
                for net, cached in zip(self.nets, cache):
                    out = net(batch).float()
                    new = list(cached)
                    for j, i in enumerate(hit):
                        new[i] = out[j:j + 1]
                    parts.append(new)
                d = base - score(parts)
                drop[box] += d
                count[box] += 1
        return (drop / count.clamp_min(1)).cpu().numpy()

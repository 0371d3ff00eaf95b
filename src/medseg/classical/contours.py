"""Active contours: Chan-Vese and geodesic active contours (scikit-image morphological
snakes, which run in 2D and 3D; the classic Chan-Vese level set is 2D only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from medseg.classical.base import (
    ClassicalParams,
    ClassicalSegmenter,
    auto_threshold,
    is_constant,
)
from medseg.errors import ConfigError, InputError
from medseg.image import Image

__all__ = ["ChanVese", "ChanVeseParams", "GACParams", "GeodesicActiveContour"]


def _normalise(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(a.min()), float(a.max())
    return np.clip((a - lo) / (hi - lo), 0, 1)


def _isotropic_smooth(a: np.ndarray, spacing) -> np.ndarray:
    sp = np.asarray(spacing)
    return ndi.gaussian_filter(a, sp.min() / sp)


@dataclass(frozen=True)
class ChanVeseParams(ClassicalParams):
    """Parameters of ``chan-vese``."""

    variant: Literal["morphological", "classic"] = field(default="morphological", metadata={
        "help": "morphological (2D/3D, fast) or classic level set (2D only)"})
    iterations: int = field(default=60, metadata={"help": "number of iterations"})
    smoothing: int = field(default=1, metadata={"help": "morphological: smoothing steps per iteration"})
    mu: float = field(default=0.25, metadata={"help": "classic: edge length weight"})
    above: bool = field(default=True, metadata={"help": "foreground is the brighter phase (false: darker)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.iterations < 1 or self.smoothing < 0:
            raise ConfigError("--iterations must be >= 1 and --smoothing >= 0")


class ChanVese(ClassicalSegmenter):
    """Chan-Vese active contour without edges: two phases of best-fitting mean intensity.

    The level set starts from Otsu's split (data-derived); the output foreground is the
    brighter phase (``--no-above``: the darker one).

    Parameters
    ----------
    params : ChanVeseParams or dict, optional
        ``variant``, ``iterations``, ``smoothing``, ``mu``, ``above`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = ChanVese()(img)
    >>> bool((labels.array == truth.array).mean() > 0.95)
    True
    """

    name = "chan-vese"
    dims = (2, 3)
    summary = "Chan-Vese active contour without edges (morphological 2D/3D, classic 2D)"
    Params = ChanVeseParams

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Foreground phase ``spatial`` of ``image``."""
        from skimage import segmentation as seg

        p = self.params
        a = image.array
        if is_constant(a):
            return np.zeros(a.shape, np.uint8), {}
        a = _normalise(a)
        init = a > auto_threshold(a)
        if p.variant == "classic":
            if image.ndim != 2:
                raise InputError("the classic Chan-Vese level set is 2D only; use --variant morphological for 3D")
            phi0 = np.where(init, 1.0, -1.0)
            ls = seg.chan_vese(a, mu=p.mu, max_num_iter=p.iterations, init_level_set=phi0) > 0
        else:
            ls = seg.morphological_chan_vese(a, p.iterations, init_level_set=init.view(np.int8),
                                             smoothing=p.smoothing).astype(bool)
        if ls.all() or not ls.any():
            return np.zeros(a.shape, np.uint8), {}
        bright = a[ls].mean() >= a[~ls].mean()
        fg = ls if bright == p.above else ~ls
        return fg.view(np.uint8), {}


@dataclass(frozen=True)
class GACParams(ClassicalParams):
    """Parameters of ``geodesic-active-contour``."""

    init: Literal["otsu", "box"] = field(default="otsu", metadata={
        "help": "initial contour: otsu (the Otsu foreground) or box (the image minus a border margin)"})
    iterations: int = field(default=80, metadata={"help": "number of iterations"})
    balloon: float | None = field(default=None, metadata={
        "help": "balloon force (<0 shrinks, >0 grows); default: 0 for otsu init, -1 for box init"})
    smoothing: int = field(default=1, metadata={"help": "smoothing steps per iteration"})
    sigma: float | None = field(default=None, metadata={
        "help": "edge map Gaussian scale in mm; default: 1.5 x the finest spacing"})
    above: bool = field(default=True, metadata={"help": "otsu init: objects are bright (false: dark)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.iterations < 1 or self.smoothing < 0:
            raise ConfigError("--iterations must be >= 1 and --smoothing >= 0")


class GeodesicActiveContour(ClassicalSegmenter):
    """Morphological geodesic active contour on the inverse Gaussian gradient edge map.

    Parameters
    ----------
    params : GACParams or dict, optional
        ``init``, ``iterations``, ``balloon``, ``smoothing``, ``sigma``, ``above`` and the
        shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = GeodesicActiveContour()(img)
    >>> bool((labels.array == truth.array).mean() > 0.95)
    True
    """

    name = "geodesic-active-contour"
    dims = (2, 3)
    summary = "geodesic active contour attracted to edges (morphological, 2D/3D)"
    Params = GACParams

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """The contour's inside ``spatial`` of ``image`` and the initialisation used."""
        from skimage import segmentation as seg

        p = self.params
        a = image.array
        if is_constant(a):
            return np.zeros(a.shape, np.uint8), {}
        a = _normalise(a)
        sp = np.asarray(image.spacing)
        sigma = p.sigma if p.sigma is not None else 1.5 * float(sp.min())
        sm = ndi.gaussian_filter(a, sigma / sp)
        # inverse Gaussian gradient (skimage's edge map) with a per-axis, spacing-aware scale
        edge = 1.0 / np.sqrt(1.0 + 100.0 * ndi.gaussian_gradient_magnitude(a, sigma / sp))
        if p.init == "otsu":
            t = auto_threshold(sm)
            init = sm > t if p.above else sm <= t
            balloon = 0.0 if p.balloon is None else p.balloon
        else:
            init = np.zeros(a.shape, np.int8)
            margin = tuple(max(1, s // 20) for s in a.shape)
            init[tuple(slice(m, s - m) for m, s in zip(margin, a.shape))] = 1
            balloon = -1.0 if p.balloon is None else p.balloon
        ls = seg.morphological_geodesic_active_contour(edge, p.iterations, init_level_set=init.view(np.int8),
                                                       smoothing=p.smoothing, threshold="auto", balloon=balloon)
        return ls.astype(np.uint8), {"init": p.init}

"""Thresholds: a fixed value (``threshold``), histogram thresholds (Otsu, multi-Otsu, Li,
triangle) and adaptive local thresholding.

The histogram methods are thin adapters over `skimage.filters`: each picks its
threshold from the image's own histogram, so the defaults come from the data.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from medseg.classical.base import ClassicalParams, ClassicalSegmenter, is_constant
from medseg.errors import ConfigError
from medseg.image import Image
from medseg.preprocess.filters import noise_std

__all__ = ["GlobalParams", "Li", "Local", "LocalParams", "MultiOtsu", "MultiOtsuParams", "Otsu", "Threshold",
           "ThresholdParams", "Triangle"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThresholdParams(ClassicalParams):
    """Parameters of ``threshold``."""

    value: float | None = field(default=None, metadata={
        "help": "threshold; default: midway between the 1st and 99th intensity percentiles"})
    above: bool = field(default=True, metadata={"help": "foreground is above the value (false: below)"})


class Threshold(ClassicalSegmenter):
    """Global threshold at a fixed value (voxels above it, or below, are foreground).

    Parameters
    ----------
    params : ThresholdParams or dict, optional
        ``value``, ``above`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg.image import Image
    >>> Threshold(value=0.5)(Image(np.array([[0.2, 0.7], [0.9, 0.1]]))).array.tolist()
    [[0, 1], [1, 0]]
    """

    name = "threshold"
    family = "classical"
    dims = (2, 3)
    summary = "global threshold at a value (default: midway between the 1st and 99th percentiles)"
    Params = ThresholdParams

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Foreground of ``image`` (shape ``spatial``) and ``{"threshold": value}``."""
        a = image.array
        t = self.params.value
        if t is None:
            lo, hi = np.percentile(a, [1, 99])
            t = float(lo + hi) / 2.0
        if not np.isfinite(t):
            raise ConfigError(f"threshold value must be finite, got {t}")
        mask = a > t if self.params.above else a < t
        return mask.view(np.uint8), {"threshold": float(t)}


@dataclass(frozen=True)
class GlobalParams(ClassicalParams):
    """Parameters of the histogram thresholds (``otsu``, ``li``, ``triangle``)."""

    above: bool = field(default=True, metadata={"help": "foreground is above the threshold (false: below)"})
    nbins: int = field(default=256, metadata={"help": "histogram bins"})
    within: Literal["all", "foreground"] = field(default="all", metadata={
        "help": "all: threshold from every voxel; foreground: only from voxels above the image's own "
                "Otsu split (separates tissues inside a body/head from each other instead of from air)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nbins < 2:
            raise ConfigError(f"--nbins must be >= 2, got {self.nbins}")


class _GlobalThreshold(ClassicalSegmenter):
    dims = (2, 3)
    Params = GlobalParams

    def threshold(self, a: np.ndarray) -> float:  # pragma: no cover - abstract
        """The threshold of the intensities ``a`` (any shape)."""
        raise NotImplementedError

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Foreground of ``image`` (shape ``spatial``) and ``{"threshold": t}``."""
        a = image.array
        if self.params.within == "foreground":
            from skimage.filters import threshold_otsu

            a_fg = a[a > threshold_otsu(a, nbins=self.params.nbins)]
            if a_fg.size == 0 or is_constant(a_fg):
                raise ConfigError(f"{self.name}: the foreground has a single value; use --within all")
            t = float(self.threshold(a_fg))
        else:
            t = float(self.threshold(a))
        mask = a > t if self.params.above else a <= t
        # a constant image has nothing to segment (checked only when the result is degenerate,
        # which keeps the common path free of extra passes over the data)
        if a.size and mask.flat[0] == mask.flat[-1] and (mask.all() or not mask.any()) and is_constant(a):
            log.warning("%s: the image is constant; nothing to segment", self.name)
            return np.zeros(a.shape, np.uint8), {}
        return mask.view(np.uint8), {"threshold": t}


class Otsu(_GlobalThreshold):
    """Otsu's threshold (maximum between-class variance).

    Parameters
    ----------
    params : GlobalParams or dict, optional
        ``above``, ``nbins``, ``within`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg.image import Image
    >>> Otsu()(Image(np.array([[0.0, 0.2], [0.8, 1.0]]))).array.tolist()
    [[0, 0], [1, 1]]
    """

    name = "otsu"
    summary = "Otsu's global threshold (maximum between-class variance)"

    def threshold(self, a: np.ndarray) -> float:
        """Otsu's threshold of ``a`` (any shape)."""
        from skimage.filters import threshold_otsu

        return threshold_otsu(a, nbins=self.params.nbins)


class Li(_GlobalThreshold):
    """Li's minimum cross-entropy threshold.

    Parameters
    ----------
    params : GlobalParams or dict, optional
        ``above``, ``within`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = Li()(img)
    >>> bool((labels.array == truth.array).mean() > 0.95)
    True
    """

    name = "li"
    summary = "Li's minimum cross-entropy threshold"

    def threshold(self, a: np.ndarray) -> float:
        """Li's threshold of ``a`` (any shape)."""
        from skimage.filters import threshold_li

        return threshold_li(a)


class Triangle(_GlobalThreshold):
    """Triangle threshold (good for a small bright object on a large background peak).

    Parameters
    ----------
    params : GlobalParams or dict, optional
        ``above``, ``nbins``, ``within`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = Triangle()(img)
    >>> bool((labels.array == truth.array).mean() > 0.95)
    True
    """

    name = "triangle"
    summary = "triangle threshold (small objects on a dominant background peak)"

    def threshold(self, a: np.ndarray) -> float:
        """The triangle threshold of ``a`` (any shape)."""
        from skimage.filters import threshold_triangle

        return threshold_triangle(a, nbins=self.params.nbins)


@dataclass(frozen=True)
class MultiOtsuParams(ClassicalParams):
    """Parameters of ``multi-otsu``."""

    classes: int = field(default=3, metadata={"help": "number of classes (labels 0..classes-1, by intensity)"})
    nbins: int = field(default=256, metadata={"help": "histogram bins"})
    foreground_from: int | None = field(default=None, metadata={
        "help": "output a binary mask of the classes >= K instead of the class map"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.classes <= 8:
            raise ConfigError(f"--classes must be between 2 and 8, got {self.classes}")
        if self.foreground_from is not None and not 1 <= self.foreground_from < self.classes:
            raise ConfigError(f"--foreground-from must be between 1 and {self.classes - 1}, got {self.foreground_from}")


class MultiOtsu(ClassicalSegmenter):
    """Multi-level Otsu: ``classes`` intensity classes, labelled 0 (darkest) upwards.

    Parameters
    ----------
    params : MultiOtsuParams or dict, optional
        ``classes``, ``nbins``, ``foreground_from`` and the shared channel/post-processing
        fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, _ = disc_phantom((64, 64), seed=0)
    >>> labels = MultiOtsu(classes=3)(img)
    >>> sorted(np.unique(labels.array).tolist()), len(labels.meta["thresholds"])
    ([0, 1, 2], 2)
    """

    name = "multi-otsu"
    dims = (2, 3)
    summary = "multi-level Otsu thresholds: N intensity classes labelled by brightness"
    Params = MultiOtsuParams

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Class map (or foreground) of ``image`` (shape ``spatial``) and ``{"thresholds": [...]}``."""
        from skimage.filters import threshold_multiotsu

        a = image.array
        if is_constant(a):
            log.warning("%s: the image is constant; nothing to segment", self.name)
            return np.zeros(a.shape, np.uint8), {}
        if np.unique(a.ravel()[:: max(1, a.size // 200_000)]).size < self.params.classes:
            raise ConfigError(f"the image has fewer distinct values than --classes {self.params.classes}; "
                              "lower --classes")
        ts = threshold_multiotsu(a, classes=self.params.classes, nbins=self.params.nbins)
        meta = {"thresholds": [float(t) for t in ts]}
        if self.params.foreground_from is not None:
            return (a > ts[self.params.foreground_from - 1]).view(np.uint8), meta
        return np.digitize(a, ts).astype(np.uint8), meta


@dataclass(frozen=True)
class LocalParams(ClassicalParams):
    """Parameters of ``local``."""

    block_size: float | None = field(default=None, metadata={
        "help": "neighbourhood size in mm (pixels at spacing 1); default: 1/4 of the smallest image extent"})
    statistic: Literal["gaussian", "mean", "median", "sauvola", "niblack"] = field(default="gaussian", metadata={
        "help": "local statistic: gaussian, mean, median (skimage threshold_local), sauvola or niblack"})
    offset: float = field(default=1.0, metadata={
        "help": "a pixel must exceed its local threshold by this many noise standard deviations "
                "(estimated from the image)"})
    above: bool = field(default=True, metadata={"help": "foreground is above the local threshold"})


class Local(ClassicalSegmenter):
    """Adaptive threshold: each pixel against a statistic of its neighbourhood.

    Parameters
    ----------
    params : LocalParams or dict, optional
        ``block_size``, ``statistic``, ``offset``, ``above`` and the shared
        channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = Local()(img)
    >>> labels.meta["block_size"], bool((labels.array == truth.array).mean() > 0.8)
    ([17, 17], True)
    """

    name = "local"
    dims = (2, 3)
    summary = "adaptive local threshold (gaussian/mean/median, Sauvola, Niblack)"
    Params = LocalParams

    def block_sizes(self, image: Image) -> tuple[int, ...]:
        """Odd neighbourhood sizes in voxels, one per axis of ``image``."""
        sp = np.asarray(image.spacing)
        size = self.params.block_size
        if size is None:
            size = float(np.min(np.asarray(image.shape) * sp)) / 4.0
        if size <= 0:
            raise ConfigError(f"--block-size must be positive, got {size}")
        blocks = np.maximum(3, np.round(size / sp).astype(int))
        return tuple(int(b) + 1 - int(b) % 2 for b in blocks)  # odd

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Foreground of ``image`` (shape ``spatial``), the block size and the noise margin."""
        from skimage import filters

        a = image.array.astype(np.float32, copy=False)
        if is_constant(a):
            return np.zeros(a.shape, np.uint8), {}
        block = self.block_sizes(image)
        m = self.params.statistic
        if m in ("sauvola", "niblack"):
            fn = filters.threshold_sauvola if m == "sauvola" else filters.threshold_niblack
            t = fn(a, window_size=block)
        else:
            t = filters.threshold_local(a, block_size=block, method=m)
        margin = self.params.offset * noise_std(a) if self.params.offset else 0.0
        mask = a > t + margin if self.params.above else a < t - margin
        return mask.view(np.uint8), {"block_size": list(block), "noise_margin": margin}

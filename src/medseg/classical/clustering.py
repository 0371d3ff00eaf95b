"""Intensity clustering (k-means, Gaussian mixture; every channel is a feature) and the
random walker (seeds from the data or from a file)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from medseg.classical.base import (
    ClassicalParams,
    ClassicalSegmenter,
    auto_threshold,
    is_constant,
    read_mask_file,
)
from medseg.errors import ConfigError, InputError
from medseg.image import Image

__all__ = ["GMM", "ClusterParams", "KMeans", "RandomWalker", "RandomWalkerParams"]


@dataclass(frozen=True)
class ClusterParams(ClassicalParams):
    """Parameters of ``kmeans`` and ``gmm``."""

    classes: int = field(default=2, metadata={"help": "number of clusters (labels 0..classes-1, darkest first)"})
    max_samples: int = field(default=200_000, metadata={
        "help": "fit on at most this many voxels (evenly strided), then label every voxel"})
    seed: int = field(default=0, metadata={"help": "random seed"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 2 <= self.classes <= 16:
            raise ConfigError(f"--classes must be between 2 and 16, got {self.classes}")
        if self.max_samples < 100:
            raise ConfigError(f"--max-samples must be >= 100, got {self.max_samples}")


class _Cluster(ClassicalSegmenter):
    dims = (2, 3)
    Params = ClusterParams
    multichannel: ClassVar[bool] = True

    def model(self) -> Any:  # pragma: no cover - abstract
        """The unfitted scikit-learn clustering model."""
        raise NotImplementedError

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Cluster labels ``spatial`` of ``image`` (``([C,] *spatial)``), ordered by brightness."""
        a = np.asarray(image.array, dtype=np.float32)  # no copy when already float32
        x = a.reshape(image.n_channels, -1).T if image.has_channels else a.reshape(-1, 1)
        if np.all(x.min(axis=0) == x.max(axis=0)):
            return np.zeros(image.shape, np.uint8), {}
        scale = x.std(axis=0, dtype=np.float64)  # float64 sums: huge values would overflow float32
        x = ((x - x.mean(axis=0, dtype=np.float64)) / np.where(scale > 0, scale, 1)).astype(np.float32)
        step = max(1, len(x) // self.params.max_samples)
        sample = x[::step]
        if len(np.unique(sample[: 100_000], axis=0)) < self.params.classes:
            raise ConfigError(f"the image has fewer distinct values than --classes {self.params.classes}")
        from threadpoolctl import threadpool_limits

        # the fit sample is small: one thread avoids OpenMP start-up/oversubscription costs (10x here)
        with threadpool_limits(1):
            m = self.model().fit(sample)
        pred = m.predict(x)
        # order clusters by brightness (mean over channels of the members) so labels are stable
        sp_pred = m.predict(sample)
        centres = np.array([sample[sp_pred == k].mean() if np.any(sp_pred == k) else -np.inf
                            for k in range(self.params.classes)])
        rank = np.empty(self.params.classes, np.uint8)
        rank[np.argsort(centres, kind="stable")] = np.arange(self.params.classes)
        return rank[pred].reshape(image.shape), {}


class KMeans(_Cluster):
    """k-means clustering of intensities (all channels as features).

    Parameters
    ----------
    params : ClusterParams or dict, optional
        ``classes``, ``max_samples``, ``seed`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = KMeans()(img)
    >>> bool((labels.array == truth.array).mean() > 0.95)
    True
    """

    name = "kmeans"
    summary = "k-means clustering of intensities (multi-channel aware), labels ordered by brightness"

    def model(self) -> Any:
        """A scikit-learn ``KMeans`` with ``classes`` clusters."""
        from sklearn.cluster import KMeans as _KMeans

        return _KMeans(n_clusters=self.params.classes, n_init=3, random_state=self.params.seed)


class GMM(_Cluster):
    """Gaussian mixture model of intensities (all channels as features).

    Parameters
    ----------
    params : ClusterParams or dict, optional
        ``classes``, ``max_samples``, ``seed`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = GMM()(img)
    >>> bool((labels.array == truth.array).mean() > 0.95)
    True
    """

    name = "gmm"
    summary = "Gaussian mixture clustering of intensities (multi-channel aware), labels by brightness"

    def model(self) -> Any:
        """A scikit-learn ``GaussianMixture`` with ``classes`` components."""
        from sklearn.mixture import GaussianMixture

        return GaussianMixture(n_components=self.params.classes, random_state=self.params.seed, n_init=2)


@dataclass(frozen=True)
class RandomWalkerParams(ClassicalParams):
    """Parameters of ``random-walker``."""

    seeds: str | None = field(default=None, metadata={
        "help": "seed label file on the image grid (0 = unknown, 1..K = classes); default: automatic"})
    beta: float = field(default=130.0, metadata={"help": "edge penalty (higher: stronger edges)"})
    mode: Literal["cg_j", "cg", "bf"] = field(default="cg_j", metadata={"help": "linear solver"})
    above: bool = field(default=True, metadata={"help": "automatic seeds: foreground is bright"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise ConfigError(f"--beta must be positive, got {self.beta}")


class RandomWalker(ClassicalSegmenter):
    """Random walker segmentation from seeds.

    Automatic seeds: split at Otsu's threshold; voxels darker than the background mean
    seed the background, voxels brighter than the foreground mean seed the foreground.

    Parameters
    ----------
    params : RandomWalkerParams or dict, optional
        ``seeds``, ``beta``, ``mode``, ``above`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = RandomWalker()(img)
    >>> bool((labels.array == truth.array).mean() > 0.95)
    True
    """

    name = "random-walker"
    dims = (2, 3)
    summary = "random walker from seeds (seed file or automatic from the two intensity classes)"
    Params = RandomWalkerParams

    def markers(self, a: np.ndarray, image: Image) -> np.ndarray:
        """Seed labels ``spatial`` (0 unknown, 1.. classes) for the normalised intensities ``a``."""
        p = self.params
        if p.seeds:
            m = read_mask_file(p.seeds, image, "seed label file").astype(np.int32)
            if len(np.unique(m[m > 0])) < 2:
                raise InputError(f"seed file {p.seeds} must mark at least two labels (1 and 2)")
            return m
        t = auto_threshold(a)
        lo, hi = a[a <= t].mean(), a[a > t].mean()
        m = np.zeros(a.shape, np.int32)
        bg, fg = (1, 2) if p.above else (2, 1)
        m[a <= lo] = bg
        m[a >= hi] = fg
        return m

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Labels ``spatial`` of ``image``: the foreground (automatic seeds) or the seed labels."""
        from skimage.segmentation import random_walker

        a = image.array.astype(np.float64)
        if is_constant(a):
            return np.zeros(a.shape, np.uint8), {}
        lo, hi = np.percentile(a, [0.5, 99.5])
        a = np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1)
        markers = self.markers(a, image)
        sp = np.asarray(image.spacing)
        lab = random_walker(a, markers, beta=self.params.beta, mode=self.params.mode, tol=1e-4,
                            spacing=sp / sp.min())
        if not self.params.seeds:
            lab = (lab == 2)
        return lab.astype(np.uint8) if lab.max() < 256 else lab, {}

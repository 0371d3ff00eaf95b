"""What a feature stack holds: `FeatureConfig`, data-derived scales, per-channel
normalisation and the feature names.

The computation itself (block-wise, with halos) is in `medseg.features.stack`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from medseg.config import from_dict, to_dict
from medseg.errors import ConfigError, InputError
from medseg.features.context import FEATURES, FeatureContext
from medseg.image import Image

__all__ = ["DEFAULT_FEATURES", "FOREST_FEATURES", "FeatureConfig", "default_sigmas", "feature_names",
           "normalise_channels", "robust_range"]

DEFAULT_FEATURES = ("intensity", "gaussian", "gradient", "dog", "hessian", "local_std", "structure")
"""The features computed by default: intensity, Gaussian smoothing, gradient magnitude, difference
of Gaussians, Hessian eigenvalues, the local standard deviation and the structure-tensor
eigenvalues, at every scale. DRIVE 5-fold random-forest F1: 0.7761 without the last two, 0.7779
with ``local_std`` (a local contrast measure), 0.7805 with ``structure`` too (local orientation
coherence; 4 of 5 folds better at each step); the two cost ~0.25 s of feature time per 565x584
RGB image on 2 cores (benchmarks/results/ml.md)."""


FOREST_FEATURES = DEFAULT_FEATURES + ("lines",)
"""The default features of the tree ensembles (``random-forest``, ``extra-trees``) on 2D
images: `DEFAULT_FEATURES` plus the line strength (``lines``, Ricci and Perfetti). On 3D
volumes the forests take `DEFAULT_FEATURES`: the line detector runs slice by slice, and on
the synthetic head volumes it lowered mean Dice by 0.003-0.004 (two sets of seeds). DRIVE 5-fold
random-forest F1 0.7804 -> 0.7854, all 5 folds better; level on the 2D synthetic fundus and
disc phantoms (mean Dice 0.9828 vs 0.9829, benchmarks/bench_ml_synthetic.py); ~0.4 s more
feature time per 565x584 RGB image on 2 cores (benchmarks/results/ml.md). Not the default of
the distance- and kernel-based classifiers: a k-nearest-neighbour vote on scribbles of a disc
phantom fell from Dice 0.916 to 0.886 with it (every added feature dilutes their distances;
trees choose among features instead)."""


@dataclass(frozen=True)
class FeatureConfig:
    """What to compute. Serialisable with [`medseg.config.to_dict`][] / `from_dict`.

    Attributes
    ----------
    features : tuple of str
        Names from [`medseg.features.FEATURES`][] (``medseg.features.FEATURES.names()``).
    sigmas : tuple of float or None
        Physical scales (mm; pixels when the image has unit spacing). ``None``: from the
        image's spacing, ``min(spacing) * (0.5, 1, 2, 4, 8)`` limited to a sixteenth of the
        smallest physical extent (see `default_sigmas`).
    channels : tuple of int or None
        Channels to use; ``None``: all channels (features are computed per channel).
    normalise : {"percentile", "zscore", "none"}
        Per-image, per-channel intensity normalisation before filtering: ``percentile``
        maps the 1st..99th percentiles to 0..1; ``zscore`` subtracts the mean and divides
        by the standard deviation.
    ridges : {"both", "dark", "bright"}
        Polarity of the vesselness filters (``frangi``, ``sato``, ``meijering``).
    max_memory_mb : float
        Working-memory bound for one block of features; larger images are processed in
        blocks with a halo.

    Examples
    --------
    >>> cfg = FeatureConfig(features=("gaussian",), sigmas=(2, 1))
    >>> cfg.sigmas, FeatureConfig.from_dict(cfg.to_dict()) == cfg
    ((1.0, 2.0), True)
    """

    features: tuple[str, ...] = DEFAULT_FEATURES
    sigmas: tuple[float, ...] | None = None
    channels: tuple[int, ...] | None = None
    normalise: Literal["percentile", "zscore", "none"] = "percentile"
    ridges: Literal["both", "dark", "bright"] = "both"
    max_memory_mb: float = 1024.0

    def __post_init__(self) -> None:
        feats = tuple(self.features)
        if not feats:
            raise ConfigError("at least one feature is needed; available: " + ", ".join(FEATURES.names()))
        for f in feats:
            FEATURES.get(f)  # raises with a suggestion
        object.__setattr__(self, "features", feats)
        if self.sigmas is not None:
            sig = tuple(float(s) for s in self.sigmas)
            if not sig or any(not np.isfinite(s) or s <= 0 for s in sig):
                raise ConfigError(f"sigmas must be positive physical lengths, got {self.sigmas}")
            object.__setattr__(self, "sigmas", tuple(sorted(set(sig))))
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.normalise not in ("percentile", "zscore", "none"):
            raise ConfigError(f"normalise must be percentile, zscore or none, got {self.normalise!r}")
        if self.ridges not in ("both", "dark", "bright"):
            raise ConfigError(f"ridges must be both, dark or bright, got {self.ridges!r}")
        if not self.max_memory_mb > 0:
            raise ConfigError(f"max_memory_mb must be positive, got {self.max_memory_mb}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """The configuration written by `to_dict` (unknown keys are refused)."""
        return from_dict(cls, data, what="feature configuration")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return to_dict(self)

    def resolve(self, image: Image) -> FeatureConfig:
        """The same configuration with ``sigmas`` fixed from ``image`` (when ``None``)."""
        self.check_channels(image)
        if self.sigmas is not None:
            return self
        return dataclasses.replace(self, sigmas=default_sigmas(image))

    def check_channels(self, image: Image) -> list[int]:
        """The channel indices used for ``image`` (error if a requested one is missing)."""
        n = image.n_channels
        if self.channels is None:
            return list(range(n))
        bad = [c for c in self.channels if not -n <= c < n]
        if bad:
            raise InputError(f"feature channels {list(self.channels)} requested but the image has {n} channel(s)")
        return [c % n for c in self.channels]


def default_sigmas(image: Image, n: int = 5) -> tuple[float, ...]:
    """Scales from the data: ``min(spacing) * 2**k``, ``k = -1..n-2`` (half a voxel to
    eight voxels by default), each at most a sixteenth of the smallest physical extent (at
    least one scale).

    The half-voxel scale is there for structures one or two voxels wide (thin vessels,
    membranes): the Hessian responds most to a ridge of width ``w`` at ``sigma ~ w / (2
    sqrt 3)`` (Lindeberg's ridge scale), and one voxel already blurs such a ridge into its
    neighbours. On DRIVE (5-fold random forest) it raised F1 from 0.7730 to 0.7761.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``; only its shape and spacing are read.
    n : int
        Number of scales before the extent limit.

    Returns
    -------
    tuple of float
        Ascending physical scales.

    Examples
    --------
    >>> default_sigmas(Image(np.zeros((256, 256))))
    (0.5, 1.0, 2.0, 4.0, 8.0)
    """
    base = min(image.spacing)
    extent = min(s * sp for s, sp in zip(image.shape, image.spacing))
    sig = [base * 2.0 ** (k - 1) for k in range(n)]
    keep = tuple(s for s in sig if s <= extent / 16) or (base,)
    return keep


def robust_range(a: np.ndarray) -> tuple[float, float]:
    """The 1st and 99th percentiles of ``a`` (of at most about a million evenly strided values).

    Parameters
    ----------
    a : numpy.ndarray
        Any shape.

    Returns
    -------
    (float, float)
        ``(low, high)``.
    """
    flat = a.reshape(-1)
    if flat.size > 1_000_000:
        flat = flat[:: flat.size // 1_000_000]
    lo, hi = np.percentile(flat, [1, 99])
    return float(lo), float(hi)


def normalise_channels(image: Image, config: FeatureConfig) -> list[np.ndarray]:
    """Selected channels as float32 arrays, normalised per ``config.normalise``.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    config : FeatureConfig
        Channels and normalisation.

    Returns
    -------
    list of numpy.ndarray
        One float32 copy of shape ``spatial`` per selected channel.
    """
    chans = config.check_channels(image)
    arr = image.channels_first()
    out = []
    for c in chans:
        a = arr[c].astype(np.float32)  # always a copy: inputs are never modified
        if config.normalise == "percentile":
            lo, hi = robust_range(a)
            a -= lo
            a /= (hi - lo) if hi > lo else 1.0
        elif config.normalise == "zscore":
            m, sd = float(a.mean()), float(a.std())
            a -= m
            a /= sd if sd > 0 else 1.0
        out.append(a)
    return out


def feature_names(image: Image, config: FeatureConfig | None = None) -> list[str]:
    """Names of the features [`feature_stack`][medseg.features.stack.feature_stack] computes for ``image``.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    config : FeatureConfig, optional
        Default ``FeatureConfig()``; ``sigmas=None`` is resolved from ``image``.

    Returns
    -------
    list of str
        ``F`` names, ``c{k}_``-prefixed when more than one channel is used.

    Examples
    --------
    >>> feature_names(Image(np.zeros((32, 32))), FeatureConfig(features=("intensity", "gaussian"), sigmas=(1,)))
    ['intensity', 'gaussian_s1']
    """
    config = (config or FeatureConfig()).resolve(image)
    chans = config.check_channels(image)
    dummy = FeatureContext(np.zeros((8,) * image.ndim, np.float32), image.spacing, config.sigmas,
                           ridges=config.ridges)
    per = [n for f in config.features for n, _ in FEATURES.get(f)(dummy)]
    prefixes = [f"c{c}_" for c in chans] if len(chans) > 1 else [""]
    return [p + n for p in prefixes for n in per]

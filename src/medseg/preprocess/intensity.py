"""Intensity transforms: normalisation, clipping, CT windows, histogram equalisation,
CLAHE and gamma. Every function maps ``Image -> Image`` (2D/3D, each channel separately)
and keeps the geometry."""
from __future__ import annotations

import numpy as np

from medseg.errors import ConfigError, InputError, suggest
from medseg.image import Image
from medseg.preprocess._util import as_image, float_array, per_channel

__all__ = ["WINDOW_PRESETS", "clahe", "clip_percentile", "equalize", "gamma", "minmax", "window", "zscore"]

WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "abdomen": (40.0, 400.0),
    "liver": (60.0, 160.0),
    "bone": (400.0, 1800.0),
}
"""CT window presets (level, width) in Hounsfield units."""


def minmax(image: Image, *, lower: float = 0.0, upper: float = 1.0) -> Image:
    """Rescale intensities linearly to ``[lower, upper]`` (per channel).

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    lower, upper : float
        The output range.

    Returns
    -------
    Image
        Same shape and geometry, float32 (a constant channel becomes ``lower``).

    Examples
    --------
    >>> import numpy as np
    >>> minmax(Image(np.array([[2., 4.], [6., 10.]]))).array.tolist()
    [[0.0, 0.25], [0.5, 1.0]]
    """
    if upper <= lower:
        raise ConfigError(f"minmax needs upper > lower, got {lower}, {upper}")

    def f(a):
        a = float_array(a)
        lo, hi = float(a.min()), float(a.max())
        if hi == lo:
            return np.full(a.shape, lower, np.float32)
        return ((a - lo) / (hi - lo) * (upper - lower) + lower).astype(np.float32)

    return per_channel(image, f)


def zscore(image: Image, *, mask: np.ndarray | Image | None = None) -> Image:
    """Zero mean, unit variance per channel; statistics from ``mask`` voxels when given.

    Parameters
    ----------
    image : Image
        ``(y, x)``/``(z, y, x)``, optionally channel-first.
    mask : array or Image, optional
        Boolean mask on the spatial grid (e.g. the brain); only its voxels set the statistics.

    Returns
    -------
    Image
        Same shape and geometry, float32.

    Examples
    --------
    >>> zscore(Image(np.array([[1.0, 3.0]]))).array.tolist()
    [[-1.0, 1.0]]
    """
    image = as_image(image)
    m = None
    if mask is not None:
        m = np.asarray(mask.array if isinstance(mask, Image) else mask) != 0
        if m.shape != image.shape:
            raise InputError(f"mask shape {m.shape} does not match the image shape {image.shape}")
        if not m.any():
            raise InputError("the z-score mask is empty")

    def f(a):
        a = float_array(a)
        v = a[m] if m is not None else a
        mu, sd = float(v.mean()), float(v.std())
        return ((a - mu) / (sd if sd > 0 else 1.0)).astype(np.float32)

    return per_channel(image, f)


def clip_percentile(image: Image, *, lower: float = 0.5, upper: float = 99.5) -> Image:
    """Clip each channel to its ``[lower, upper]`` percentiles (robust to outliers).

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    lower, upper : float
        Percentiles, ``0 <= lower < upper <= 100``.

    Returns
    -------
    Image
        Same shape, dtype and geometry.

    Examples
    --------
    >>> clip_percentile(Image(np.arange(5.0)[None]), lower=25, upper=75).array.tolist()
    [[1.0, 1.0, 2.0, 3.0, 3.0]]
    """
    if not 0 <= lower < upper <= 100:
        raise ConfigError(f"percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}")

    def f(a):
        lo, hi = np.percentile(a, [lower, upper])
        return np.clip(a, lo, hi)

    return per_channel(image, f)


def window(image: Image, *, preset: str | None = None, level: float | None = None,
           width: float | None = None) -> Image:
    """CT window: map ``[level - width/2, level + width/2]`` HU to ``[0, 1]`` (clipped).

    Parameters
    ----------
    image : Image
        CT intensities in HU, shape ``([C,] *spatial)``.
    preset : str, optional
        One of `WINDOW_PRESETS` (brain, lung, abdomen, bone, ...).
    level, width : float, optional
        Explicit window (override the preset's values).

    Returns
    -------
    Image
        Same shape and geometry, float32 in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> window(Image(np.array([[-1000., 40.], [80., 3000.]])), preset="brain").array.tolist()
    [[0.0, 0.5], [1.0, 1.0]]
    """
    if preset is not None:
        if preset not in WINDOW_PRESETS:
            raise ConfigError(f"unknown window preset '{preset}'{suggest(preset, WINDOW_PRESETS)}; "
                              f"available: {', '.join(WINDOW_PRESETS)}")
        plevel, pwidth = WINDOW_PRESETS[preset]
        level = plevel if level is None else level
        width = pwidth if width is None else width
    if level is None or width is None:
        raise ConfigError("window needs a preset or both level and width")
    if width <= 0:
        raise ConfigError(f"window width must be positive, got {width}")
    lo = level - width / 2.0

    def f(a):
        return np.clip((float_array(a) - lo) / width, 0.0, 1.0).astype(np.float32)

    return per_channel(image, f)


def _unit(a: np.ndarray) -> np.ndarray:
    a = float_array(a)
    lo, hi = float(a.min()), float(a.max())
    return np.zeros(a.shape, np.float32) if hi == lo else ((a - lo) / (hi - lo)).astype(np.float32)


def equalize(image: Image, *, nbins: int = 256) -> Image:
    """Global histogram equalisation (output in [0, 1]).

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    nbins : int
        Histogram bins.

    Returns
    -------
    Image
        Same shape and geometry, float32 in ``[0, 1]``.
    """
    from skimage import exposure

    return per_channel(image, lambda a: exposure.equalize_hist(_unit(a), nbins=nbins).astype(np.float32))


def clahe(image: Image, *, clip_limit: float = 0.01, kernel_size: float | None = None,
          nbins: int = 256) -> Image:
    """Contrast-limited adaptive histogram equalisation (scikit-image), 2D and 3D.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    clip_limit : float
        Normalised clip limit (0..1; higher = more contrast).
    kernel_size : float, optional
        Tile size in mm (pixels at spacing 1); default 1/8 of each axis' extent (skimage's).
    nbins : int
        Histogram bins.

    Returns
    -------
    Image
        Float32 in [0, 1].
    """
    from skimage import exposure

    image = as_image(image)
    ks = None
    if kernel_size is not None:
        if kernel_size <= 0:
            raise ConfigError(f"clahe kernel_size must be positive, got {kernel_size}")
        ks = [max(2, int(round(kernel_size / s))) for s in image.spacing]
    return per_channel(image, lambda a: exposure.equalize_adapthist(_unit(a), kernel_size=ks, clip_limit=clip_limit,
                                                                    nbins=nbins).astype(np.float32))


def gamma(image: Image, *, gamma: float = 1.0) -> Image:
    """Gamma correction on intensities rescaled to [0, 1]: ``out = in ** gamma``.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    gamma : float
        Exponent (> 0; below 1 brightens, above 1 darkens).

    Returns
    -------
    Image
        Same shape and geometry, float32 in ``[0, 1]``.

    Examples
    --------
    >>> gamma(Image(np.array([[0.0, 0.5, 1.0]])), gamma=2.0).array.tolist()
    [[0.0, 0.25, 1.0]]
    """
    if gamma <= 0:
        raise ConfigError(f"gamma must be positive, got {gamma}")
    return per_channel(image, lambda a: (_unit(a) ** gamma).astype(np.float32))

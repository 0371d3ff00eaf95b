"""Helpers shared by the preprocessing modules."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medseg.errors import InputError
from medseg.image import Image

__all__ = ["as_image", "float_array", "noise_std", "per_channel"]


def as_image(image: Image | np.ndarray) -> Image:
    """Accept an :class:`Image` or a bare 2D/3D array."""
    if isinstance(image, Image):
        return image
    if isinstance(image, np.ndarray):
        return Image(image)
    raise InputError(f"expected a medseg Image or a NumPy array, got {type(image).__name__}")


def float_array(a: np.ndarray) -> np.ndarray:
    """``a`` as float32 (float64 kept), without copying when already floating."""
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def per_channel(image: Image, fn: Callable[[np.ndarray], np.ndarray]) -> Image:
    """Apply ``fn`` (spatial array -> spatial array) to every channel of ``image``."""
    image = as_image(image)
    if not image.has_channels:
        return image.with_array(fn(image.array))
    return image.with_array(np.stack([fn(c) for c in image.array]))


def noise_std(a: np.ndarray) -> float:
    """Robust estimate of additive Gaussian noise: MAD of neighbour differences.

    Differences along the last axis remove smooth structure; the median absolute
    deviation ignores the few large differences at edges. Returns ``sigma`` in intensity
    units (``0`` for a constant image).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(noise_std(rng.normal(0, 2.0, (200, 200))), 1)
    2.0
    """
    d = np.diff(np.asarray(a, dtype=np.float64), axis=-1).ravel()
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))

"""Helpers shared by the preprocessing modules."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medseg.errors import InputError
from medseg.image import Image

__all__ = ["as_image", "float_array", "per_channel"]


def as_image(image: Image | np.ndarray) -> Image:
    """Accept an `Image` or a bare 2D/3D array.

    Parameters
    ----------
    image : Image or numpy.ndarray
        An array becomes an Image with unit spacing.

    Returns
    -------
    Image
    """
    if isinstance(image, Image):
        return image
    if isinstance(image, np.ndarray):
        return Image(image)
    raise InputError(f"expected a medseg Image or a NumPy array, got {type(image).__name__}")


def float_array(a: np.ndarray) -> np.ndarray:
    """``a`` as float32 (float64 kept), without copying when already floating.

    Parameters
    ----------
    a : numpy.ndarray
        Any shape.

    Returns
    -------
    numpy.ndarray
        Same shape, float32 or float64.
    """
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float32)


def per_channel(image: Image, fn: Callable[[np.ndarray], np.ndarray]) -> Image:
    """Apply ``fn`` (spatial array -> spatial array) to every channel of ``image``.

    Parameters
    ----------
    image : Image or numpy.ndarray
        Shape ``([C,] *spatial)``.
    fn : callable
        Maps one channel ``spatial`` to an array of the same shape.

    Returns
    -------
    Image
        Same geometry, the channels stacked again.

    Examples
    --------
    >>> float(per_channel(Image(np.ones((2, 3, 3)), spacing=(1.0, 1.0)), lambda a: 2 * a).array.sum())
    36.0
    """
    image = as_image(image)
    if not image.has_channels:
        return image.with_array(fn(image.array))
    return image.with_array(np.stack([fn(c) for c in image.array]))

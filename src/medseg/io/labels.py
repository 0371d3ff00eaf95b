"""Label maps: integer images, 0 = background, read from any format."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.errors import InputError
from medseg.image import Image
from medseg.io.base import read_image

__all__ = ["read_label", "as_label", "label_values"]


def read_label(path: str | Path, *, series: str | None = None) -> Image:
    """Read a label map: integer values, 0 = background.

    Parameters
    ----------
    path : str or Path
        A label-map file or DICOM folder (see `read_image`).
    series : str, optional
        The DICOM series to read from a folder holding several.

    Returns
    -------
    Image
        Integer array of shape ``(y, x)`` or ``(z, y, x)``, see `as_label`.

    Examples
    --------
    >>> mask = np.zeros((4, 5), np.uint8)
    >>> mask[1:3, 1:4] = 255
    >>> from medseg.io import write_image
    >>> import tempfile
    >>> lab = read_label(write_image(Image(mask), Path(tempfile.mkdtemp()) / "mask.png"))
    >>> int(lab.array.max()), lab.dtype
    (1, dtype('uint8'))
    """
    img = read_image(path, series=series)
    return as_label(img, name=str(path))


def label_values(a: np.ndarray, name: str = "label map") -> np.ndarray:
    """The one rule for what the values of a label map mean, used by every reader and metric.

    Whole-number floats become integers; NaN/Inf, fractions and negative values are refused;
    ``bool`` becomes ``uint8``; a map holding only 0 and 255 (or 0 and 65535) is a mask image
    whose foreground is label 1. ``read_label``, dataset loading (so ``inspect`` and ``train``)
    and every metric (so ``evaluate``) apply this function.

    Parameters
    ----------
    a : ndarray
        The map's values (any shape).
    name : str
        What to call the map in error messages (usually its path).

    Returns
    -------
    ndarray
        Bool-free integer array of the same shape (``int64`` from floats, else the input's
        integer dtype; ``uint8`` for masks and bools).

    Raises
    ------
    InputError
        NaN/Inf, non-integer or negative values, or a non-numeric dtype.

    Examples
    --------
    >>> label_values(np.array([0, 255, 255], np.uint8)).tolist()
    [0, 1, 1]
    >>> label_values(np.array([0.0, 2.0])).tolist()
    [0, 2]
    """
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name}: label map has dtype {a.dtype}; expected bool, integer or float labels")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise InputError(f"{name}: label map contains NaN or Inf; labels must be whole numbers")
        frac = a != np.round(a)
        if np.any(frac):
            raise InputError(f"{name}: label map has non-integer values (e.g. {a[frac].flat[0]:.4g}); labels must be "
                             "whole numbers — threshold probability maps first, or pass them to the probability "
                             "metrics (roc_auc, pr_auc, ece)")
        a = a.astype(np.int64)
    if a.dtype == bool:
        return a.astype(np.uint8)
    if a.size and a.dtype.kind == "i" and a.min() < 0:
        raise InputError(f"{name}: label map has negative values (min {a.min()}); labels must be >= 0")
    if a.size:
        top = a.max()
        if top in (255, 65535) and not np.any((a != 0) & (a != top)):
            return (a == top).astype(np.uint8)  # a 0/255 (or 0/65535) mask image
    return a


def as_label(img: Image, *, name: str = "label map") -> Image:
    """The label map ``img`` holds: one channel, non-negative integers, 0 = background.

    Binary masks stored as 0/255 (or 0/65535) become 0/1; grey RGB(A) masks become
    single-channel; float arrays whose values are all integers are cast to integers. The
    result is ``uint8``, ``uint16`` or ``int32``, the smallest that holds the largest label.

    Parameters
    ----------
    img : Image
        Array ``([C,] *spatial)``; a channel axis is allowed only for grey RGB(A) masks.
    name : str
        What to call the map in error messages (usually its path).

    Returns
    -------
    Image
        Integer array of shape ``spatial``, same geometry and meta.

    Raises
    ------
    InputError
        Several channels, NaN/Inf, non-integer or negative values.

    Examples
    --------
    >>> as_label(Image(np.array([[0.0, 2.0], [1.0, 0.0]]))).array
    array([[0, 2],
           [1, 0]], dtype=uint8)
    """
    a = img.array
    if img.has_channels:
        chans = a
        if chans.shape[0] in (3, 4) and img.meta.get("rgb"):
            rgb = chans[:3]
            if np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[0], rgb[2]):
                a = rgb[0]
            else:
                raise InputError(f"{name}: a colour label image must be grey (R=G=B); "
                                 "convert it to integer labels first")
        else:
            raise InputError(f"{name}: a label map must have one channel, got {chans.shape[0]}")
    a = label_values(a, name)
    mx = int(a.max())
    dtype = np.uint8 if mx < 256 else (np.uint16 if mx < 65536 else np.int32)
    return Image(a.astype(dtype, copy=False), img.spacing, img.origin, img.direction, img.meta)

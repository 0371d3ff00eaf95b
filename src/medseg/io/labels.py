"""Label maps: integer images, 0 = background, read from any format."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from medseg.errors import InputError
from medseg.image import Image
from medseg.io.base import read_image

__all__ = ["read_label", "as_label"]


def read_label(path: str | Path, *, series: str | None = None) -> Image:
    """Read a label map: integer values, 0 = background.

    Parameters
    ----------
    path : str or Path
        A label-map file or DICOM folder (see :func:`read_image`).
    series : str, optional
        The DICOM series to read from a folder holding several.

    Returns
    -------
    Image
        Integer array of shape ``(y, x)`` or ``(z, y, x)``, see :func:`as_label`.

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
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise InputError(f"{name}: label map contains NaN or Inf")
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise InputError(f"{name}: label map has non-integer values (e.g. {a[np.mod(a, 1) != 0].flat[0]:g}); "
                             "labels must be integers")
        a = a.astype(np.int64)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.min() < 0:
        raise InputError(f"{name}: label map has negative values (min {a.min()}); labels must be >= 0")
    vals = np.unique(a)
    if len(vals) == 2 and vals[0] == 0 and vals[1] in (255, 65535):
        a = (a > 0).astype(np.uint8)
    mx = int(a.max())
    dtype = np.uint8 if mx < 256 else (np.uint16 if mx < 65536 else np.int32)
    return Image(a.astype(dtype, copy=False), img.spacing, img.origin, img.direction, img.meta)

"""Grid operations: resampling to a spacing (linear for images, label-safe for label maps),
cropping to the foreground/ROI and back, channel selection."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from medseg.errors import ConfigError, InputError, suggest
from medseg.image import Image
from medseg.io import read_label
from medseg.preprocess._util import as_image, float_array

__all__ = ["CHANNEL_NAMES", "crop_foreground", "resample", "select_channel", "uncrop"]

CHANNEL_NAMES = {"red": 0, "green": 1, "blue": 2}
"""Channel names `select_channel` accepts for RGB images, and the channel index each stands for."""


def _spacing_arg(spacing: float | Sequence[float] | str, ndim: int) -> np.ndarray:
    if isinstance(spacing, str):  # "1.5" or "2,1,1" from the command line
        try:
            spacing = [float(v) for v in spacing.replace(";", ",").split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"target spacing must be numbers like 1.5 or 2,1,1; got '{spacing}'") from None
    sp = np.atleast_1d(np.asarray(spacing, dtype=float))
    if sp.size == 1:
        sp = np.repeat(sp, ndim)
    if sp.size != ndim or np.any(sp <= 0) or not np.all(np.isfinite(sp)):
        raise ConfigError(f"target spacing must be {ndim} positive values (or one), got {spacing}")
    return sp


def resample(image: Image, *, spacing: float | Sequence[float], label: bool = False, order: int = 1) -> Image:
    """Resample onto a grid of ``spacing`` mm with the same origin and direction.

    Parameters
    ----------
    image : Image
        Image (any channels) or label map.
    spacing : float or sequence of float
        Target spacing, one value for all axes or one per axis (NumPy order).
    label : bool
        Label-safe resampling: each label's indicator is interpolated linearly and the
        most likely label wins (no invented labels, smooth boundaries).
    order : int
        Spline order for images (1 = linear).

    Returns
    -------
    Image
        Shape ``round(shape * old_spacing / spacing)``.

    Examples
    --------
    >>> import numpy as np
    >>> resample(Image(np.zeros((10, 10)), spacing=(1.0, 1.0)), spacing=2).shape
    (5, 5)
    """
    image = as_image(image)
    old = np.asarray(image.spacing)
    new = _spacing_arg(spacing, image.ndim)
    shape = tuple(max(1, int(round(n * o / s))) for n, o, s in zip(image.shape, old, new))
    scale = new / old

    def warp(a, o, dtype=np.float32):
        return ndi.affine_transform(a.astype(dtype, copy=False), scale, output_shape=shape, order=o, mode="nearest")

    if label:
        a = np.asarray(image.array)
        if image.has_channels or a.dtype.kind not in "biu":
            raise InputError("label-safe resampling needs an integer label map without channels")
        values = np.unique(a)
        if values.size > 32:
            out = warp(a, 0, a.dtype)
        else:
            best = np.full(shape, -1.0, np.float32)
            out = np.zeros(shape, a.dtype)
            for v in values:
                p = warp((a == v).astype(np.float32), 1)
                better = p > best
                out[better] = v
                best[better] = p[better]
    elif image.has_channels:
        out = np.stack([warp(float_array(c), order) for c in image.array])
    else:
        out = warp(float_array(image.array), order)
    return Image(out, tuple(new), image.origin, image.direction, image.meta)


def _mask_arg(mask, image: Image) -> np.ndarray:
    if isinstance(mask, (str, Path)):
        mask = read_label(mask)
    m = np.asarray(mask.array if isinstance(mask, Image) else mask) != 0
    if m.shape != image.shape:
        raise InputError(f"mask shape {m.shape} does not match the image shape {image.shape}")
    return m


def crop_foreground(image: Image, *, mask: str | np.ndarray | Image | None = None, margin: float = 0.0) -> Image:
    """Crop to the bounding box of ``mask`` (default: voxels above the image minimum).

    The crop is recorded in ``meta["crop"]`` so `uncrop` can put a result back on
    the original grid; the origin moves so world positions are unchanged.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    mask : path, array or Image, optional
        Region of interest on the image grid.
    margin : float
        Extra border kept around the box, in mm.

    Returns
    -------
    Image
        The cropped image (channels kept), ``meta["crop"]`` recording the crop.

    Examples
    --------
    >>> a = np.zeros((6, 6)); a[2:4, 1:5] = 1
    >>> crop_foreground(Image(a)).shape
    (2, 4)
    """
    image = as_image(image)
    if mask is not None:
        m = _mask_arg(mask, image)
    else:
        a = image.array if not image.has_channels else image.array.max(axis=0)
        m = a > a.min()
    if not m.any():
        raise InputError("nothing to crop to: the foreground/ROI is empty")
    idx = np.argwhere(m)
    pad = np.ceil(margin / np.asarray(image.spacing)).astype(int)
    start = np.maximum(idx.min(0) - pad, 0)
    stop = np.minimum(idx.max(0) + 1 + pad, image.shape)
    sl = tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
    arr = image.array[(slice(None),) + sl] if image.has_channels else image.array[sl]
    origin = np.asarray(image.origin) + image.direction @ (np.asarray(image.spacing) * start)
    crop = {"start": start.tolist(), "shape": list(image.shape), "origin": list(image.origin)}
    return Image(arr.copy(), image.spacing, tuple(origin), image.direction, {**dict(image.meta), "crop": crop})


def uncrop(image: Image, *, fill: float = 0) -> Image:
    """Undo `crop_foreground`: pad back onto the original grid (``meta["crop"]``).

    Parameters
    ----------
    image : Image
        A cropped image (or a result on its grid carrying its ``meta["crop"]``).
    fill : float
        Value outside the crop.

    Returns
    -------
    Image
        Shape ``([C,] *original_spatial)``, the original origin.

    Examples
    --------
    >>> a = np.zeros((6, 6)); a[2:4, 1:5] = 1
    >>> uncrop(crop_foreground(Image(a))).shape
    (6, 6)
    """
    image = as_image(image)
    crop = image.meta.get("crop")
    if not crop:
        raise InputError("the image carries no crop record (meta['crop']); was it cropped by crop_foreground?")
    start, shape = np.asarray(crop["start"]), tuple(crop["shape"])
    if np.any(start + np.asarray(image.shape) > np.asarray(shape)):
        raise InputError(f"the image {image.shape} does not fit its crop record {crop}")
    lead = (image.n_channels,) if image.has_channels else ()
    out = np.full(lead + shape, fill, dtype=image.array.dtype)
    sl = tuple(slice(int(a), int(a) + n) for a, n in zip(start, image.shape))
    out[(slice(None),) * len(lead) + sl] = image.array
    meta = {k: v for k, v in image.meta.items() if k != "crop"}
    return Image(out, image.spacing, tuple(crop["origin"]), image.direction, meta)


def select_channel(image: Image, *, index: int | str = 0) -> Image:
    """One channel by index or by name (``red``, ``green``, ``blue`` for RGB images).

    Parameters
    ----------
    image : Image
        Shape ``(C, *spatial)`` (a single-channel image allows index 0).
    index : int or str
        Channel index, or ``red``/``green``/``blue``.

    Returns
    -------
    Image
        Shape ``spatial``, same geometry (``meta["rgb"]`` dropped).

    Examples
    --------
    >>> import numpy as np
    >>> rgb = Image(np.arange(12.).reshape(3, 2, 2), spacing=(1, 1), meta={"rgb": True})
    >>> select_channel(rgb, index="green").array.tolist()
    [[4.0, 5.0], [6.0, 7.0]]
    """
    image = as_image(image)
    if isinstance(index, str):
        key = index.strip().lower()
        if key.lstrip("-").isdigit():
            index = int(key)
        elif key in CHANNEL_NAMES:
            index = CHANNEL_NAMES[key]
        else:
            raise ConfigError(f"unknown channel '{index}'{suggest(key, CHANNEL_NAMES)}; use an index or "
                              "red/green/blue")
    out = image.channel(int(index))
    meta = {k: v for k, v in out.meta.items() if k != "rgb"}
    return Image(out.array, out.spacing, out.origin, out.direction, meta)

"""Input checking shared by every metric: arrays or [`Image`][medseg.image.Image]s in, checked arrays out."""
from __future__ import annotations

from typing import Any

import numpy as np

from medseg.errors import GeometryError, InputError
from medseg.image import Image, same_grid
from medseg.io.labels import label_values

__all__ = ["label_array", "prob_array", "pair_arrays", "spacing_of", "roi_array"]


def _array(x: Any, what: str) -> tuple[np.ndarray, Image | None]:
    if isinstance(x, Image):
        if x.has_channels:
            raise InputError(f"the {what} has {x.n_channels} channels; pass a single-channel label map")
        return x.array, x
    if x is None:
        raise InputError(f"the {what} is missing")
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(f"the {what} has dtype {arr.dtype}: expected bool, integer or float labels")
    if arr.ndim not in (2, 3):
        raise InputError(f"the {what} has shape {arr.shape}: metrics need a 2D or 3D array")
    return arr, None


def label_array(x: Any, what: str = "label map") -> np.ndarray:
    """Return ``x`` as an integer/bool label array, refusing non-integer values.

    Float arrays are accepted when every value is a whole number (labels stored as
    float in NIfTI are common); ``0.3`` is refused with `InputError`. A map holding
    only 0 and 255 is a mask image (PNG/GIF masks): 255 is its foreground and becomes label
    1, as [`medseg.io.read_label`][] reads it, so every metric sees the same foreground
    whichever way the file was read.

    Parameters
    ----------
    x : array_like or Image
        A label map, shape ``(y, x)`` or ``(z, y, x)``.
    what : str
        How error messages name it.

    Returns
    -------
    numpy.ndarray
        Integer array of the same shape (whole-number floats become int64, bools uint8):
        [`medseg.io.labels.label_values`][], the rule every reader applies too.

    Examples
    --------
    >>> label_array([[0.0, 2.0], [1.0, 0.0]]).tolist()
    [[0, 2], [1, 0]]
    >>> label_array(np.array([[0, 255]], np.uint8)).tolist()
    [[0, 1]]
    """
    arr, _ = _array(x, what)
    return label_values(arr, f"the {what}")


def prob_array(x: Any, what: str = "probability map") -> np.ndarray:
    """Return ``x`` as a float array of probabilities, refusing values outside ``[0, 1]``.

    Parameters
    ----------
    x : array_like or Image
        Probabilities, any shape.
    what : str
        How error messages name it.

    Returns
    -------
    numpy.ndarray of float64, same shape

    Examples
    --------
    >>> prob_array([[0, 1], [0.5, 0.25]]).dtype
    dtype('float64')
    """
    if isinstance(x, Image):
        arr = x.array
    else:
        arr = np.asarray(x)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise InputError(f"the {what} has dtype {arr.dtype}: expected numbers in [0, 1]")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"the {what} contains NaN or Inf")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 1:
        raise InputError(
            f"the {what} has values in [{lo:.4g}, {hi:.4g}], outside [0, 1]; pass probabilities "
            "(apply a sigmoid/softmax to logits, or divide 8-bit maps by 255)"
        )
    return arr


def spacing_of(*items: Any, spacing: Any = None, ndim: int) -> tuple[float, ...]:
    """Spacing from an explicit argument, else the first `Image` among ``items``, else 1.

    Parameters
    ----------
    *items : array_like or Image
        The inputs whose spacing is used when ``spacing`` is not given.
    spacing : float or sequence of float, optional
        Positive voxel size per spatial axis (one number means isotropic).
    ndim : int
        Number of spatial axes.

    Returns
    -------
    tuple of float, length ``ndim``

    Examples
    --------
    >>> spacing_of(spacing=0.5, ndim=3), spacing_of([[0]], ndim=2)
    ((0.5, 0.5, 0.5), (1.0, 1.0))
    """
    if spacing is not None:
        sp = np.asarray(spacing, dtype=float).reshape(-1)
        if sp.size == 1:
            sp = np.repeat(sp, ndim)
        if sp.size != ndim or not np.all(np.isfinite(sp)) or np.any(sp <= 0):
            raise InputError(f"spacing {tuple(sp)} does not fit {ndim} spatial axes (positive numbers, one per axis)")
        return tuple(float(s) for s in sp)
    for it in items:
        if isinstance(it, Image):
            return it.spacing
    return (1.0,) * ndim


def pair_arrays(pred: Any, truth: Any, *,
                what: tuple[str, str] = ("prediction", "ground truth")) -> tuple[np.ndarray, np.ndarray]:
    """Check that prediction and ground truth share a grid; return both as label arrays.

    Parameters
    ----------
    pred, truth : array_like or Image
        Label maps of the same shape ``(y, x)`` or ``(z, y, x)`` (and, for Images, geometry).
    what : tuple of str
        How error messages name the two.

    Returns
    -------
    tuple of numpy.ndarray
        ``(pred, truth)`` as label arrays (see `label_array`).
    """
    p = label_array(pred, what[0])
    t = label_array(truth, what[1])
    if p.shape != t.shape:
        raise GeometryError(
            f"the {what[0]} has shape {p.shape} but the {what[1]} has shape {t.shape}; "
            "they must be on the same grid (resample the prediction onto the ground truth)"
        )
    if isinstance(pred, Image) and isinstance(truth, Image) and not same_grid(pred, truth, atol=1e-3):
        raise GeometryError(
            f"the {what[0]} and {what[1]} have the same shape but different geometry (spacing "
            f"{pred.spacing} vs {truth.spacing}, origin {pred.origin} vs {truth.origin}); "
            "resample the prediction onto the ground-truth grid"
        )
    return p, t


def roi_array(roi: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """The region of interest as a boolean mask of ``shape`` (nonzero = inside), or None.

    Parameters
    ----------
    roi : array_like or Image or None
        Nonzero where voxels count.
    shape : tuple of int
        The label maps' shape ``(y, x)`` or ``(z, y, x)``.

    Returns
    -------
    numpy.ndarray of bool, shape ``shape``, or None
        ``None`` when ``roi`` is None; an empty ROI is refused.
    """
    if roi is None:
        return None
    arr = label_array(roi, "region of interest") if not (isinstance(roi, np.ndarray) and roi.dtype == bool) else roi
    if arr.shape != tuple(shape):
        raise GeometryError(f"the region of interest has shape {arr.shape} but the label maps have shape "
                            f"{tuple(shape)}")
    m = arr.astype(bool, copy=False)
    if not m.any():
        raise InputError("the region of interest is empty: no voxel would be evaluated")
    return m

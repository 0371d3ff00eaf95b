"""Training-pixel selection: dense labels or sparse scribbles, ROI, balancing, caps.

Label convention
----------------
*Dense* label maps (default): every pixel inside the ROI is a training pixel and its value
is its class (0 = background). *Sparse scribbles*: pass ``ignore_label`` (the value of
unlabelled pixels); with ``ignore_label=0`` the classes are the scribble values 1..K, as in
ilastik, and predictions use those values. Any value can be the ignore value (255 is the
other common choice, which keeps 0 as a background class).
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from medseg.errors import InputError
from medseg.image import Image

log = logging.getLogger(__name__)

__all__ = ["as_label_array", "check_classes", "draw_samples", "training_mask"]


def as_label_array(labels: Any, image: Image, what: str) -> np.ndarray:
    """The integer array of a label map or ROI given for ``image``, checked.

    Parameters
    ----------
    labels : Image or array-like
        Shape ``image.shape`` (the spatial shape), integer values (whole floats accepted).
    image : Image
        The image the labels belong to.
    what : str
        What ``labels`` is (``"label map"``, ``"ROI"``), for the messages.

    Returns
    -------
    numpy.ndarray
        Integer or boolean array, shape ``image.shape``.

    Raises
    ------
    InputError
        Channels, a shape other than the image's, or non-integer values.

    Examples
    --------
    >>> as_label_array(np.array([[0.0, 2.0]]), Image(np.zeros((1, 2))), "label map").tolist()
    [[0, 2]]
    """
    a = labels.array if isinstance(labels, Image) else np.asarray(labels)
    if isinstance(labels, Image) and labels.has_channels:
        raise InputError(f"{what} must be a single-channel label map, got shape {labels.array.shape}")
    if a.shape != image.shape:
        raise InputError(f"{what} shape {a.shape} does not match the image shape {image.shape}")
    if a.dtype.kind not in "biu":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.array_equal(a, np.round(a)):
            a = a.astype(np.int64)
        else:
            raise InputError(f"{what} must hold integer class values, got {a.dtype}")
    return a


def training_mask(labels: np.ndarray, roi: np.ndarray | None, ignore_label: int | None) -> np.ndarray:
    """Boolean map of usable training pixels: inside ``roi`` and not ``ignore_label``.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer label map, spatial shape.
    roi : numpy.ndarray, optional
        Same shape; pixels ``> 0`` are inside.
    ignore_label : int, optional
        Value of unlabelled pixels (sparse scribbles).

    Returns
    -------
    numpy.ndarray
        Boolean, shape of ``labels``.

    Examples
    --------
    >>> training_mask(np.array([0, 1, 2]), None, ignore_label=0).tolist()
    [False, True, True]
    """
    mask = np.ones(labels.shape, bool) if roi is None else np.asarray(roi) > 0
    if ignore_label is not None:
        mask &= labels != ignore_label
    return mask


def draw_samples(labels: np.ndarray, mask: np.ndarray, cap: int, *, balanced: bool,
                 rng: np.random.Generator) -> np.ndarray:
    """Flat indices (C order) of at most ``cap`` training pixels of one image.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer label map (spatial shape).
    mask : numpy.ndarray
        Boolean map of usable pixels, same shape.
    cap : int
        Maximum number of pixels to return.
    balanced : bool
        ``True``: equal quotas per class present (a class with fewer pixels gives all of
        them and its unused quota goes to the others); ``False``: uniform at random.
    rng : numpy.random.Generator
        The random source.

    Returns
    -------
    numpy.ndarray
        Sorted int64 flat indices, shape ``(min(cap, mask.sum()),)``.

    Examples
    --------
    >>> lab = np.array([0] * 90 + [1] * 10)
    >>> idx = draw_samples(lab, lab >= 0, 20, balanced=True, rng=np.random.default_rng(0))
    >>> np.bincount(lab[idx]).tolist()
    [10, 10]
    """
    flat_lab = labels.reshape(-1)
    idx = np.flatnonzero(mask.reshape(-1))
    if idx.size <= cap:
        return idx.astype(np.int64)
    if not balanced:
        return np.sort(rng.choice(idx, cap, replace=False)).astype(np.int64)
    lab = flat_lab[idx]
    classes, counts = np.unique(lab, return_counts=True)
    quota = np.zeros(len(classes), int)
    left, open_ = cap, np.ones(len(classes), bool)
    while left > 0 and open_.any():  # water-filling: small classes give their spare quota away
        share = max(left // int(open_.sum()), 1)
        for i in np.flatnonzero(open_):
            take = min(share, counts[i] - quota[i], left)
            quota[i] += take
            left -= take
            if quota[i] >= counts[i]:
                open_[i] = False
            if left == 0:
                break
    order = np.argsort(lab, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    chosen = [rng.choice(idx[order[s:s + c]], q, replace=False) for s, c, q in zip(starts, counts, quota) if q > 0]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def check_classes(classes: np.ndarray, *, ignore_label: int | None, n_pixels: int) -> None:
    """Raise a clear error when training data cannot train a classifier.

    Parameters
    ----------
    classes : numpy.ndarray
        ``(K,)`` the distinct class values of the usable training pixels.
    ignore_label : int, optional
        The value of unlabelled pixels (for the message).
    n_pixels : int
        Number of usable training pixels.

    Raises
    ------
    InputError
        No usable pixel, or fewer than two classes.
    """
    if n_pixels == 0:
        if ignore_label is not None:
            raise InputError(f"no labelled pixel: every label pixel is the ignore value {ignore_label} (or outside "
                             "the ROI); draw at least one scribble per class")
        raise InputError("no training pixel: the ROI masks are empty")
    if len(classes) < 2:
        only = int(classes[0]) if len(classes) else None
        raise InputError(f"training needs at least two classes but the labels contain only class {only}"
                         + (" (besides the ignore value)" if ignore_label is not None else "")
                         + "; label background and foreground")

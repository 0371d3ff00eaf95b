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

import numpy as np

from medseg.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["draw_samples", "training_mask"]


def training_mask(labels: np.ndarray, roi: np.ndarray | None, ignore_label: int | None) -> np.ndarray:
    """Boolean map of usable training pixels: inside ``roi`` and not ``ignore_label``."""
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

    Returns
    -------
    numpy.ndarray
        Sorted int64 flat indices.
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
    """Raise a clear error when training data cannot train a classifier."""
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

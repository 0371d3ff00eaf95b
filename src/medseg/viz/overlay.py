"""Overlays of label maps on images: outlines and error maps as RGB arrays.

Every function takes 2D arrays (one slice; :func:`pick_slice` chooses it in 3D) and returns
a new float RGB array ``(y, x, 3)`` in ``[0, 1]``; inputs are never modified.
"""
from __future__ import annotations

import numpy as np

from medseg.errors import InputError

__all__ = ["to_display", "pick_slice", "error_overlay", "outline_overlay", "error_window", "LABEL_COLOURS"]

#: RGB colours (0..1) for labels 1, 2, ... (cycled), chosen to stay distinct on grey images.
LABEL_COLOURS = np.array([[1.0, 0.85, 0.1], [0.2, 0.8, 1.0], [1.0, 0.35, 0.8], [0.5, 1.0, 0.3],
                          [1.0, 0.55, 0.1], [0.7, 0.5, 1.0]])
TP_COLOUR, FP_COLOUR, FN_COLOUR = np.array([0.15, 0.8, 0.25]), np.array([1.0, 0.2, 0.15]), np.array([0.2, 0.45, 1.0])
WRONG_COLOUR = np.array([1.0, 0.6, 0.0])


def to_display(image: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """A 2D image as float RGB ``(y, x, 3)`` in [0, 1], windowed to its 1st-99th percentiles.

    8-bit 3/4-channel images (channel-first or last) are shown in colour; other
    multi-channel images (MR modalities) show their first channel.

    ``None`` gives a mid-grey background of ``shape``.

    Parameters
    ----------
    image : numpy.ndarray or None
        A 2D slice ``(y, x)``, or ``(C, y, x)``/``(y, x, C)`` with channels.
    shape : tuple of int
        The ``(y, x)`` shape of the label slice it is shown with.

    Returns
    -------
    numpy.ndarray of float64, shape ``(y, x, 3)``

    Examples
    --------
    >>> import numpy as np
    >>> rgb = to_display(np.array([[0.0, 10.0], [20.0, 30.0]]), (2, 2))
    >>> rgb.shape, float(rgb.min()), float(rgb.max())
    ((2, 2, 3), 0.0, 1.0)
    """
    if image is None:
        return np.full((*shape, 3), 0.5)
    raw = np.asarray(image)
    rgb = raw.dtype == np.uint8  # colour photographs; other multi-channel images are modalities
    a = raw.astype(np.float64)
    if a.ndim == 3 and rgb and a.shape[0] in (3, 4) and a.shape[1:] == tuple(shape):
        a = np.moveaxis(a[:3], 0, -1)
    elif a.ndim == 3 and rgb and a.shape[-1] in (3, 4) and a.shape[:2] == tuple(shape):
        a = a[..., :3]
    elif a.ndim == 3 and a.shape[1:] == tuple(shape):
        a = a[0]  # first channel (modality) of a multi-channel image
    if a.shape[:2] != tuple(shape):
        raise InputError(f"the image slice has shape {a.shape[:2]} but the label slice has shape {tuple(shape)}")
    finite = a[np.isfinite(a)]
    lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    a = np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1)


def pick_slice(truth: np.ndarray, pred: np.ndarray, *, axis: int = 0) -> int:
    """The index along ``axis`` of a 3D pair with the most disagreeing voxels (else most foreground).

    Parameters
    ----------
    truth, pred : numpy.ndarray, shape ``(z, y, x)``
        Label maps.
    axis : int
        The axis to pick a slice along.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((4, 3, 3), int); t[1:3] = 1
    >>> p = t.copy(); p[2, 0, 0] = 0
    >>> pick_slice(t, p), pick_slice(t, t)
    (2, 1)
    """
    other = tuple(a for a in range(truth.ndim) if a != axis)
    err = (truth != pred).sum(axis=other)
    if err.max() > 0:
        return int(np.argmax(err))
    return int(np.argmax(((truth > 0) | (pred > 0)).sum(axis=other)))


def _boundary(mask: np.ndarray) -> np.ndarray:
    from skimage.segmentation import find_boundaries  # deferred: scikit-image is slow to import

    return find_boundaries(mask, mode="inner")


def outline_overlay(base: np.ndarray, labels: np.ndarray, *, alpha: float = 0.35) -> np.ndarray:
    """Tint each label with its colour and draw its outline on the RGB ``base``.

    Parameters
    ----------
    base : numpy.ndarray, shape ``(y, x, 3)``
        Float RGB in ``[0, 1]`` (see :func:`to_display`).
    labels : numpy.ndarray, shape ``(y, x)``
        Integer label map; label ``k`` gets ``LABEL_COLOURS[(k - 1) % 6]``.
    alpha : float
        Opacity of the tint inside each label.

    Returns
    -------
    numpy.ndarray, shape ``(y, x, 3)``

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((5, 5), int); lab[1:4, 1:4] = 1
    >>> out = outline_overlay(np.zeros((5, 5, 3)), lab)
    >>> out[1, 1].tolist() == LABEL_COLOURS[0].tolist(), out[0, 0].tolist()   # outline, background
    (True, [0.0, 0.0, 0.0])
    """
    out = base.copy()
    for lab in np.unique(labels):
        if lab == 0:
            continue
        col = LABEL_COLOURS[(int(lab) - 1) % len(LABEL_COLOURS)]
        m = labels == lab
        out[m] = (1 - alpha) * out[m] + alpha * col
        out[_boundary(m)] = col
    return out


def error_overlay(base: np.ndarray, truth: np.ndarray, pred: np.ndarray, *, label: int | None = None,
                  alpha: float = 0.55) -> np.ndarray:
    """Colour agreement on ``base``: correct green, false positive red, false negative blue, wrong class orange.

    Parameters
    ----------
    base : numpy.ndarray, shape ``(y, x, 3)``
        Float RGB in ``[0, 1]``.
    truth, pred : numpy.ndarray, shape ``(y, x)``
        Label maps.
    label : int, optional
        Show only this class (binary view); ``None`` shows every class, with foreground
        voxels given the wrong class in orange.
    alpha : float
        Opacity of the colours.

    Returns
    -------
    numpy.ndarray, shape ``(y, x, 3)``

    Examples
    --------
    >>> import numpy as np
    >>> out = error_overlay(np.zeros((1, 3, 3)), np.array([[1, 1, 0]]), np.array([[1, 0, 1]]), alpha=1.0)
    >>> out[0].tolist() == [TP_COLOUR.tolist(), FN_COLOUR.tolist(), FP_COLOUR.tolist()]
    True
    """
    if label is not None:
        truth, pred = (truth == label).astype(np.uint8), (pred == label).astype(np.uint8)
    t, p = truth > 0, pred > 0
    out = base.copy()
    for m, col in ((t & p & (truth == pred), TP_COLOUR), (p & ~t, FP_COLOUR), (t & ~p, FN_COLOUR),
                   (t & p & (truth != pred), WRONG_COLOUR)):
        out[m] = (1 - alpha) * out[m] + alpha * col
    return out


def error_window(truth: np.ndarray, pred: np.ndarray, *, fraction: float = 0.3,
                 min_size: int = 24) -> tuple[slice, slice] | None:
    """The square window (``fraction`` of the larger side) holding the most disagreeing pixels, for a zoomed view.

    Parameters
    ----------
    truth, pred : numpy.ndarray, shape ``(y, x)``
        Label maps.
    fraction : float
        Window side as a fraction of the larger image side.
    min_size : int
        Smallest window side in pixels.

    Returns
    -------
    tuple of slice or None
        ``(rows, columns)`` of the window; ``None`` when the image is already small (no zoom
        needed) or nothing disagrees.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((100, 100), int); p = t.copy(); p[80:85, 10:15] = 1
    >>> rows, cols = error_window(t, p)        # 30 = 0.3 x 100 pixels square, around the errors
    >>> rows.stop - rows.start, cols.stop - cols.start, rows.start <= 80 and 85 <= rows.stop
    (30, 30, True)
    """
    from scipy.ndimage import uniform_filter  # deferred: scipy.ndimage, only for zoomed views

    h, w = truth.shape
    size = max(min_size, int(round(max(h, w) * fraction)))
    if size >= min(h, w) * 0.8:
        return None
    err = (truth != pred).astype(np.float32)
    if not err.any():
        return None
    dens = uniform_filter(err, size=size, mode="constant")
    cy, cx = np.unravel_index(int(np.argmax(dens)), dens.shape)
    y0 = int(np.clip(cy - size // 2, 0, h - size))
    x0 = int(np.clip(cx - size // 2, 0, w - size))
    return slice(y0, y0 + size), slice(x0, x0 + size)

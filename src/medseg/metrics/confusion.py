"""Confusion-based (overlap) metrics: TP/FP/FN/TN and everything derived from them.

Empty-mask convention
---------------------
A ratio whose denominator is zero is **undefined** and returned as ``nan`` — never a
made-up 0 or 1. The common cases:

====================  ===========  =====================  =====================
situation              dice / iou   precision              recall
====================  ===========  =====================  =====================
both masks empty       nan          nan                    nan
prediction empty       0            nan                    0
ground truth empty     0            0                      nan
====================  ===========  =====================  =====================

``overlap`` also returns ``empty`` (``"both"``, ``"prediction"``, ``"truth"`` or ``""``)
so tables can show *why* a value is missing; aggregation skips ``nan`` and reports how
many cases it skipped.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from medseg.metrics._inputs import pair_arrays, roi_array, spacing_of
from medseg.metrics.catalogue import names

__all__ = ["overlap", "dice", "confusion_counts", "confusion_matrix", "mask_counts", "from_counts",
           "OVERLAP_METRICS"]

OVERLAP_METRICS = names("overlap")
"""Metrics computed by `overlap` from the four counts (the catalogue's "overlap" family, in column
order)."""


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def _dice(tp: int, fp: int, fn: int) -> float:
    """The Dice formula, written once: ``2TP / (2TP + FP + FN)`` (``nan`` when both masks are empty)."""
    return _div(2 * tp, 2 * tp + fp + fn)


def _masks(pred: Any, truth: Any, label: int | None, roi: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    p, t = pair_arrays(pred, truth)
    m = roi_array(roi, t.shape)
    if label is None:
        pm, tm = p > 0, t > 0
    else:
        pm, tm = p == label, t == label
    return pm, tm, m


def confusion_counts(pred: Any, truth: Any, *, label: int | None = None, roi: Any = None) -> tuple[int, int, int, int]:
    """Return ``(tp, fp, fn, tn)`` voxel counts for one label.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps of the same shape ``(y, x)`` or ``(z, y, x)``.
    label : int or None
        The class to score; ``None`` scores foreground (``> 0``) against foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count; voxels outside are ignored entirely.

    Returns
    -------
    tuple of int
        ``(tp, fp, fn, tn)``; they sum to the number of voxels (inside the ROI).

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0, 1, 1], [0, 0, 0]]); t = np.array([[0, 1, 0], [0, 1, 0]])
    >>> confusion_counts(p, t)
    (1, 1, 1, 3)
    """
    pm, tm, m = _masks(pred, truth, label, roi)
    return mask_counts(pm, tm, m)


def mask_counts(pm: np.ndarray, tm: np.ndarray, roi: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """``(tp, fp, fn, tn)`` of two boolean masks (the one place voxels are counted).

    Parameters
    ----------
    pm, tm : numpy.ndarray of bool, same shape
        Prediction and truth masks of one class.
    roi : numpy.ndarray of bool, same shape, optional
        Only voxels where it is True count.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> import numpy as np
    >>> mask_counts(np.array([True, True, False, False]), np.array([True, False, True, False]))
    (1, 1, 1, 1)
    """
    if roi is not None:
        pm, tm = pm[roi], tm[roi]
    n = pm.size
    tp = int(np.count_nonzero(pm & tm))
    npred = int(np.count_nonzero(pm))
    ntrue = int(np.count_nonzero(tm))
    fp, fn = npred - tp, ntrue - tp
    return tp, fp, fn, n - tp - fp - fn


def from_counts(tp: int, fp: int, fn: int, tn: int, *, voxel_volume: float = 1.0) -> dict[str, Any]:
    """Every overlap metric from the four counts (see the module docstring for ``nan`` rules).

    ``volume_difference`` is the signed relative volume error ``(|P| - |T|) / |T|``;
    ``volume_similarity`` is ``1 - |FN - FP| / (2TP + FP + FN)`` (Taha & Hanbury 2015).
    Volumes are in physical units (``voxel_volume`` = product of the spacing).

    Parameters
    ----------
    tp, fp, fn, tn : int
        Voxel counts of one class.
    voxel_volume : float
        Volume of one voxel (mm³) for ``volume_pred`` and ``volume_truth``.

    Returns
    -------
    dict
        ``tp, fp, fn, tn``, the metrics of `OVERLAP_METRICS`, ``volume_pred``,
        ``volume_truth`` and ``empty`` (like `overlap`).

    Examples
    --------
    >>> m = from_counts(2, 1, 0, 3, voxel_volume=0.5)
    >>> m["dice"], m["precision"], m["recall"], m["volume_pred"], m["volume_truth"]
    (0.8, 0.6666666666666666, 1.0, 1.5, 1.0)
    >>> m["volume_difference"], m["volume_similarity"]
    (0.5, 0.8)
    >>> import math; math.isnan(from_counts(0, 0, 0, 4)["dice"])   # both masks empty: undefined
    True
    """
    npred, ntrue = tp + fp, tp + fn
    denom = np.sqrt(float(tp + fp)) * np.sqrt(float(tp + fn)) * np.sqrt(float(tn + fp)) * np.sqrt(float(tn + fn))
    out: dict[str, Any] = {
        "tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn),
        "dice": _dice(tp, fp, fn),
        "iou": _div(tp, tp + fp + fn),
        "precision": _div(tp, npred),
        "recall": _div(tp, ntrue),
        "specificity": _div(tn, tn + fp),
        "accuracy": _div(tp + tn, tp + fp + fn + tn),
    }
    out["balanced_accuracy"] = (out["recall"] + out["specificity"]) / 2  # nan if either is undefined
    out["mcc"] = float((float(tp) * tn - float(fp) * fn) / denom) if denom else float("nan")
    out["volume_difference"] = _div(npred - ntrue, ntrue)
    out["volume_similarity"] = 1.0 - _div(abs(fn - fp), 2 * tp + fp + fn)
    out["volume_pred"] = npred * voxel_volume
    out["volume_truth"] = ntrue * voxel_volume
    out["empty"] = ("both" if npred == 0 and ntrue == 0 else "prediction" if npred == 0
                    else "truth" if ntrue == 0 else "")
    return out


def overlap(pred: Any, truth: Any, *, label: int | None = None, roi: Any = None, spacing: Any = None) -> dict[str, Any]:
    """Confusion counts and overlap metrics of one label.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps of the same shape ``(y, x)`` or ``(z, y, x)``; Images must also
        share geometry.
    label : int or None, default None
        The class to score; ``None`` (the default, as in every metric) scores any foreground (``> 0``)
        against foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count (e.g. DRIVE's field of view).
    spacing : float or sequence of float, optional
        Voxel size for ``volume_pred``/``volume_truth``; defaults to the Images' spacing, else 1.

    Returns
    -------
    dict
        ``tp, fp, fn, tn`` (ints), the floats in `OVERLAP_METRICS`, ``volume_pred``,
        ``volume_truth`` and ``empty``. Undefined ratios are ``nan``.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0, 1, 1], [0, 0, 0]]); t = np.array([[0, 1, 0], [0, 1, 0]])
    >>> m = overlap(p, t)
    >>> m["tp"], m["fp"], m["fn"], m["tn"], m["dice"]
    (1, 1, 1, 3, 0.5)
    >>> round(m["iou"], 4), m["precision"], m["recall"], m["specificity"], round(m["accuracy"], 4)
    (0.3333, 0.5, 0.5, 0.75, 0.6667)
    >>> m["balanced_accuracy"], round(m["mcc"], 4)
    (0.625, 0.25)

    Volumes use the spacing (here 1 mm² pixels: 0.5 mm x 2 mm):

    >>> v = overlap(np.array([[1, 1, 1], [0, 0, 0]]), np.array([[1, 1, 0], [0, 0, 0]]), spacing=(0.5, 2.0))
    >>> v["volume_pred"], v["volume_truth"], v["volume_difference"], v["volume_similarity"]
    (3.0, 2.0, 0.5, 0.8)
    """
    pm, tm, m = _masks(pred, truth, label, roi)
    sp = spacing_of(pred, truth, spacing=spacing, ndim=pm.ndim)
    return from_counts(*mask_counts(pm, tm, m), voxel_volume=float(np.prod(sp)))


def dice(pred: Any, truth: Any, *, label: int | None = None, roi: Any = None) -> float:
    """Dice coefficient ``2|P∩T| / (|P| + |T|)``: the one Dice of medseg.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer (or boolean) label maps of the same shape ``(y, x)`` or ``(z, y, x)``.
    label : int or None, default None
        The class to score; ``None`` compares foreground (``> 0``) with foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count.

    Returns
    -------
    float
        In ``[0, 1]``; ``nan`` when both masks are empty (undefined), ``0`` when exactly one is.

    Examples
    --------
    >>> import numpy as np
    >>> dice(np.array([[1, 1], [0, 0]]), np.array([[1, 0], [0, 0]]))
    0.6666666666666666
    >>> dice(np.array([[1, 2], [0, 0]]), np.array([[1, 1], [0, 0]]), label=2)
    0.0
    """
    pm, tm, m = _masks(pred, truth, label, roi)
    tp, fp, fn, _ = mask_counts(pm, tm, m)
    return _dice(tp, fp, fn)


def confusion_matrix(pred: Any, truth: Any, *, labels: list[int] | None = None,
                     roi: Any = None) -> tuple[np.ndarray, list[int]]:
    """Multi-class confusion matrix ``C[i, j]`` = voxels of true class ``labels[i]`` predicted ``labels[j]``.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps of the same shape ``(y, x)`` or ``(z, y, x)``.
    labels : list of int, optional
        The classes (rows and columns); default every value present in either map
        (background included). Voxels of other values are ignored.
    roi : array_like or Image, optional
        Nonzero where voxels count.

    Returns
    -------
    matrix : numpy.ndarray of int64, shape ``(K, K)``
        Rows: ground truth; columns: prediction.
    labels : list of int
        The ``K`` classes in row/column order.

    Examples
    --------
    >>> import numpy as np
    >>> cm, labs = confusion_matrix(np.array([[0, 1], [2, 2]]), np.array([[0, 1], [1, 2]]))
    >>> labs, cm.tolist()
    ([0, 1, 2], [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    """
    p, t = pair_arrays(pred, truth)
    m = roi_array(roi, t.shape)
    if m is not None:
        p, t = p[m], t[m]
    p = p.ravel().astype(np.int64)
    t = t.ravel().astype(np.int64)
    if labels is None:
        labels = sorted(set(np.unique(p).tolist()) | set(np.unique(t).tolist()))
    labels = [int(v) for v in labels]
    k = len(labels)
    lut_size = max(int(p.max(initial=0)), int(t.max(initial=0)), max(labels)) + 1
    lut = np.full(lut_size, -1, dtype=np.int64)
    lut[labels] = np.arange(k)
    pi, ti = lut[p], lut[t]
    ok = (pi >= 0) & (ti >= 0)
    cm = np.bincount(ti[ok] * k + pi[ok], minlength=k * k).reshape(k, k)
    return cm.astype(np.int64), labels

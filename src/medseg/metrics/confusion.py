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

__all__ = ["overlap", "dice", "confusion_counts", "confusion_matrix", "OVERLAP_METRICS", "from_counts"]

#: Metrics computed by :func:`overlap` from the four counts (in column order).
OVERLAP_METRICS = ("dice", "iou", "precision", "recall", "specificity", "accuracy", "balanced_accuracy",
                   "mcc", "volume_difference", "volume_similarity")


def _div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")


def _masks(pred: Any, truth: Any, label: int | None, roi: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    p, t = pair_arrays(pred, truth)
    m = roi_array(roi, t.shape)
    if label is None:
        pm, tm = p > 0, t > 0
    else:
        pm, tm = p == label, t == label
    return pm, tm, m


def confusion_counts(pred: Any, truth: Any, *, label: int | None = 1, roi: Any = None) -> tuple[int, int, int, int]:
    """Return ``(tp, fp, fn, tn)`` voxel counts for one label.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps of the same shape ``(y, x)`` or ``(z, y, x)``.
    label : int or None
        The class to score; ``None`` scores foreground (``> 0``) against foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count; voxels outside are ignored entirely.
    """
    pm, tm, m = _masks(pred, truth, label, roi)
    return _counts(pm, tm, m)


def _counts(pm: np.ndarray, tm: np.ndarray, m: np.ndarray | None) -> tuple[int, int, int, int]:
    if m is not None:
        pm, tm = pm[m], tm[m]
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
    """
    npred, ntrue = tp + fp, tp + fn
    denom = np.sqrt(float(tp + fp)) * np.sqrt(float(tp + fn)) * np.sqrt(float(tn + fp)) * np.sqrt(float(tn + fn))
    out: dict[str, Any] = {
        "tp": int(tp), "fp": int(fp), "fn": int(fn), "tn": int(tn),
        "dice": _div(2 * tp, 2 * tp + fp + fn),
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
    out["empty"] = "both" if npred == 0 and ntrue == 0 else "prediction" if npred == 0 else "truth" if ntrue == 0 else ""
    return out


def overlap(pred: Any, truth: Any, *, label: int | None = 1, roi: Any = None, spacing=None) -> dict[str, Any]:
    """Confusion counts and overlap metrics of one label.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps of the same shape ``(y, x)`` or ``(z, y, x)``; Images must also
        share geometry.
    label : int or None, default 1
        The class to score; ``None`` scores any foreground (``> 0``) against foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count (e.g. DRIVE's field of view).
    spacing : sequence of float, optional
        Voxel size for ``volume_pred``/``volume_truth``; defaults to the Images' spacing, else 1.

    Returns
    -------
    dict
        ``tp, fp, fn, tn`` (ints), the floats in :data:`OVERLAP_METRICS`, ``volume_pred``,
        ``volume_truth`` and ``empty``. Undefined ratios are ``nan``.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0, 1, 1], [0, 0, 0]]); t = np.array([[0, 1, 0], [0, 1, 0]])
    >>> m = overlap(p, t)
    >>> m["tp"], m["fp"], m["fn"], m["tn"], m["dice"]
    (1, 1, 1, 3, 0.5)
    """
    pm, tm, m = _masks(pred, truth, label, roi)
    sp = spacing_of(pred, truth, spacing=spacing, ndim=pm.ndim)
    return from_counts(*_counts(pm, tm, m), voxel_volume=float(np.prod(sp)))


def dice(pred: Any, truth: Any, *, label: int | None = None, roi: Any = None) -> float:
    """Dice coefficient ``2|P∩T| / (|P| + |T|)``; ``nan`` when both masks are empty.

    ``label=None`` (default) compares foreground (``> 0``) with foreground.

    Examples
    --------
    >>> import numpy as np
    >>> dice(np.array([[1, 1], [0, 0]]), np.array([[1, 0], [0, 0]]))
    0.6666666666666666
    """
    pm, tm, m = _masks(pred, truth, label, roi)
    tp, fp, fn, _ = _counts(pm, tm, m)
    return _div(2 * tp, 2 * tp + fp + fn)


def confusion_matrix(pred: Any, truth: Any, *, labels: list[int] | None = None, roi: Any = None) -> tuple[np.ndarray, list[int]]:
    """Multi-class confusion matrix ``C[i, j]`` = voxels of true class ``labels[i]`` predicted ``labels[j]``.

    ``labels`` defaults to every value present in either map (background included).
    Values outside ``labels`` are ignored. Returns ``(matrix (K, K) int64, labels)``.
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

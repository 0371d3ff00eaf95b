"""Metrics of probability maps: ROC-AUC, PR-AUC (average precision) and expected calibration error.

All three score the probability of one class (``prob``, values in ``[0, 1]``) against the
binary truth ``truth == label`` (or ``truth > 0`` for ``label=None``), optionally inside a
region of interest. When the truth holds only one class inside the ROI, ROC-AUC and PR-AUC
are undefined and returned as ``nan``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from medseg.errors import GeometryError, InputError
from medseg.metrics._inputs import label_array, prob_array, roi_array

__all__ = ["roc_auc", "pr_auc", "ece", "probability_metrics", "class_probability", "PROBABILITY_METRICS"]

PROBABILITY_METRICS = ("roc_auc", "pr_auc", "ece")


def class_probability(prob: Any, label: int | None, spatial_ndim: int) -> np.ndarray:
    """The probability map of ``label`` from a single map or a channel-first ``(C, *spatial)`` stack.

    A map with ``spatial_ndim`` axes is the foreground probability. With one more (channel)
    axis, channel ``label`` is used (``label=None`` → ``1 - channel 0``: any foreground).
    """
    arr = prob_array(prob)
    if arr.ndim == spatial_ndim:
        return arr
    if arr.ndim != spatial_ndim + 1:
        raise GeometryError(f"the probability map has shape {arr.shape}; expected {spatial_ndim} spatial axes "
                            "and at most one channel axis")
    if label is None:
        return 1.0 - arr[0]
    if not 0 <= label < arr.shape[0]:
        raise InputError(f"the probability map has {arr.shape[0]} channels; there is none for label {label}")
    return arr[label]


def _prepare(prob: Any, truth: Any, label: int | None, roi: Any) -> tuple[np.ndarray, np.ndarray]:
    t = label_array(truth, "ground truth")
    p = class_probability(prob, label, t.ndim)
    if p.shape != t.shape:
        raise GeometryError(f"the probability map has spatial shape {p.shape} but the ground truth has shape {t.shape}")
    y = (t > 0) if label is None else (t == label)
    m = roi_array(roi, t.shape)
    if m is not None:
        return p[m], y[m]
    return p.ravel(), y.ravel()


def roc_auc(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``); ``nan`` if truth has one class.

    Parameters
    ----------
    prob : numpy.ndarray or Image, shape like ``truth``, values in [0, 1]
    truth : integer label map ``(y, x)`` or ``(z, y, x)``

    Examples
    --------
    >>> import numpy as np
    >>> roc_auc(np.array([[0.1, 0.9], [0.8, 0.3]]), np.array([[0, 1], [1, 0]]))
    1.0
    """
    from sklearn.metrics import roc_auc_score

    p, y = _prepare(prob, truth, label, roi)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, p))


def pr_auc(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None) -> float:
    """Area under the precision-recall curve as *average precision* (step-wise, no interpolation).

    This is scikit-learn's ``average_precision_score``: ``Σ (R_n - R_{n-1}) P_n``; the
    trapezoidal area under the PR curve is optimistic and is not used.
    """
    from sklearn.metrics import average_precision_score

    p, y = _prepare(prob, truth, label, roi)
    if y.all() or not y.any():
        return float("nan")
    return float(average_precision_score(y, p))


def ece(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None, bins: int = 15) -> float:
    """Expected calibration error of the class probability, with ``bins`` equal-width bins.

    ``ECE = Σ_b (n_b / N) · |mean(y in b) − mean(p in b)|`` where bin ``b`` holds the voxels
    whose probability falls in ``[b/B, (b+1)/B)`` (the last bin includes 1). 0 is perfect.

    Examples
    --------
    >>> import numpy as np
    >>> ece(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0, 1], [1, 0]]))
    0.0
    """
    if int(bins) < 1:
        raise InputError(f"ece needs at least 1 bin, got {bins}")
    p, y = _prepare(prob, truth, label, roi)
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    conf = np.bincount(idx, weights=p, minlength=bins)
    acc = np.bincount(idx, weights=y.astype(np.float64), minlength=bins)
    return float(np.abs(acc - conf).sum() / max(p.size, 1))


def probability_metrics(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None, bins: int = 15) -> dict[str, float]:
    """``{"roc_auc", "pr_auc", "ece"}`` for one class."""
    return {"roc_auc": roc_auc(prob, truth, label=label, roi=roi), "pr_auc": pr_auc(prob, truth, label=label, roi=roi),
            "ece": ece(prob, truth, label=label, roi=roi, bins=bins)}

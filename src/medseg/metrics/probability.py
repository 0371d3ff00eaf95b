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
from medseg.metrics.catalogue import names

__all__ = ["roc_auc", "pr_auc", "ece", "probability_metrics", "class_probability", "PROBABILITY_METRICS"]

#: The probability metrics (the catalogue's "probability" family, in column order).
PROBABILITY_METRICS = names("probability")


def class_probability(prob: Any, label: int | None, spatial_ndim: int) -> np.ndarray:
    """The probability map of ``label`` from a single map or a channel-first ``(C, *spatial)`` stack.

    A map with ``spatial_ndim`` axes is the foreground probability. With one more (channel)
    axis, channel ``label`` is used (``label=None`` → ``1 - channel 0``: any foreground).

    Parameters
    ----------
    prob : numpy.ndarray or Image
        Values in ``[0, 1]``, shape ``(*spatial)`` or ``(C, *spatial)``.
    label : int or None
        The class whose probability is wanted.
    spatial_ndim : int
        Number of spatial axes (2 or 3).

    Returns
    -------
    numpy.ndarray of float64, shape ``(*spatial)``

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.array([[[0.7, 0.2]], [[0.3, 0.8]]])       # (C=2, y=1, x=2)
    >>> class_probability(stack, 1, 2).tolist()
    [[0.3, 0.8]]
    >>> class_probability(stack, None, 2).round(6).tolist()        # 1 - background
    [[0.3, 0.8]]
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
    prob : numpy.ndarray or Image
        Probability of ``label``, values in ``[0, 1]``, shape ``(y, x)`` or ``(z, y, x)``
        like ``truth``, or channel-first class probabilities ``(C, *spatial)``.
    truth : numpy.ndarray or Image
        Integer label map ``(y, x)`` or ``(z, y, x)``.
    label : int or None, default 1
        The positive class; ``None`` scores any foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count.

    Returns
    -------
    float
        The probability that a random positive voxel scores higher than a random negative
        one (ties count half).

    Examples
    --------
    >>> import numpy as np
    >>> roc_auc(np.array([[0.1, 0.9], [0.8, 0.3]]), np.array([[0, 1], [1, 0]]))
    1.0

    Positives score 0.9 and 0.7, negatives 0.8 and 0.1: 3 of the 4 pairs are ordered right.

    >>> roc_auc(np.array([[0.9, 0.8], [0.7, 0.1]]), np.array([[1, 0], [1, 0]]))
    0.75
    """
    from sklearn.metrics import roc_auc_score  # deferred: scikit-learn is slow to import

    p, y = _prepare(prob, truth, label, roi)
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, p))


def pr_auc(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None) -> float:
    """Area under the precision-recall curve as *average precision* (step-wise, no interpolation).

    This is scikit-learn's ``average_precision_score``: ``Σ (R_n - R_{n-1}) P_n``; the
    trapezoidal area under the PR curve is optimistic and is not used.

    Parameters
    ----------
    prob : numpy.ndarray or Image
        Probability of ``label``, values in ``[0, 1]``, shape like ``truth`` (or ``(C, *spatial)``).
    truth : numpy.ndarray or Image
        Integer label map ``(y, x)`` or ``(z, y, x)``.
    label : int or None, default 1
        The positive class; ``None`` scores any foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count.

    Returns
    -------
    float
        ``nan`` when the truth holds only one class.

    Examples
    --------
    Ranked by probability 0.9 (positive), 0.8 (negative), 0.7 (positive): recall reaches 0.5
    at precision 1 and 1.0 at precision 2/3, so AP = 0.5 · 1 + 0.5 · 2/3.

    >>> import numpy as np
    >>> round(pr_auc(np.array([[0.9, 0.8], [0.7, 0.1]]), np.array([[1, 0], [1, 0]])), 4)
    0.8333
    """
    from sklearn.metrics import average_precision_score  # deferred: scikit-learn is slow to import

    p, y = _prepare(prob, truth, label, roi)
    if y.all() or not y.any():
        return float("nan")
    return float(average_precision_score(y, p))


def ece(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None, bins: int = 15) -> float:
    """Expected calibration error of the class probability, with ``bins`` equal-width bins.

    ``ECE = Σ_b (n_b / N) · |mean(y in b) − mean(p in b)|`` where bin ``b`` holds the voxels
    whose probability falls in ``[b/B, (b+1)/B)`` (the last bin includes 1). 0 is perfect.

    Parameters
    ----------
    prob : numpy.ndarray or Image
        Probability of ``label``, values in ``[0, 1]``, shape like ``truth`` (or ``(C, *spatial)``).
    truth : numpy.ndarray or Image
        Integer label map ``(y, x)`` or ``(z, y, x)``.
    label : int or None, default 1
        The positive class; ``None`` scores any foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count.
    bins : int, default 15
        Number of equal-width probability bins.

    Returns
    -------
    float
        In ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> ece(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0, 1], [1, 0]]))
    0.0

    Two bins: ``[0, 0.5)`` holds 0.1 (truth 0): ``|0 - 0.1| = 0.1``; ``[0.5, 1]`` holds 0.9,
    0.8, 0.7 (truth 1, 0, 1): ``|(1 + 0 + 1) - (0.9 + 0.8 + 0.7)| = 0.4``; over 4 voxels:

    >>> round(ece(np.array([[0.9, 0.8], [0.7, 0.1]]), np.array([[1, 0], [1, 0]]), bins=2), 6)
    0.125
    """
    if int(bins) < 1:
        raise InputError(f"ece needs at least 1 bin, got {bins}")
    p, y = _prepare(prob, truth, label, roi)
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    conf = np.bincount(idx, weights=p, minlength=bins)
    acc = np.bincount(idx, weights=y.astype(np.float64), minlength=bins)
    return float(np.abs(acc - conf).sum() / max(p.size, 1))


def probability_metrics(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None,
                        bins: int = 15) -> dict[str, float]:
    """ROC-AUC, PR-AUC and ECE of one class.

    Parameters
    ----------
    prob : numpy.ndarray or Image
        Probability of ``label``, values in ``[0, 1]``, shape like ``truth`` (or ``(C, *spatial)``).
    truth : numpy.ndarray or Image
        Integer label map ``(y, x)`` or ``(z, y, x)``.
    label : int or None, default 1
        The positive class; ``None`` scores any foreground.
    roi : array_like or Image, optional
        Nonzero where voxels count.
    bins : int, default 15
        ECE bins.

    Returns
    -------
    dict
        ``{"roc_auc", "pr_auc", "ece"}``.

    Examples
    --------
    >>> import numpy as np
    >>> m = probability_metrics(np.array([[0.9, 0.8], [0.7, 0.1]]), np.array([[1, 0], [1, 0]]), bins=2)
    >>> {k: round(v, 4) for k, v in m.items()}
    {'roc_auc': 0.75, 'pr_auc': 0.8333, 'ece': 0.125}
    """
    return {"roc_auc": roc_auc(prob, truth, label=label, roi=roi), "pr_auc": pr_auc(prob, truth, label=label, roi=roi),
            "ece": ece(prob, truth, label=label, roi=roi, bins=bins)}

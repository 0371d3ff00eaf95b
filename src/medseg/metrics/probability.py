"""Metrics of probability maps: ROC-AUC, PR-AUC (average precision), expected calibration error
and the Brier score; `fit_temperature` fits temperature scaling.

All four score the probability of one class (``prob``, values in ``[0, 1]``) against the
binary truth ``truth == label`` (or ``truth > 0`` for ``label=None``), optionally inside a
region of interest. When the truth holds only one class inside the ROI, ROC-AUC and PR-AUC
are undefined and returned as ``nan``.

The curves behind the numbers (ROC, precision-recall, reliability) come from
`probability_histogram`: voxel counts in fixed probability bins, a few kilobytes per
case whatever its size, that add up over cases (pooled curves).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medseg.errors import GeometryError, InputError
from medseg.metrics._inputs import label_array, prob_array, roi_array
from medseg.metrics.catalogue import names

__all__ = ["roc_auc", "pr_auc", "ece", "brier", "fit_temperature", "probability_metrics", "class_probability",
           "PROBABILITY_METRICS", "ProbabilityHistogram", "probability_histogram", "CURVE_BINS"]

CURVE_BINS = 1000
"""Probability bins of the ROC and precision-recall curves (`probability_histogram`)."""

PROBABILITY_METRICS = names("probability")
"""The probability metrics (the catalogue's "probability" family, in column order)."""


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


def brier(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None) -> float:
    """Brier score of the class probability: the mean squared difference ``mean((p - y)²)``.

    A proper scoring rule: unlike the ECE it also rewards sharp (confident and right)
    probabilities. 0 is perfect; always predicting the prevalence ``q`` scores ``q(1 - q)``.

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
        In ``[0, 1]``; nan without voxels.

    Examples
    --------
    >>> import numpy as np
    >>> round(brier(np.array([[0.9, 0.8], [0.7, 0.1]]), np.array([[1, 0], [1, 0]])), 6)   # (.01+.64+.09+.01)/4
    0.1875
    """
    p, y = _prepare(prob, truth, label, roi)
    if p.size == 0:
        return float("nan")
    return float(np.mean(np.square(p - y)))


def fit_temperature(log_prob: Any, truth: Any, *, mask: Any = None, max_voxels: int = 2_000_000,
                    seed: int = 0, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """The temperature ``T`` that minimises the negative log-likelihood of ``softmax(z / T)``.

    Temperature scaling (Guo et al., 2017): one scalar divides the logits ``z`` of every
    class, so the argmax (the segmentation) never changes, only how confident the
    probabilities are. Log-probabilities serve as logits: ``log softmax(z)`` differs from
    ``z`` by one constant per voxel, which the softmax ignores.

    Parameters
    ----------
    log_prob : numpy.ndarray, shape ``(K, *spatial)`` or ``(K, N)``
        Logits or log-probabilities of the ``K`` classes (float).
    truth : numpy.ndarray of int, shape ``(*spatial)`` or ``(N,)``
        The class of each voxel, ``0 .. K-1``.
    mask : numpy.ndarray of bool, optional
        Voxels that count (e.g. the ROI).
    max_voxels : int
        At most this many voxels (drawn at random with ``seed``) enter the fit.
    seed : int
    bounds : (float, float)
        The range ``T`` is searched in (log scale).

    Returns
    -------
    float
        ``T`` (> 1: the network was over-confident); 1.0 without voxels.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 20000)
    >>> x = np.where(y == 1, 1.0, -1.0) + rng.normal(0, 1, 20000)
    >>> z = np.stack([np.zeros(20000), 2 * x])  # the calibrated logits of x
    >>> t = fit_temperature(3.0 * z, y)        # made 3x too confident
    >>> 2.5 < t < 3.5
    True
    """
    from scipy.optimize import minimize_scalar  # deferred: SciPy loads slowly and only fitting needs it

    z = np.asarray(log_prob, dtype=np.float64)
    t = np.asarray(truth).astype(np.int64)
    if z.shape[1:] != t.shape:
        raise GeometryError(f"logits of shape {z.shape} do not match the truth of shape {t.shape}")
    z = z.reshape(z.shape[0], -1)
    t = t.reshape(-1)
    keep = np.ones(t.shape, bool) if mask is None else np.asarray(mask, bool).reshape(-1)
    keep &= (t >= 0) & (t < z.shape[0])
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return 1.0
    if idx.size > max_voxels:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_voxels, replace=False))
    z = z[:, idx]
    z = np.clip(np.nan_to_num(z, nan=0.0), -1e4, 1e4)  # log 0 = -inf: a very unlikely class
    z = z - z.max(axis=0, keepdims=True)
    zt = z[t[idx], np.arange(idx.size)]

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(np.mean(np.log(np.exp(s).sum(axis=0)) - zt / np.exp(log_t)))

    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def probability_metrics(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None,
                        bins: int = 15) -> dict[str, float]:
    """ROC-AUC, PR-AUC, ECE and Brier score of one class.

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
        ``{"roc_auc", "pr_auc", "ece", "brier"}``.

    Examples
    --------
    >>> import numpy as np
    >>> m = probability_metrics(np.array([[0.9, 0.8], [0.7, 0.1]]), np.array([[1, 0], [1, 0]]), bins=2)
    >>> {k: round(v, 4) for k, v in m.items()}
    {'roc_auc': 0.75, 'pr_auc': 0.8333, 'ece': 0.125, 'brier': 0.1875}
    """
    return {"roc_auc": roc_auc(prob, truth, label=label, roi=roi), "pr_auc": pr_auc(prob, truth, label=label, roi=roi),
            "ece": ece(prob, truth, label=label, roi=roi, bins=bins), "brier": brier(prob, truth, label=label, roi=roi)}


def _bin(p: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each probability: ``[b/B, (b+1)/B)``, the last bin including 1 (as `ece`)."""
    return np.minimum((p * bins).astype(np.int64), bins - 1)


@dataclass
class ProbabilityHistogram:
    """Voxel counts of one class's probability in equal-width bins, split by the truth: the data of the curves.

    Fixed size whatever the image (`CURVE_BINS` + 3 x calibration bins numbers); ``a + b``
    pools two cases (every voxel weighs the same). The ROC and precision-recall curves
    threshold at the bin edges, so their areas agree with the exact `roc_auc` and
    `pr_auc` up to ties within a bin (exactly when no two distinct probabilities share a
    bin). The calibration sums are exact: `ece` equals `ece` with the same bins.

    Attributes
    ----------
    positives, negatives : numpy.ndarray of int64, shape ``(bins,)``
        Voxels of the class / not of the class whose probability falls in each bin.
    calibration_count : numpy.ndarray of int64, shape ``(calibration_bins,)``
        Voxels per calibration bin.
    calibration_confidence : numpy.ndarray of float64, shape ``(calibration_bins,)``
        Sum of their probabilities.
    calibration_positives : numpy.ndarray of float64, shape ``(calibration_bins,)``
        How many of them are the class.

    Examples
    --------
    >>> h = probability_histogram(np.array([[0.9, 0.8], [0.7, 0.1]]), np.array([[1, 0], [1, 0]]))
    >>> round(h.roc_auc(), 4), round(h.average_precision(), 4), round(h.ece(), 4)    # = roc_auc, pr_auc, ece
    (0.75, 0.8333, 0.325)
    >>> (h + h).positives.sum()
    np.int64(4)
    """

    positives: np.ndarray
    negatives: np.ndarray
    calibration_count: np.ndarray
    calibration_confidence: np.ndarray
    calibration_positives: np.ndarray

    def __add__(self, other: ProbabilityHistogram) -> ProbabilityHistogram:
        """Pool two histograms with the same bins.

        Parameters
        ----------
        other : ProbabilityHistogram

        Returns
        -------
        ProbabilityHistogram
        """
        if other.positives.shape != self.positives.shape or other.calibration_count.shape != \
                self.calibration_count.shape:
            raise InputError("cannot pool probability histograms with different bins")
        return ProbabilityHistogram(self.positives + other.positives, self.negatives + other.negatives,
                                    self.calibration_count + other.calibration_count,
                                    self.calibration_confidence + other.calibration_confidence,
                                    self.calibration_positives + other.calibration_positives)

    @property
    def n_positive(self) -> int:
        """Voxels of the class."""
        return int(self.positives.sum())

    @property
    def n_negative(self) -> int:
        """Voxels not of the class."""
        return int(self.negatives.sum())

    def _cumulative(self) -> tuple[np.ndarray, np.ndarray]:
        """True and false positives when thresholding at each bin's lower edge, from the top bin down (0 first)."""
        tp = np.concatenate([[0], np.cumsum(self.positives[::-1])]).astype(np.float64)
        fp = np.concatenate([[0], np.cumsum(self.negatives[::-1])]).astype(np.float64)
        return tp, fp

    def roc(self) -> tuple[np.ndarray, np.ndarray]:
        """The ROC curve: false and true positive rates from threshold 1 down to 0.

        Returns
        -------
        fpr, tpr : numpy.ndarray, shape ``(bins + 1,)``
            ``nan`` when the truth has one class only.
        """
        tp, fp = self._cumulative()
        with np.errstate(invalid="ignore", divide="ignore"):
            return fp / self.n_negative, tp / self.n_positive

    def pr(self) -> tuple[np.ndarray, np.ndarray]:
        """The precision-recall curve from threshold 1 down to 0 (bins without voxels skipped).

        Returns
        -------
        recall, precision : numpy.ndarray
            Starting at recall 0, precision 1 (sklearn's convention).
        """
        tp, fp = self._cumulative()
        keep = np.concatenate([[False], (self.positives[::-1] + self.negatives[::-1]) > 0])
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = tp[keep] / self.n_positive
            precision = tp[keep] / (tp[keep] + fp[keep])
        return np.concatenate([[0.0], recall]), np.concatenate([[1.0], precision])

    def roc_auc(self) -> float:
        """Area under the binned ROC curve (trapezoids: ties within a bin count half).

        Returns
        -------
        float
            ``nan`` when the truth has one class only.
        """
        if not self.n_positive or not self.n_negative:
            return float("nan")
        fpr, tpr = self.roc()
        return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))

    def average_precision(self) -> float:
        """Average precision of the binned curve: ``Σ (R_n - R_{n-1}) P_n`` over the bin thresholds.

        Returns
        -------
        float
            ``nan`` when the truth has one class only.
        """
        if not self.n_positive or not self.n_negative:
            return float("nan")
        recall, precision = self.pr()
        return float(np.sum(np.diff(recall) * precision[1:]))

    def ece(self) -> float:
        """Expected calibration error over the calibration bins (exact, as `ece`).

        Returns
        -------
        float
        """
        n = self.calibration_count.sum()
        return float(np.abs(self.calibration_positives - self.calibration_confidence).sum() / max(n, 1))

    def reliability(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The reliability diagram: per calibration bin with voxels, mean probability, observed frequency, count.

        Returns
        -------
        confidence, frequency : numpy.ndarray of float64
        count : numpy.ndarray of int64
        """
        ok = self.calibration_count > 0
        c = self.calibration_count[ok]
        return self.calibration_confidence[ok] / c, self.calibration_positives[ok] / c, c

    def curves(self) -> dict[str, Any]:
        """Everything a figure needs, as plain arrays and numbers.

        Returns
        -------
        dict
            ``fpr, tpr, recall, precision, confidence, frequency, count`` (arrays) and
            ``roc_auc, pr_auc, ece, prevalence, n_positive, n_negative`` (numbers).

        Examples
        --------
        >>> h = probability_histogram(np.array([[0.9, 0.8], [0.7, 0.1]]), np.array([[1, 0], [1, 0]]))
        >>> c = h.curves()
        >>> c["prevalence"], c["tpr"][-1], c["fpr"][-1]
        (0.5, np.float64(1.0), np.float64(1.0))
        """
        fpr, tpr = self.roc()
        recall, precision = self.pr()
        conf, freq, count = self.reliability()
        n = self.n_positive + self.n_negative
        return {"fpr": fpr, "tpr": tpr, "recall": recall, "precision": precision, "confidence": conf,
                "frequency": freq, "count": count, "roc_auc": self.roc_auc(), "pr_auc": self.average_precision(),
                "ece": self.ece(), "prevalence": self.n_positive / n if n else float("nan"),
                "n_positive": self.n_positive, "n_negative": self.n_negative}


def probability_histogram(prob: Any, truth: Any, *, label: int | None = 1, roi: Any = None, bins: int = CURVE_BINS,
                          calibration_bins: int = 15) -> ProbabilityHistogram:
    """Bin one case's class probabilities by truth: the data of its ROC, PR and reliability curves.

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
    bins : int
        Equal-width bins of the ROC and PR curves.
    calibration_bins : int, default 15
        Bins of the reliability diagram and ECE (the default of `ece`).

    Returns
    -------
    ProbabilityHistogram

    Examples
    --------
    >>> h = probability_histogram(np.array([[0.05, 0.95]]), np.array([[0, 1]]), bins=10, calibration_bins=2)
    >>> h.positives.tolist(), h.negatives.tolist(), h.calibration_count.tolist()
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [1, 1])
    """
    if int(bins) < 1 or int(calibration_bins) < 1:
        raise InputError(f"probability histograms need at least 1 bin, got {bins} and {calibration_bins}")
    p, y = _prepare(prob, truth, label, roi)
    idx = _bin(p, bins)
    pos = np.bincount(idx[y], minlength=bins).astype(np.int64)
    neg = np.bincount(idx[~y], minlength=bins).astype(np.int64)
    cidx = _bin(p, calibration_bins)
    return ProbabilityHistogram(pos, neg, np.bincount(cidx, minlength=calibration_bins).astype(np.int64),
                                np.bincount(cidx, weights=p, minlength=calibration_bins),
                                np.bincount(cidx, weights=y.astype(np.float64), minlength=calibration_bins))

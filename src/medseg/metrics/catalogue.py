"""The metric catalogue: the one place that says what each metric column *is*.

Every numeric column of ``metrics.csv`` has one `Metric` entry here — its display
title, unit, which direction is better, its family and a one-line definition. The CSV
writer takes its column order from `METRICS` (the catalogue is ordered like
``metrics.csv``), the summaries take the metrics to aggregate from it, and the HTML report
and ``compare`` (ranking, paired tests, plots) take titles and directions from it, so they
can never disagree on whether, say, Hausdorff is lower-is-better.

Directions
----------
``"higher"``  higher is better (Dice, recall, NSD, ROC-AUC, ...)
``"lower"``   lower is better (HD95, ASSD, Hausdorff, ECE, Brier)
``"zero"``    closer to 0 is better (the signed relative volume difference)
``"none"``    a measurement, not a score (volumes, voxel counts): nothing to rank

Examples
--------
>>> METRICS["hausdorff"].direction, METRICS["hausdorff"].unit
('lower', 'mm')
>>> heading("hd95"), heading("dice")
('HD95 (mm)', 'Dice')
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from medseg.errors import ConfigError, InputError, suggest

__all__ = ["Metric", "METRICS", "MAIN_METRICS", "KEY_COLUMNS", "NOTE_COLUMNS", "CONVENTIONS", "metric", "names",
           "columns", "heading", "lower_is_better", "cost"]

Direction = Literal["higher", "lower", "zero", "none"]
Family = Literal["overlap", "distance", "probability", "volume", "count", "roi"]


@dataclass(frozen=True)
class Metric:
    """One metric column: what it is called, measured in, and which way is better.

    Attributes
    ----------
    name : str
        The column name in ``metrics.csv`` and the key in ``summary.json``.
    title : str
        Display title (reports, plots).
    unit : str
        ``"mm"`` for distances, ``"mm³"`` for volumes, ``"voxels"`` for counts, ``""`` for
        ratios. Images without a voxel size (PNG, most TIFF) measure in pixels; evaluations of
        them report ``px`` (``MetricsTable.length_unit``).
    direction : {"higher", "lower", "zero", "none"}
        Which values are better (see the module docstring).
    family : {"overlap", "distance", "probability", "volume", "count"}
        The module that computes it: [`confusion`][medseg.metrics.confusion] (overlap, volume,
        count), [`distance`][medseg.metrics.distance] or [`probability`][medseg.metrics.probability].
    description : str
        A one-line definition.

    Examples
    --------
    >>> m = METRICS["volume_difference"]
    >>> m.direction, m.heading
    ('zero', 'relative volume difference')
    """

    name: str
    title: str
    unit: str
    direction: Direction
    family: Family
    description: str

    @property
    def heading(self) -> str:
        """The title with the unit in brackets when there is one (``"HD95 (mm)"``)."""
        return f"{self.title} ({self.unit})" if self.unit else self.title

    @property
    def is_score(self) -> bool:
        """True for quality scores (summarised in reports), False for volumes and counts."""
        return self.family not in ("volume", "count")


def _m(name: str, title: str, unit: str, direction: Direction, family: Family, description: str) -> Metric:
    return Metric(name, title, unit, direction, family, description)


METRICS: dict[str, Metric] = {m.name: m for m in (
    _m("dice", "Dice", "", "higher", "overlap", "2|P∩T| / (|P| + |T|)"),
    _m("iou", "IoU (Jaccard)", "", "higher", "overlap", "|P∩T| / |P∪T|"),
    _m("precision", "precision", "", "higher", "overlap", "TP / (TP + FP)"),
    _m("recall", "recall (sensitivity)", "", "higher", "overlap", "TP / (TP + FN)"),
    _m("specificity", "specificity", "", "higher", "overlap", "TN / (TN + FP)"),
    _m("accuracy", "accuracy", "", "higher", "overlap", "(TP + TN) / all voxels"),
    _m("hd95", "HD95", "mm", "lower", "distance",
       "larger of the two directed 95th-percentile surface distances"),
    _m("assd", "ASSD", "mm", "lower", "distance", "mean of both directed surface-distance sets"),
    _m("nsd", "NSD", "", "higher", "distance", "fraction of both surfaces within the tolerance of the other"),
    _m("roc_auc", "ROC-AUC", "", "higher", "probability", "area under the ROC curve of the class probability"),
    _m("pr_auc", "PR-AUC (AP)", "", "higher", "probability", "average precision of the class probability"),
    _m("ece", "ECE", "", "lower", "probability", "expected calibration error (equal-width bins)"),
    _m("hausdorff", "Hausdorff", "mm", "lower", "distance", "largest surface distance in either direction"),
    _m("balanced_accuracy", "balanced accuracy", "", "higher", "overlap", "(recall + specificity) / 2"),
    _m("mcc", "MCC", "", "higher", "overlap", "Matthews correlation coefficient"),
    _m("volume_difference", "relative volume difference", "", "zero", "overlap",
       "signed relative volume error (|P| - |T|) / |T|"),
    _m("volume_similarity", "volume similarity", "", "higher", "overlap",
       "1 - |FN - FP| / (2TP + FP + FN)"),
    _m("volume_pred", "predicted volume", "mm³", "none", "volume", "|P| times the voxel volume"),
    _m("volume_truth", "ground-truth volume", "mm³", "none", "volume", "|T| times the voxel volume"),
    _m("tp", "true positives", "voxels", "none", "count", "voxels in both P and T"),
    _m("fp", "false positives", "voxels", "none", "count", "voxels in P but not T"),
    _m("fn", "false negatives", "voxels", "none", "count", "voxels in T but not P"),
    _m("tn", "true negatives", "voxels", "none", "count", "voxels in neither"),
    # added after the others: metrics.csv columns never move
    _m("brier", "Brier score", "", "lower", "probability", "mean squared error of the class probability"),
    _m("outside_roi", "predicted outside the ROI", "", "lower", "roi",
       "fraction of the label's predicted voxels that lie outside the region of interest (never scored)"),
)}
"""Every metric column, in ``metrics.csv`` order (probability columns only appear when probability
maps were given)."""

MAIN_METRICS = ("dice", "iou", "precision", "recall", "specificity", "accuracy", "hd95", "assd", "nsd")
"""Metrics shown first in summaries and reports."""
KEY_COLUMNS = ("case", "label", "label_name")
"""Columns of ``metrics.csv`` before the metrics (they identify the row)."""
NOTE_COLUMNS = ("empty",)
"""Columns of ``metrics.csv`` after the metrics (``empty``: which mask was empty, if any)."""

CONVENTIONS = (
    "Undefined values (a ratio 0/0, e.g. Dice when both masks are empty) are shown as — and left out of the "
    "statistics, which report how many were left out. When exactly one mask is empty, Hausdorff/HD95/ASSD are ∞ "
    "(kept: a mean becomes ∞, the median stays informative) and NSD is 0. Surfaces are the mask voxels with a "
    "face neighbour outside the mask; distances are Euclidean in mm between voxel centres; HD95 is the larger "
    "of the two directed 95th percentiles (linear interpolation); ASSD is the mean of both directed distance sets; "
    "NSD counts surface voxels within the tolerance. Distances use the files' voxel spacing; formats without one "
    "(PNG, JPEG, GIF, TIFF without resolution tags) measure lengths in pixels, and the reports say px."
)
"""How undefined and infinite values and the distances are defined (``summary.json`` and the
report)."""


def metric(name: str) -> Metric:
    """The catalogue entry of ``name``.

    Parameters
    ----------
    name : str
        A metric column name such as ``"dice"``.

    Returns
    -------
    Metric

    Raises
    ------
    ConfigError
        For a name that is not in the catalogue (with a "did you mean").

    Examples
    --------
    >>> metric("assd").unit
    'mm'
    """
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(f"unknown metric '{name}'{suggest(name, METRICS)}") from None


def names(*families: Family) -> tuple[str, ...]:
    """Metric names of the given families (all when none is given), in ``metrics.csv`` order.

    Parameters
    ----------
    *families : str
        Any of ``"overlap"``, ``"distance"``, ``"probability"``, ``"volume"``, ``"count"``.

    Returns
    -------
    tuple of str

    Examples
    --------
    >>> names("distance")
    ('hd95', 'assd', 'nsd', 'hausdorff')
    """
    return tuple(m.name for m in METRICS.values() if not families or m.family in families)


def columns(*, probabilities: bool = False, roi: bool = False) -> tuple[str, ...]:
    """The columns of ``metrics.csv`` in order.

    Parameters
    ----------
    probabilities : bool
        Include ``roc_auc, pr_auc, ece`` (written when probability maps were evaluated).
    roi : bool
        Include ``outside_roi`` (written when the cases were restricted to a region of interest).

    Returns
    -------
    tuple of str
        `KEY_COLUMNS`, the catalogue's metrics, `NOTE_COLUMNS`.

    Examples
    --------
    >>> cols = columns()
    >>> cols[:4], cols[-1], "ece" in cols, "ece" in columns(probabilities=True)
    (('case', 'label', 'label_name', 'dice'), 'empty', False, True)
    """
    body = tuple(m.name for m in METRICS.values()
                 if (probabilities or m.family != "probability") and (roi or m.family != "roi"))
    return KEY_COLUMNS + body + NOTE_COLUMNS


def heading(name: str) -> str:
    """Display title with unit of a metric; an unknown name is shown as it is.

    Parameters
    ----------
    name : str

    Returns
    -------
    str

    Examples
    --------
    >>> heading("hausdorff"), heading("my_score")
    ('Hausdorff (mm)', 'my_score')
    """
    m = METRICS.get(name)
    return m.heading if m is not None else name


def lower_is_better(name: str) -> bool:
    """True when lower values of the metric are better (distances, calibration error).

    Parameters
    ----------
    name : str
        A catalogue metric name.

    Returns
    -------
    bool

    Examples
    --------
    >>> lower_is_better("hausdorff"), lower_is_better("dice"), lower_is_better("volume_difference")
    (True, False, False)
    """
    return metric(name).direction == "lower"


def cost(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Values oriented so that lower is better, for ranking and paired tests (``nan`` kept).

    Parameters
    ----------
    name : str
        A catalogue metric name.
    values : array_like of float, any shape

    Returns
    -------
    numpy.ndarray of float64, same shape
        ``values`` for lower-is-better metrics, ``-values`` for higher-is-better ones and
        ``|values|`` for closer-to-zero ones (a new array in every case).

    Raises
    ------
    InputError
        For a measurement without a better direction (volumes, counts).

    Examples
    --------
    >>> cost("dice", [0.9, 0.5]).tolist(), cost("hd95", [2.0, 1.0]).tolist()
    ([-0.9, -0.5], [2.0, 1.0])
    >>> cost("volume_difference", [-0.2, 0.1]).tolist()
    [0.2, 0.1]
    """
    m = metric(name)
    v = np.asarray(values, dtype=float)
    if m.direction == "zero":
        return np.abs(v)
    if m.direction == "lower":
        return v.copy()
    if m.direction == "higher":
        return -v
    raise InputError(f"'{name}' ({m.title}) is a measurement, not a score: no direction is better, so runs "
                     "cannot be ranked or tested on it; choose a score such as dice, hd95 or nsd")

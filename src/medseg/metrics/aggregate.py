"""Aggregation of per-case metrics: mean, std, median, IQR per class, case-averaged or pooled.

* **case-averaged** (default): each statistic is over the per-case values of one class;
  ``nan`` values (undefined, e.g. Dice when both masks are empty) are left out and counted
  in ``n_undefined``; ``inf`` distances (one mask empty) are kept — the mean becomes
  ``inf``, honestly — and counted in ``n_infinite``, and the median/IQR stay informative.
* **pooled**: overlap metrics are recomputed from the TP/FP/FN/TN summed over all cases
  (every voxel weighs the same, so big cases dominate). Distance and probability metrics
  have no pooled form and stay case-averaged; the summary marks each metric's ``mode``.

`worst_cases` ranks cases by a metric, in the direction the catalogue gives it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medseg.metrics.catalogue import cost
from medseg.metrics.confusion import OVERLAP_METRICS, from_counts

__all__ = ["describe", "summarize", "worst_cases"]


def _percentile(sorted_v: np.ndarray, q: float) -> float:
    """Linear-interpolation percentile (NumPy's default) that keeps ``inf`` instead of producing ``nan``."""
    pos = q / 100.0 * (sorted_v.size - 1)
    lo, hi = int(np.floor(pos)), int(np.ceil(pos))
    frac = pos - lo
    a, b = float(sorted_v[lo]), float(sorted_v[hi])
    if frac == 0 or a == b:
        return a
    if math.isinf(b):
        return math.inf
    return a + frac * (b - a)


def describe(values: Sequence[float]) -> dict[str, Any]:
    """Statistics of one metric over cases.

    Parameters
    ----------
    values : sequence of float, shape ``(n_cases,)``
        Per-case values; ``nan`` (undefined) and ``inf`` allowed.

    Returns
    -------
    dict
        ``n`` (finite values used), ``n_undefined`` (nan), ``n_infinite``, ``mean``, ``std``
        (sample, ddof=1; ``nan`` for one value), ``median``, ``q1``, ``q3``, ``iqr``,
        ``min``, ``max``. With no defined value every statistic is ``nan``.

    Examples
    --------
    >>> d = describe([1.0, 2.0, 3.0, 4.0, float("nan")])
    >>> d["n"], d["n_undefined"], d["mean"], d["median"], d["q1"], d["q3"], round(d["std"], 4)
    (4, 1, 2.5, 2.5, 1.75, 3.25, 1.291)
    >>> d = describe([1.0, float("inf"), 3.0])          # an infinite distance is kept
    >>> d["n"], d["n_infinite"], d["mean"], d["median"]
    (2, 1, inf, 3.0)
    """
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    nan = np.isnan(v)
    inf = np.isinf(v)
    d = v[~nan]
    out: dict[str, Any] = {"n": int((~nan & ~inf).sum()), "n_undefined": int(nan.sum()), "n_infinite": int(inf.sum())}
    if d.size == 0:
        out.update({k: float("nan") for k in ("mean", "std", "median", "q1", "q3", "iqr", "min", "max")})
        return out
    ds = np.sort(d)
    q1, med, q3 = (_percentile(ds, q) for q in (25, 50, 75))
    with np.errstate(invalid="ignore"):
        out.update({
            "mean": float(d.mean()),
            "std": (float(d.std(ddof=1)) if d.size > 1 and not inf.any()
                    else float("nan") if d.size <= 1 else float("inf")),
            "median": med, "q1": q1, "q3": q3,
            "iqr": q3 - q1 if math.isfinite(q3) else float("inf"),
            "min": float(d.min()), "max": float(d.max()),
        })
    return out


def summarize(rows: Sequence[dict[str, Any]], metrics: Sequence[str], *, pooled: bool = False) -> dict[str, Any]:
    """Per-label statistics of ``metrics`` over the rows (one row per case and label).

    Parameters
    ----------
    rows : sequence of dict
        Rows with at least ``label`` and the metric columns (``tp, fp, fn, tn`` for pooling).
    metrics : sequence of str
        Metric column names to summarise.
    pooled : bool
        Recompute overlap metrics from summed counts (see the module docstring).

    Returns
    -------
    dict
        ``{label: {metric: {"mode": "case-averaged"|"pooled", "n", "mean", ...}}}`` with
        labels as strings (JSON keys), plus ``"all"`` — the mean over labels of each
        label's case-averaged mean (macro average) — when there are several labels.

    Examples
    --------
    Two cases of one label, a perfect one (Dice 1) and a poor one (Dice 0.5):

    >>> rows = [{"label": 1, "dice": 1.0, "tp": 9, "fp": 0, "fn": 0, "tn": 91},
    ...         {"label": 1, "dice": 0.5, "tp": 1, "fp": 1, "fn": 1, "tn": 97}]
    >>> summarize(rows, ["dice"])["1"]["dice"]["mean"]
    0.75
    >>> summarize(rows, ["dice"], pooled=True)["1"]["dice"]["value"]    # 2·10 / (2·10 + 1 + 1)
    0.9090909090909091
    """
    labels = sorted({int(r["label"]) for r in rows})
    out: dict[str, Any] = {}
    for lab in labels:
        sub = [r for r in rows if int(r["label"]) == lab]
        res: dict[str, Any] = {}
        pooled_vals = None
        if pooled:
            tp, fp, fn, tn = (sum(int(r[k]) for r in sub) for k in ("tp", "fp", "fn", "tn"))
            pooled_vals = from_counts(tp, fp, fn, tn)
        for m in metrics:
            stats = describe([r.get(m, float("nan")) for r in sub])
            if pooled_vals is not None and m in OVERLAP_METRICS:
                stats = {"mode": "pooled", "value": pooled_vals[m], "n_cases": len(sub),
                         "case_mean": stats["mean"], "case_median": stats["median"]}
            else:
                stats = {"mode": "case-averaged", **stats}
            res[m] = stats
        out[str(lab)] = res
    if len(labels) > 1:
        allres = {}
        for m in metrics:
            vals = [out[str(lab)][m].get("value", out[str(lab)][m].get("mean")) for lab in labels]
            v = np.asarray(vals, dtype=float)
            allres[m] = {"mode": "macro average over labels",
                         "mean": float(np.nanmean(v)) if np.any(~np.isnan(v)) else float("nan")}
        out["all"] = allres
    return out


def worst_cases(rows: Sequence[Mapping[str, Any]], n: int = 5, metric: str = "dice") -> list[tuple[str, float]]:
    """The ``n`` cases with the worst mean ``metric`` over their labels (undefined cases last).

    "Worst" follows the catalogue's direction: the lowest Dice, the highest HD95.

    Parameters
    ----------
    rows : sequence of dict
        One row per case and label, with ``case`` and the ``metric`` column.
    n : int
        How many cases to return.
    metric : str
        A catalogue metric with a direction.

    Returns
    -------
    list of (str, float)
        ``(case, mean over labels)``, worst first; ties keep the order of the rows.

    Examples
    --------
    >>> rows = [{"case": "a", "dice": 0.9}, {"case": "b", "dice": 0.4}, {"case": "b", "dice": 0.6},
    ...         {"case": "c", "dice": float("nan")}, {"case": "d", "dice": 0.8}]
    >>> worst_cases(rows, 3)
    [('b', 0.5), ('d', 0.8), ('a', 0.9)]
    """
    vals: dict[str, list[float]] = {}
    for r in rows:
        vals.setdefault(r["case"], []).append(float(r[metric]))
    means = []
    for v in vals.values():
        a = np.asarray(v)
        means.append(float(np.nanmean(a)) if np.any(~np.isnan(a)) else float("nan"))
    badness = -cost(metric, means)  # higher is worse
    order = sorted(range(len(means)), key=lambda i: (math.isnan(means[i]), 0.0 if math.isnan(means[i]) else badness[i]))
    cases = list(vals)
    return [(cases[i], means[i]) for i in order[:n]]

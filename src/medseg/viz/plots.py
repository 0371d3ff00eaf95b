"""Metric plots (Matplotlib, Agg backend): box + strip plots, confusion matrices, paired comparisons.

Matplotlib is imported on the first figure, not with this module, so importing
[`medseg.viz`][] (and the report modules that use it) stays cheap.
"""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["png_bytes", "metric_box_figure", "confusion_figure", "paired_figure", "case_panel_figure", "value_limits",
           "probability_curves_figure", "BOX_MIN_N"]

#: Per-case values of one group: a sequence of floats or a 1-D array (``nan``/``inf`` allowed).
Values = Sequence[float] | np.ndarray


def _plt() -> Any:
    import matplotlib  # deferred: Matplotlib is slow to import and only needed for figures

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # deferred: after choosing the Agg backend

    return plt


def png_bytes(fig: Any, *, dpi: int = 96) -> bytes:
    """Render a figure to PNG bytes and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : int
        Resolution.

    Returns
    -------
    bytes
        The PNG file's bytes.

    Examples
    --------
    >>> png = png_bytes(paired_figure({"a": [1.0, 2.0], "b": [1.5, 2.5]}, title="Dice"))
    >>> png[:4]
    b'\x89PNG'
    """
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


BOX_MIN_N = 8
"""Fewest cases for a box plot; fewer are drawn as labelled points (a box of 2-7 values misleads)."""

#: Smallest y-axis span as a fraction of a bounded metric's range (Dice: 0.1 of [0, 1]), so that
#: a 0.0004 spread is not blown up to fill the plot.
MIN_SPAN_FRACTION = 0.1


def value_limits(values: Values, *, bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """Y-axis limits for ``values``: a margin around them, never narrower than a sensible span.

    Bounded metrics (``bounds``, e.g. ``(0, 1)`` for Dice) span at least
    `MIN_SPAN_FRACTION` of their range and stay within it (plus a small margin);
    unbounded ones at least 20 % of their largest magnitude (or 1 when all are 0). Values all in
    ``[0, 1]`` are taken as bounded by ``[0, 1]`` when no bounds are given.

    Parameters
    ----------
    values : array_like
        Values to show (``nan``/``inf`` ignored).
    bounds : tuple of float, optional
        The metric's possible range; ``(0, inf)`` for a non-negative distance.

    Returns
    -------
    tuple of float
        ``(low, high)``.

    Examples
    --------
    >>> lo, hi = value_limits([0.8426, 0.843], bounds=(0, 1))   # not 0.8426-0.8430: 0.1 wide plus margins
    >>> round(hi - lo, 3), lo < 0.8426 < 0.843 < hi
    (0.124, True)
    >>> value_limits([0.99, 1.0], bounds=(0, 1))[1]               # never far beyond the bound
    1.00248
    >>> value_limits([3.0, 3.0], bounds=(0, float("inf")))
    (2.628, 3.372)
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return (0.0, 1.0) if bounds is None else (float(bounds[0]) if np.isfinite(bounds[0]) else 0.0,
                                                  float(bounds[1]) if np.isfinite(bounds[1]) else 1.0)
    lo, hi = float(v.min()), float(v.max())
    if bounds is None and lo >= 0 and hi <= 1:
        bounds = (0.0, 1.0)
    b_lo, b_hi = bounds if bounds is not None else (-np.inf, np.inf)
    if np.isfinite(b_lo) and np.isfinite(b_hi):
        min_span = MIN_SPAN_FRACTION * (b_hi - b_lo)
    else:
        min_span = 0.2 * max(abs(lo), abs(hi)) or 1.0
    span = max(hi - lo, min_span)
    mid = (lo + hi) / 2
    a, b = mid - span / 2, mid + span / 2
    pad = 0.12 * span
    a, b = a - pad, b + pad
    margin = 0.02 * (b - a)
    if np.isfinite(b_lo) and a < b_lo - margin:  # keep the window inside the possible range, same width
        b, a = b + (b_lo - margin - a), b_lo - margin
    if np.isfinite(b_hi) and b > b_hi + margin:
        a, b = max(a - (b - b_hi - margin), b_lo - margin if np.isfinite(b_lo) else -np.inf), b_hi + margin
    return round(float(a), 10), round(float(b), 10)


def _spread(y: np.ndarray, gap: float) -> np.ndarray:
    """Label positions near ``y``, at least ``gap`` apart (sorted order kept), centred on the values."""
    order = np.argsort(y, kind="stable")
    pos = y[order].astype(float).copy()
    for i in range(1, pos.size):
        pos[i] = max(pos[i], pos[i - 1] + gap)
    shift = (pos - y[order]).mean()
    pos -= shift / 2 if pos.size > 1 else 0
    out = np.empty_like(pos)
    out[order] = pos
    return out


def metric_box_figure(groups: Mapping[str, Values], *, title: str, ylabel: str = "", seed: int = 0,
                      lower_is_better: bool = False, bounds: tuple[float, float] | None = None,
                      digits: int = 3) -> Any:
    """Per-case values of each group (label or run): labelled points for few cases, box + points from `BOX_MIN_N`.

    With fewer than `BOX_MIN_N` finite values in every group, each case is a point with
    its value written next to it (and no box, which would pretend to show a distribution);
    otherwise a box (median, quartiles, whiskers to 1.5 IQR) with every case as a jittered
    point. ``inf``/``nan`` values cannot be drawn; their counts are written under each group.
    The y-axis follows `value_limits`.

    Parameters
    ----------
    groups : mapping of str to array_like, each shape ``(n_cases,)``
        Per-case values of each group, in display order.
    title : str
        Plot title; ``"(lower is better)"`` is appended when ``lower_is_better``.
    ylabel : str
        Y-axis label.
    seed : int
        Seed of the horizontal jitter.
    lower_is_better : bool
        The metric's direction (from the catalogue).
    bounds : tuple of float, optional
        The metric's possible range (e.g. ``(0, 1)``), for the axis limits.
    digits : int
        Decimals of the value labels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = metric_box_figure({"label 1": [0.8426, 0.843]}, title="Dice", bounds=(0, 1))
    >>> ax = fig.axes[0]
    >>> len(ax.patches) + len([l for l in ax.lines if len(l.get_xdata()) == 2]) > 0, [t.get_text() for t in ax.texts]
    (False, ['0.843', '0.843'])
    >>> bool(ax.get_ylim()[1] - ax.get_ylim()[0] >= 0.1)
    True
    >>> png_bytes(fig)[:4]
    b'\x89PNG'
    """
    plt = _plt()
    names = list(groups)
    arrays = [np.asarray(groups[n], dtype=float) for n in names]
    finite = [v[np.isfinite(v)] for v in arrays]
    boxes = max((f.size for f in finite), default=0) >= BOX_MIN_N
    fig, ax = plt.subplots(figsize=(max(2.6, (1.1 if boxes else 1.5) * len(names) + 1.4), 3.0))
    rng = np.random.default_rng(seed)
    lims = value_limits(np.concatenate(finite) if finite else [], bounds=bounds)
    for i, (v, f) in enumerate(zip(arrays, finite)):
        x = i + 1
        if f.size and boxes:
            ax.scatter(x + rng.uniform(-0.12, 0.12, f.size), f, s=12, alpha=0.7, color="#1f5fa8", zorder=3,
                       edgecolors="none")
        elif f.size:
            ax.scatter(np.full(f.size, x - 0.12), f, s=22, color="#1f5fa8", zorder=3, edgecolors="white",
                       linewidths=0.5)
            ys = _spread(f, 0.075 * (lims[1] - lims[0]))
            for val, yl in zip(f, ys):
                ax.annotate(f"{val:.{digits}f}", (x - 0.12, val), xytext=(x + 0.02, yl), fontsize=7.5, va="center",
                            color="#222", arrowprops={"arrowstyle": "-", "color": "#999", "lw": 0.5})
        n_inf, n_nan = int(np.isinf(v).sum()), int(np.isnan(v).sum())
        note = ", ".join(x for x in (f"{n_inf} inf" if n_inf else "", f"{n_nan} undefined" if n_nan else "") if x)
        if note:
            ax.annotate(note, (x, 0), xycoords=("data", "axes fraction"), xytext=(0, -24),
                        textcoords="offset points", ha="center", fontsize=7, color="#a33")
    if boxes:
        ax.boxplot([f if f.size else [np.nan] for f in finite], widths=0.5, showfliers=False,
                   medianprops={"color": "#d95f02", "linewidth": 2}, boxprops={"color": "#555"},
                   whiskerprops={"color": "#555"}, capprops={"color": "#555"})
    ax.set_xlim(0.4, len(names) + 0.6)
    ax.set_ylim(*lims)
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels([f"{n}\nn={f.size}" for n, f in zip(names, finite)], fontsize=8,
                       rotation=20 if max(map(len, names)) > 8 else 0)
    kind = "box: median, quartiles; points: cases" if boxes else "each point is a case"
    ax.set_title(title + ("  (lower is better)" if lower_is_better else "") + f"\n{kind}", fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def confusion_figure(matrix: np.ndarray, names: Sequence[str]) -> Any:
    """Row-normalised confusion matrix (rows: truth) with voxel counts in each cell.

    Parameters
    ----------
    matrix : numpy.ndarray, shape ``(K, K)``
        Voxel counts, rows ground truth, columns prediction.
    names : sequence of str, length ``K``
        Class names.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    m = np.asarray(matrix, dtype=float)
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    k = len(names)
    fig, ax = plt.subplots(figsize=(1.0 * k + 2.2, 0.9 * k + 1.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{norm[i, j]:.1%}\n{int(m[i, j]):,}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(names, fontsize=8, rotation=30, ha="right")
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("prediction", fontsize=9)
    ax.set_ylabel("ground truth", fontsize=9)
    ax.set_title("confusion matrix (row-normalised; voxel counts)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig


def paired_figure(values: Mapping[str, Values], *, title: str, lower_is_better: bool = False,
                  bounds: tuple[float, float] | None = None) -> Any:
    """Per-case values of several runs, one line per case joining its points; a bar marks each run's mean.

    The bar is the mean over the finite values, the statistic of the comparison's ranking
    table, and is labelled with its value; the title says so.

    Parameters
    ----------
    values : mapping of str to array_like, each shape ``(n_cases,)``
        Per-case values of each run, the cases in the same order.
    title : str
        Plot title; ``"(lower is better)"`` is appended when ``lower_is_better``.
    lower_is_better : bool
        The metric's direction (from the catalogue).
    bounds : tuple of float, optional
        The metric's possible range, for the axis limits (see `value_limits`).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = paired_figure({"a": [0.8, 0.9], "b": [0.7, 0.75]}, title="Dice")
    >>> [t.get_text() for t in fig.axes[0].texts], fig.axes[0].get_title().splitlines()[1]
    (['mean 0.850', 'mean 0.725'], 'bar: mean of the 2 cases (as in the ranking table); lines join a case')
    """
    plt = _plt()
    names = list(values)
    arr = np.asarray([np.asarray(values[n], dtype=float) for n in names])  # (runs, cases)
    fig, ax = plt.subplots(figsize=(max(3.0, 1.3 * len(names) + 1.5), 3.2))
    x = np.arange(len(names))
    for c in range(arr.shape[1]):
        col = arr[:, c]
        ok = np.isfinite(col)
        ax.plot(x[ok], col[ok], "-", color="#888", alpha=0.35, linewidth=0.8)
    for i in range(len(names)):
        f = arr[i][np.isfinite(arr[i])]
        ax.scatter(np.full(f.size, i), f, s=14, zorder=3, alpha=0.85, color="#1f5fa8", edgecolors="none")
        if f.size:
            m = float(np.mean(f))
            ax.plot([i - 0.25, i + 0.25], [m] * 2, color="#222", linewidth=2.5, zorder=4)
            ax.annotate(f"mean {m:.3g}" if abs(m) >= 1000 else f"mean {m:.3f}", (i + 0.27, m), fontsize=7.5,
                        va="center", color="#222")
    ax.set_ylim(*value_limits(arr, bounds=bounds))
    ax.set_xticks(x)
    ax.set_xticklabels(names, fontsize=8, rotation=20 if max(map(len, names)) > 8 else 0)
    ax.set_xlim(-0.5, len(names) - 0.1)
    ax.set_title(title + ("  (lower is better)" if lower_is_better else "")
                 + f"\nbar: mean of the {arr.shape[1]} cases (as in the ranking table); lines join a case",
                 fontsize=8.5)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def probability_curves_figure(pooled: Mapping[str, Any], cases: Sequence[Mapping[str, Any]] = (), *,
                              title: str = "") -> Any:
    """ROC curve, precision-recall curve and reliability diagram of one class's probability.

    The pooled curves (every voxel of every case) are drawn thick; each case's curves, when
    given, as thin grey lines.

    Parameters
    ----------
    pooled : mapping
        Arrays ``fpr``, ``tpr`` (ROC), ``recall``, ``precision`` (PR), ``confidence``,
        ``frequency``, ``count`` (reliability: per probability bin with voxels, the mean
        probability, the fraction that is truly the class, the voxel count) and the numbers
        ``roc_auc``, ``pr_auc``, ``ece``, ``prevalence`` (see
        [`medseg.metrics.probability.ProbabilityHistogram.curves`][]).
    cases : sequence of mapping
        The same per case (the numbers may be missing).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> c = {"fpr": [0, 0.1, 1], "tpr": [0, 0.9, 1], "recall": [0, 0.9, 1], "precision": [1, 0.8, 0.5],
    ...      "confidence": [0.1, 0.9], "frequency": [0.05, 0.85], "count": [90, 10], "roc_auc": 0.9,
    ...      "pr_auc": 0.85, "ece": 0.05, "prevalence": 0.5}
    >>> [ax.get_title() for ax in probability_curves_figure(c, [c]).axes][:3]
    ['ROC curve', 'precision-recall curve', 'reliability diagram']
    """
    plt = _plt()
    fig = plt.figure(figsize=(11.6, 3.8))
    grid = fig.add_gridspec(4, 3, wspace=0.32, hspace=0.15)
    roc, pr = fig.add_subplot(grid[:, 0]), fig.add_subplot(grid[:, 1])
    rel, hist = fig.add_subplot(grid[:3, 2]), fig.add_subplot(grid[3, 2])
    thin = {"color": "#999", "linewidth": 0.6, "alpha": 0.6}
    for c in cases:
        roc.plot(c["fpr"], c["tpr"], **thin)
        pr.plot(c["recall"], c["precision"], **thin)
        rel.plot(c["confidence"], c["frequency"], **thin)
    strong = {"color": "#0072B2", "linewidth": 2.0}
    per_case: tuple[list[Any], list[str]] = ([plt.Line2D([], [], **thin)], ["each case"]) if cases else ([], [])
    roc.plot([0, 1], [0, 1], ":", color="#777", linewidth=0.8)
    (a,) = roc.plot(pooled["fpr"], pooled["tpr"], **strong)
    roc.legend([a, *per_case[0]], [f"pooled, AUC {pooled['roc_auc']:.3f}", *per_case[1]], fontsize=7.5,
               loc="lower right")
    roc.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (1 − specificity)",
            ylabel="true positive rate (recall)", title="ROC curve")
    prev = float(pooled.get("prevalence", np.nan))
    if np.isfinite(prev):
        pr.axhline(prev, linestyle=":", color="#777", linewidth=0.8)
    (b,) = pr.plot(pooled["recall"], pooled["precision"], **strong)
    pr.legend([b, *per_case[0]], [f"pooled, AP {pooled['pr_auc']:.3f}", *per_case[1]], fontsize=7.5,
              loc="lower left")
    pr.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision", title="precision-recall curve")
    rel.plot([0, 1], [0, 1], ":", color="#777", linewidth=0.8)
    (r,) = rel.plot(pooled["confidence"], pooled["frequency"], "o-", markersize=3, **strong)
    rel.legend([r, *per_case[0]], [f"pooled, ECE {pooled['ece']:.3f}", *per_case[1]], fontsize=7.5,
               loc="upper left")
    rel.set(xlim=(0, 1), ylim=(0, 1.01), ylabel="observed frequency", title="reliability diagram")
    rel.tick_params(labelbottom=False)
    counts = np.asarray(pooled["count"], dtype=float)
    conf = np.asarray(pooled["confidence"], dtype=float)
    if counts.size:
        hist.bar(conf, counts, width=0.9 / max(len(counts), 15), color="#999")
        hist.set_yscale("log")
    hist.set(xlim=(0, 1), xlabel="predicted probability (bin mean)", ylabel="voxels")
    for ax in (roc, pr, rel, hist):
        ax.tick_params(labelsize=7.5)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
        ax.title.set_size(9)
        ax.grid(alpha=0.25)
    if title:
        fig.suptitle(title, fontsize=10, y=1.02)
    return fig


def case_panel_figure(panels: Sequence[tuple[str, np.ndarray]], *, title: str,
                      legend: Sequence[tuple[str, np.ndarray]] = ()) -> Any:
    """A row of RGB panels with a title and an optional colour legend.

    Parameters
    ----------
    panels : sequence of (str, numpy.ndarray)
        ``(name, RGB image)``, each image ``(y, x, 3)`` with values in ``[0, 1]``, all the same shape.
    title : str
        Figure title.
    legend : sequence of (str, numpy.ndarray)
        ``(name, RGB colour (3,))`` entries of the legend.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    from matplotlib.patches import Patch  # deferred: Matplotlib, only needed for figures

    h, w = panels[0][1].shape[:2]
    width = 2.4 * len(panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.4 * h / w + 0.5), squeeze=False)
    for ax, (name, rgb) in zip(axes[0], panels):
        ax.imshow(np.clip(rgb, 0, 1), interpolation="nearest")
        ax.set_title(name, fontsize=7.5)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    if legend:
        fig.legend(handles=[Patch(color=c, label=n) for n, c in legend], loc="lower center", ncol=len(legend),
                   fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.04))
    return fig

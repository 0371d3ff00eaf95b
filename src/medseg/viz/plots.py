"""Metric plots (Matplotlib, Agg backend): box + strip plots, confusion matrices, paired comparisons.

Matplotlib is imported on the first figure, not with this module, so importing
:mod:`medseg.viz` (and the report modules that use it) stays cheap.
"""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["png_bytes", "metric_box_figure", "confusion_figure", "paired_figure", "case_panel_figure"]

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


def metric_box_figure(groups: Mapping[str, Values], *, title: str, ylabel: str = "", seed: int = 0,
                      lower_is_better: bool = False) -> Any:
    """Box plot with every case drawn as a jittered point, one box per group (label or run).

    ``inf``/``nan`` values cannot be drawn; their counts are written under each box.

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

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(2.6, 1.1 * len(names) + 1.4), 3.0))
    rng = np.random.default_rng(seed)
    finite = []
    for i, n in enumerate(names):
        v = np.asarray(groups[n], dtype=float)
        f = v[np.isfinite(v)]
        finite.append(f)
        if f.size:
            ax.scatter(i + 1 + rng.uniform(-0.12, 0.12, f.size), f, s=12, alpha=0.7, color="#1f5fa8", zorder=3,
                       edgecolors="none")
        n_inf, n_nan = int(np.isinf(v).sum()), int(np.isnan(v).sum())
        note = ", ".join(x for x in (f"{n_inf} inf" if n_inf else "", f"{n_nan} undefined" if n_nan else "") if x)
        if note:
            ax.annotate(note, (i + 1, 0), xycoords=("data", "axes fraction"), xytext=(0, -24),
                        textcoords="offset points", ha="center", fontsize=7, color="#a33")
    ax.boxplot([f if f.size else [np.nan] for f in finite], widths=0.5, showfliers=False,
               medianprops={"color": "#d95f02", "linewidth": 2}, boxprops={"color": "#555"},
               whiskerprops={"color": "#555"}, capprops={"color": "#555"})
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels(names, fontsize=8, rotation=20 if max(map(len, names)) > 8 else 0)
    ax.set_title(title + ("  (lower is better)" if lower_is_better else ""), fontsize=9)
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


def paired_figure(values: Mapping[str, Values], *, title: str, lower_is_better: bool = False) -> Any:
    """Per-case values of several runs, one line per case joining its points across runs.

    Parameters
    ----------
    values : mapping of str to array_like, each shape ``(n_cases,)``
        Per-case values of each run, the cases in the same order.
    title : str
        Plot title; ``"(lower is better)"`` is appended when ``lower_is_better``.
    lower_is_better : bool
        The metric's direction (from the catalogue).

    Returns
    -------
    matplotlib.figure.Figure
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
        ax.scatter(np.full(f.size, i), f, s=14, zorder=3, alpha=0.8)
        if f.size:
            ax.plot([i - 0.25, i + 0.25], [np.median(f)] * 2, color="#d95f02", linewidth=2.5, zorder=4)
    ax.set_xticks(x)
    ax.set_xticklabels(names, fontsize=8, rotation=20 if max(map(len, names)) > 8 else 0)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_title(title + ("  (lower is better)" if lower_is_better else "") + " — lines join the same case",
                 fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", alpha=0.3)
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

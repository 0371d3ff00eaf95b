"""The HTML page of one evaluation: summary tables, metric plots, worst-case overlays, confusion matrix.

A renderer: it turns a :class:`~medseg.metrics.evaluation.MetricsTable` and its summary
document into HTML and writes nothing; :mod:`medseg.metrics.report` writes the files. Titles
and directions come from :mod:`medseg.metrics.catalogue`.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medseg.errors import MedsegError
from medseg.io import read_image, read_label
from medseg.metrics.aggregate import worst_cases
from medseg.metrics.catalogue import CONVENTIONS, MAIN_METRICS, heading, lower_is_better
from medseg.metrics.evaluation import OUTSIDE_ROI_WARN, MetricsTable
from medseg.viz import html as H
from medseg.viz.overlay import (
    FN_COLOUR,
    FP_COLOUR,
    TP_COLOUR,
    WRONG_COLOUR,
    error_overlay,
    error_window,
    outline_overlay,
    pick_slice,
    to_display,
)
from medseg.viz.plots import case_panel_figure, confusion_figure, metric_box_figure, png_bytes

__all__ = ["evaluation_html", "summary_rows", "case_panels"]

#: Metrics the report shows after :data:`~medseg.metrics.catalogue.MAIN_METRICS` (when present).
EXTRA_METRICS = ("roc_auc", "pr_auc", "ece", "hausdorff", "balanced_accuracy", "mcc", "volume_similarity")

log = logging.getLogger(__name__)


def _label_name(table: MetricsTable, lab: int | str) -> str:
    try:
        lab = int(lab)
    except (TypeError, ValueError):
        return str(lab)
    name = table.label_names.get(lab, "")
    return f"{lab} {name}".strip() if name else f"label {lab}"


def _stat_cell(s: Mapping[str, Any] | None) -> str:
    if s is None:
        return "—"

    def f(k: str) -> Any:
        v = s.get(k)
        return float("nan") if v is None else (math.inf if v == "inf" else v)

    if s["mode"] == "pooled":
        return f"<b>{H.num(f('value'))}</b> pooled<br><small>case median {H.num(f('case_median'))}</small>"
    notes = []
    if s.get("n_undefined"):
        notes.append(f"{s['n_undefined']} undefined")
    if s.get("n_infinite"):
        notes.append(f"{s['n_infinite']} ∞")
    note = f'<br><small class="bad">{", ".join(notes)}</small>' if notes else ""
    return (f"<b>{H.num(f('mean'))}</b> ± {H.num(f('std'))}<br><small>median {H.num(f('median'))} "
            f"[{H.num(f('q1'))}, {H.num(f('q3'))}] · n={s['n']}</small>{note}")


def _heading(metric: str, table: MetricsTable) -> str:
    """The metric's heading, its lengths in pixels where the files store no pixel size."""
    h = heading(metric)
    return h.replace("(mm³)", "(voxels)").replace("(mm)", "(px)") if table.length_unit == "px" else h


def summary_rows(table: MetricsTable, metrics_doc: Mapping[str, Any],
                 metrics: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per metric, one column per label) of the summary table, as HTML cells.

    Parameters
    ----------
    table : MetricsTable
        The evaluation (for label names).
    metrics_doc : dict
        The ``metrics`` part of the summary document: ``{label: {metric: statistics}}``.
    metrics : sequence of str
        The rows, in order.

    Returns
    -------
    header : list of str
        ``"metric"`` and one name per label.
    rows : list of list of str
        HTML cells: the metric's catalogue heading, then one statistics cell per label.
    """
    labs = [lab for lab in metrics_doc if lab != "all"]
    header = ["metric"] + [_label_name(table, lab) for lab in labs]
    rows = [[H.esc(_heading(m, table))] + [_stat_cell(metrics_doc[lab].get(m)) for lab in labs] for m in metrics]
    return header, rows


def _load_pair(src: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    def load(x: Any, label: bool) -> np.ndarray | None:
        if x is None:
            return None
        if isinstance(x, (str, bytes)) or hasattr(x, "suffix"):
            return (read_label(x) if label else read_image(x)).array
        return np.asarray(getattr(x, "array", x))

    return load(src.get("truth"), True), load(src.get("prediction"), True), load(src.get("image"), False)


def case_panels(table: MetricsTable, case: str, score: float, metric: str = "dice") -> bytes | None:
    """PNG of one case: image, ground truth, prediction and the error map (the slice of most errors in 3D).

    Parameters
    ----------
    table : MetricsTable
        The evaluation; ``table.sources[case]`` says where the arrays are.
    case : str
        The case to draw.
    score : float
        Its mean ``metric``, shown in the title.
    metric : str
        The metric ``score`` is.

    Returns
    -------
    bytes or None
        PNG bytes, or ``None`` when the case's arrays are not available.
    """
    src = table.sources.get(case)
    if not src:
        return None
    try:
        truth, pred, image = _load_pair(src)
    except MedsegError as exc:
        log.warning("case %s: cannot load for the report (%s)", case, exc)
        return None
    where = ""
    if truth.ndim == 3:
        k = pick_slice(truth, pred)
        truth, pred = truth[k], pred[k]
        if image is not None:
            image = image[..., k, :, :] if image.ndim == 4 else image[k]
        where = f", slice {k}"
    try:
        base = to_display(image, truth.shape)
    except MedsegError as exc:
        log.warning("case %s: %s; showing the overlays without the image", case, exc)
        base = to_display(None, truth.shape)
    errors = error_overlay(base, truth, pred)
    panels = [("image" if image is not None else "(no image given)", base),
              ("ground truth", outline_overlay(base, truth)), ("prediction", outline_overlay(base, pred)),
              ("errors", errors)]
    win = error_window(truth, pred)
    if win is not None:
        panels.append((f"errors, zoom (y {win[0].start}-{win[0].stop}, x {win[1].start}-{win[1].stop})",
                       error_overlay(base[win], truth[win], pred[win])))
    fig = case_panel_figure(panels, title=f"{case}: mean {metric} {H.num(score)}{where}",
                            legend=[("true positive", TP_COLOUR), ("false positive", FP_COLOUR),
                                    ("false negative", FN_COLOUR)]
                            + ([("wrong class", WRONG_COLOUR)] if len(table.labels) > 1 else []))
    return png_bytes(fig, dpi=90)


def evaluation_html(table: MetricsTable, doc: Mapping[str, Any], *, title: str, n_worst: int = 5) -> str:
    """The complete report page for one evaluation.

    Parameters
    ----------
    table : MetricsTable
        The evaluation.
    doc : dict
        Its summary document (:func:`medseg.metrics.report.summary_document`).
    title : str
        Page title.
    n_worst : int
        How many of the worst cases by Dice to draw.

    Returns
    -------
    str
        A self-contained HTML page (inline CSS, PNGs as data URIs).
    """
    metrics = [m for m in MAIN_METRICS if m in table.columns]
    extra = [m for m in EXTRA_METRICS if m in table.columns]
    agg = doc["aggregation"]
    inputs = doc.get("inputs") or {}
    parts = [f"<h1>{H.esc(title)}</h1>",
             f'<p class="meta">{doc["n_cases"]} cases · {len(table.labels)} label{"s" if len(table.labels) > 1 else ""}'
             f' · NSD tolerance {H.num(table.tolerance, 2)} {table.length_unit}'
             f' · {"restricted to the ROI" if table.has_roi else "whole image (no ROI)"}'
             f' · medseg {H.esc(doc["medseg_version"])} · {H.esc(doc["created"])}</p>']
    if inputs:
        parts.append(H.table(["input", "path"], [[k, v] for k, v in inputs.items() if v]))
    bad = {k: v for k, v in table.outside_roi.items() if v == v and v > OUTSIDE_ROI_WARN}
    if bad:
        listed = ", ".join(f"{H.esc(k)} ({100 * v:.1f} %)" for k, v in sorted(bad.items(), key=lambda kv: -kv[1])[:10])
        parts.append(f'<div class="note warn"><b>{len(bad)} of {len(table.outside_roi)} cases have more than '
                     f"{100 * OUTSIDE_ROI_WARN:g} % of their predicted foreground outside the region of interest</b>, "
                     f"where no metric on this page scores it: {listed}"
                     f"{' ...' if len(bad) > 10 else ''}. The overlays below show it.</div>")
    parts.append(f'<div class="note"><b>Aggregation: {H.esc(agg)}.</b> {H.esc(doc["aggregation_note"])}. '
                 "Statistics: mean ± sample standard deviation; median [first, third quartile]; n = cases with a "
                 "finite value.</div>")
    parts.append("<h2>Summary</h2>")
    header, rows = summary_rows(table, doc["metrics"], metrics + extra)
    parts.append(H.table(header, rows, raw=True))
    parts.append(f'<div class="note">{H.esc(CONVENTIONS)}</div>')

    parts.append("<h2>Per-case distributions</h2><div class=\"grid\">")
    for m in metrics + [x for x in ("roc_auc", "pr_auc", "ece") if x in extra]:
        groups = {_label_name(table, lab): table.column(m, lab) for lab in table.labels}
        fig = metric_box_figure(groups, title=_heading(m, table), lower_is_better=lower_is_better(m))
        parts.append(H.img(png_bytes(fig), f"{m} per case"))
    parts.append("</div>")

    if len(table.labels) > 1 and table.confusion is not None:
        names = ["background" if x == 0 else _label_name(table, x) for x in table.confusion_labels]
        parts.append("<h2>Confusion matrix</h2>")
        parts.append(H.img(png_bytes(confusion_figure(table.confusion, names)), "confusion matrix"))

    worst = worst_cases(table.rows, n_worst)
    if worst:
        parts.append(f"<h2>The {len(worst)} worst cases by Dice</h2>")
        parts.append('<p class="meta">Outlines: ground truth and prediction per label; errors: '
                     "green = correct, red = false positive, blue = false negative"
                     + (", orange = wrong foreground class" if len(table.labels) > 1 else "") + ".</p>")
        for case, score in worst:
            png = case_panels(table, case, score)
            if png is not None:
                parts.append(H.img(png, f"case {case}"))
            else:
                parts.append(f"<p>{H.esc(case)}: mean Dice {H.num(score)} (no arrays available to draw)</p>")

    parts.append("<h2>All cases</h2><details><summary>show the per-case table "
                 f"({len(table.rows)} rows; also in metrics.csv)</summary><div class=\"scroll\">")
    cols = ["case", "label"] + metrics + [x for x in extra if x != "hausdorff"] + ["empty"]
    parts.append(H.table(cols, [[r["case"], _label_name(table, r["label"])] + [H.num(r.get(c)) for c in cols[2:-1]]
                                + [r.get("empty", "")] for r in table.rows]))
    parts.append("</div></details>")
    return H.page(title, "\n".join(parts))

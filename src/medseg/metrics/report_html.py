"""The HTML page of one evaluation: summary tables, metric plots, probability curves, worst-case overlays.

A renderer: it turns a [`MetricsTable`][medseg.metrics.evaluation.MetricsTable] and its summary
document into HTML and writes nothing; [`medseg.metrics.report`][] writes the files. Titles
and directions come from [`medseg.metrics.catalogue`][]; colours from
[`medseg.viz.overlay`][] (Okabe-Ito, colour-blind safe).

The worst cases are drawn at full resolution, one image pixel per screen pixel where the
page has room (small slices enlarged by whole factors), and open in a zoom viewer on a click.
Volumes show the slice with the most errors among those with ground truth and the three
orthogonal views through the centre of the errors. With probability maps the page draws the
ROC and precision-recall curves and the reliability diagram behind ROC-AUC, PR-AUC and ECE,
pooled over cases and per case, from fixed-size histograms
([`probability_histogram`][medseg.metrics.probability.probability_histogram]), one case in memory at a time.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medseg.errors import MedsegError
from medseg.image import Image
from medseg.io import read_image, read_label
from medseg.metrics._inputs import label_array, roi_array
from medseg.metrics.aggregate import worst_cases
from medseg.metrics.catalogue import CONVENTIONS, MAIN_METRICS, METRICS, heading, lower_is_better
from medseg.metrics.evaluation import OUTSIDE_ROI_WARN, MetricsTable
from medseg.metrics.probability import CURVE_BINS, ProbabilityHistogram, probability_histogram
from medseg.viz import html as H
from medseg.viz.overlay import (
    ERROR_COLOURS,
    OKABE_ITO,
    ROI_COLOUR,
    View,
    anatomical_views,
    centre_slices,
    display_window,
    error_layer,
    error_window,
    outline_colours,
    outline_layer,
    pick_slice,
    rgb,
    to_display,
)
from medseg.viz.plots import (
    BOX_MIN_N,
    confusion_figure,
    metric_box_figure,
    png_bytes,
    probability_curves_figure,
)

__all__ = ["evaluation_html", "summary_rows", "case_html", "probability_curves", "PANEL_WIDTH_2D", "PANEL_WIDTH_3D"]

#: Metrics the report shows after [`MAIN_METRICS`][medseg.metrics.catalogue.MAIN_METRICS] (when present).
EXTRA_METRICS = ("roc_auc", "pr_auc", "ece", "brier", "hausdorff", "balanced_accuracy", "mcc", "volume_similarity")

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


def _bounds(metric: str) -> tuple[float, float] | None:
    """The range a metric can take, for plot axes: ratios [0, 1], MCC [-1, 1], lengths [0, inf)."""
    m = METRICS.get(metric)
    if m is None or metric == "volume_difference":
        return None
    if metric == "mcc":
        return (-1.0, 1.0)
    if m.unit:
        return (0.0, math.inf)
    return (0.0, 1.0)


def _read(x: Any, label: bool) -> Any:
    """An Image from a path (keeping its geometry); Images and arrays as given."""
    if x is None:
        return None
    if isinstance(x, (str, bytes)) or hasattr(x, "suffix"):
        return read_label(x) if label else read_image(x)
    return x


def _geometry(x: Any) -> tuple[tuple[float, ...] | None, np.ndarray | None]:
    """Spacing and direction of an Image (an array has none)."""
    if isinstance(x, Image):
        return tuple(float(v) for v in x.spacing), np.asarray(x.direction)
    return None, None


PANEL_WIDTH_2D = 576
"""Display width of one panel of a 2D image in CSS pixels: two per row (the page's content is
1176 px wide)."""

PANEL_WIDTH_3D = 282
"""Display width of one view of a volume in CSS pixels: four per row (image, truth, prediction,
errors)."""


def _display_scale(w_phys: float, h_phys: float, width: float, height: float) -> float:
    """Screen pixels per (physical) image pixel: an integer up to 8x for small images, 1 or less for large ones."""
    s = min(width / w_phys, height / h_phys)
    return float(min(8, int(s))) if s >= 1 else s


def _metrics_line(table: MetricsTable, case: str) -> str:
    parts = []
    for r in table.rows:
        if r["case"] != case:
            continue
        vals = " · ".join(f"{H.esc(METRICS[m].title)} {H.num(r.get(m))}" for m in ("dice", "hd95", "nsd")
                          if m in r)
        empty = f' <span class="bad">({H.esc(r["empty"])} empty)</span>' if r.get("empty") else ""
        parts.append(f"{H.esc(_label_name(table, r['label']))}: {vals}{empty}")
    return "; ".join(parts)


class _Colours:
    """Outline colours chosen once, from the first case drawn, and kept for every case of the page."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.names: list[str] | None = None

    def pick(self, base: np.ndarray) -> list[str]:
        if self.names is None:
            self.names = outline_colours(base, self.n)
        return self.names


def _outline_caption(what: str, labels: np.ndarray, names: Sequence[str], table: MetricsTable) -> str:
    present = [int(v) for v in np.unique(labels) if v != 0]
    if not present:
        return f"{what} <span class=\"bad\">(empty on this slice)</span>"
    return what + " — " + ", ".join(f"{H.esc(_label_name(table, v))} {names[(v - 1) % len(names)]}" for v in present)


def _slice_panels(uid: str, base: np.ndarray, truth: np.ndarray, pred: np.ndarray, roi: np.ndarray | None,
                  table: MetricsTable, colours: _Colours, *, scale: float, aspect: float, truth_empty: bool,
                  image_given: bool, box: tuple[slice, slice] | None = None) -> tuple[str, list[str]]:
    """The background style and the panels image, ground truth, prediction, errors of one slice."""
    h, w = truth.shape
    dw, dh = w * scale, h * scale * aspect
    k = max(1, min(8, int(scale)))
    names = colours.pick(base)
    common = {"width": dw, "height": dh, "natural_width": w, "background": uid, "pixelated": scale > 1}
    if truth_empty:
        truth_cap = "ground truth <span class=\"bad\">(empty: this case has no ground truth)</span>"
    else:
        truth_cap = _outline_caption("ground truth", truth, names, table)
    panels = [
        H.panel("image" if image_given else "(no image given: grey)", **common),
        H.panel(truth_cap, overlay=H.png_from_array(outline_layer(truth, names, scale=k)),
                alt="ground truth outlines", **common),
        H.panel(_outline_caption("prediction", pred, names, table),
                overlay=H.png_from_array(outline_layer(pred, names, scale=k)), alt="prediction outlines", **common),
        H.panel("errors" + (" — white frame: the zoomed window" if box is not None else ""),
                overlay=H.png_from_array(error_layer(truth, pred, roi=roi, scale=k, box=box)), grey=True,
                alt="error map", **common),
    ]
    return H.background_style(uid, H.png_from_array(base)), panels


def _case_2d(uid: str, truth: np.ndarray, pred: np.ndarray, image: Any, roi: np.ndarray | None,
             spacing: tuple[float, ...] | None, table: MetricsTable, colours: _Colours) -> list[str]:
    h, w = truth.shape
    aspect = spacing[0] / spacing[1] if spacing else 1.0
    scale = _display_scale(w, h * aspect, PANEL_WIDTH_2D, 900)
    base = _base(image, truth.shape)
    win = error_window(truth, pred)
    style, panels = _slice_panels(uid, base, truth, pred, roi, table, colours, scale=scale, aspect=aspect,
                                  truth_empty=not truth.any(), image_given=image is not None, box=win)
    # image | errors, then ground truth | prediction: the error map next to the image it is drawn on
    parts = [style, f'<div class="panels">{panels[0]}{panels[3]}{panels[1]}{panels[2]}</div>']
    if win is not None:
        zs = _display_scale(win[1].stop - win[1].start, (win[0].stop - win[0].start) * aspect, PANEL_WIDTH_2D, 900)
        zb = base[win]
        names = colours.pick(base)
        zt, zp = truth[win], pred[win]
        zr = None if roi is None else roi[win]
        k = max(1, min(8, int(zs)))
        common = {"width": zb.shape[1] * zs, "height": zb.shape[0] * zs * aspect, "natural_width": zb.shape[1],
                  "background": uid + "z", "pixelated": zs > 1}
        where = f"y {win[0].start}–{win[0].stop}, x {win[1].start}–{win[1].stop}"
        parts.append(f'<p class="row-title">The window with the most errors ({where}), enlarged {zs:g}×</p>')
        parts.append(H.background_style(uid + "z", H.png_from_array(zb)))
        parts.append('<div class="panels">'
                     + H.panel(f"image, {where}", **common)
                     + H.panel(f"errors, {where}", overlay=H.png_from_array(error_layer(zt, zp, roi=zr, scale=k)),
                               grey=True, alt="error map, zoomed", **common)
                     + H.panel(_outline_caption(f"ground truth, {where}", zt, names, table),
                               overlay=H.png_from_array(outline_layer(zt, names, scale=k)), alt="truth, zoomed",
                               **common)
                     + H.panel(_outline_caption(f"prediction, {where}", zp, names, table),
                               overlay=H.png_from_array(outline_layer(zp, names, scale=k)), alt="prediction, zoomed",
                               **common)
                     + "</div>")
    return parts


def _base(image: Any, shape: tuple[int, ...], window: tuple[float, float] | None = None) -> np.ndarray:
    try:
        return to_display(image, shape, window=window)
    except MedsegError as exc:
        log.warning("%s; showing the overlays without the image", exc)
        return to_display(None, shape)


def _case_3d(uid: str, truth: np.ndarray, pred: np.ndarray, image: Any, roi: np.ndarray | None,
             spacing: tuple[float, ...] | None, direction: np.ndarray | None, table: MetricsTable,
             colours: _Colours) -> list[str]:
    img = image
    if img is not None and img.shape[-3:] != truth.shape:
        log.warning("the image has shape %s but the labels %s; showing the overlays without the image",
                    img.shape, truth.shape)
        img = None
    window = display_window(img if img is None or img.ndim == 3 else img[0]) if img is not None else None
    sp = spacing or (1.0, 1.0, 1.0)
    views = anatomical_views(direction)
    truth_empty = not truth.any()
    first = views[0]
    k_err = pick_slice(truth, pred, axis=first.axis)
    indices, centre = centre_slices(truth, pred)
    n_err = int((first.take(truth, k_err) != first.take(pred, k_err)).sum())
    rows: list[tuple[str, View, int]] = []
    scope = "" if truth_empty else " among the slices with ground truth"
    if k_err != indices[first.axis]:
        rows.append((f"{first.name} slice {k_err} (of 0–{truth.shape[first.axis] - 1}): the most errors "
                     f"({n_err:,} voxels){scope}", first, k_err))
    for v in views:
        idx = indices[v.axis]
        title = f"{v.name} slice {idx} (of 0–{truth.shape[v.axis] - 1})"
        if v is first and idx == k_err:
            title += f": the most errors ({n_err:,} voxels){scope}, and through the centre of the errors"
        elif idx == centre[v.axis]:
            title += ": through the centre of the errors"
        else:
            title += (f": the nearest slice with ground truth to the centre of the errors (slice {centre[v.axis]} "
                      "has none)")
        rows.append((title, v, idx))
    # one scale for every view of the case (screen pixels per finest voxel size), so that sizes in mm compare
    unit = min(sp)
    scale = min(_display_scale(truth.shape[v.plane_axes()[1]] * sp[v.plane_axes()[1]] / unit,
                               truth.shape[v.plane_axes()[0]] * sp[v.plane_axes()[0]] / unit, PANEL_WIDTH_3D, 360)
                for _, v, _ in rows)
    parts = []
    if truth_empty:
        parts.append('<div class="note warn">The ground truth of this case is empty (no labelled voxel): every '
                     "predicted voxel is a false positive; the slices show where the prediction is.</div>")
    for j, (title, v, idx) in enumerate(rows):
        t2, p2 = v.take(truth, idx), v.take(pred, idx)
        base = _base(None if img is None else v.take(img, idx), t2.shape, window)
        r2 = None if roi is None else v.take(roi, idx)
        r, c = v.plane_axes()
        style, panels = _slice_panels(f"{uid}v{j}", base, t2, p2, r2, table, colours, scale=scale * sp[c] / unit,
                                      aspect=sp[r] / sp[c], truth_empty=truth_empty, image_given=img is not None)
        parts.append(f'<p class="row-title">{H.esc(title)}</p>{style}<div class="panels">{"".join(panels)}</div>')
    return parts


def case_html(table: MetricsTable, case: str, score: float, metric: str = "dice", *, uid: str = "c0",
              colours: Any = None) -> str | None:
    """HTML of one case: image, ground truth, prediction and error map at full resolution (click to zoom).

    2D: the whole image, then the window with the most errors enlarged. 3D: the slice with the
    most errors among those with ground truth, and the axial, coronal and sagittal slices
    through the centre of the errors (each holding ground truth, or the page says the truth is
    empty).

    Parameters
    ----------
    table : MetricsTable
        The evaluation; ``table.sources[case]`` says where the arrays are.
    case : str
        The case to draw.
    score : float
        Its mean ``metric``, shown in the heading.
    metric : str
        The metric ``score`` is.
    uid : str
        A CSS class prefix unique on the page.
    colours : optional
        Outline colours shared by the cases of a page (internal).

    Returns
    -------
    str or None
        HTML, or ``None`` when the case's arrays are not available.
    """
    src = table.sources.get(case)
    if not src:
        return None
    try:
        truth_x = _read(src.get("truth"), True)
        truth, pred = label_array(truth_x, "ground truth"), label_array(_read(src.get("prediction"), True),
                                                                         "prediction")
        image_x = _read(src.get("image"), False)
        image = None if image_x is None else np.asarray(getattr(image_x, "array", image_x))
        roi_x = _read(src.get("roi"), True)
        roi = None if roi_x is None else roi_array(roi_x, truth.shape)
    except MedsegError as exc:
        log.warning("case %s: cannot load for the report (%s)", case, exc)
        return None
    if pred.shape != truth.shape:
        log.warning("case %s: prediction %s and ground truth %s differ in shape; not drawn", case, pred.shape,
                    truth.shape)
        return None
    spacing, direction = _geometry(truth_x)
    colours = colours or _Colours(max(len(table.labels), 1))
    what = METRICS[metric].title if metric in METRICS else metric
    head = (f'<div class="case"><h3>{H.esc(case)} — mean {H.esc(what)} {H.num(score)}</h3>'
            f"<p class=\"meta\">{_metrics_line(table, case)}</p>")
    if truth.ndim == 2:
        body = _case_2d(uid, truth, pred, image, roi, spacing, table, colours)
    else:
        body = _case_3d(uid, truth, pred, image, roi, spacing, direction, table, colours)
    return head + "\n".join(body) + "</div>"


def _legend(table: MetricsTable, outline_names: Sequence[str] | None, *, volumes: bool = False) -> str:
    """The colour legend of the case panels, with the palette names and hex codes."""
    outcomes = ["true positive", "false positive", "false negative"] + (["wrong class"] if len(table.labels) > 1
                                                                        else [])
    items = [H.swatch(rgb(ERROR_COLOURS[k]), f"{k} <small>({ERROR_COLOURS[k]} "
                      f"{OKABE_ITO[ERROR_COLOURS[k]]})</small>") for k in outcomes]
    if table.has_roi:
        items.append(H.swatch(ROI_COLOUR, "predicted outside the ROI, never scored (pale); thin line: ROI border"))
    text = ('<div class="note"><b>Error maps</b> are drawn on the image in grey so that no image colour competes '
            "with them; the colours are from Okabe &amp; Ito's colour-blind-safe palette:"
            f'<div class="legend">{"".join(items)}</div>')
    if outline_names:
        labs = [f"{H.esc(_label_name(table, lab))}: {H.esc(outline_names[(lab - 1) % len(outline_names)])}"
                for lab in table.labels]
        text += ("<b>Outlines</b> (ground truth, prediction): "
                 + '<div class="legend">' + "".join(H.swatch(rgb(outline_names[(lab - 1) % len(outline_names)]), x)
                                                  for lab, x in zip(table.labels, labs))
                 + "</div>from the same palette: the colours that differ most from the colours of these images, "
                   "each with a dark (or light) halo.")
    if volumes:
        text += ("<br><b>Volumes:</b> the slice with the most errors among the slices with ground truth, and the "
                 "axial, coronal and sagittal slices through the centre of the errors (each holding ground truth). "
                 "Views are named and oriented from the files' orientation: radiological convention, the "
                 "patient's left on the right, superior (axial: anterior) up; slice numbers are array indices.")
    text += ("<br><b>Click any image</b> to open it at full resolution (zoom 1:1, 2×, 4× …; outlines on/off; "
             "Esc closes).")
    return text + "</div>"


#: ``{label: (pooled histogram, {case: histogram})}``
Curves = dict[int, tuple[ProbabilityHistogram, dict[str, ProbabilityHistogram]]]


def probability_curves(table: MetricsTable, *, bins: int = CURVE_BINS, calibration_bins: int = 15) -> Curves:
    """Per label, the pooled and the per-case probability histograms of the cases with probability maps.

    Each case's maps are read from ``table.sources``, binned (`probability_histogram`,
    inside the case's ROI like the metrics) and dropped before the next case, so memory stays
    that of one case.

    Parameters
    ----------
    table : MetricsTable
        An evaluation with probabilities.
    bins : int
        Bins of the ROC and PR curves.
    calibration_bins : int
        Bins of the reliability diagram (the ECE's, 15 by default).

    Returns
    -------
    dict
        ``{label: (pooled, {case: histogram})}`` for the labels with any histogram.

    Examples
    --------
    >>> from medseg.metrics.evaluation import evaluate
    >>> t = np.zeros((8, 8), int); t[2:6, 2:6] = 1
    >>> table = evaluate([t, t], [t, t], probabilities=[t * 0.9, t * 0.6 + 0.2])
    >>> pooled, cases = probability_curves(table)[1]
    >>> pooled.n_positive, sorted(cases), round(pooled.roc_auc(), 3)
    (32, ['case_000', 'case_001'], 1.0)
    """
    out: Curves = {}
    for case in table.cases:
        src = table.sources.get(case) or {}
        if src.get("probabilities") is None:
            continue
        try:
            truth = label_array(_read(src.get("truth"), True), "ground truth")
            prob = _read(src["probabilities"], False)
            roi_x = _read(src.get("roi"), True)
            roi = None if roi_x is None else roi_array(roi_x, truth.shape)
            for lab in table.labels:
                h = probability_histogram(prob, truth, label=lab, roi=roi, bins=bins,
                                          calibration_bins=calibration_bins)
                pooled, per_case = out.get(lab, (None, {}))
                per_case[case] = h
                out[lab] = (h if pooled is None else pooled + h, per_case)
        except MedsegError as exc:
            log.warning("case %s: no probability curves (%s)", case, exc)
    return out


def _curves_html(table: MetricsTable) -> list[str]:
    curves = probability_curves(table)
    if not curves:
        return []
    parts = ["<h2>Probability curves</h2>"]
    n = max(len(c) for _, c in curves.values())
    parts.append(f'<div class="note">The curves behind ROC-AUC, PR-AUC and ECE. Thick: pooled over every voxel of the '
                 f"{n} case{'s' if n != 1 else ''} with probability maps (inside the ROI, as the metrics); thin grey: "
                 f"each case. ROC and precision-recall curves threshold the probability at {CURVE_BINS} equal steps "
                 "(their pooled areas weigh every voxel the same, while the tables average the exact per-case "
                 "values); the reliability diagram uses the 15 bins of the ECE, the dotted diagonal is perfect "
                 "calibration and the grey bars underneath count the voxels per bin (log scale). Dotted line of the "
                 "precision-recall curve: the prevalence (a random classifier).</div>")
    for lab, (pooled, per_case) in curves.items():
        cases = [h.curves() for h in per_case.values()] if len(per_case) <= 200 else []
        fig = probability_curves_figure(pooled.curves(), cases, title=_label_name(table, lab))
        parts.append(H.img(png_bytes(fig), f"probability curves of {_label_name(table, lab)}"))
    return parts


def evaluation_html(table: MetricsTable, doc: Mapping[str, Any], *, title: str, n_worst: int = 5,
                    explanations: Mapping[str, str] | None = None) -> str:
    """The complete report page for one evaluation.

    Parameters
    ----------
    table : MetricsTable
        The evaluation.
    doc : dict
        Its summary document ([`medseg.metrics.report.summary_document`][]).
    title : str
        Page title.
    n_worst : int
        How many of the worst cases by Dice to draw.
    explanations : dict, optional
        ``{case: html}`` shown under each worst case (``medseg evaluate --explain``, see
        [`medseg.explain.report.explain_cases`][]).

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

    n_cases = len(table.cases)
    parts.append("<h2>Per-case distributions</h2>")
    parts.append(f'<div class="note">{n_cases} case{"s" if n_cases != 1 else ""}: '
                 + (f"each case is a point with its value (fewer than {BOX_MIN_N} cases: too few for a box plot)"
                    if n_cases < BOX_MIN_N else
                    "boxes show the median and quartiles (whiskers: 1.5 × IQR), points are the cases")
                 + ". Axes of bounded metrics span at least a tenth of their range, so tiny differences look "
                   "tiny.</div><div class=\"grid\">")
    for m in metrics + [x for x in ("roc_auc", "pr_auc", "ece", "brier") if x in extra]:
        groups = {_label_name(table, lab): table.column(m, lab) for lab in table.labels}
        fig = metric_box_figure(groups, title=_heading(m, table), lower_is_better=lower_is_better(m),
                                bounds=_bounds(m))
        parts.append(H.img(png_bytes(fig), f"{m} per case"))
    parts.append("</div>")

    if "roc_auc" in table.columns:
        parts.extend(_curves_html(table))

    if len(table.labels) > 1 and table.confusion is not None:
        names = ["background" if x == 0 else _label_name(table, x) for x in table.confusion_labels]
        parts.append("<h2>Confusion matrix</h2>")
        parts.append(H.img(png_bytes(confusion_figure(table.confusion, names)), "confusion matrix"))

    worst = worst_cases(table.rows, n_worst)
    if worst:
        colours = _Colours(max(len(table.labels), 1))
        drawn = []
        for i, (case, score) in enumerate(worst):
            html = case_html(table, case, score, uid=f"c{i}", colours=colours)
            drawn.append((html if html is not None else
                          f"<p>{H.esc(case)}: mean Dice {H.num(score)} (no arrays available to draw)</p>")
                         + (explanations or {}).get(case, ""))
        parts.append(f"<h2>The {len(worst)} worst cases by Dice</h2>")
        parts.append(_legend(table, colours.names, volumes=any("(of 0–" in h for h in drawn)))
        parts.extend(drawn)

    parts.append("<h2>All cases</h2><details><summary>show the per-case table "
                 f"({len(table.rows)} rows; also in metrics.csv)</summary><div class=\"scroll\">")
    cols = ["case", "label"] + metrics + [x for x in extra if x != "hausdorff"] + ["empty"]
    parts.append(H.table(cols, [[r["case"], _label_name(table, r["label"])] + [H.num(r.get(c)) for c in cols[2:-1]]
                                + [r.get("empty", "")] for r in table.rows]))
    parts.append("</div></details>")
    return H.page(title, "\n".join(parts))

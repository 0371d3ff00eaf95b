"""Evaluate predictions against ground truth: one row per case and label, in a `MetricsTable`.

Works on arrays/Images (one case or lists) and on paths (files or folders, paired like
datasets by [`medseg.io.datasets.pair_files`][]). The CLI ``medseg evaluate`` is a thin
shell over `evaluate` and [`medseg.metrics.report.write_evaluation`][].
"""
from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import ConfigError, InputError, require, suggest
from medseg.image import Image, length_unit
from medseg.io import read_image, read_label
from medseg.io.atomic import atomic_write_text
from medseg.metrics._inputs import pair_arrays, roi_array, spacing_of
from medseg.metrics.aggregate import summarize
from medseg.metrics.catalogue import KEY_COLUMNS, METRICS, NOTE_COLUMNS, columns, names
from medseg.metrics.confusion import confusion_matrix, from_counts, mask_counts
from medseg.metrics.distance import DISTANCE_METRICS, surface_distances
from medseg.metrics.pairing import pair_paths
from medseg.metrics.probability import PROBABILITY_METRICS, brier, ece, pr_auc, roc_auc
from medseg.progress import progress as show_progress

__all__ = ["MetricsTable", "evaluate", "evaluate_case", "outside_fraction", "COLUMNS", "OUTSIDE_ROI_WARN"]

log = logging.getLogger(__name__)

COLUMNS = columns()
"""Columns of ``metrics.csv`` in order, from the catalogue (probability columns are added before
``hausdorff`` when probabilities are given: see [`columns`][medseg.metrics.catalogue.columns])."""
_INT_COLUMNS = ("label", *names("count"))
_STR_COLUMNS = tuple(c for c in KEY_COLUMNS + NOTE_COLUMNS if c not in _INT_COLUMNS)


@dataclass
class MetricsTable:
    """Per-case, per-label metrics plus what is needed to summarise and report them.

    Attributes
    ----------
    rows : list of dict
        One row per case and label with the `COLUMNS` (and ``roc_auc, pr_auc, ece, brier``
        when probabilities were given).
    labels : list of int
        The evaluated labels (background excluded).
    label_names : dict
        ``{label: name}`` where known.
    tolerance : float
        NSD tolerance in mm.
    confusion : numpy.ndarray or None
        Multi-class confusion matrix ``(K, K)`` summed over cases (rows: truth, columns:
        prediction) over `confusion_labels` (background included).
    sources : dict
        ``{case: {"prediction", "truth", "roi", "image", "probabilities": Path | None}}``.
    has_roi : bool
        Whether any case was restricted to a region of interest.
    length_unit : str
        ``"mm"``, or ``"px"`` when no evaluated file stores a pixel size (PNG, GIF, TIFF without
        resolution tags): distances and volumes are then in pixels (see
        [`medseg.image.SPACING_UNKNOWN`][]).
    outside_roi : dict
        ``{case: fraction}``: the share of the case's predicted foreground (every nonzero
        label) that lies outside its region of interest, where it is never scored; only cases
        evaluated with an ROI.

    Examples
    --------
    >>> t = MetricsTable([{"case": "a", "label": 1, "dice": 0.5}, {"case": "b", "label": 1, "dice": 1.0}], [1])
    >>> t.cases, t.column("dice").tolist(), len(t)
    (['a', 'b'], [0.5, 1.0], 2)
    """

    rows: list[dict[str, Any]]
    labels: list[int]
    label_names: dict[int, str] = field(default_factory=dict)
    tolerance: float = 1.0
    confusion: np.ndarray | None = None
    confusion_labels: list[int] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    has_roi: bool = False
    outside_roi: dict[str, float] = field(default_factory=dict)
    length_unit: str = "mm"

    @property
    def columns(self) -> list[str]:
        """The ``metrics.csv`` columns of this table, in order (from the catalogue)."""
        return list(columns(probabilities=any("roc_auc" in r for r in self.rows),
                            roi=any("outside_roi" in r for r in self.rows)))

    @property
    def metrics(self) -> list[str]:
        """Numeric metric columns (the catalogue's scores: no counts, names or volumes)."""
        return [c for c in self.columns if c in METRICS and METRICS[c].is_score]

    @property
    def cases(self) -> list[str]:
        """Case names in order of first appearance."""
        return list(dict.fromkeys(r["case"] for r in self.rows))

    def __len__(self) -> int:
        """Number of rows (cases times labels)."""
        return len(self.rows)

    def column(self, metric: str, label: int | None = None) -> np.ndarray:
        """Values of one metric (for one label), in case order.

        Parameters
        ----------
        metric : str
            A column name.
        label : int, optional
            Only the rows of this label; default all rows.

        Returns
        -------
        numpy.ndarray of float64, shape ``(n_rows,)``
        """
        if metric not in self.columns:
            raise ConfigError(f"unknown metric '{metric}'{suggest(metric, self.columns)}")
        return np.asarray([float(r[metric]) for r in self.rows if label is None or r["label"] == label])

    def summary(self, *, pooled: bool = False) -> dict[str, Any]:
        """Per-label statistics of `metrics` (see [`medseg.metrics.aggregate.summarize`][]).

        Parameters
        ----------
        pooled : bool
            Recompute overlap metrics from counts summed over cases.

        Returns
        -------
        dict
            ``{label: {metric: statistics}}`` (labels as strings, plus ``"all"``).
        """
        return summarize(self.rows, self.metrics, pooled=pooled)

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text with one row per case and label (``nan``/``inf`` written as such).

        Parameters
        ----------
        path : str or Path, optional
            Also write the text there, atomically.

        Returns
        -------
        str
            The CSV text (header `columns`, ``\\n`` line ends, floats rounded to 10 digits).

        Examples
        --------
        >>> text = MetricsTable([{"case": "a", "label": 1, "dice": 0.5, "hd95": float("inf")}], [1]).to_csv()
        >>> header, row = text.splitlines()
        >>> header.startswith("case,label,label_name,dice,iou,"), row.rstrip(",")   # missing values: empty
        (True, 'a,1,,0.5,,,,,,inf')
        """
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = self.columns
        w.writerow(cols)
        for r in self.rows:
            w.writerow([_fmt(r.get(c, "")) for c in cols])
        text = buf.getvalue()
        if path is not None:
            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def read_csv(cls, path: str | Path) -> MetricsTable:
        """Read a ``metrics.csv`` written by `to_csv`.

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        MetricsTable
            Rows with ints for ``label`` and counts, strings for names, floats otherwise.
        """
        p = Path(path)
        try:
            with p.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError as exc:
            raise InputError(f"{p}: cannot read ({exc.strerror})") from exc
        if not rows or "case" not in rows[0] or "label" not in rows[0]:
            raise InputError(f"{p}: not a medseg metrics.csv (expected columns case,label,dice,...)")
        out = []
        for r in rows:
            row: dict[str, Any] = {}
            for k, v in r.items():
                if k in _STR_COLUMNS:
                    row[k] = v
                elif k in _INT_COLUMNS:
                    row[k] = int(v)
                else:
                    try:
                        row[k] = float(v) if v != "" else float("nan")
                    except ValueError as exc:
                        raise InputError(f"{p}: column {k} has a non-number '{v}'") from exc
            out.append(row)
        labels = sorted({r["label"] for r in out})
        names = {r["label"]: r.get("label_name", "") for r in out if r.get("label_name")}
        return cls(out, labels, names)

    def to_pandas(self) -> Any:  # pragma: no cover - optional dependency
        """The rows as a ``pandas.DataFrame`` (needs pandas)."""
        pd = require("pandas", purpose="MetricsTable.to_pandas")
        return pd.DataFrame(self.rows, columns=self.columns)


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(round(v, 10))
    return str(v)


def evaluate_case(pred: Any, truth: Any, *, labels: Sequence[int] | None = None, roi: Any = None,
                  tolerance: float = 1.0, probabilities: Any = None, spacing: Any = None, case: str = "case",
                  label_names: dict[int, str] | None = None, distances: bool = True) -> list[dict[str, Any]]:
    """Metrics of one case, one row per label.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps ``(y, x)`` or ``(z, y, x)`` on the same grid.
    labels : sequence of int, optional
        Labels to score; default every nonzero label present in either map.
    roi : array_like or Image, optional
        Nonzero where voxels count. With an ROI each row also has ``outside_roi``: the
        fraction of the label's predicted voxels outside it (never scored; nan when the
        label is not predicted).
    tolerance : float
        NSD tolerance in mm.
    probabilities : numpy.ndarray or Image, optional
        Foreground probability ``(*spatial)`` or channel-first class probabilities
        ``(C, *spatial)``; adds ``roc_auc, pr_auc, ece, brier``.
    spacing : float or sequence of float, optional
        Voxel size in mm; defaults to the Images' spacing, else 1.
    case : str
        The ``case`` column of the rows.
    label_names : dict, optional
        ``{label: name}`` for the ``label_name`` column.
    distances : bool
        Compute the surface-distance metrics (the slowest part).

    Returns
    -------
    list of dict
        One row per label with the ``metrics.csv`` columns.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([[1, 1, 0, 2], [1, 1, 0, 2]])
    >>> p = np.array([[1, 1, 1, 2], [1, 1, 0, 0]])
    >>> rows = evaluate_case(p, t)
    >>> [(r["label"], r["dice"], r["hausdorff"]) for r in rows]
    [(1, 0.8888888888888888, 1.0), (2, 0.6666666666666666, 1.0)]
    """
    p, t = pair_arrays(pred, truth)
    if labels is None:
        labels = sorted((set(np.unique(p).tolist()) | set(np.unique(t).tolist())) - {0})
    m = roi_array(roi, t.shape)
    sp = spacing_of(pred, truth, spacing=spacing, ndim=t.ndim)
    vox = float(np.prod(sp))
    pin, tin = (p, t) if m is None else (p[m], t[m])
    rows = []
    for lab in labels:
        lab = int(lab)
        counts = from_counts(*mask_counts(pin == lab, tin == lab), voxel_volume=vox)
        row: dict[str, Any] = {"case": str(case), "label": lab, "label_name": (label_names or {}).get(lab, "")}
        row.update(counts)
        if distances:
            d = surface_distances(p, t, label=lab, spacing=sp, roi=m)
            row.update({"hausdorff": d.hausdorff(), "hd95": d.hausdorff(95), "assd": d.assd(),
                        "nsd": d.nsd(tolerance)})
        else:
            row.update({k: float("nan") for k in DISTANCE_METRICS})
        if m is not None:
            row["outside_roi"] = outside_fraction(p == lab, m)
        if probabilities is not None:
            row.update({"roc_auc": roc_auc(probabilities, t, label=lab, roi=m),
                        "pr_auc": pr_auc(probabilities, t, label=lab, roi=m),
                        "ece": ece(probabilities, t, label=lab, roi=m),
                        "brier": brier(probabilities, t, label=lab, roi=m)})
        rows.append(row)
    return rows


def outside_fraction(pred: np.ndarray, roi: np.ndarray) -> float:
    """The fraction of the nonzero voxels of ``pred`` that lie outside ``roi``.

    Parameters
    ----------
    pred : ndarray, any shape
        A prediction (nonzero = foreground).
    roi : ndarray of bool, same shape
        The region of interest.

    Returns
    -------
    float
        In [0, 1]; nan when ``pred`` has no foreground (0/0 is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> outside_fraction(np.array([1, 1, 0, 1]), np.array([True, True, True, False]))
    0.3333333333333333
    """
    fg = np.asarray(pred) != 0
    n = int(np.count_nonzero(fg))
    return float("nan") if n == 0 else float(np.count_nonzero(fg & ~np.asarray(roi, bool))) / n


OUTSIDE_ROI_WARN = 0.01
"""``evaluate`` warns about cases with more than this share of predicted foreground outside the
ROI."""


def _as_list(x: Any) -> list[Any] | None:
    if isinstance(x, (list, tuple)):
        return list(x)
    return None


def evaluate(pred: Any, truth: Any, *, roi: Any = None, labels: Sequence[int] | None = None, tolerance: float = 1.0,
             probabilities: Any = None, images: Any = None, label_names: dict[int, str] | None = None,
             distances: bool = True, progress: bool = False, subset: bool = False) -> MetricsTable:
    """Evaluate one case, a list of cases, or files/folders; return a `MetricsTable`.

    Parameters
    ----------
    pred, truth : array/Image, list of them, or path (file or folder)
        Predictions and ground truth. Folders are paired by case like datasets (same
        stem, leading id, or first number); a ``truth`` folder that is a dataset root
        (``labels/`` or ``labelsTr/``) also supplies ROIs, images and label names.
    roi : like ``truth``, optional
        Region(s) of interest; every metric is restricted to them.
    labels : sequence of int, optional
        Labels to score; default: every nonzero label found in any case. A label absent
        from both maps of a case still gets a row (with ``empty="both"``).
    tolerance : float
        NSD tolerance in mm (default 1).
    probabilities : like ``pred``, optional
        Probability maps for ROC-AUC, PR-AUC and ECE. For folders, ``NAME_prob.*`` files
        inside the prediction folder are found automatically.
    images : like ``truth``, optional
        Images, only used by reports (overlays).
    label_names : dict, optional
        ``{label: name}``; overrides names a dataset root supplies.
    distances : bool
        Compute the surface-distance metrics (the slowest part).
    progress : bool
        Show a progress bar.
    subset : bool
        Paths only: score just the ground-truth cases that have a prediction instead of
        refusing a ground-truth folder with more cases.

    Returns
    -------
    MetricsTable
        One row per case and label, the summed confusion matrix and the case sources.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((8, 8), int); t[2:6, 2:6] = 1
    >>> table = evaluate(t, t)
    >>> table.rows[0]["dice"], table.rows[0]["hd95"]
    (1.0, 0.0)
    """
    if isinstance(pred, (str, Path)) or isinstance(truth, (str, Path)):
        if not (isinstance(pred, (str, Path)) and isinstance(truth, (str, Path))):
            raise InputError("give both the prediction and the ground truth as paths, or both as arrays/Images")
        cases, names = pair_paths(pred, truth, roi=roi, probabilities=probabilities, images=images, subset=subset)
        label_names = {**names, **(label_names or {})}
    else:
        preds, truths = _as_list(pred), _as_list(truth)
        if preds is None:
            preds, truths = [pred], [truth]
        if truths is None or len(preds) != len(truths):
            raise InputError(f"got {len(preds)} predictions but {1 if truths is None else len(truths)} ground truths; "
                             "pass equally long lists")
        n = len(preds)

        def per(x: Any) -> list[Any]:
            lst = _as_list(x)
            if lst is None:
                return [x] * n
            if len(lst) != n:
                raise InputError(f"got {len(lst)} items for {n} cases")
            return lst

        rois, probs, imgs = per(roi), per(probabilities), per(images)
        cases = [{"case": f"case_{i:03d}", "prediction": p, "truth": t, "roi": r, "probabilities": pr, "image": im}
                 for i, (p, t, r, pr, im) in enumerate(zip(preds, truths, rois, probs, imgs))]
    return _run(cases, labels=labels, tolerance=tolerance, label_names=label_names or {}, distances=distances,
                progress=progress)


def _load(x: Any, kind: str) -> Any:
    if isinstance(x, (str, Path)):
        return read_label(x) if kind == "label" else read_image(x)
    return x


def _run(cases: list[dict[str, Any]], *, labels: Sequence[int] | None, tolerance: float,
         label_names: dict[int, str], distances: bool, progress: bool) -> MetricsTable:
    if not np.isfinite(tolerance) or tolerance < 0:
        raise InputError(f"the NSD tolerance must be a non-negative number of mm, got {tolerance}")
    loaded = []
    found: set[int] = set()
    per_case_rows: list[list[dict[str, Any]]] = []
    cms: list[tuple[np.ndarray, list[int]]] = []
    outside: dict[str, float] = {}
    units: set[str] = set()
    for c in show_progress(cases, desc="evaluating", unit="case", enabled=progress):
        pred, truth = _load(c["prediction"], "label"), _load(c["truth"], "label")
        units.add(length_unit(*(x for x in (truth, pred) if isinstance(x, Image))) if isinstance(truth, Image)
                  else "mm")
        where = c["case"]
        try:
            p, t = pair_arrays(pred, truth)
            roi = _load(c.get("roi"), "label")
            probs = _load(c.get("probabilities"), "image")
            present = (set(np.unique(p).tolist()) | set(np.unique(t).tolist())) - {0}
            found |= present
            rows = evaluate_case(pred, truth, labels=sorted(present) if labels is None else labels, roi=roi,
                                 tolerance=tolerance, probabilities=probs, case=where, label_names=label_names,
                                 distances=distances)
            m = roi_array(roi, t.shape)
            cms.append(confusion_matrix(p, t, roi=m))
            c = {**c, "n_voxels": int(t.size if m is None else np.count_nonzero(m))}
            if m is not None:
                outside[where] = outside_fraction(p, m)
        except InputError as exc:
            raise type(exc)(f"case {where}: {exc}") from exc
        per_case_rows.append(rows)
        loaded.append(c)
    all_labels = sorted(found) if labels is None else [int(x) for x in labels]
    if not all_labels:
        raise InputError("every prediction and ground truth is empty (no nonzero label anywhere); "
                         "nothing to evaluate — pass --labels to score a label explicitly")
    out_rows: list[dict[str, Any]] = []
    for c, rows in zip(loaded, per_case_rows):
        have = {r["label"] for r in rows}
        for lab in all_labels:
            if lab not in have:  # absent from both maps of this case: counts are known without reloading
                r = {"case": c["case"], "label": lab, "label_name": label_names.get(lab, ""),
                     **from_counts(0, 0, 0, c["n_voxels"])}
                r.update({k: float("nan") for k in DISTANCE_METRICS})
                if c.get("probabilities") is not None:
                    r.update({k: float("nan") for k in PROBABILITY_METRICS})
                if c["case"] in outside:
                    r["outside_roi"] = float("nan")
                rows.append(r)
        rows.sort(key=lambda r: all_labels.index(r["label"]) if r["label"] in all_labels else 1e9)
        out_rows.extend(r for r in rows if r["label"] in all_labels)
    conf_labels = sorted({0, *all_labels} | {lab for _, ls in cms for lab in ls})
    total = np.zeros((len(conf_labels), len(conf_labels)), np.int64)
    for cm, ls in cms:
        idx = [conf_labels.index(x) for x in ls]
        total[np.ix_(idx, idx)] += cm
    sources = {c["case"]: {k: c.get(k) for k in ("prediction", "truth", "roi", "image", "probabilities")}
               for c in loaded}
    _warn_outside(outside)
    return MetricsTable(out_rows, all_labels, {k: v for k, v in label_names.items() if k in all_labels}, tolerance,
                        total, conf_labels, sources, has_roi=any(c.get("roi") is not None for c in loaded),
                        outside_roi=outside, length_unit="px" if units == {"px"} else "mm")


def _warn_outside(outside: dict[str, float]) -> None:
    """One warning naming the cases whose predicted foreground lies mostly where nothing is scored."""
    bad = {k: v for k, v in outside.items() if np.isfinite(v) and v > OUTSIDE_ROI_WARN}
    if not bad:
        return
    worst = sorted(bad.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} ({100 * v:.1f} %)" for k, v in worst[:5]) + (" ..." if len(worst) > 5 else "")
    log.warning("%d of %d case(s) have more than %g %% of their predicted foreground outside the ROI, where it is "
                "not scored: %s; the metrics do not show it (column outside_roi) — apply the ROI at prediction "
                "(medseg predict --roi) or look at the whole output", len(bad), len(outside),
                100 * OUTSIDE_ROI_WARN, shown)

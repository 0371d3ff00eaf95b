"""Evaluate predictions against ground truth: one row per case and label, in a :class:`MetricsTable`.

Works on arrays/Images (one case or lists) and on paths (files or folders, paired like
datasets by :func:`medseg.io.datasets.pair_files`). The CLI ``medseg evaluate`` is a thin
shell over :func:`evaluate` and :func:`medseg.metrics.report.write_evaluation`.
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

from medseg.errors import InputError
from medseg.metrics._inputs import pair_arrays
from medseg.metrics.aggregate import summarize
from medseg.metrics.confusion import confusion_matrix, from_counts
from medseg.metrics.distance import DISTANCE_METRICS, surface_distances
from medseg.metrics.probability import PROBABILITY_METRICS, ece, pr_auc, roc_auc

__all__ = ["MetricsTable", "evaluate", "evaluate_case", "COLUMNS", "MAIN_METRICS"]

log = logging.getLogger(__name__)

#: Columns of ``metrics.csv`` in order (probability columns are added when probabilities are given).
COLUMNS = ("case", "label", "label_name", "dice", "iou", "precision", "recall", "specificity", "accuracy",
           "hd95", "assd", "nsd", "hausdorff", "balanced_accuracy", "mcc", "volume_difference",
           "volume_similarity", "volume_pred", "volume_truth", "tp", "fp", "fn", "tn", "empty")
#: Metrics shown first in summaries and reports.
MAIN_METRICS = ("dice", "iou", "precision", "recall", "specificity", "accuracy", "hd95", "assd", "nsd")
_INT_COLUMNS = ("label", "tp", "fp", "fn", "tn")
_STR_COLUMNS = ("case", "label_name", "empty")


@dataclass
class MetricsTable:
    """Per-case, per-label metrics plus what is needed to summarise and report them.

    Attributes
    ----------
    rows : list of dict
        One row per case and label with the :data:`COLUMNS` (and ``roc_auc, pr_auc, ece``
        when probabilities were given).
    labels : list of int
        The evaluated labels (background excluded).
    label_names : dict
        ``{label: name}`` where known.
    tolerance : float
        NSD tolerance in mm.
    confusion : numpy.ndarray or None
        Multi-class confusion matrix ``(K, K)`` summed over cases (rows: truth, columns:
        prediction) over :attr:`confusion_labels` (background included).
    sources : dict
        ``{case: {"prediction", "truth", "roi", "image", "probabilities": Path | None}}``.
    """

    rows: list[dict[str, Any]]
    labels: list[int]
    label_names: dict[int, str] = field(default_factory=dict)
    tolerance: float = 1.0
    confusion: np.ndarray | None = None
    confusion_labels: list[int] = field(default_factory=list)
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    has_roi: bool = False

    @property
    def columns(self) -> list[str]:
        cols = list(COLUMNS)
        if any("roc_auc" in r for r in self.rows):
            cols[cols.index("hausdorff"):cols.index("hausdorff")] = list(PROBABILITY_METRICS)
        return cols

    @property
    def metrics(self) -> list[str]:
        """Numeric metric columns (no counts, names or volumes)."""
        return [c for c in self.columns if c not in _STR_COLUMNS + _INT_COLUMNS + ("volume_pred", "volume_truth")]

    @property
    def cases(self) -> list[str]:
        return list(dict.fromkeys(r["case"] for r in self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, metric: str, label: int | None = None) -> np.ndarray:
        """Values of one metric (for one label), in case order."""
        if metric not in self.columns:
            from medseg.errors import ConfigError, suggest

            raise ConfigError(f"unknown metric '{metric}'{suggest(metric, self.columns)}")
        return np.asarray([float(r[metric]) for r in self.rows if label is None or r["label"] == label])

    def summary(self, *, pooled: bool = False) -> dict[str, Any]:
        """Per-label statistics (see :func:`medseg.metrics.aggregate.summarize`)."""
        return summarize(self.rows, self.metrics, pooled=pooled)

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text with one row per case and label (``nan``/``inf`` written as such); written atomically to ``path``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = self.columns
        w.writerow(cols)
        for r in self.rows:
            w.writerow([_fmt(r.get(c, "")) for c in cols])
        text = buf.getvalue()
        if path is not None:
            from medseg.io.atomic import atomic_write_text

            atomic_write_text(Path(path), text)
        return text

    @classmethod
    def read_csv(cls, path: str | Path) -> MetricsTable:
        """Read a ``metrics.csv`` written by :meth:`to_csv`."""
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

    def to_pandas(self):  # pragma: no cover - optional dependency
        """The rows as a ``pandas.DataFrame`` (needs pandas)."""
        from medseg.errors import require

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
                  tolerance: float = 1.0, probabilities: Any = None, spacing=None, case: str = "case",
                  label_names: dict[int, str] | None = None, distances: bool = True) -> list[dict[str, Any]]:
    """Metrics of one case, one row per label.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps ``(y, x)`` or ``(z, y, x)`` on the same grid.
    labels : sequence of int, optional
        Labels to score; default every nonzero label present in either map.
    roi : array_like or Image, optional
        Nonzero where voxels count.
    tolerance : float
        NSD tolerance in mm.
    probabilities : numpy.ndarray or Image, optional
        Foreground probability ``(*spatial)`` or channel-first class probabilities
        ``(C, *spatial)``; adds ``roc_auc, pr_auc, ece``.
    distances : bool
        Compute the surface-distance metrics (the slowest part).
    """
    p, t = pair_arrays(pred, truth)
    if labels is None:
        labels = sorted((set(np.unique(p).tolist()) | set(np.unique(t).tolist())) - {0})
    from medseg.metrics._inputs import roi_array, spacing_of

    m = roi_array(roi, t.shape)
    sp = spacing_of(pred, truth, spacing=spacing, ndim=t.ndim)
    vox = float(np.prod(sp))
    pin, tin = (p, t) if m is None else (p[m], t[m])
    rows = []
    for lab in labels:
        lab = int(lab)
        pm, tm = pin == lab, tin == lab
        tp = int(np.count_nonzero(pm & tm))
        npred, ntrue = int(np.count_nonzero(pm)), int(np.count_nonzero(tm))
        counts = from_counts(tp, npred - tp, ntrue - tp, pin.size - npred - ntrue + tp, voxel_volume=vox)
        row: dict[str, Any] = {"case": str(case), "label": lab, "label_name": (label_names or {}).get(lab, "")}
        row.update(counts)
        if distances:
            d = surface_distances(p, t, label=lab, spacing=sp, roi=m)
            row.update({"hausdorff": d.hausdorff(), "hd95": d.hausdorff(95), "assd": d.assd(), "nsd": d.nsd(tolerance)})
        else:
            row.update({k: float("nan") for k in DISTANCE_METRICS})
        if probabilities is not None:
            row.update({"roc_auc": roc_auc(probabilities, t, label=lab, roi=m),
                        "pr_auc": pr_auc(probabilities, t, label=lab, roi=m),
                        "ece": ece(probabilities, t, label=lab, roi=m)})
        rows.append(row)
    return rows


def _as_list(x: Any) -> list | None:
    if isinstance(x, (list, tuple)):
        return list(x)
    return None


def evaluate(pred: Any, truth: Any, *, roi: Any = None, labels: Sequence[int] | None = None, tolerance: float = 1.0,
             probabilities: Any = None, images: Any = None, label_names: dict[int, str] | None = None,
             distances: bool = True, progress: bool = False, subset: bool = False) -> MetricsTable:
    """Evaluate one case, a list of cases, or files/folders; return a :class:`MetricsTable`.

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
    subset : bool
        Paths only: score just the ground-truth cases that have a prediction instead of
        refusing a ground-truth folder with more cases.

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
        from medseg.metrics.pairing import pair_paths

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

        def per(x):
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
        from medseg.io import read_image, read_label

        return read_label(x) if kind == "label" else read_image(x)
    return x


def _run(cases: list[dict[str, Any]], *, labels, tolerance: float, label_names: dict[int, str], distances: bool,
         progress: bool) -> MetricsTable:
    if not np.isfinite(tolerance) or tolerance < 0:
        raise InputError(f"the NSD tolerance must be a non-negative number of mm, got {tolerance}")
    loaded = []
    found: set[int] = set()
    per_case_rows: list[list[dict[str, Any]]] = []
    cms: list[tuple[np.ndarray, list[int]]] = []
    it = cases
    if progress:
        from tqdm import tqdm

        it = tqdm(cases, desc="evaluating", unit="case")
    for c in it:
        pred, truth = _load(c["prediction"], "label"), _load(c["truth"], "label")
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
            from medseg.metrics._inputs import roi_array

            m = roi_array(roi, t.shape)
            cms.append(confusion_matrix(p, t, roi=m))
            c = {**c, "n_voxels": int(t.size if m is None else np.count_nonzero(m))}
        except InputError as exc:
            raise type(exc)(f"case {where}: {exc}") from exc
        per_case_rows.append(rows)
        loaded.append(c)
    all_labels = sorted(found) if labels is None else [int(x) for x in labels]
    if not all_labels:
        raise InputError("every prediction and ground truth is empty (no nonzero label anywhere); "
                         "nothing to evaluate — pass --labels to score a label explicitly")
    out_rows = []
    for c, rows in zip(loaded, per_case_rows):
        have = {r["label"] for r in rows}
        for lab in all_labels:
            if lab not in have:  # absent from both maps of this case: counts are known without reloading
                r = {"case": c["case"], "label": lab, "label_name": label_names.get(lab, ""),
                     **from_counts(0, 0, 0, c["n_voxels"])}
                r.update({k: float("nan") for k in DISTANCE_METRICS})
                if c.get("probabilities") is not None:
                    r.update({k: float("nan") for k in PROBABILITY_METRICS})
                rows.append(r)
        rows.sort(key=lambda r: all_labels.index(r["label"]) if r["label"] in all_labels else 1e9)
        out_rows.extend(r for r in rows if r["label"] in all_labels)
    conf_labels = sorted({0, *all_labels} | {lab for _, ls in cms for lab in ls})
    total = np.zeros((len(conf_labels), len(conf_labels)), np.int64)
    for cm, ls in cms:
        idx = [conf_labels.index(x) for x in ls]
        total[np.ix_(idx, idx)] += cm
    sources = {c["case"]: {k: c.get(k) for k in ("prediction", "truth", "roi", "image", "probabilities")} for c in loaded}
    return MetricsTable(out_rows, all_labels, {k: v for k, v in label_names.items() if k in all_labels}, tolerance,
                        total, conf_labels, sources, has_roi=any(c.get("roi") is not None for c in loaded))

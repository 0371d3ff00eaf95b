"""Write an evaluation to disk: ``metrics.csv``, ``summary.json`` and a self-contained ``report.html``."""
from __future__ import annotations

import datetime as _dt
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from medseg.metrics.evaluation import MetricsTable

__all__ = ["write_evaluation", "summary_document", "json_safe", "worst_cases", "LOWER_IS_BETTER", "METRIC_TITLES"]

log = logging.getLogger(__name__)

LOWER_IS_BETTER = {"hd95", "assd", "hausdorff", "ece", "volume_difference"}
METRIC_TITLES = {"dice": "Dice", "iou": "IoU (Jaccard)", "precision": "precision", "recall": "recall (sensitivity)",
                 "specificity": "specificity", "accuracy": "accuracy", "hd95": "HD95 (mm)", "assd": "ASSD (mm)",
                 "nsd": "NSD", "hausdorff": "Hausdorff (mm)", "balanced_accuracy": "balanced accuracy",
                 "mcc": "MCC", "volume_difference": "relative volume difference",
                 "volume_similarity": "volume similarity", "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC (AP)",
                 "ece": "ECE"}
CONVENTIONS = (
    "Undefined values (a ratio 0/0, e.g. Dice when both masks are empty) are shown as — and left out of the "
    "statistics, which report how many were left out. When exactly one mask is empty, Hausdorff/HD95/ASSD are ∞ "
    "(kept: a mean becomes ∞, the median stays informative) and NSD is 0. Surfaces are the mask voxels with a "
    "face neighbour outside the mask; distances are Euclidean in mm between voxel centres; HD95 is the larger "
    "of the two directed 95th percentiles (linear interpolation); ASSD is the mean of both directed distance sets; "
    "NSD counts surface voxels within the tolerance. Distances use the files' voxel spacing; formats without one "
    "(PNG, JPEG, most TIFF) count 1 pixel as 1 mm."
)


def json_safe(x: Any) -> Any:
    """Replace ``nan`` by ``None`` and ``±inf`` by the strings ``"inf"``/``"-inf"`` (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return None if math.isnan(f) else ("inf" if f == math.inf else "-inf" if f == -math.inf else f)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def summary_document(table: MetricsTable, *, pooled: bool = False, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The content of ``summary.json``."""
    from medseg._version import __version__

    doc = {
        "format": "medseg-evaluation", "format_version": 1, "medseg_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "aggregation": "pooled" if pooled else "case-averaged",
        "aggregation_note": ("Overlap metrics recomputed from TP/FP/FN/TN summed over cases; distance and probability "
                             "metrics case-averaged") if pooled else "Each statistic is over the per-case values",
        "n_cases": len(table.cases), "labels": table.labels,
        "label_names": {str(k): v for k, v in table.label_names.items()},
        "nsd_tolerance_mm": table.tolerance, "roi": table.has_roi,
        "conventions": CONVENTIONS, "inputs": inputs or {},
        "metrics": table.summary(pooled=pooled),
    }
    if table.confusion is not None and len(table.labels) > 1:
        doc["confusion_matrix"] = {"labels": table.confusion_labels, "rows_truth_columns_prediction": table.confusion}
    return json_safe(doc)


def worst_cases(table: MetricsTable, n: int = 5, metric: str = "dice") -> list[tuple[str, float]]:
    """The ``n`` cases with the lowest mean ``metric`` over labels (undefined cases last)."""
    vals: dict[str, list[float]] = {}
    for r in table.rows:
        vals.setdefault(r["case"], []).append(float(r[metric]))
    scored = []
    for case, v in vals.items():
        a = np.asarray(v)
        scored.append((case, float(np.nanmean(a)) if np.any(~np.isnan(a)) else float("nan")))
    scored.sort(key=lambda cv: (math.isnan(cv[1]), cv[1] if not math.isnan(cv[1]) else 0.0))
    return scored[:n]


def write_evaluation(table: MetricsTable, out: str | Path, *, pooled: bool = False, inputs: dict[str, Any] | None = None,
                     title: str = "Segmentation evaluation", html: bool = True, n_worst: int = 5) -> list[Path]:
    """Write ``metrics.csv``, ``summary.json`` and (``html=True``) ``report.html`` into ``out``.

    Each file is written atomically; nothing else in ``out`` is touched.
    """
    from medseg.config import save_json

    out = Path(out)
    if out.exists() and not out.is_dir():
        from medseg.errors import InputError

        raise InputError(f"{out}: --out must be a folder, but a file of that name exists")
    out.mkdir(parents=True, exist_ok=True)
    doc = summary_document(table, pooled=pooled, inputs=inputs)
    written = [out / "metrics.csv", out / "summary.json"]
    table.to_csv(written[0])
    save_json(doc, written[1])
    if html:
        from medseg.io.atomic import atomic_write_text
        from medseg.metrics.report_html import evaluation_html

        written.append(atomic_write_text(out / "report.html", evaluation_html(table, doc, title=title, n_worst=n_worst)))
    return written

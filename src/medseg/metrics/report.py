"""Write an evaluation to disk: ``metrics.csv``, ``summary.json`` and a self-contained ``report.html``.

Dependencies point one way: this writer uses the data ([`MetricsTable`][medseg.metrics.evaluation.MetricsTable])
and the renderer ([`medseg.metrics.report_html`][]); neither imports it.
"""
from __future__ import annotations

import datetime as _dt
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from medseg._version import __version__
from medseg.config import save_json
from medseg.errors import InputError
from medseg.io.atomic import atomic_write_text
from medseg.metrics.catalogue import CONVENTIONS
from medseg.metrics.evaluation import MetricsTable
from medseg.metrics.report_html import evaluation_html

__all__ = ["write_evaluation", "summary_document", "json_safe"]

log = logging.getLogger(__name__)


def json_safe(x: Any) -> Any:
    """Replace ``nan`` by ``None`` and ``±inf`` by the strings ``"inf"``/``"-inf"`` (strict JSON).

    Parameters
    ----------
    x : Any
        Nested dicts, lists and tuples of numbers, strings, paths and NumPy scalars or arrays.

    Returns
    -------
    Any
        The same structure with JSON-safe leaves (dict keys become strings, tuples lists,
        NumPy integers ints, paths strings).

    Examples
    --------
    >>> json_safe({1: [float("nan"), float("inf"), 0.5], "n": (2,)})
    {'1': [None, 'inf', 0.5], 'n': [2]}
    """
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


def summary_document(table: MetricsTable, *, pooled: bool = False,
                     inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The content of ``summary.json``.

    Parameters
    ----------
    table : MetricsTable
        The evaluation.
    pooled : bool
        Aggregate overlap metrics from counts pooled over cases.
    inputs : dict, optional
        ``{what: path}`` of the evaluated inputs, recorded as given.

    Returns
    -------
    dict
        JSON-safe (see `json_safe`): format and version, aggregation, case and
        label counts, NSD tolerance, the metric conventions, per-label statistics under
        ``metrics`` and, for several labels, the confusion matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg.metrics.evaluation import evaluate
    >>> t = np.zeros((8, 8), int); t[2:6, 2:6] = 1
    >>> doc = summary_document(evaluate([t, t], [t, t]))
    >>> doc["n_cases"], doc["aggregation"], doc["metrics"]["1"]["dice"]["mean"]
    (2, 'case-averaged', 1.0)
    """
    doc = {
        "format": "medseg-evaluation", "format_version": 1, "medseg_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "aggregation": "pooled" if pooled else "case-averaged",
        "aggregation_note": ("Overlap metrics recomputed from TP/FP/FN/TN summed over cases; distance and probability "
                             "metrics case-averaged") if pooled else "Each statistic is over the per-case values",
        "n_cases": len(table.cases), "labels": table.labels,
        "label_names": {str(k): v for k, v in table.label_names.items()},
        "nsd_tolerance_mm": table.tolerance, "roi": table.has_roi,
        "foreground_outside_roi": dict(table.outside_roi),
        "length_unit": table.length_unit,
        "conventions": CONVENTIONS, "inputs": inputs or {},
        "metrics": table.summary(pooled=pooled),
    }
    if table.confusion is not None and len(table.labels) > 1:
        doc["confusion_matrix"] = {"labels": table.confusion_labels, "rows_truth_columns_prediction": table.confusion}
    return json_safe(doc)


def write_evaluation(table: MetricsTable, out: str | Path, *, pooled: bool = False,
                     inputs: dict[str, Any] | None = None, title: str = "Segmentation evaluation", html: bool = True,
                     n_worst: int = 5, explanations: dict[str, str] | None = None) -> list[Path]:
    """Write ``metrics.csv``, ``summary.json`` and (``html=True``) ``report.html`` into ``out``.

    Each file is written atomically; nothing else in ``out`` is touched.

    Parameters
    ----------
    table : MetricsTable
        The evaluation.
    out : str or Path
        Output folder (created).
    pooled : bool
        Aggregate overlap metrics from counts pooled over cases.
    inputs : dict, optional
        ``{what: path}`` of the inputs, recorded in the summary and the report.
    title : str
        Report title.
    html : bool
        Also write ``report.html``.
    n_worst : int
        How many worst cases the report draws.
    explanations : dict, optional
        ``{case: html}`` shown under the worst cases (``medseg evaluate --explain``).

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from medseg.metrics.evaluation import evaluate
    >>> t = np.zeros((8, 8), int); t[2:6, 2:6] = 1
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in write_evaluation(evaluate(t, t), d, html=False)]
    ['metrics.csv', 'summary.json']
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out must be a folder, but a file of that name exists")
    out.mkdir(parents=True, exist_ok=True)
    doc = summary_document(table, pooled=pooled, inputs=inputs)
    written = [out / "metrics.csv", out / "summary.json"]
    table.to_csv(written[0])
    save_json(doc, written[1])
    if html:
        written.append(atomic_write_text(out / "report.html", evaluation_html(table, doc, title=title,
                                                                              n_worst=n_worst,
                                                                              explanations=explanations)))
    return written

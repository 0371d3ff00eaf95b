"""Segmentation metrics: overlap, surface distance and probability metrics, evaluation tables and reports.

Every function takes NumPy arrays or [`Image`][medseg.image.Image] objects (2D or 3D);
distances are in physical units (the Images' spacing, or an explicit ``spacing``). What each
metric is — title, unit, which direction is better — is written once, in
[`METRICS`][medseg.metrics.catalogue.METRICS].

Modules, bottom to top: ``_inputs`` and ``catalogue``; ``confusion`` (the one `dice`),
``distance``, ``probability``; ``aggregate``; ``pairing``; ``evaluation``; the renderers
``report_html`` and ``report_compare``; the writers ``report`` and ``compare``.

Examples
--------
>>> import numpy as np
>>> from medseg.metrics import dice, evaluate
>>> t = np.zeros((8, 8), int); t[2:6, 2:6] = 1
>>> dice(t, t)
1.0
>>> table = evaluate([t], [t])          # one row per case and label
>>> round(table.summary()["1"]["dice"]["mean"], 3)
1.0
"""
from medseg.metrics.catalogue import METRICS, Metric
from medseg.metrics.confusion import OVERLAP_METRICS, confusion_counts, confusion_matrix, dice, from_counts, overlap
from medseg.metrics.distance import DISTANCE_METRICS, assd, distance_metrics, hausdorff, hd95, nsd, surface_distances
from medseg.metrics.evaluation import MetricsTable, evaluate, evaluate_case
from medseg.metrics.probability import PROBABILITY_METRICS, brier, ece, pr_auc, probability_metrics, roc_auc
from medseg.metrics.report import write_evaluation

__all__ = ["METRICS", "Metric", "OVERLAP_METRICS", "DISTANCE_METRICS", "PROBABILITY_METRICS",
           "confusion_counts", "confusion_matrix", "dice", "from_counts", "overlap",
           "assd", "distance_metrics", "hausdorff", "hd95", "nsd", "surface_distances",
           "brier", "ece", "pr_auc", "probability_metrics", "roc_auc",
           "MetricsTable", "evaluate", "evaluate_case", "write_evaluation"]

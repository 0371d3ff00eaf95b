"""Segmentation metrics: overlap, surface distance and probability metrics, evaluation tables and reports.

Every function takes NumPy arrays or :class:`~medseg.image.Image` objects (2D or 3D);
distances are in physical units (the Images' spacing, or an explicit ``spacing``).
"""
from medseg.metrics.confusion import OVERLAP_METRICS, confusion_counts, confusion_matrix, dice, from_counts, overlap
from medseg.metrics.distance import (DISTANCE_METRICS, assd, distance_metrics, hausdorff, hd95, nsd,
                                     surface_distances)
from medseg.metrics.probability import PROBABILITY_METRICS, ece, pr_auc, probability_metrics, roc_auc

__all__ = ["OVERLAP_METRICS", "DISTANCE_METRICS", "confusion_counts", "confusion_matrix", "dice", "from_counts",
           "overlap", "assd", "distance_metrics", "hausdorff", "hd95", "nsd", "surface_distances",
           "PROBABILITY_METRICS", "ece", "pr_auc", "probability_metrics", "roc_auc"]

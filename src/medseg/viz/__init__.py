"""Figures for reports: overlays of segmentations on images, metric plots, HTML assembly.

Everything renders with Matplotlib's Agg backend (no display needed) and returns PNG bytes
or NumPy RGB arrays, so reports stay self-contained.
"""
from medseg.viz.overlay import error_overlay, pick_slice, to_display
from medseg.viz.plots import confusion_figure, metric_box_figure, paired_figure, png_bytes

__all__ = ["error_overlay", "pick_slice", "to_display", "confusion_figure", "metric_box_figure", "paired_figure",
           "png_bytes"]

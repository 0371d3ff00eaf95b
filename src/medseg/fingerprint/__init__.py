"""Dataset fingerprint: what a dataset holds and what is wrong with it.

`fingerprint` reads every case once and summarises it — dimensionality, channels
and modality, shapes and spacings (median/min/max), intensity statistics per channel
(overall and inside the labels), label values with their voxel fractions, ROI coverage —
and collects the problems it finds instead of stopping at the first one. The result is
a plain JSON-serialisable ``dict``; it is what ``medseg inspect`` prints and what the
deep-learning self-configuration reads (nnU-Net style: median spacing, foreground
intensity percentiles for CT-like clipping, median shape for patch sizes).

Problem kinds
-------------
``unreadable`` (a file cannot be read), ``shape_mismatch`` / ``geometry_mismatch``
(label or ROI not on the image grid), ``bad_label_values`` (non-integer, negative,
NaN/Inf labels), ``unexpected_label`` (a value outside ``dataset.json``'s labels),
``too_many_labels`` (a "label map" with very many distinct values: probably an image),
``nonfinite`` (NaN/Inf in an image), ``empty_label`` (no foreground), ``empty_roi``,
``duplicate`` (two cases with identical image data), ``channels_mismatch``,
``mixed_dimensions``, ``constant_image``.

Training calls it with ``strict=True``: the first case training cannot use (unreadable,
no label map, NaN/Inf, mixed dimensionality or channels, non-integer labels) raises an
[`InputError`][medseg.errors.InputError] instead of being listed. The keys the planner reads
([`medseg.train.planner.make_plan`][]) are ``dims``, ``n_cases``, ``shapes``,
``spacings``, ``n_channels``, ``declared_modality``, ``fg_stats``, ``class_counts``,
``label_names`` and ``has_roi``.

`describe_image` describes one image file or DICOM folder instead (``medseg inspect
IMAGE``), and `format_fingerprint` / `format_description` turn either into
the text ``medseg inspect`` prints.
"""
from medseg.fingerprint.dataset import PERCENTILES, fingerprint
from medseg.fingerprint.describe import channel_statistics, describe_image
from medseg.fingerprint.text import format_description, format_fingerprint

__all__ = ["fingerprint", "format_fingerprint", "describe_image", "channel_statistics", "format_description",
           "PERCENTILES"]

"""Regions of interest (a field-of-view mask, a body mask) from training to prediction.

A model trained with an ROI has only been told what happens inside it. What it should do
outside depends on what the ROI meant, which the training labels show:

* ``"background"``: the labels outside the ROI are 0, but for a rim that annotators drew a
  little past the mask (DRIVE: 200 of 2 million pixels outside its field-of-view masks; the
  rule is a foreground density outside at most 1 % of the density inside). The outside is
  background, so training includes it (a small share of the samples, so the ROI still
  focuses training) and the model's predictions are clean without an ROI.
* ``"unknown"``: the labels outside the ROI hold real foreground, so the ROI restricted where
  the labels count and the outside was never learnt: the model needs an ROI at prediction.

Trainers record `roi_record` in ``model.json`` (key ``"roi"``); `apply_roi` and
`apply_roi_probabilities` zero a prediction outside a given ROI.

Examples
--------
>>> import numpy as np
>>> labels = np.array([[0, 1, 0, 0]])
>>> roi = np.array([[1, 1, 1, 0]])
>>> outside_policy([labels], [roi])
'background'
>>> roi_record(outside_policy([labels], [roi]))["needs_roi"]
False
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from medseg.errors import InputError
from medseg.image import Image

__all__ = ["BACKGROUND", "UNKNOWN", "OUTSIDE_SHARE", "RIM_TOLERANCE", "outside_policy", "labelled_outside",
           "policy_from_counts", "roi_record",
           "needs_roi", "apply_roi", "apply_roi_probabilities"]

BACKGROUND = "background"
"""Labels outside the ROI are all 0: the outside is background and is learnt."""
UNKNOWN = "unknown"
"""Labels outside the ROI are not all 0: the outside was not learnt; predictions need an ROI."""
RIM_TOLERANCE = 0.01
"""The outside counts as background while its foreground density is at most this share of the
inside's."""
OUTSIDE_SHARE = 0.1
"""When the outside is background: the extra training pixels a forest draws outside the ROI (as a
share of those it draws inside), and the share of U-Net patches centred anywhere in the image;
enough to learn the outside, small enough that the ROI still focuses training."""


def labelled_outside(labels: np.ndarray, roi: np.ndarray) -> tuple[int, int, int, int]:
    """``(labelled outside, voxels outside, labelled inside, voxels inside)`` of one case.

    "Labelled" counts the nonzero label voxels.

    Parameters
    ----------
    labels : ndarray of int, shape (*spatial)
    roi : ndarray, shape (*spatial)
        Nonzero inside.

    Examples
    --------
    >>> labelled_outside(np.array([1, 0, 2, 0]), np.array([1, 1, 0, 0]))
    (1, 2, 1, 2)
    """
    lab, r = np.asarray(labels), np.asarray(roi) != 0
    if lab.shape != r.shape:
        raise InputError(f"the ROI's shape {r.shape} does not match the label map's {lab.shape}")
    out = ~r
    return (int(np.count_nonzero(lab[out])), int(np.count_nonzero(out)), int(np.count_nonzero(lab[r])),
            int(np.count_nonzero(r)))


def policy_from_counts(labelled_out: int, outside: int, labelled_in: int, inside: int) -> str:
    """`BACKGROUND` or `UNKNOWN` from the summed counts of `labelled_outside`.

    Examples
    --------
    >>> policy_from_counts(200, 2_000_000, 500_000, 4_000_000)   # DRIVE: an annotated rim
    'background'
    >>> policy_from_counts(5000, 10_000, 5000, 10_000)
    'unknown'
    """
    if labelled_out == 0:
        return BACKGROUND
    density_out = labelled_out / max(outside, 1)
    density_in = labelled_in / max(inside, 1)
    return BACKGROUND if density_out <= RIM_TOLERANCE * density_in else UNKNOWN


def outside_policy(labels: Iterable[np.ndarray], rois: Iterable[np.ndarray | None]) -> str | None:
    """What the training ROIs meant: `BACKGROUND`, `UNKNOWN`, or None without ROIs.

    Parameters
    ----------
    labels : iterable of ndarray
        Label maps (0 = background).
    rois : iterable of ndarray or None
        The ROI of each case (None: the case has none).

    Returns
    -------
    str or None
        ``"background"`` when the labels outside the ROIs are 0 but for a rim (see
        `policy_from_counts`), ``"unknown"`` otherwise, None when no case has an ROI.
    """
    counts = np.zeros(4, np.int64)
    cases = 0
    for lab, roi in zip(labels, rois):
        if roi is None:
            continue
        a = np.asarray(lab.array if isinstance(lab, Image) else lab)
        r = np.asarray(roi.array if isinstance(roi, Image) else roi)
        counts += labelled_outside(a, r)
        cases += 1
    if cases == 0:
        return None
    return policy_from_counts(*(int(c) for c in counts))


def roi_record(policy: str | None) -> dict[str, Any]:
    """The ``"roi"`` entry of ``model.json`` for a model trained with ``policy``.

    Examples
    --------
    >>> roi_record("unknown")
    {'trained_with_roi': True, 'outside': 'unknown', 'needs_roi': True}
    >>> roi_record(None)
    {'trained_with_roi': False, 'outside': None, 'needs_roi': False}
    """
    return {"trained_with_roi": policy is not None, "outside": policy, "needs_roi": policy == UNKNOWN}


def needs_roi(info: Mapping[str, Any]) -> bool:
    """Whether the model described by ``info`` (its ``model.json``) needs an ROI to predict.

    Models written before the ``"roi"`` entry existed but trained with an ROI (a plan with
    ``use_roi``) never saw the outside either, so they need one too.
    """
    rec = info.get("roi")
    if isinstance(rec, Mapping):
        return bool(rec.get("needs_roi"))
    plan = info.get("plan")
    return bool(isinstance(plan, Mapping) and plan.get("use_roi") and "roi_outside" not in plan)


def _roi_mask(roi: Image | np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    r = roi.array if isinstance(roi, Image) else np.asarray(roi)
    if isinstance(roi, Image) and roi.has_channels:
        raise InputError(f"the ROI must be a single-channel mask, got shape {r.shape}")
    if r.shape != tuple(shape):
        raise InputError(f"the ROI's shape {r.shape} does not match the {what}'s {tuple(shape)}; "
                         "it must be drawn on the same grid")
    if r.dtype.kind == "f" and not np.all(np.isfinite(r)):
        raise InputError("the ROI contains NaN/Inf values")
    return r != 0


def apply_roi(labels: Image, roi: Image | np.ndarray) -> Image:
    """``labels`` with every voxel outside ``roi`` set to 0 (background).

    Parameters
    ----------
    labels : Image, shape (*spatial)
    roi : Image or ndarray, shape (*spatial)
        Nonzero inside.

    Returns
    -------
    Image
        A new label map, same geometry.

    Examples
    --------
    >>> apply_roi(Image(np.array([[1, 2], [1, 0]])), np.array([[1, 0], [1, 1]])).array.tolist()
    [[1, 0], [1, 0]]
    """
    m = _roi_mask(roi, labels.shape, "prediction")
    out = np.where(m, labels.array, np.zeros((), labels.array.dtype))
    return labels.with_array(out)


def apply_roi_probabilities(prob: Image, roi: Image | np.ndarray) -> Image:
    """Probabilities with background certain outside ``roi``.

    For class probabilities ``(K, *spatial)`` channel 0 (background) becomes 1 outside the
    ROI and every other channel 0; a single foreground-probability map ``(*spatial)``
    becomes 0 there. The maps then agree with `apply_roi` applied to the label map.

    Examples
    --------
    >>> p = Image(np.full((2, 1, 2), 0.5), spacing=(1.0, 1.0))
    >>> apply_roi_probabilities(p, np.array([[1, 0]])).array[:, 0].tolist()
    [[0.5, 1.0], [0.5, 0.0]]
    """
    m = _roi_mask(roi, prob.shape, "probability map")
    a = np.array(prob.array, copy=True)
    out = ~m
    if prob.has_channels:
        a[:, out] = 0
        a[0, out] = 1
    else:
        a[out] = 0
    return prob.with_array(a)

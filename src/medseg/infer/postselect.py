"""Choose post-processing on validation predictions (keep the largest component of a
class only where it raised the mean Dice)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medseg.infer.predictor import postprocess

__all__ = ["select_postprocessing"]


def _dice(p: np.ndarray, t: np.ndarray) -> float:
    d = p.sum() + t.sum()
    return 1.0 if d == 0 else float(2 * (p & t).sum() / d)


def select_postprocessing(pairs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]], n_classes: int,
                          *, min_gain: float = 1e-3) -> dict[str, str]:
    """Rules ``{"class": "largest"}`` from ``(prediction, truth, roi)`` label-map pairs."""
    rules: dict[str, str] = {}
    for c in range(1, n_classes):
        before, after = [], []
        for pred, truth, roi in pairs:
            t = truth == c
            p0 = pred == c
            p1 = postprocess(pred, {str(c): "largest"}) == c
            if roi is not None:
                t, p0, p1 = t & roi, p0 & roi, p1 & roi
            before.append(_dice(p0, t))
            after.append(_dice(p1, t))
        if np.mean(after) > np.mean(before) + min_gain:
            rules[str(c)] = "largest"
    return rules

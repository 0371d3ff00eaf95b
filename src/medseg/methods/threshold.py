"""The plain ``threshold`` method: voxels above (or below) a value are foreground.

It shares the classical methods' base, so it has ``--channel`` and every post-processing
flag (``--min-size``, ``--keep-largest``, ``--fill-holes``, ``--opening``, ``--closing``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medseg.classical.base import ClassicalParams, ClassicalSegmenter
from medseg.errors import ConfigError
from medseg.image import Image
from medseg.methods.base import register_method


@dataclass(frozen=True)
class ThresholdParams(ClassicalParams):
    value: float | None = field(default=None, metadata={
        "help": "threshold; default: midway between the 1st and 99th intensity percentiles"})
    above: bool = field(default=True, metadata={"help": "foreground is above the value (false: below)"})


@register_method
class Threshold(ClassicalSegmenter):
    """Global threshold at a fixed value.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg.image import Image
    >>> Threshold(value=0.5)(Image(np.array([[0.2, 0.7], [0.9, 0.1]]))).array.tolist()
    [[0, 1], [1, 0]]
    """

    name = "threshold"
    family = "classical"
    dims = (2, 3)
    summary = "global threshold at a value (default: midway between the 1st and 99th percentiles)"
    Params = ThresholdParams

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        a = image.array
        t = self.params.value
        if t is None:
            lo, hi = np.percentile(a, [1, 99])
            t = float(lo + hi) / 2.0
        if not np.isfinite(t):
            raise ConfigError(f"threshold value must be finite, got {t}")
        mask = a > t if self.params.above else a < t
        return mask.view(np.uint8), {"threshold": float(t)}

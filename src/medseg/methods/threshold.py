"""The plain ``threshold`` method: voxels above (or below) a value are foreground."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medseg.errors import ConfigError
from medseg.image import Image
from medseg.methods.base import Segmenter, label_like, register_method, single_channel


@dataclass(frozen=True)
class ThresholdParams:
    value: float | None = field(default=None, metadata={
        "help": "threshold; default: midway between the 1st and 99th intensity percentiles"})
    above: bool = field(default=True, metadata={"help": "foreground is above the value (false: below)"})
    channel: int | None = field(default=None, metadata={
        "help": "channel to threshold; default: luminance of RGB or the channel mean"})


@register_method
class Threshold(Segmenter):
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

    def __call__(self, image: Image) -> Image:
        img = single_channel(self.check(image), self.params.channel)
        a = img.array
        t = self.params.value
        if t is None:
            lo, hi = np.percentile(a, [1, 99])
            t = float(lo + hi) / 2.0
        if not np.isfinite(t):
            raise ConfigError(f"threshold value must be finite, got {t}")
        mask = a > t if self.params.above else a < t
        return label_like(image, mask, threshold=float(t))

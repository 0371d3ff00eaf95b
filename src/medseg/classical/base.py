"""The common base of the classical methods: channel choice, post-processing, seeds.

A classical method subclasses `ClassicalSegmenter`, declares a ``Params``
dataclass inheriting `ClassicalParams` (so it gets ``--channel`` and every
post-processing flag of [`PostParams`][medseg.postprocess.PostParams]) and
implements ``segment_array(image) -> (labels, meta)`` on a validated, single-channel
(unless ``multichannel``) image. The base applies post-processing and returns a label
map on the input grid.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from medseg.contract import Segmenter, label_like, single_channel
from medseg.errors import ConfigError, InputError
from medseg.image import Image
from medseg.io import read_label
from medseg.postprocess import PostParams, postprocess

__all__ = [
    "ClassicalParams",
    "ClassicalSegmenter",
    "auto_threshold",
    "is_constant",
    "parse_seeds",
    "read_mask_file",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassicalParams(PostParams):
    """Fields every classical method has: channel choice plus the post-processing flags."""

    channel: int | None = field(default=None, metadata={
        "help": "channel to segment; default: luminance of RGB or the channel mean"})


class ClassicalSegmenter(Segmenter):
    """Base of the classical methods (see the module docstring).

    Parameters
    ----------
    params : Params, dict or None
        The method's parameters (a `ClassicalParams` subclass).
    **kwargs
        Parameters by name, overriding ``params``.
    """

    family: ClassVar[str] = "classical"
    Params: ClassVar[type] = ClassicalParams
    multichannel: ClassVar[bool] = False  # True: segment_array receives every channel

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:  # pragma: no cover
        """The algorithm: labels of a validated image (single-channel unless ``multichannel``).

        Parameters
        ----------
        image : Image
            Shape ``spatial`` (or ``(C, *spatial)`` for ``multichannel`` methods).

        Returns
        -------
        labels : numpy.ndarray
            Integer or boolean labels, shape ``spatial``, before post-processing.
        meta : dict
            What the method found (thresholds, seeds, ...), added to the label map's ``meta``.
        """
        raise NotImplementedError

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """As `Segmenter.describe`, with the method's own parameters listed before the
        shared channel/post-processing ones."""
        info = super().describe()
        shared = {f.name for f in fields(ClassicalParams)}
        info["params"] = ([p for p in info["params"] if p["name"] not in shared]
                          + [p for p in info["params"] if p["name"] in shared])
        return info

    def __call__(self, image: Image) -> Image:
        """Segment ``image`` (shape ``([C,] *spatial)``): the algorithm, then the
        post-processing flags; returns an integer label map ``spatial`` on its grid."""
        img = self.check(image)
        work = img if (self.multichannel and self.params.channel is None) else single_channel(img, self.params.channel)
        labels, meta = self.segment_array(work)
        labels = postprocess(np.asarray(labels), self.params, img.spacing)
        return label_like(img, labels, method=self.name, **meta)


def is_constant(a: np.ndarray) -> bool:
    """True when every element of ``a`` has the same value (nothing to segment).

    Parameters
    ----------
    a : numpy.ndarray
        Any shape.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_constant(np.ones((2, 3))), is_constant(np.eye(2))
    (True, False)
    """
    return bool(a.min() == a.max())


def auto_threshold(a: np.ndarray) -> float:
    """Otsu's threshold of ``a`` (the data-derived default split of many methods).

    Parameters
    ----------
    a : numpy.ndarray
        Intensities, any shape, not constant.

    Returns
    -------
    float

    Examples
    --------
    >>> 0.0 < auto_threshold(np.array([0.0, 0.0, 1.0, 1.0])) < 1.0
    True
    """
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(a))


def parse_seeds(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """Parse ``"y,x;y,x"`` (or ``"z,y,x;..."``) voxel indices and check they lie inside ``shape``.

    Parameters
    ----------
    text : str
        Seeds separated by ``;``, coordinates by ``,``, in NumPy axis order.
    shape : tuple of int
        The image's spatial shape.

    Returns
    -------
    numpy.ndarray
        Integer array ``(n_seeds, ndim)`` in NumPy axis order.

    Examples
    --------
    >>> parse_seeds("10,20; 3,4", (32, 32)).tolist()
    [[10, 20], [3, 4]]
    """
    seeds = []
    for part in text.split(";"):
        if not part.strip():
            continue
        try:
            seed = [int(round(float(v))) for v in part.split(",")]
        except ValueError:
            raise ConfigError(f"seed '{part.strip()}' is not a comma-separated list of indices; "
                              f"write seeds as \"y,x;y,x\" (2D) or \"z,y,x;...\" (3D)") from None
        if len(seed) != len(shape):
            raise ConfigError(f"seed '{part.strip()}' has {len(seed)} coordinates but the image has "
                              f"{len(shape)} axes {shape}; give {len(shape)} indices per seed in NumPy order")
        if any(s < 0 or s >= n for s, n in zip(seed, shape)):
            raise InputError(f"seed {tuple(seed)} lies outside the image of shape {shape}; indices run "
                             f"from 0 to {tuple(n - 1 for n in shape)} in NumPy (z,)y,x order")
        seeds.append(seed)
    if not seeds:
        raise ConfigError(f"no seeds in '{text}'; write seeds as \"y,x;y,x\"")
    return np.asarray(seeds, dtype=int)


def read_mask_file(path: str, image: Image, what: str) -> np.ndarray:
    """Read a label/mask file that must lie on ``image``'s grid.

    Parameters
    ----------
    path : str
        The file (any format [`medseg.io.read_label`][] reads).
    image : Image
        The image it must match, shape ``([C,] *spatial)``.
    what : str
        What the file is (``"seed mask"``), for the messages.

    Returns
    -------
    numpy.ndarray
        The integer array, shape ``spatial``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {p} does not exist")
    lab = read_label(p)
    arr = np.asarray(lab.array)
    if arr.shape != image.shape:
        raise InputError(f"{what} {p} has shape {arr.shape} but the image has shape {image.shape}; "
                         "it must be drawn on the same grid")
    return arr

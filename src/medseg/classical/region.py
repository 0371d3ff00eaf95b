"""Seeded region growing (SimpleITK) and marker-based watershed (scikit-image)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from medseg.classical.base import (
    ClassicalParams,
    ClassicalSegmenter,
    auto_threshold,
    is_constant,
    parse_seeds,
    read_mask_file,
)
from medseg.errors import ConfigError, InputError
from medseg.image import Image

__all__ = ["RegionGrowing", "RegionGrowingParams", "Watershed", "WatershedParams", "auto_seeds"]

log = logging.getLogger(__name__)
_MAX_MASK_SEEDS = 5000


def auto_seeds(a: np.ndarray, spacing, *, above: bool = True, min_fraction: float = 0.1) -> np.ndarray:
    """Automatic seeds: the deepest point of each substantial Otsu component.

    The image is split at Otsu's threshold; every connected component of the foreground
    at least ``min_fraction`` of the largest one contributes the point farthest from its
    border (physical distance).

    Parameters
    ----------
    a : numpy.ndarray
        Intensities ``(y, x)`` or ``(z, y, x)``.
    spacing : sequence of float
        Physical spacing per axis.
    above : bool
        Objects are brighter than the threshold (``False``: darker).
    min_fraction : float
        Smallest component kept, as a fraction of the largest.

    Returns
    -------
    numpy.ndarray
        ``(n_seeds, ndim)`` voxel indices.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> seeds = auto_seeds(img.array, img.spacing)
    >>> bool(truth.array[tuple(seeds.T)].all())
    True
    """
    t = auto_threshold(a)
    fg = a > t if above else a <= t
    lab, n = ndi.label(fg)
    if n == 0:
        raise InputError("could not place automatic seeds: the image has no foreground above Otsu's "
                         "threshold; give --seeds or --seed-mask")
    sizes = np.bincount(lab.ravel())[1:]
    keep = np.flatnonzero(sizes >= min_fraction * sizes.max()) + 1
    dist = ndi.distance_transform_edt(fg, sampling=spacing)
    idx = ndi.maximum_position(dist, lab, keep)
    return np.asarray(idx, dtype=int).reshape(len(keep), a.ndim)


@dataclass(frozen=True)
class RegionGrowingParams(ClassicalParams):
    """Parameters of ``region-growing``."""

    seeds: str | None = field(default=None, metadata={
        "help": "seed voxel indices \"y,x;y,x\" (3D: \"z,y,x;...\"); default: automatic"})
    seed_mask: str | None = field(default=None, metadata={
        "help": "a mask file on the image grid whose non-zero voxels are seeds"})
    mode: Literal["auto", "confidence", "connected"] = field(default="auto", metadata={
        "help": "confidence: grow within mean +- multiplier*std of the region; connected: within [lower, upper]; "
                "auto: confidence from given seeds, connected (Otsu bounds) from automatic seeds"})
    lower: float | None = field(default=None, metadata={
        "help": "connected mode: lower intensity bound; default: Otsu's threshold or the image minimum"})
    upper: float | None = field(default=None, metadata={
        "help": "connected mode: upper intensity bound; default: the image maximum or Otsu's threshold"})
    multiplier: float = field(default=2.5, metadata={"help": "confidence mode: width of the interval in stds"})
    iterations: int = field(default=4, metadata={"help": "confidence mode: re-estimation rounds"})
    radius: int = field(default=1, metadata={"help": "confidence mode: seed neighbourhood radius in voxels"})
    above: bool = field(default=True, metadata={"help": "automatic seeds in bright objects (false: dark)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seeds and self.seed_mask:
            raise ConfigError("give --seeds or --seed-mask, not both")
        if self.multiplier <= 0 or self.iterations < 0 or self.radius < 0:
            raise ConfigError("--multiplier must be > 0, --iterations and --radius >= 0")


class RegionGrowing(ClassicalSegmenter):
    """Grow regions from seeds: ITK's confidence-connected or connected-threshold filter.

    Parameters
    ----------
    params : RegionGrowingParams or dict, optional
        ``seeds`` or ``seed_mask``, ``mode``, bounds, ``multiplier``,
        ``iterations``, ``radius``, ``above`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = RegionGrowing()(img)
    >>> bool((labels.array == truth.array).mean() > 0.95)
    True
    """

    name = "region-growing"
    dims = (2, 3)
    summary = "seeded region growing (confidence-connected or connected-threshold); automatic seeds"
    Params = RegionGrowingParams

    def seed_points(self, image: Image) -> np.ndarray:
        """Seed voxel indices ``(n_seeds, ndim)``: given, from the seed mask, or automatic."""
        p = self.params
        if p.seeds:
            return parse_seeds(p.seeds, image.shape)
        if p.seed_mask:
            m = read_mask_file(p.seed_mask, image, "seed mask")
            pts = np.argwhere(m != 0)
            if len(pts) == 0:
                raise InputError(f"seed mask {p.seed_mask} is empty; mark at least one seed voxel")
            if len(pts) > _MAX_MASK_SEEDS:
                pts = pts[np.linspace(0, len(pts) - 1, _MAX_MASK_SEEDS).astype(int)]
            return pts
        return auto_seeds(image.array, image.spacing, above=p.above)

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """The grown region ``spatial`` of ``image``, the seeds, mode and bounds used."""
        import SimpleITK as sitk

        p = self.params
        a = np.asarray(image.array, dtype=np.float32)  # no copy when already float32
        if not (p.seeds or p.seed_mask) and is_constant(a):
            log.warning("region-growing: the image is constant; no automatic seeds")
            return np.zeros(a.shape, np.uint8), {}
        seeds = self.seed_points(image)  # (a constant image with given seeds is one flat region)
        img = sitk.GetImageFromArray(a)
        img.SetSpacing(tuple(float(s) for s in image.spacing[::-1]))
        seed_list = [tuple(int(v) for v in s[::-1]) for s in seeds]
        meta: dict[str, Any] = {"seeds": seeds.tolist()[:50]}
        mode = p.mode if p.mode != "auto" else ("confidence" if (p.seeds or p.seed_mask) else "connected")
        meta["mode"] = mode
        if mode == "confidence":
            out = sitk.ConfidenceConnected(img, seedList=seed_list, numberOfIterations=p.iterations,
                                           multiplier=p.multiplier, initialNeighborhoodRadius=p.radius,
                                           replaceValue=1)
        else:
            lower, upper = p.lower, p.upper
            if lower is None or upper is None:
                t = auto_threshold(a)
                bright = float(np.mean(a[tuple(seeds.T)])) > t
                lower = lower if lower is not None else (t if bright else float(a.min()))
                upper = upper if upper is not None else (float(a.max()) if bright else t)
            if lower > upper:
                raise ConfigError(f"--lower {lower} is above --upper {upper}")
            out = sitk.ConnectedThreshold(img, seedList=seed_list, lower=float(lower), upper=float(upper),
                                          replaceValue=1)
            meta.update(lower=float(lower), upper=float(upper))
        return sitk.GetArrayFromImage(out).astype(np.uint8, copy=False), meta


@dataclass(frozen=True)
class WatershedParams(ClassicalParams):
    """Parameters of ``watershed``."""

    markers: str | None = field(default=None, metadata={
        "help": "marker label file on the image grid (0 = unknown); default: automatic markers"})
    min_distance: float | None = field(default=None, metadata={
        "help": "automatic markers: minimum distance between object centres in mm; "
                "default: half the largest object radius"})
    compactness: float = field(default=0.0, metadata={"help": "compact watershed parameter (0: classic)"})
    above: bool = field(default=True, metadata={"help": "objects are bright (false: dark)"})


class Watershed(ClassicalSegmenter):
    """Marker-based watershed.

    With ``--markers``: flood the gradient magnitude from the given markers (output
    labels are the marker labels). Without: split Otsu's foreground into objects by
    flooding the inverted distance map from its maxima (output: one label per object).

    Parameters
    ----------
    params : WatershedParams or dict, optional
        ``markers``, ``min_distance``, ``compactness``, ``above`` and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> labels = Watershed()(img)
    >>> labels.meta["objects"] >= 3, bool(((labels.array > 0) == truth.array).mean() > 0.95)
    (True, True)
    """

    name = "watershed"
    dims = (2, 3)
    summary = "marker-based watershed (given markers, or automatic: distance-map maxima of the foreground)"
    Params = WatershedParams

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Object labels ``spatial`` of ``image`` (or the marker labels), the threshold and count."""
        from skimage.segmentation import watershed

        p = self.params
        a = np.asarray(image.array, dtype=np.float32)  # no copy when already float32
        sp = np.asarray(image.spacing)
        if p.markers:
            markers = read_mask_file(p.markers, image, "marker file").astype(np.int32)
            if not markers.any():
                raise InputError(f"marker file {p.markers} has no markers (all zero)")
            from skimage.filters import sobel

            grad = sobel(ndi.gaussian_filter(a, sp.min() / sp))
            return watershed(grad, markers, compactness=p.compactness), {}
        if is_constant(a):
            return np.zeros(a.shape, np.uint8), {}
        from skimage.feature import peak_local_max

        t = auto_threshold(a)
        fg = a > t if p.above else a <= t
        dist = ndi.distance_transform_edt(fg, sampling=sp)
        md = p.min_distance if p.min_distance is not None else 0.5 * float(dist.max())
        md_vox = max(1, int(round(md / sp.min())))
        comps, _ = ndi.label(fg)
        peaks = peak_local_max(ndi.gaussian_filter(dist, sp.min() / sp), min_distance=md_vox, labels=comps,
                               exclude_border=False)
        markers = np.zeros(a.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        # every component gets at least one marker
        missing = np.setdiff1d(np.unique(comps[fg]), np.unique(comps[markers > 0]))
        if missing.size:
            extra = ndi.maximum_position(dist, comps, missing)
            for k, pos in enumerate(extra):
                markers[tuple(pos)] = len(peaks) + 1 + k
        labels = watershed(-dist, markers, mask=fg, compactness=p.compactness)
        return labels, {"threshold": t, "objects": int(labels.max())}

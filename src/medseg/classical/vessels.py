"""Vesselness filtering (Sato/Frangi/Meijering from scikit-image, spacing-aware) followed
by a hysteresis threshold, and automatic field-of-view detection for fundus photographs."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi

from medseg.classical.base import (
    ClassicalParams,
    ClassicalSegmenter,
    auto_threshold,
    read_mask_file,
)
from medseg.errors import ConfigError, InputError
from medseg.image import Image
from medseg.postprocess import ellipsoid_footprint, keep_largest

__all__ = ["VESSEL_RADIUS_FRACTION", "Vesselness", "VesselnessParams", "default_sigmas", "fov_mask", "vesselness"]

log = logging.getLogger(__name__)

#: Widest vessel radius as a fraction of the field-of-view diameter: retinal vessels near the
#: optic disc are ~125 um wide in a ~12 mm (45 degree) field, i.e. a radius of ~1/190.
VESSEL_RADIUS_FRACTION = 1.0 / 190.0


def fov_mask(a: np.ndarray) -> np.ndarray:
    """Field of view of a photograph with a dark surround (fundus, endoscopy).

    Otsu's threshold of the smoothed intensity, largest component, holes filled.

    Parameters
    ----------
    a : numpy.ndarray
        ``(H, W)`` intensity (e.g. the red channel or the luminance).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` boolean mask.
    """
    sm = ndi.gaussian_filter(a.astype(np.float32), 2.0)
    if sm.min() == sm.max():
        return np.ones(a.shape, bool)
    lo = float(np.percentile(sm, 1))
    t = min(auto_threshold(sm), lo + 0.25 * (float(np.percentile(sm, 75)) - lo))
    return ndi.binary_fill_holes(keep_largest(sm > t, 1))


def default_sigmas(diameter_mm: float, spacing: Sequence[float], n: int = 3) -> tuple[float, ...]:
    """Scales (mm) from the finest spacing to ``VESSEL_RADIUS_FRACTION`` of a diameter.

    Parameters
    ----------
    diameter_mm : float
        Diameter of the field of view (or image) in mm.
    spacing : sequence of float
        Physical spacing per axis.
    n : int
        Number of scales (geometric steps).

    Returns
    -------
    tuple of float
        Ascending scales in mm (one when the range is empty).

    Examples
    --------
    >>> default_sigmas(760.0, (1.0, 1.0))
    (1.0, 2.0, 4.0)
    """
    lo = float(min(spacing))
    hi = max(lo, diameter_mm * VESSEL_RADIUS_FRACTION)
    return tuple(float(s) for s in np.geomspace(lo, hi, n)) if hi > lo else (lo,)


def vesselness(a: np.ndarray, spacing: Sequence[float], sigmas: Sequence[float], *,
               filter: str = "sato", dark: bool = True) -> np.ndarray:
    """Multi-scale tubularity of ``a`` with scales ``sigmas`` in mm.

    scikit-image's filters assume isotropic pixels; an anisotropic image is resampled to
    its finest spacing, filtered and resampled back.

    Parameters
    ----------
    a : numpy.ndarray
        ``(y, x)`` or ``(z, y, x)`` intensities.
    spacing : sequence of float
        Physical spacing per axis.
    sigmas : sequence of float
        Scales in mm (about the vessel radius).
    filter : {"sato", "frangi", "meijering"}
        The scikit-image tubularity filter.
    dark : bool
        Vessels darker than the background (fundus) rather than brighter (angiography).

    Returns
    -------
    numpy.ndarray
        Float32 response, same shape as ``a``.
    """
    from skimage import filters

    fn = {"sato": filters.sato, "frangi": filters.frangi, "meijering": filters.meijering}[filter]
    sp = np.asarray(spacing, float)
    step = float(sp.min())
    zoom = sp / step
    x = a.astype(np.float32)
    if not np.allclose(zoom, 1):
        x = ndi.zoom(x, zoom, order=1)
    kw = {"mode": "reflect"}
    r = fn(x, sigmas=[s / step for s in sigmas], black_ridges=dark, **kw).astype(np.float32)
    if not np.allclose(zoom, 1):
        r = ndi.zoom(r, [n / m for n, m in zip(a.shape, r.shape)], order=1)[tuple(slice(0, n) for n in a.shape)]
    return r


@dataclass(frozen=True)
class VesselnessParams(ClassicalParams):
    """Parameters of ``vesselness``."""

    filter: Literal["sato", "frangi", "meijering"] = field(default="sato", metadata={
        "help": "tubularity filter (scikit-image)"})
    ridges: Literal["dark", "bright"] = field(default="dark", metadata={
        "help": "vessels darker (fundus photos) or brighter (angiography) than the background"})
    sigmas: tuple[float, ...] | None = field(default=None, metadata={
        "help": "scales in mm, e.g. 1,2,3; default: from the finest spacing to 1/190 of the "
                "field-of-view (or image) diameter"})
    fov: bool = field(default=False, metadata={
        "help": "detect the field of view (bright disc on a dark surround, 2D) and segment only inside it"})
    roi: str | None = field(default=None, metadata={"help": "mask file on the image grid: segment only inside"})
    rule: Literal["otsu", "triangle", "li"] = field(default="otsu", metadata={
        "help": "histogram rule giving the default high threshold from the response inside the ROI"})
    high: float | None = field(default=None, metadata={
        "help": "hysteresis high threshold on the response; default: from --rule"})
    low: float | None = field(default=None, metadata={
        "help": "hysteresis low threshold; default: half of the high threshold"})


class Vesselness(ClassicalSegmenter):
    """Vesselness filter + hysteresis threshold (inside an optional field of view).

    Parameters
    ----------
    params : VesselnessParams or dict, optional
        ``filter``, ``ridges``, ``sigmas``, ``fov`` or ``roi``, ``rule``, ``high``, ``low``
        and the shared channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import fundus_phantom
    >>> rgb, vessels, fov = fundus_phantom((96, 96), seed=0)
    >>> labels = Vesselness(fov=True, channel=1)(rgb)
    >>> found, true = labels.array > 0, vessels.array > 0
    >>> bool(2 * (found & true).sum() / (found.sum() + true.sum()) > 0.7)
    True
    """

    name = "vesselness"
    dims = (2, 3)
    summary = "vesselness filter (Sato/Frangi/Meijering, scales in mm) + hysteresis threshold"
    Params = VesselnessParams

    def region(self, image: Image) -> np.ndarray | None:
        """The boolean region ``spatial`` to segment in (``--roi`` or ``--fov``), or ``None``."""
        p = self.params
        if p.roi:
            return read_mask_file(p.roi, image, "ROI mask") != 0
        if p.fov:
            if image.ndim != 2:
                raise InputError("--fov detects a 2D photograph's field of view; give --roi MASK for 3D images")
            return fov_mask(image.array)
        return None

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Vessel mask ``spatial`` of ``image``, the scales and hysteresis thresholds used."""
        from skimage.filters import apply_hysteresis_threshold

        p = self.params
        a = np.asarray(image.array, dtype=np.float32)  # no copy when already float32
        region = self.region(image)
        if region is not None and not region.any():
            raise InputError("the region of interest is empty; check --roi or the image's field of view")
        sp = np.asarray(image.spacing)
        if p.sigmas is not None:
            sigmas = tuple(p.sigmas)
            if not sigmas or min(sigmas) <= 0:
                raise ConfigError(f"--sigmas must be positive scales in mm, got {p.sigmas}")
        else:
            if region is not None:
                extent = np.ptp(np.argwhere(region), axis=0) + 1
                diameter = float(np.min(extent * sp))
            else:
                diameter = float(np.min(np.asarray(image.shape) * sp))
            sigmas = default_sigmas(diameter, sp)
        core = region
        if region is not None:
            # the FOV border is a strong edge with a blurred dark rim: fill everything outside the
            # FOV shrunk by the filter's reach (2 x the largest scale) with the nearest inside values
            fp = ellipsoid_footprint(2.0 * max(sigmas), sp)
            core = ndi.binary_erosion(region, fp)
            if not core.any():
                core = region
            idx = ndi.distance_transform_edt(~core, return_distances=False, return_indices=True)
            a = a[tuple(idx)]
        r = vesselness(a, sp, sigmas, filter=p.filter, dark=p.ridges == "dark")
        inside = r[core] if core is not None else r
        if inside.max() <= inside.min():
            return np.zeros(a.shape, np.uint8), {"sigmas": list(sigmas)}
        if p.high is not None:
            high = p.high
        elif p.rule == "otsu":
            high = auto_threshold(inside)
        else:
            from skimage import filters

            high = float(filters.threshold_triangle(inside) if p.rule == "triangle" else filters.threshold_li(inside))
        low = p.low if p.low is not None else 0.5 * high
        if low > high:
            raise ConfigError(f"--low {low} is above --high {high}")
        mask = apply_hysteresis_threshold(r, low, high)
        if region is not None:
            mask &= region
        return mask.view(np.uint8), {"sigmas": list(sigmas), "high": float(high), "low": float(low)}

"""Brain extraction (skull stripping) of T1-weighted head MR, made for thick slices.

On T1 the brain (grey and white matter) is a mid-grey mass that a dark band (cerebrospinal
fluid and bone) separates from the scalp, whose fat is brighter than white matter. Clinical
series have thick slices (5-7 mm) whose partial volume bridges that band here and there, and
blurs the scalp into mid-grey where the slices cut it obliquely (skull base, vertex). So
`SkullStrip` works slice by slice along the thickest axis:

1. **head**: Otsu's split of the log intensities (air against tissue), holes filled per
   slice, the largest connected component;
2. **brain intensity window** from the data: the histogram mode ``m`` of the head voxels
   deeper than a quarter of the largest in-plane depth (brain, whatever the scalp), the low
   bound Otsu's split of the head voxels darker than ``m`` (CSF and bone below it), the high
   bound ``m`` plus three upper half-widths of the mode's peak (scalp fat above it);
3. **seed slice**: the slice whose window mask, eroded in-plane by ``bridge`` mm, holds the
   most deep voxels; the brain is its eroded component holding the most, grown back by
   ``bridge`` mm inside the window;
4. **propagation** to both ends: in each next slice the window follows the slice-to-slice
   intensity drift (bias field), the eroded components kept are those lying at least half
   inside the previous slice's brain, grown back by ``bridge`` mm and confined to the previous
   brain dilated by ``margin`` mm (the brain narrows away from its widest slice, the scalp
   does not) and to voxels deeper under the skin, in 3D (`head_depth`), than
   ``min_depth``: the scalp and skull thickness measured on the seed slice, where the
   surface is cut square (near the vertex the slices cut the scalp obliquely and it looks
   thick in-plane);
5. per slice, brighter blobs (enhancing lesions, vessels) bordered mostly by brain are added,
   then a closing of ``bridge`` mm and hole filling (ventricles, lesions).

The result is validated without ground truth on four real T1 series in
``benchmarks/bench_recipes.py`` (tumour coverage, nothing within 5 mm of the skin, volume);
the skull base, where thick slices blur bone into the neighbouring tissue, is where it is
least sure. T2-weighted and FLAIR images (bright CSF) are not what it is made for.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from medseg.classical.base import ClassicalParams, ClassicalSegmenter, is_constant
from medseg.errors import ConfigError
from medseg.image import Image
from medseg.postprocess import ellipsoid_footprint

__all__ = ["SkullStrip", "SkullStripParams", "brain_window", "head_depth", "head_mask"]

log = logging.getLogger(__name__)

_HALF_WIDTH = 1.1774  # half width at half maximum of a Gaussian, in standard deviations
_SQUARE = np.ones((3, 3), bool)


@dataclass(frozen=True)
class SkullStripParams(ClassicalParams):
    """Parameters of ``skull-strip`` (every default comes from the image)."""

    bridge: float = field(default=3.0, metadata={
        "help": "radius in mm of the in-plane erosion that cuts partial-volume bridges between brain and scalp "
                "(grown back afterwards); also the final closing radius"})
    low: float | None = field(default=None, metadata={
        "help": "lowest brain intensity on the seed slice; default: Otsu's split of the head voxels darker than "
                "the brain's histogram mode"})
    high: float | None = field(default=None, metadata={
        "help": "highest brain intensity on the seed slice; default: the brain's histogram mode plus three "
                "upper half-widths of its peak"})
    margin: float | None = field(default=None, metadata={
        "help": "mm by which a slice's brain may reach beyond the previous slice's; default: a quarter of the "
                "slice spacing, at least one pixel"})
    min_depth: float | None = field(default=None, metadata={
        "help": "mm under the skin (in 3D) above which no voxel is brain; default: the 10th percentile of the "
                "depth of the brain's edge on the seed slice (scalp and skull thickness)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not np.isfinite(self.bridge) or self.bridge <= 0:
            raise ConfigError(f"--bridge must be a radius > 0 mm, got {self.bridge}")
        for name in ("margin", "min_depth"):
            v = getattr(self, name)
            if v is not None and (not np.isfinite(v) or v < 0):
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0 mm, got {v}")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ConfigError(f"--low ({self.low}) must be below --high ({self.high})")


def _otsu(values: np.ndarray, default: float) -> float:
    from skimage.filters import threshold_otsu

    if values.size < 2 or is_constant(values):
        return default
    return float(threshold_otsu(values))


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    return np.stack([ndi.binary_fill_holes(s) for s in mask])


def head_mask(array: np.ndarray) -> tuple[np.ndarray, float]:
    """The head of a ``(slice, y, x)`` volume: tissue against air, filled, largest component.

    The threshold is Otsu's split of ``log(1 + a - min(a))``: on the log scale, air noise and
    tissue form two clear modes even when bright scalp fat dominates the linear histogram.

    Parameters
    ----------
    array : numpy.ndarray
        Intensities, shape ``(slices, y, x)``.

    Returns
    -------
    mask : numpy.ndarray
        Boolean, same shape; holes filled in every slice.
    threshold : float
        The air/tissue threshold on the input's scale.

    Examples
    --------
    >>> a = np.zeros((3, 9, 9)); a[:, 2:7, 2:7] = 100.0; a[:, 4, 4] = 0.0  # a hollow box
    >>> mask, t = head_mask(a)
    >>> int(mask.sum()), bool(mask[1, 4, 4]), 0 < t < 100
    (75, True, True)
    """
    a = np.asarray(array, dtype=np.float32)
    lo = float(a.min())
    logs = np.log1p(a - lo)
    t = float(np.expm1(_otsu(logs.ravel(), float(logs.mean()))) + lo)
    head = _fill_slices(a > t)
    lbl, n = ndi.label(head)
    if n > 1:
        sizes = np.bincount(lbl.ravel())
        sizes[0] = 0
        head = lbl == int(sizes.argmax())
    return _fill_slices(head), t


def head_depth(head: np.ndarray, spacing: tuple[float, ...], *, extend: float = 30.0) -> np.ndarray:
    """Depth in mm of every head voxel under the head's surface, in 3D, on thick slices.

    The in-plane signed distance to the head's outline is interpolated linearly between slices
    (about 2 mm apart) and the 3D distance transform taken on that finer grid, so the surface
    between slices counts. Beyond an end slice whose head is under half the largest head
    section (the vertex), the signed distance is extrapolated, closing the dome; beyond other
    ends (the neck) the head is taken to continue.

    Parameters
    ----------
    head : numpy.ndarray
        Boolean head mask, ``(slices, y, x)``.
    spacing : tuple of float
        Spacing of the three axes (mm).
    extend : float
        How far (mm) beyond the end slices the head is modelled.

    Returns
    -------
    numpy.ndarray
        float, same shape; 0 outside the head.

    Examples
    --------
    >>> z, y, x = np.ogrid[-8:9, -20:21, -20:21]
    >>> ball = (z * 2.0) ** 2 + y ** 2 + x ** 2 <= 18 ** 2  # radius 18 mm, 2 mm slices
    >>> d = head_depth(ball, (2.0, 1.0, 1.0))
    >>> round(float(d[8, 20, 20])), round(float(d[0, 20, 20]))  # the centre; the top slice's centre
    (18, 5)

    The top slice's centre lies 2 mm under the pole (within the 2 mm grid's reach); in-plane it
    would look 8.5 mm deep.
    """
    sp = np.asarray(spacing, dtype=float)
    f = max(1, int(2.0 // sp[1:].min()))  # in-plane stride: about 2 mm
    h = head[:, ::f, ::f]
    pix = sp[1:] * f
    sdf = np.stack([ndi.distance_transform_edt(s, sampling=pix) - ndi.distance_transform_edt(~s, sampling=pix)
                    for s in h])
    area = h.sum(axis=(1, 2))
    k = max(1, int(np.ceil(extend / sp[0])))

    def beyond(end: np.ndarray, inner: np.ndarray, closing: bool) -> np.ndarray:
        steps = np.arange(1, k + 1)[:, None, None]
        return end[None] + steps * (end - inner)[None] if closing else np.repeat(end[None], k, axis=0)

    n = len(sdf)
    low = beyond(sdf[0], sdf[min(1, n - 1)], n > 1 and area[0] < area.max() / 2)[::-1]
    high = beyond(sdf[-1], sdf[max(n - 2, 0)], n > 1 and area[-1] < area.max() / 2)
    s = np.concatenate([low, sdf, high])
    u = max(1, int(round(sp[0] / 2.0)))  # thin slices: about 2 mm
    t = np.arange((len(s) - 1) * u + 1) / u
    i0 = np.minimum(t.astype(int), len(s) - 2) if len(s) > 1 else np.zeros(len(t), int)
    w = (t - i0)[:, None, None]
    fine = (1 - w) * s[i0] + w * s[np.minimum(i0 + 1, len(s) - 1)] > 0
    d = ndi.distance_transform_edt(fine, sampling=(sp[0] / u, sp[1] * f, sp[2] * f))[k * u::u][:n]
    d = np.repeat(np.repeat(d, f, axis=1), f, axis=2)[:, :head.shape[1], :head.shape[2]]
    return np.where(head, d, 0.0)


def _mode_and_upper_sigma(values: np.ndarray) -> tuple[float, float]:
    """Histogram mode of ``values`` and the standard deviation of its peak's upper side."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    if hi <= lo:
        return float(lo), 0.0
    edges = np.linspace(lo, hi, 129)
    h = ndi.gaussian_filter1d(np.histogram(values, edges)[0].astype(float), 2.0)
    centres = (edges[1:] + edges[:-1]) / 2
    i = int(h.argmax())
    r = i
    while r < len(h) - 1 and h[r] > h[i] / 2:
        r += 1
    width = max(float(centres[r] - centres[i]), float(edges[1] - edges[0]))
    return float(centres[i]), width / _HALF_WIDTH


def brain_window(array: np.ndarray, head: np.ndarray, spacing: tuple[float, ...]) -> tuple[float, float, float]:
    """Brain intensity window ``(low, mode, high)`` of a T1 head, from the data.

    Parameters
    ----------
    array : numpy.ndarray
        Intensities, shape ``(slices, y, x)``.
    head : numpy.ndarray
        Boolean head mask, same shape (see `head_mask`).
    spacing : tuple of float
        Spacing of the three axes (mm).

    Returns
    -------
    low, mode, high : float
        ``mode``: the histogram mode of the head voxels deeper (in-plane) than a quarter of
        the largest depth, i.e. brain whatever the scalp; ``low``: Otsu's split of the head
        voxels darker than ``mode``; ``high``: ``mode`` plus three standard deviations of
        the mode's peak, measured on its upper side.

    Examples
    --------
    >>> from medseg.testing import t1_head_phantom
    >>> img, truth = t1_head_phantom(seed=0)
    >>> a, t = np.asarray(img.array), truth.array  # t: 1 scalp, 3 CSF, 4 brain
    >>> low, mode, high = brain_window(a, head_mask(a)[0], img.spacing)
    >>> [float(np.median(a[t == k])) < v for k, v in ((3, low), (4, high), (1, np.inf))]
    [True, True, True]
    >>> bool(low < np.median(a[t == 4]) and high < np.median(a[t == 1]))
    True
    """
    depth = np.stack([ndi.distance_transform_edt(s, sampling=spacing[1:]) for s in head])
    deep = depth > depth.max() / 4
    values = array[deep] if np.count_nonzero(deep) >= 100 else array[head]
    mode, sigma = _mode_and_upper_sigma(values)
    low = _otsu(array[head & (array < mode)], mode / 2)
    return low, mode, mode + 3 * sigma


class SkullStrip(ClassicalSegmenter):
    """Brain mask of a T1-weighted head MR, scalp and fat excluded, slice by slice (see the module).

    Parameters
    ----------
    params : SkullStripParams or dict, optional
        ``bridge``, ``low``, ``high``, ``margin``, ``min_depth`` and the shared
        channel/post-processing fields.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import t1_head_phantom
    >>> img, truth = t1_head_phantom(seed=0)  # labels: 1 scalp, 2 skull, 3 CSF, 4 brain, 5 lesion
    >>> mask = SkullStrip()(img).array.astype(bool)
    >>> t = truth.array
    >>> bool(mask[t == 1].mean() < 0.001), bool(mask[t >= 4].mean() > 0.95)
    (True, True)
    """

    name = "skull-strip"
    dims = (3,)
    summary = "brain mask of a T1 head MR: data-derived brain window, scalp cut off slice by slice (thick slices)"
    Params = SkullStripParams

    def segment_array(self, image: Image) -> tuple[np.ndarray, dict[str, Any]]:
        """Brain mask of ``image`` (shape ``(z, y, x)``) and what was derived from it."""
        a = np.asarray(image.array, dtype=np.float32)
        if is_constant(a):
            log.warning("%s: the image is constant; nothing to segment", self.name)
            return np.zeros(a.shape, np.uint8), {}
        axis = int(np.argmax(image.spacing))  # slices along the thickest axis
        order = (axis, *[i for i in range(3) if i != axis])
        sp = tuple(float(image.spacing[i]) for i in order)
        shift = min(float(a.min()), 0.0)  # intensity ratios need air at zero (z-scored input)
        a = np.transpose(a, order) - shift
        a = ndi.gaussian_filter(a, [1.0 / s for s in sp])  # 1 mm: noise, not structure
        mask, meta = self._brain(a, sp, shift)
        for k in ("air_threshold", "low", "brain_mode", "high"):
            if k in meta:
                meta[k] = float(meta[k]) + shift
        return np.transpose(mask, np.argsort(order)).view(np.uint8), {**meta, "slice_axis": axis}

    def _brain(self, a: np.ndarray, sp: tuple[float, ...], shift: float) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.params
        head, air = head_mask(a)
        low, mode, high = brain_window(a, head, sp)
        low = low if p.low is None else float(p.low) - shift
        high = high if p.high is None else float(p.high) - shift
        if p.low is not None and p.high is None:
            high = max(high, low + 1e-6)
        mode = min(max(mode, low), high) if mode > 0 else (low + high) / 2
        rel_lo, rel_hi = low / mode, high / mode
        rel_bright = _otsu(a[head & (a > high)], high) / mode
        depth = np.stack([ndi.distance_transform_edt(s, sampling=sp[1:]) for s in head])
        deep = depth > depth.max() / 4
        disk = ellipsoid_footprint(p.bridge, sp[1:])
        margin = p.margin if p.margin is not None else max(sp[0] / 4, max(sp[1:]))
        grow = ellipsoid_footprint(margin, sp[1:]) if margin > 0 else np.ones((1, 1), bool)
        pad = max(disk.shape)
        floor = np.ones(a.shape, bool)  # the depth floor: set once the seed slice is known

        def one(z: int, level: float, ref: np.ndarray | None) -> np.ndarray:
            win = head[z] & floor[z] & (a[z] > rel_lo * level) & (a[z] < rel_hi * level)
            lbl, n = ndi.label(ndi.binary_erosion(win, disk))
            if n == 0:
                return np.zeros_like(win)
            if ref is None:  # the seed: the component holding most deep voxels
                score = np.bincount(lbl[deep[z]], minlength=n + 1)
                score[0] = 0
                keep = np.zeros(n + 1, bool)
                keep[int(score.argmax())] = score.max() > 0
            else:  # components lying at least half inside the previous slice's brain
                keep = np.bincount(lbl[ref], minlength=n + 1) * 2 >= np.bincount(lbl.ravel(), minlength=n + 1)
                keep[0] = False
            b = ndi.binary_dilation(keep[lbl], disk) & win
            if ref is not None:
                b &= ndi.binary_dilation(ref, grow)
            b = ndi.binary_fill_holes(b)
            if b.any():  # bright blobs (enhancing lesion, vessels), holes filled, bordered mostly by brain
                bright = head[z] & floor[z] & (a[z] >= rel_hi * level) & (a[z] < rel_bright * level) & ~b
                lb, nb = ndi.label(ndi.binary_fill_holes(bright))
                if nb:
                    near = ndi.grey_dilation(lb, footprint=_SQUARE)
                    rim = (near > 0) & (lb == 0)
                    inside = np.bincount(near[rim & b], minlength=nb + 1)
                    add = inside * 2 >= np.maximum(np.bincount(near[rim], minlength=nb + 1), 1)
                    add[0] = False
                    b |= add[lb]
            b = ndi.binary_closing(np.pad(b, pad), disk)[pad:-pad, pad:-pad] & head[z]
            return ndi.binary_fill_holes(b)

        seeds = [np.count_nonzero(ndi.binary_erosion(head[z] & (a[z] > low) & (a[z] < high), disk) & deep[z])
                 for z in range(a.shape[0])]
        z0 = int(np.argmax(seeds))
        out = np.zeros(a.shape, bool)
        out[z0] = one(z0, mode, None)
        meta: dict[str, Any] = {"air_threshold": air, "low": low, "brain_mode": mode, "high": high,
                                "seed_slice": z0, "margin": float(margin)}
        if not out[z0].any():
            log.warning("%s: no brain-like region found (is this a T1-weighted head MR?)", self.name)
            return out, meta
        # the brain lies deeper under the skin than its edge does on the seed slice (scalp and skull
        # thickness); measured in 3D, since where slices cut the head obliquely the scalp looks thick
        depth3 = head_depth(head, sp)
        edge = out[z0] & ~ndi.binary_erosion(out[z0])
        min_depth = float(np.percentile(depth3[z0][edge], 10)) if p.min_depth is None else float(p.min_depth)
        floor[:] = depth3 >= min_depth
        meta["min_depth"] = min_depth
        for step in (1, -1):
            level = mode
            z = z0 + step
            while 0 <= z < a.shape[0] and out[z - step].any():
                core = ndi.binary_erosion(out[z - step], disk)
                prev, cur = a[z - step][core], a[z][core]
                same = (prev > rel_lo * level) & (prev < rel_hi * level)
                if np.count_nonzero(same) >= 50:  # follow the drift of the brain's intensity
                    level *= float(np.median(cur[same]) / max(float(np.median(prev[same])), 1e-12))
                out[z] = one(z, level, out[z - step])
                z += step
        return out, meta

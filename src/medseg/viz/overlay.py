"""Overlays of label maps on images: outlines and error maps, slice and view choice for volumes.

Colours come from one documented palette, Okabe & Ito's colour-blind-safe set
(`OKABE_ITO`):

* errors (`ERROR_COLOURS`): true positive sky blue, false positive vermillion,
  false negative yellow, wrong foreground class blue — the triple that stays the most
  distinct for normal, protan, deutan and tritan vision, drawn on the image in grey so that
  no image colour competes with them;
* outlines (`outline_colours`): the candidates of `OUTLINE_CANDIDATES` that are
  farthest from the image's own colours (sky blue on an orange fundus photograph, yellow on
  grey MR), each drawn with a dark or light halo (`halo_colour`) so it stands out on
  any background.

Functions take 2D arrays (one slice; `pick_slice`, `centre_slices` and
`anatomical_views` choose them in 3D) and return new float arrays in ``[0, 1]``: RGB
``(y, x, 3)`` images or RGBA ``(y, x, 4)`` layers to draw over an image; inputs are never
modified.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medseg.errors import InputError

__all__ = ["OKABE_ITO", "ERROR_COLOURS", "OUTLINE_CANDIDATES", "LABEL_COLOURS", "ROI_COLOUR", "rgb", "to_display",
           "display_window", "pick_slice", "centre_slices", "View", "anatomical_views", "outline_colours",
           "halo_colour", "outline_layer", "error_layer", "composite", "error_overlay", "outline_overlay",
           "error_window", "upscale"]

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
             "white": "#FFFFFF"}
"""Okabe & Ito's colour-blind-safe palette (hex), the one source of every overlay colour."""

ERROR_COLOURS = {"true positive": "sky blue", "false positive": "vermillion", "false negative": "yellow",
                 "wrong class": "blue"}
"""Outcome of a voxel -> palette colour name of the error maps."""

OUTLINE_CANDIDATES = ("sky blue", "yellow", "bluish green", "reddish purple", "white", "orange", "vermillion",
                      "blue")
"""Outline colours to choose from, in order of preference (see `outline_colours`)."""


def rgb(name: str) -> np.ndarray:
    """A palette colour as float RGB in ``[0, 1]``.

    Parameters
    ----------
    name : str
        A key of `OKABE_ITO`.

    Returns
    -------
    numpy.ndarray, shape ``(3,)``

    Examples
    --------
    >>> rgb("vermillion").round(3).tolist()
    [0.835, 0.369, 0.0]
    """
    h = OKABE_ITO[name].lstrip("#")
    return np.array([int(h[i:i + 2], 16) / 255.0 for i in (0, 2, 4)])


LABEL_COLOURS = np.array([rgb(n) for n in OUTLINE_CANDIDATES])
"""RGB colours (0..1) of labels 1, 2, ... (cycled) when no image chooses them: the outline
candidates."""
TP_COLOUR, FP_COLOUR, FN_COLOUR, WRONG_COLOUR = (rgb(ERROR_COLOURS[k]) for k in ERROR_COLOURS)
ROI_COLOUR = rgb("white")
"""Predicted foreground outside the region of interest (never scored), and the ROI's border."""


def display_window(image: np.ndarray) -> tuple[float, float]:
    """The 1st and 99th percentiles of the finite values: the intensity window of `to_display`.

    Computed once per volume, it gives every slice and view of a case the same window.

    Parameters
    ----------
    image : numpy.ndarray
        Any shape.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(0, 1)`` when nothing is finite.

    Examples
    --------
    >>> display_window(np.arange(101.0))
    (1.0, 99.0)
    """
    a = np.asarray(image, dtype=np.float64)
    if a.size > 4_000_000:  # a regular subsample gives the same percentiles to display precision
        a = a.ravel()[:: a.size // 2_000_000]
    finite = a[np.isfinite(a)]
    if not finite.size:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [1, 99])
    return float(lo), float(hi)


def to_display(image: np.ndarray | None, shape: tuple[int, ...], *,
               window: tuple[float, float] | None = None) -> np.ndarray:
    """A 2D image as float RGB ``(y, x, 3)`` in [0, 1], windowed to its 1st-99th percentiles.

    8-bit 3/4-channel images (channel-first or last) are shown in colour; other
    multi-channel images (MR modalities) show their first channel.

    ``None`` gives a mid-grey background of ``shape``.

    Parameters
    ----------
    image : numpy.ndarray or None
        A 2D slice ``(y, x)``, or ``(C, y, x)``/``(y, x, C)`` with channels.
    shape : tuple of int
        The ``(y, x)`` shape of the label slice it is shown with.
    window : tuple of float, optional
        ``(low, high)`` intensities shown as black and white (see `display_window`);
        default the slice's own 1st-99th percentiles.

    Returns
    -------
    numpy.ndarray of float64, shape ``(y, x, 3)``

    Examples
    --------
    >>> import numpy as np
    >>> rgb = to_display(np.array([[0.0, 10.0], [20.0, 30.0]]), (2, 2))
    >>> rgb.shape, float(rgb.min()), float(rgb.max())
    ((2, 2, 3), 0.0, 1.0)
    """
    if image is None:
        return np.full((*shape, 3), 0.5)
    raw = np.asarray(image)
    colour = raw.dtype == np.uint8  # colour photographs; other multi-channel images are modalities
    a = raw.astype(np.float64)
    if a.ndim == 3 and colour and a.shape[0] in (3, 4) and a.shape[1:] == tuple(shape):
        a = np.moveaxis(a[:3], 0, -1)
    elif a.ndim == 3 and colour and a.shape[-1] in (3, 4) and a.shape[:2] == tuple(shape):
        a = a[..., :3]
    elif a.ndim == 3 and a.shape[1:] == tuple(shape):
        a = a[0]  # first channel (modality) of a multi-channel image
    if a.shape[:2] != tuple(shape):
        raise InputError(f"the image slice has shape {a.shape[:2]} but the label slice has shape {tuple(shape)}")
    lo, hi = display_window(a) if window is None else window
    a = np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    a = np.nan_to_num(a, nan=0.0)
    return a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1)


def pick_slice(truth: np.ndarray, pred: np.ndarray, *, axis: int = 0) -> int:
    """The index along ``axis`` of the slice with the most disagreeing voxels *among the slices with ground truth*.

    When the truth is empty everywhere, the slice with the most disagreement (false
    positives); when nothing disagrees, the slice with the most foreground. A case with
    ground truth therefore never gets a slice without any.

    Parameters
    ----------
    truth, pred : numpy.ndarray, shape ``(z, y, x)``
        Label maps.
    axis : int
        The axis to pick a slice along.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((4, 3, 3), int); t[1:3] = 1
    >>> p = t.copy(); p[2, 0, 0] = 0
    >>> pick_slice(t, p), pick_slice(t, t)
    (2, 1)

    A false-positive blob on slice 3 has the most errors, but slice 3 holds no truth; slice 2 has
    the most errors among the slices that do:

    >>> p = t.copy(); p[3] = 1; p[2, 0, 0] = 0
    >>> pick_slice(t, p)
    2
    """
    other = tuple(a for a in range(truth.ndim) if a != axis)
    err = (truth != pred).sum(axis=other)
    has_truth = (truth > 0).any(axis=other)
    if has_truth.any():
        err = np.where(has_truth, err, -1)
    if err.max() > 0:
        return int(np.argmax(err))
    fg = (truth > 0) if has_truth.any() else ((truth > 0) | (pred > 0))
    return int(np.argmax(fg.sum(axis=other)))


def _nearest_with(has: np.ndarray, index: int) -> int:
    idx = np.flatnonzero(has)
    return int(idx[np.argmin(np.abs(idx - index))]) if idx.size else index


def centre_slices(truth: np.ndarray, pred: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Slices through the centre of a volume's errors, one per axis, each holding ground truth.

    The centre is where the errors are densest (a box filter a quarter of the volume wide,
    so a far-away speck does not pull it), counting only the errors at the ground truth
    (within an eighth of the volume of it) and preferring voxels whose three slices all hold
    truth; when nothing disagrees, where the foreground is densest. Along each axis
    the slice through the centre is used when it holds ground truth, else the nearest slice
    that does (unless the truth is empty everywhere).

    Parameters
    ----------
    truth, pred : numpy.ndarray, shape ``(z, y, x)``
        Label maps.

    Returns
    -------
    indices : tuple of int
        The slice index along each axis.
    centre : tuple of int
        The error centre (``indices`` differ from it only where that slice has no truth).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((10, 10, 10), int); t[2:5, 2:5, 2:5] = 1
    >>> p = t.copy(); p[7:9, 7:9, 7:9] = 1        # the only errors: a false positive far from the truth
    >>> centre_slices(t, p)
    ((4, 4, 4), (8, 8, 8))
    """
    from scipy.ndimage import uniform_filter  # deferred: scipy.ndimage, only for 3D overlays

    t = truth > 0
    err = truth != pred
    if not err.any():
        err = t | (pred > 0)
    if not err.any():
        return tuple(s // 2 for s in truth.shape), tuple(s // 2 for s in truth.shape)
    step = max(1, int(np.ceil((err.size / 2_000_000) ** (1 / err.ndim))))  # bounded work on large volumes
    sub = tuple(slice(None, None, step) for _ in err.shape)
    small = err[sub]
    candidates = small.copy()
    if t.any():  # the errors at the truth: far-away false positives still show in the views through it
        small_t = t[sub]
        near = uniform_filter(small_t.astype(np.float32), size=2 * max(1, min(small.shape) // 8) + 1,
                              mode="constant") > 0
        on_truth_slices = np.ones(small.shape, bool)  # all three slices through the voxel hold truth
        for ax in range(t.ndim):
            shape = [1] * t.ndim
            shape[ax] = small.shape[ax]
            on_truth_slices &= small_t.any(axis=tuple(a for a in range(t.ndim) if a != ax)).reshape(shape)
        if (small & near).any():
            small = small & near
        candidates = small & on_truth_slices if (small & on_truth_slices).any() else small
    dens = uniform_filter(small.astype(np.float32), size=max(1, min(small.shape) // 4), mode="constant")
    dens[~candidates] = -1  # the centre is itself an error voxel
    centre = tuple(int(min(i * step, s - 1)) for i, s in
                   zip(np.unravel_index(int(np.argmax(dens)), dens.shape), truth.shape))
    if not t.any():
        return centre, centre
    indices = []
    for ax in range(truth.ndim):
        has = t.any(axis=tuple(a for a in range(truth.ndim) if a != ax))
        indices.append(_nearest_with(has, centre[ax]))
    return tuple(indices), centre


@dataclass(frozen=True)
class View:
    """One orthogonal view of a volume: the axis sliced across and how to orient the slice.

    Attributes
    ----------
    name : str
        ``"axial"``, ``"coronal"``, ``"sagittal"``, or ``"axis k"`` when the orientation is
        unknown.
    axis : int
        The spatial axis the slice is taken across.
    flip_rows, flip_cols : bool
        Flip the (transposed) slice so that superior (axial: anterior) is up and the
        patient's left is on the right of the screen (radiological convention; sagittal:
        anterior left).
    transpose : bool
        Show the higher of the two in-plane axes as rows.

    Examples
    --------
    >>> import numpy as np
    >>> v = View("coronal", 1, flip_rows=True)
    >>> v.take(np.arange(8).reshape(2, 2, 2), 0).tolist()        # rows (z) flipped: superior up
    [[4, 5], [0, 1]]
    """

    name: str
    axis: int
    flip_rows: bool = False
    flip_cols: bool = False
    transpose: bool = False

    def take(self, volume: np.ndarray, index: int) -> np.ndarray:
        """The oriented 2D slice ``index`` of ``volume`` (a leading channel axis is kept).

        Parameters
        ----------
        volume : numpy.ndarray, shape ``(z, y, x)`` or ``(C, z, y, x)``
        index : int

        Returns
        -------
        numpy.ndarray, shape ``(rows, cols)`` or ``(C, rows, cols)``
        """
        v = np.asarray(volume)
        off = v.ndim - 3
        s = np.take(v, index, axis=self.axis + off)
        if self.transpose:
            s = np.swapaxes(s, off, off + 1)
        if self.flip_rows:
            s = np.flip(s, axis=off)
        if self.flip_cols:
            s = np.flip(s, axis=off + 1)
        return s

    def plane_axes(self) -> tuple[int, int]:
        """The spatial axes shown as rows and as columns.

        Returns
        -------
        tuple of int

        Examples
        --------
        >>> View("sagittal", 2).plane_axes(), View("x", 0, transpose=True).plane_axes()
        ((0, 1), (2, 1))
        """
        rows, cols = (a for a in range(3) if a != self.axis)
        return (cols, rows) if self.transpose else (rows, cols)


def anatomical_views(direction: Any = None) -> list[View]:
    """Axial, coronal and sagittal views of a volume from its direction cosines.

    Radiological convention: the patient's left on the right of the screen; superior up in
    coronal and sagittal views, anterior up in axial views, anterior on the left in sagittal
    views.

    Parameters
    ----------
    direction : array_like, shape ``(3, 3)``, optional
        `medseg.image.Image.direction`: column ``i`` is the world direction of array
        axis ``i`` in ``(S, P, L)`` order (ITK's LPS reversed, like the array axes). ``None``
        (an array without geometry): the views are named by axis and shown unflipped.

    Returns
    -------
    list of View
        Axial, coronal, sagittal (or axis 0, 1, 2).

    Examples
    --------
    >>> [(v.name, v.axis, v.flip_rows) for v in anatomical_views(np.eye(3))]
    [('axial', 0, False), ('coronal', 1, True), ('sagittal', 2, True)]
    >>> [v.name for v in anatomical_views(None)]
    ['axis 0', 'axis 1', 'axis 2']
    """
    if direction is None:
        return [View(f"axis {a}", a) for a in range(3)]
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    world = np.argmax(np.abs(d), axis=0)  # array axis i runs along world axis world[i] (0 S, 1 P, 2 L)
    if sorted(world.tolist()) != [0, 1, 2]:
        return [View(f"axis {a}", a) for a in range(3)]
    along = {int(w): a for a, w in enumerate(world)}  # world axis -> array axis

    def increasing(world_axis: int) -> bool:  # the array index grows toward + of the world axis
        return bool(d[world_axis, along[world_axis]] > 0)

    def oriented(name: str, normal: int, up: int, up_is_plus: bool, right: int, right_is_plus: bool) -> View:
        axis = along[normal]
        rows, _ = (a for a in range(3) if a != axis)
        return View(name, axis, flip_rows=increasing(up) == up_is_plus, flip_cols=increasing(right) != right_is_plus,
                    transpose=along[up] != rows)

    S, P, L = 0, 1, 2
    return [oriented("axial", S, P, False, L, True), oriented("coronal", P, S, True, L, True),
            oriented("sagittal", L, S, True, P, True)]


def _lab(colours: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab  # deferred: scikit-image is slow to import

    return rgb2lab(np.clip(np.asarray(colours, dtype=np.float64), 0, 1).reshape(-1, 1, 3))[:, 0, :]


def outline_colours(base: np.ndarray | None, n: int, *,
                    candidates: Sequence[str] = OUTLINE_CANDIDATES) -> list[str]:
    """The ``n`` outline colours (palette names) that stand out most on ``base``.

    Each candidate is scored by its CIELAB distance to the image's pixels (the 10th
    percentile over a sample: the colour must be far from nearly every pixel, not just
    from the average one). Colours are then taken greedily, each the candidate whose
    smaller distance — to the image, or to the colours already taken — is largest, so that
    several labels also stand apart from each other (candidates in
    `OUTLINE_CANDIDATES` order on ties).

    Parameters
    ----------
    base : numpy.ndarray, shape ``(y, x, 3)``, or None
        The displayed image (float RGB in ``[0, 1]``); ``None``: the candidates in order.
    n : int
        How many colours (one per label); cycled when more than the candidates.
    candidates : sequence of str
        Palette names to choose from.

    Returns
    -------
    list of str

    Examples
    --------
    >>> fundus = np.zeros((8, 8, 3)); fundus[3:] = [0.85, 0.45, 0.15]   # orange, black outside the field of view
    >>> outline_colours(fundus, 1)
    ['sky blue']
    >>> outline_colours(np.zeros((8, 8, 3)) + np.linspace(0, 1, 8)[:, None, None], 2)   # grey ramp
    ['yellow', 'vermillion']
    """
    names = list(candidates)
    if base is None or not base.size:
        return [names[i % len(names)] for i in range(n)]
    px = np.asarray(base, dtype=np.float64).reshape(-1, 3)
    if px.shape[0] > 4096:
        px = px[np.linspace(0, px.shape[0] - 1, 4096).astype(int)]
    lab_c = _lab(np.array([rgb(c) for c in names]))
    score = np.round(np.percentile(np.linalg.norm(lab_c[:, None, :] - _lab(px)[None, :, :], axis=-1), 10, axis=1))
    pair = np.round(np.linalg.norm(lab_c[:, None, :] - lab_c[None, :, :], axis=-1))
    chosen: list[int] = []
    while len(chosen) < min(n, len(names)):  # greedy: far from the image and from the colours already chosen
        value = np.minimum(score, pair[:, chosen].min(axis=1)) if chosen else score.copy()
        value[chosen] = -np.inf
        chosen.append(int(np.argmax(value)))  # the first candidate on ties
    return [names[chosen[i % len(chosen)]] for i in range(n)]


def halo_colour(colour: np.ndarray) -> np.ndarray:
    """Black for a light colour, white for a dark one: the halo drawn around an outline.

    Parameters
    ----------
    colour : numpy.ndarray, shape ``(3,)``
        Float RGB in ``[0, 1]``.

    Returns
    -------
    numpy.ndarray, shape ``(3,)``

    Examples
    --------
    >>> halo_colour(rgb("yellow")).tolist(), halo_colour(rgb("blue")).tolist()
    ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    """
    c = np.asarray(colour, dtype=float)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    luminance = float(np.dot(linear, [0.2126, 0.7152, 0.0722]))  # relative luminance; 0.18 is mid-grey
    return np.zeros(3) if luminance > 0.18 else np.ones(3)


def upscale(a: np.ndarray, k: int) -> np.ndarray:
    """Repeat every pixel of a 2D (or ``(y, x, C)``) array ``k`` times along both axes (nearest neighbour).

    Parameters
    ----------
    a : numpy.ndarray
    k : int
        Integer factor, at least 1.

    Returns
    -------
    numpy.ndarray, shape ``(k·y, k·x, ...)``

    Examples
    --------
    >>> upscale(np.array([[1, 2]]), 2).tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2]]
    """
    k = int(k)
    return a if k <= 1 else np.repeat(np.repeat(a, k, axis=0), k, axis=1)


def _ring(mask: np.ndarray, width: int, outside: bool) -> np.ndarray:
    from scipy.ndimage import binary_dilation, binary_erosion  # deferred: scipy.ndimage, only for figures

    if outside:
        return binary_dilation(mask, iterations=width) & ~mask
    return mask & ~binary_erosion(mask, iterations=width, border_value=1)


def outline_layer(labels: np.ndarray, colours: Sequence[str] | None = None, *, scale: int = 1,
                  fill_alpha: float = 0.3, halo: bool = True) -> np.ndarray:
    """A transparent RGBA layer: each label tinted, outlined in its colour, with a dark or light halo outside.

    Parameters
    ----------
    labels : numpy.ndarray, shape ``(y, x)``
        Integer label map.
    colours : sequence of str, optional
        Palette names of labels 1, 2, ... (cycled; see `outline_colours`); default
        `OUTLINE_CANDIDATES`.
    scale : int
        Draw at ``scale`` times the resolution (nearest-neighbour), so outlines stay thin on
        small slices shown large.
    fill_alpha : float
        Opacity of the tint inside each label.
    halo : bool
        Draw the halo (`halo_colour`) just outside each outline.

    Returns
    -------
    numpy.ndarray of float64, shape ``(scale·y, scale·x, 4)``

    Examples
    --------
    >>> lab = np.zeros((5, 5), int); lab[1:4, 1:4] = 1
    >>> layer = outline_layer(lab, ["yellow"])
    >>> layer[1, 1].round(3).tolist(), layer[2, 2, 3], layer[0, 1].tolist()   # outline, inside, halo
    ([0.941, 0.894, 0.259, 1.0], np.float64(0.3), [0.0, 0.0, 0.0, 0.85])
    """
    names = list(colours) if colours else list(OUTLINE_CANDIDATES)
    lab = upscale(np.asarray(labels), scale)
    out = np.zeros((*lab.shape, 4))
    width, halo_width = max(1, round(int(scale) / 2)), max(1, int(scale) // 4)  # the colour wider than its halo
    present = [int(v) for v in np.unique(lab) if v != 0]
    masks = {v: lab == v for v in present}
    for v in present:
        out[masks[v]] = (*rgb(names[(v - 1) % len(names)]), fill_alpha)
    if halo:
        for v in present:
            ring = _ring(masks[v], halo_width, outside=True) & (out[..., 3] < 0.5)
            out[ring] = (*halo_colour(rgb(names[(v - 1) % len(names)])), 0.85)
    for v in present:
        out[_ring(masks[v], width, outside=False)] = (*rgb(names[(v - 1) % len(names)]), 1.0)
    return out


def error_layer(truth: np.ndarray, pred: np.ndarray, *, label: int | None = None, roi: np.ndarray | None = None,
                scale: int = 1, alpha: float = 0.9, box: tuple[slice, slice] | None = None) -> np.ndarray:
    """A transparent RGBA layer of agreement: `ERROR_COLOURS` inside the ROI.

    Parameters
    ----------
    truth, pred : numpy.ndarray, shape ``(y, x)``
        Label maps.
    label : int, optional
        Show only this class (binary view); ``None`` shows every class, foreground voxels
        given the wrong class in the "wrong class" colour.
    roi : numpy.ndarray of bool, shape ``(y, x)``, optional
        Where voxels are scored: outcomes are drawn inside it only, predicted foreground
        outside it in `ROI_COLOUR` (half transparent: present, never scored), and its
        border as a thin line.
    scale : int
        Draw at ``scale`` times the resolution.
    alpha : float
        Opacity of the outcome colours.
    box : tuple of slice, optional
        ``(rows, columns)`` of a window to frame (the zoomed view), in unscaled pixels.

    Returns
    -------
    numpy.ndarray of float64, shape ``(scale·y, scale·x, 4)``

    Examples
    --------
    >>> layer = error_layer(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 1, 0]]), alpha=1.0)
    >>> [ERROR_COLOURS_BY_RGB[tuple(layer[0, i, :3].round(3))] for i in range(3)], float(layer[0, 3, 3])
    (['true positive', 'false negative', 'false positive'], 0.0)
    """
    t_full, p_full = np.asarray(truth), np.asarray(pred)
    if label is not None:
        t_full, p_full = (t_full == label).astype(np.uint8), (p_full == label).astype(np.uint8)
    t, p = upscale(t_full, scale) > 0, upscale(p_full, scale) > 0
    tv, pv = upscale(t_full, scale), upscale(p_full, scale)
    inside = np.ones(t.shape, bool) if roi is None else upscale(np.asarray(roi, bool), scale)
    out = np.zeros((*t.shape, 4))
    for m, col in ((t & p & (tv == pv), TP_COLOUR), (p & ~t, FP_COLOUR), (t & ~p, FN_COLOUR),
                   (t & p & (tv != pv), WRONG_COLOUR)):
        out[m & inside] = (*col, alpha)
    if roi is not None:
        out[p & ~inside] = (*ROI_COLOUR, 0.55)
        out[_ring(inside, max(1, int(scale) // 3), outside=True)] = (*ROI_COLOUR, 0.45)
    if box is not None:
        k = int(scale)
        r0, r1, c0, c1 = box[0].start * k, box[0].stop * k, box[1].start * k, box[1].stop * k
        w = max(2, k)
        for sl in ((slice(r0, r0 + w), slice(c0, c1)), (slice(r1 - w, r1), slice(c0, c1)),
                   (slice(r0, r1), slice(c0, c0 + w)), (slice(r0, r1), slice(c1 - w, c1))):
            out[sl] = (1.0, 1.0, 1.0, 1.0)
    return out


#: Outcome name by its RGB colour (rounded to 3 decimals), for tests and legends.
ERROR_COLOURS_BY_RGB = {tuple(rgb(c).round(3)): k for k, c in ERROR_COLOURS.items()}


def composite(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Draw an RGBA ``layer`` over an RGB ``base`` of the same shape (alpha blending).

    Parameters
    ----------
    base : numpy.ndarray, shape ``(y, x, 3)``
    layer : numpy.ndarray, shape ``(y, x, 4)``

    Returns
    -------
    numpy.ndarray of float64, shape ``(y, x, 3)``

    Examples
    --------
    >>> composite(np.zeros((1, 1, 3)), np.array([[[1.0, 1.0, 1.0, 0.25]]])).tolist()
    [[[0.25, 0.25, 0.25]]]
    """
    a = np.asarray(layer[..., 3:4], dtype=np.float64)
    return (1 - a) * np.asarray(base, dtype=np.float64) + a * np.asarray(layer[..., :3], dtype=np.float64)


def outline_overlay(base: np.ndarray, labels: np.ndarray, *, alpha: float = 0.3,
                    colours: Sequence[str] | None = None) -> np.ndarray:
    """Tint each label, outline it in its colour with a halo, on the RGB ``base`` (see `outline_layer`).

    Parameters
    ----------
    base : numpy.ndarray, shape ``(y, x, 3)``
        Float RGB in ``[0, 1]`` (see `to_display`).
    labels : numpy.ndarray, shape ``(y, x)``
        Integer label map; label ``k`` gets ``colours[(k - 1) % len(colours)]``.
    alpha : float
        Opacity of the tint inside each label.
    colours : sequence of str, optional
        Palette names; default `outline_colours` of ``base``.

    Returns
    -------
    numpy.ndarray, shape ``(y, x, 3)``

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((5, 5), int); lab[1:4, 1:4] = 1
    >>> out = outline_overlay(np.zeros((5, 5, 3)), lab, colours=["yellow"])
    >>> out[1, 1].tolist() == rgb("yellow").tolist(), out[0, 0].tolist()   # outline, background
    (True, [0.0, 0.0, 0.0])
    """
    n = max([int(v) for v in np.unique(labels)] + [1])
    names = list(colours) if colours else outline_colours(base, n)
    return composite(base, outline_layer(labels, names, fill_alpha=alpha))


def error_overlay(base: np.ndarray, truth: np.ndarray, pred: np.ndarray, *, label: int | None = None,
                  alpha: float = 0.9, roi: np.ndarray | None = None) -> np.ndarray:
    """Colour agreement on ``base`` with `ERROR_COLOURS` (see `error_layer`).

    Parameters
    ----------
    base : numpy.ndarray, shape ``(y, x, 3)``
        Float RGB in ``[0, 1]``.
    truth, pred : numpy.ndarray, shape ``(y, x)``
        Label maps.
    label : int, optional
        Show only this class (binary view); ``None`` shows every class.
    alpha : float
        Opacity of the colours.
    roi : numpy.ndarray of bool, optional
        Where voxels are scored.

    Returns
    -------
    numpy.ndarray, shape ``(y, x, 3)``

    Examples
    --------
    >>> import numpy as np
    >>> out = error_overlay(np.zeros((1, 3, 3)), np.array([[1, 1, 0]]), np.array([[1, 0, 1]]), alpha=1.0)
    >>> out[0].tolist() == [TP_COLOUR.tolist(), FN_COLOUR.tolist(), FP_COLOUR.tolist()]
    True
    """
    return composite(base, error_layer(truth, pred, label=label, roi=roi, alpha=alpha))


def error_window(truth: np.ndarray, pred: np.ndarray, *, fraction: float = 0.3,
                 min_size: int = 24) -> tuple[slice, slice] | None:
    """The square window (``fraction`` of the larger side) holding the most disagreeing pixels, for a zoomed view.

    Parameters
    ----------
    truth, pred : numpy.ndarray, shape ``(y, x)``
        Label maps.
    fraction : float
        Window side as a fraction of the larger image side.
    min_size : int
        Smallest window side in pixels.

    Returns
    -------
    tuple of slice or None
        ``(rows, columns)`` of the window; ``None`` when the image is already small (no zoom
        needed) or nothing disagrees.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((100, 100), int); p = t.copy(); p[80:85, 10:15] = 1
    >>> rows, cols = error_window(t, p)        # 30 = 0.3 x 100 pixels square, around the errors
    >>> rows.stop - rows.start, cols.stop - cols.start, rows.start <= 80 and 85 <= rows.stop
    (30, 30, True)
    """
    from scipy.ndimage import uniform_filter  # deferred: scipy.ndimage, only for zoomed views

    h, w = truth.shape
    size = max(min_size, int(round(max(h, w) * fraction)))
    if size >= min(h, w) * 0.8:
        return None
    err = (truth != pred).astype(np.float32)
    if not err.any():
        return None
    dens = uniform_filter(err, size=size, mode="constant")
    cy, cx = np.unravel_index(int(np.argmax(dens)), dens.shape)
    y0 = int(np.clip(cy - size // 2, 0, h - size))
    x0 = int(np.clip(cx - size // 2, 0, w - size))
    return slice(y0, y0 + size), slice(x0, x0 + size)

"""The built-in per-pixel/voxel feature filters, each registered in
[`FEATURES`][medseg.features.context.FEATURES] with its halo.

Every filter works on one spatial channel (a float32 array ``(y, x)`` or ``(z, y, x)`` in a
[`FeatureContext`][medseg.features.context.FeatureContext]) with its physical ``spacing``; scales are
physical lengths (mm, or pixels when the image has no physical spacing) and are converted
to per-axis voxel sigmas, so the same configuration means the same thing on anisotropic
volumes. Derivatives are taken with `numpy.gradient` in physical units on
Gaussian-smoothed copies (like scikit-image's ``hessian_matrix``), and smoothed copies are
shared between filters through the context's cache.

Each filter takes the context and returns a list of ``(name, array)`` pairs, every array
float32 with the channel's spatial shape; the names carry the scale (``gaussian_s2``).

Examples
--------
>>> import numpy as np
>>> from medseg.features.context import FeatureContext
>>> ctx = FeatureContext(np.eye(6, dtype=np.float32), (1.0, 1.0), (1.0, 2.0))
>>> [name for name, _ in hessian_eigenvalues(ctx)]
['hessian0_s1', 'hessian1_s1', 'hessian0_s2', 'hessian1_s2']
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
from scipy import ndimage as ndi

from medseg.errors import ConfigError
from medseg.features.context import TRUNCATE, FeatureContext, register_feature

__all__ = [
    "N_LINE_ORIENTATIONS", "difference_of_gaussians", "frangi", "gabor", "gaussian", "gradient_magnitude",
    "hessian_eigenvalues", "intensity", "laplacian_of_gaussian", "line_strength", "local_binary_pattern",
    "line_means", "local_entropy", "local_std", "meijering", "sato", "structure_tensor_eigenvalues", "top_hat",
]


# ---------------------------------------------------------------------------- halos
def _gauss_r(ctx: FeatureContext, sigma: float) -> np.ndarray:
    return np.array([int(TRUNCATE * v + 0.5) for v in ctx.vox(sigma)])


def _h_smooth(ctx: FeatureContext) -> np.ndarray:
    return _gauss_r(ctx, max(ctx.sigmas))


def _h_grad(ctx: FeatureContext) -> np.ndarray:
    return _h_smooth(ctx) + 1


def _h_hess(ctx: FeatureContext) -> np.ndarray:
    return _h_smooth(ctx) + 2


def _h_none(ctx: FeatureContext) -> np.ndarray:
    return np.zeros(ctx.ndim, dtype=int)


def _h_structure(ctx: FeatureContext) -> np.ndarray:
    return _gauss_r(ctx, _inner_sigma(ctx)) + 1 + _h_smooth(ctx)


def _h_local(ctx: FeatureContext) -> np.ndarray:
    return _h_smooth(ctx) + _gauss_r(ctx, min(ctx.sigmas))


def _h_planar(ctx: FeatureContext) -> np.ndarray:  # 2D-in-plane filters (LBP, Gabor) applied slice-wise
    vox = ctx.vox(max(ctx.sigmas))
    r = np.full(ctx.ndim, int(np.ceil(3.0 * max(vox[-2:]))) + 2)
    if ctx.ndim == 3:
        r[0] = 0
    return r


def _half_widths(ctx: FeatureContext, sigma: float) -> np.ndarray:
    """Per-axis half-size in voxels of the line/top-hat window at physical scale ``sigma``:
    ``2.5 * sigma`` (a window about five scales wide), in-plane only (axis 0 of a volume is 0)."""
    h = np.array([max(1, int(round(2.5 * sigma / sp))) for sp in ctx.spacing])
    if ctx.ndim == 3:
        h[0] = 0
    return h


def _h_window(ctx: FeatureContext) -> np.ndarray:
    return _half_widths(ctx, max(ctx.sigmas))


def _h_entropy(ctx: FeatureContext) -> np.ndarray:
    return np.array([int(np.ceil(max(ctx.sigmas) / s)) for s in ctx.spacing])


# ---------------------------------------------------------------------------- filters
@register_feature("intensity", _h_none)
def intensity(ctx: FeatureContext) -> list:
    """The (normalised) intensity itself.

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``[("intensity", array)]``, the array of the channel's shape.
    """
    return [("intensity", ctx.array)]


@register_feature("gaussian", _h_smooth)
def gaussian(ctx: FeatureContext) -> list:
    """Gaussian-smoothed intensity at each scale.

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``gaussian_s{sigma}`` per scale, float32 of the channel's shape.
    """
    return [(f"gaussian_s{s:g}", ctx.smooth(s)) for s in ctx.sigmas]


@register_feature("gradient", _h_grad)
def gradient_magnitude(ctx: FeatureContext) -> list:
    """Scale-normalised gradient magnitude ``sigma * |grad G_sigma * I|``.

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``gradient_s{sigma}`` per scale, float32 of the channel's shape.
    """
    out = []
    for s in ctx.sigmas:
        g = ctx.gradient(s)
        out.append((f"gradient_s{s:g}", (s * np.sqrt(sum(d * d for d in g))).astype(np.float32)))
    return out


@register_feature("log", _h_hess)
def laplacian_of_gaussian(ctx: FeatureContext) -> list:
    """Scale-normalised Laplacian of Gaussian (trace of ``sigma**2 * H``).

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``log_s{sigma}`` per scale, float32 of the channel's shape.
    """
    return [(f"log_s{s:g}", ctx.hessian_eigvals(s).sum(axis=0)) for s in ctx.sigmas]


@register_feature("dog", _h_smooth)
def difference_of_gaussians(ctx: FeatureContext) -> list:
    """Differences of consecutive Gaussian scales (band-pass).

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``dog_s{a}_{b}`` per pair of consecutive scales (none for a single scale).
    """
    s = sorted(ctx.sigmas)
    return [(f"dog_s{a:g}_{b:g}", ctx.smooth(a) - ctx.smooth(b)) for a, b in zip(s[:-1], s[1:])]


@register_feature("hessian", _h_hess)
def hessian_eigenvalues(ctx: FeatureContext) -> list:
    """Eigenvalues of the scale-normalised Hessian, descending, at each scale.

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``hessian{i}_s{sigma}`` for ``i < ndim`` per scale, float32 of the channel's shape.
    """
    out = []
    for s in ctx.sigmas:
        ev = ctx.hessian_eigvals(s)
        out.extend((f"hessian{i}_s{s:g}", ev[i]) for i in range(ctx.ndim))
    return out


def _inner_sigma(ctx: FeatureContext) -> float:
    return 0.5 * min(ctx.sigmas)


@register_feature("structure", _h_structure)
def structure_tensor_eigenvalues(ctx: FeatureContext) -> list:
    """Eigenvalues of the structure tensor (gradients at half the smallest scale,
    integrated with a Gaussian of each scale), descending.

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``structure{i}_s{sigma}`` for ``i < ndim`` per scale, float32 of the channel's shape.
    """
    from skimage.feature import structure_tensor_eigenvalues as eig

    grads = ctx.gradient(_inner_sigma(ctx))
    out = []
    for s in ctx.sigmas:
        elems = [ndi.gaussian_filter(grads[i] * grads[j], ctx.vox(s), mode="reflect", truncate=TRUNCATE)
                 for i in range(ctx.ndim) for j in range(i, ctx.ndim)]
        ev = eig(elems).astype(np.float32) * s**2
        out.extend((f"structure{i}_s{s:g}", ev[i]) for i in range(ctx.ndim))
    return out


def _polarities(ctx: FeatureContext) -> list[tuple[str, float]]:
    # Dark ridges have positive curvature across them; bright ridges negative.
    return {"dark": [("dark", 1.0)], "bright": [("bright", -1.0)],
            "both": [("dark", 1.0), ("bright", -1.0)]}[ctx.ridges]


@register_feature("frangi", _h_hess)
def frangi(ctx: FeatureContext) -> list:
    """Frangi vesselness (max over scales) from the spacing-aware Hessian.

    ``beta = 0.5``; the structureness constant ``c`` is half the channel's robust
    intensity range (so it follows the data and is the same in every block).

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales and ``ridges``.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``frangi_dark`` and/or ``frangi_bright``, float32 of the channel's shape.
    """
    beta, c = 0.5, 0.5 * ctx.value_range
    out = []
    for pol, sign in _polarities(ctx):
        best = np.zeros(ctx.array.shape, np.float32)
        for s in ctx.sigmas:
            ev = sign * ctx.hessian_eigvals(s)
            order = np.argsort(np.abs(ev), axis=0)
            ev = np.take_along_axis(ev, order, axis=0)  # ascending |lambda|
            l1, big = ev[0], ev[1:]
            s2 = (ev**2).sum(axis=0)
            if ctx.ndim == 2:
                rb2 = l1**2 / np.maximum(big[0] ** 2, 1e-12)
                v = np.exp(-rb2 / (2 * beta**2)) * (1 - np.exp(-s2 / (2 * c**2)))
                v[big[0] <= 0] = 0
            else:
                l2, l3 = big[0], big[1]
                ra2 = l2**2 / np.maximum(l3**2, 1e-12)
                rb2 = l1**2 / np.maximum(np.abs(l2 * l3), 1e-12)
                v = (1 - np.exp(-ra2 / (2 * 0.5**2))) * np.exp(-rb2 / (2 * beta**2)) * (1 - np.exp(-s2 / (2 * c**2)))
                v[(l2 <= 0) | (l3 <= 0)] = 0
            np.maximum(best, v.astype(np.float32), out=best)
        out.append((f"frangi_{pol}", best))
    return out


@register_feature("sato", _h_hess)
def sato(ctx: FeatureContext) -> list:
    """Sato tubeness (max over scales): geometric mean of the positive cross-section
    eigenvalues of ``sigma**2 * H`` (as scikit-image's ``sato``, but spacing-aware).

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales and ``ridges``.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``sato_dark`` and/or ``sato_bright``, float32 of the channel's shape.
    """
    out = []
    for pol, sign in _polarities(ctx):
        best = np.zeros(ctx.array.shape, np.float32)
        for s in ctx.sigmas:
            ev = np.sort(sign * ctx.hessian_eigvals(s), axis=0)[::-1][:-1]  # drop the lowest
            v = np.prod(np.maximum(ev, 0), axis=0) ** (1.0 / len(ev))
            np.maximum(best, v.astype(np.float32), out=best)
        out.append((f"sato_{pol}", best))
    return out


@register_feature("meijering", _h_hess)
def meijering(ctx: FeatureContext) -> list:
    """Meijering neuriteness (max over scales) from mixed Hessian eigenvalues
    ``l_i = e_i + alpha * sum_{j != i} e_j`` with ``alpha = 1 / (ndim + 1)``; unlike
    scikit-image it is not rescaled per image, so blocks agree with the whole image.

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales and ``ridges``.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``meijering_dark`` and/or ``meijering_bright``, float32 of the channel's shape.
    """
    alpha = 1.0 / (ctx.ndim + 1)
    mtx = np.full((ctx.ndim, ctx.ndim), alpha, np.float32)
    np.fill_diagonal(mtx, 1.0)
    out = []
    for pol, sign in _polarities(ctx):
        best = np.zeros(ctx.array.shape, np.float32)
        for s in ctx.sigmas:
            vals = np.tensordot(mtx, sign * ctx.hessian_eigvals(s), 1)
            idx = np.abs(vals).argmax(0)[None]
            v = np.maximum(np.take_along_axis(vals, idx, 0)[0], 0)
            np.maximum(best, v.astype(np.float32), out=best)
        out.append((f"meijering_{pol}", best))
    return out


@register_feature("local_std", _h_local)
def local_std(ctx: FeatureContext) -> list:
    """Gaussian-weighted local standard deviation (a cheap texture contrast) per scale.

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``local_std_s{sigma}`` per scale, float32 of the channel's shape.
    """
    out = []
    sq = ctx.cached(("sq",), lambda: ctx.array.astype(np.float32) ** 2)
    for s in ctx.sigmas:
        m2 = ndi.gaussian_filter(sq, ctx.vox(s), mode="reflect", truncate=TRUNCATE)
        m = ctx.smooth(s)
        out.append((f"local_std_s{s:g}", np.sqrt(np.maximum(m2 - m * m, 0)).astype(np.float32)))
    return out


def _quantise(ctx: FeatureContext, levels: int) -> np.ndarray:
    q = (ctx.array - ctx.value_min) / max(ctx.value_range, 1e-12) * (levels - 1)
    return np.clip(np.rint(q), 0, levels - 1).astype(np.uint8 if levels <= 256 else np.uint16)


def _planar(ctx: FeatureContext, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    a = ctx.array if ctx.ndim == 2 else None
    if a is not None:
        return fn(a).astype(np.float32)
    return np.stack([fn(sl) for sl in ctx.array]).astype(np.float32)


@register_feature("lbp", _h_planar)
def local_binary_pattern(ctx: FeatureContext) -> list:
    """Rotation-invariant uniform local binary patterns (8 neighbours) at radius = each
    scale in in-plane pixels (3D: slice by slice).

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``lbp_s{sigma}`` per scale, float32 of the channel's shape.
    """
    from skimage.feature import local_binary_pattern as lbp

    q = _quantise(ctx, 256)
    px = min(ctx.spacing[-2:])
    out = []
    for s in ctx.sigmas:
        r = max(1.0, s / px)
        sub = FeatureContext(q, ctx.spacing, ctx.sigmas)
        out.append((f"lbp_s{s:g}", _planar(sub, partial(lbp, P=8, R=r, method="uniform"))))
    return out


def _gabor_energy(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``|a * kernel|`` (complex 2D kernel) with ndimage-"reflect" borders."""
    from scipy.signal import fftconvolve

    py, px = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(a, ((py, py), (px, px)), mode="symmetric")  # = ndimage "reflect"
    return np.abs(fftconvolve(padded, kernel, mode="valid"))


@register_feature("gabor", _h_planar)
def gabor(ctx: FeatureContext) -> list:
    """Gabor energy, max and mean over 4 orientations, at wavelength ``4 * sigma``
    (in-plane; 3D slice by slice); the envelope sigma is per axis from the spacing.

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``gabor_max_s{sigma}`` and ``gabor_mean_s{sigma}`` per scale, float32 of the
        channel's shape.
    """
    from skimage.filters import gabor_kernel

    sy, sx = ctx.spacing[-2], ctx.spacing[-1]
    out = []
    for s in ctx.sigmas:
        freq = 1.0 / (4.0 * s / min(sy, sx))
        energies = []
        for theta in np.arange(4) * np.pi / 4:
            k = gabor_kernel(freq, theta=theta, sigma_x=s / sx, sigma_y=s / sy, n_stds=3)
            kr, ki = np.real(k).astype(np.float32), np.imag(k).astype(np.float32)
            kernel = (kr + 1j * ki).astype(np.complex64)
            energies.append(_planar(ctx, partial(_gabor_energy, kernel=kernel)))
        e = np.stack(energies)
        out.append((f"gabor_max_s{s:g}", e.max(axis=0)))
        out.append((f"gabor_mean_s{s:g}", e.mean(axis=0)))
    return out


def _entropy_footprint(radius: float, spacing: tuple[float, ...]) -> np.ndarray:
    """A boolean ball of physical ``radius`` on a grid of ``spacing``, at least 3 voxels wide
    on every axis (unlike [`medseg.postprocess.ellipsoid_footprint`][], which keeps an
    axis one voxel wide when the radius is below its spacing: an entropy window needs
    neighbours on every axis)."""
    r = [max(1, int(np.ceil(radius / s))) for s in spacing]
    grids = np.meshgrid(*[np.arange(-ri, ri + 1) * s for ri, s in zip(r, spacing)], indexing="ij")
    return sum(g * g for g in grids) <= max(radius, max(spacing)) ** 2 + 1e-9


@register_feature("entropy", _h_entropy)
def local_entropy(ctx: FeatureContext) -> list:
    """Local Shannon entropy (bits) of the intensity quantised to 64 levels, in a ball of
    each physical scale (the histogram-texture counterpart of GLCM statistics).

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``entropy_s{sigma}`` per scale, float32 of the channel's shape.
    """
    from skimage.filters.rank import entropy

    q = _quantise(ctx, 64)
    out = []
    for s in ctx.sigmas:
        fp = _entropy_footprint(s, ctx.spacing)
        out.append((f"entropy_s{s:g}", entropy(q, fp).astype(np.float32)))
    return out


N_LINE_ORIENTATIONS = 12
"""Line orientations over 180 degrees of the ``lines`` feature (15 degrees apart)."""


def _line_points(reach: float, spacing: tuple[float, float], angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``(dy, dx)`` voxel offsets of a centred line at ``angle`` reaching ``reach``
    (physical) either side, each with the smallest ``|t|`` (physical distance along the line)
    that produced it, sorted by it: the first offsets up to ``|t| <= r`` are the line of reach ``r``."""
    sy, sx = spacing
    step = min(sy, sx) / 4.0
    t = np.arange(-np.floor(reach / step), np.floor(reach / step) + 1) * step
    pts = np.stack([np.rint(-t * np.sin(angle) / sy), np.rint(t * np.cos(angle) / sx)], axis=1).astype(int)
    order = np.argsort(np.abs(t), kind="stable")
    pts, dist = pts[order], np.abs(t)[order]
    _, first = np.unique(pts, axis=0, return_index=True)
    first = np.sort(first)
    return pts[first], dist[first]


def line_means(a: np.ndarray, reaches: Sequence[float], spacing: Sequence[float] = (1.0, 1.0), *,
               orientations: int = N_LINE_ORIENTATIONS, bright: bool = True, dark: bool = True
               ) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
    """Mean intensity along the brightest and the darkest line through each pixel, per line reach.

    For each reach ``r`` (physical, either side of the pixel) and each of ``orientations``
    directions over 180 degrees, the mean of the pixels on the centred line of that reach;
    the maximum and the minimum over the directions are kept. Lines of one direction are
    summed outwards once and the shorter reaches read on the way, so the cost is that of the
    longest line only. The image is mirrored at its border (scipy's ``"reflect"``).

    Parameters
    ----------
    a : numpy.ndarray
        ``(y, x)`` intensities.
    reaches : sequence of float
        Line half-lengths in physical units, ascending.
    spacing : sequence of float
        Pixel spacing ``(y, x)``.
    orientations : int
        Line directions over 180 degrees.
    bright, dark : bool
        Compute the brightest line's mean, the darkest line's mean (what is not asked for is
        ``None``, and costs nothing).

    Returns
    -------
    list of tuple of numpy.ndarray
        Per reach, ``(brightest, darkest)``, float32 of ``a``'s shape (or ``None``).

    Examples
    --------
    >>> img = np.zeros((15, 15), np.float32); img[7, :] = 1.0
    >>> (hi, lo), = line_means(img, [3.0])
    >>> float(hi[7, 7]), float(lo[7, 7]) < 0.2
    (1.0, True)
    """
    a = np.asarray(a, np.float32)
    if a.ndim != 2:
        raise ConfigError(f"line_means takes a 2D array, got shape {a.shape}")
    if not len(reaches) or not (bright or dark):
        raise ConfigError("line_means needs at least one reach and bright=True or dark=True")
    sp = (float(spacing[0]), float(spacing[1]))
    hy, hx = (max(1, int(round(reaches[-1] / s))) for s in sp)
    padded = np.pad(a, ((hy, hy), (hx, hx)), mode="symmetric")  # = ndimage "reflect"
    h, w = a.shape
    hi = [np.full(a.shape, -np.inf, np.float32) if bright else None for _ in reaches]
    lo = [np.full(a.shape, np.inf, np.float32) if dark else None for _ in reaches]
    line = np.empty(a.shape, np.float32)
    mean = np.empty(a.shape, np.float32)
    for k in range(orientations):
        pts, dist = _line_points(reaches[-1], sp, np.pi * k / orientations)
        line.fill(0.0)
        n = 0
        for j, r in enumerate(reaches):
            while n < len(pts) and dist[n] <= r + 1e-9:
                dy, dx = pts[n]
                line += padded[hy + dy:hy + dy + h, hx + dx:hx + dx + w]
                n += 1
            np.divide(line, n, out=mean)
            if bright:
                np.maximum(hi[j], mean, out=hi[j])
            if dark:
                np.minimum(lo[j], mean, out=lo[j])
    return list(zip(hi, lo))


def _planes(per_plane: list[np.ndarray], ndim: int) -> np.ndarray:
    """Float32 2D result (``ndim`` 2) or the planes stacked along the first axis (3D)."""
    return (per_plane[0] if ndim == 2 else np.stack(per_plane)).astype(np.float32, copy=False)


@register_feature("lines", _h_window)
def line_strength(ctx: FeatureContext) -> list:
    """Line strength per scale (Ricci and Perfetti 2007): the mean along the best of 12
    line orientations through a voxel minus the mean of the square window around it; the line
    and the window span ``2.5 * sigma`` either side (in-plane; 3D slice by slice).

    A line detector answers at a vessel's centre even with a central light reflex and keeps
    close parallel vessels apart, where Hessian filters respond weakly or merge them; as a
    pixel-classifier feature it complements the Hessian family (see
    [`medseg.classical.vessels.line_detector`][] for the combined multi-scale detector).

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales and ``ridges``.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``lines_dark_s{sigma}`` (window mean minus the darkest line's mean) and/or
        ``lines_bright_s{sigma}`` (brightest line's mean minus the window mean) per scale,
        float32 of the channel's shape.

    Examples
    --------
    >>> img = np.ones((21, 21), np.float32); img[10, :] = 0.0
    >>> ctx = FeatureContext(img, (1.0, 1.0), (1.0,), ridges="dark")
    >>> (name, r), = line_strength(ctx)
    >>> name, bool(r[10, 10] > 0.5 > r[5, 10])
    ('lines_dark_s1', True)
    """
    pols = [p for p, _ in _polarities(ctx)]
    reaches = [2.5 * float(s) for s in ctx.sigmas]
    planes = ctx.array[None] if ctx.ndim == 2 else ctx.array
    sp = ctx.spacing[-2:]
    windows = [tuple(2 * max(1, int(round(r / v))) + 1 for v in sp) for r in reaches]
    # per plane, per scale: (brightest line, darkest line, window mean); None: polarity not asked for
    per_plane = [[(*m, ndi.uniform_filter(p, win, mode="reflect"))
                  for m, win in zip(line_means(p, reaches, sp, bright="bright" in pols, dark="dark" in pols),
                                    windows)] for p in planes]
    out = []
    for j, s in enumerate(ctx.sigmas):
        if "dark" in pols:
            out.append((f"lines_dark_s{s:g}", _planes([r[j][2] - r[j][1] for r in per_plane], ctx.ndim)))
        if "bright" in pols:
            out.append((f"lines_bright_s{s:g}", _planes([r[j][0] - r[j][2] for r in per_plane], ctx.ndim)))
    return out


@register_feature("tophat", _h_window)
def top_hat(ctx: FeatureContext) -> list:
    """Morphological top-hats per scale: the black top-hat (closing minus the image: dark
    structures narrower than the window) and/or the white top-hat (the image minus its
    opening: bright ones), with a box ``2.5 * sigma`` either side (in-plane; 3D slice by
    slice, so a vessel crossing slices is not removed by the box).

    Parameters
    ----------
    ctx : FeatureContext
        One channel, shape ``(y, x)`` or ``(z, y, x)``, with its scales and ``ridges``.

    Returns
    -------
    list of (str, numpy.ndarray)
        ``tophat_dark_s{sigma}`` and/or ``tophat_bright_s{sigma}`` per scale, float32 of
        the channel's shape.

    Examples
    --------
    >>> img = np.ones((21, 21), np.float32); img[10, :] = 0.0
    >>> ctx = FeatureContext(img, (1.0, 1.0), (1.0,), ridges="dark")
    >>> [(n, float(r[10, 10]), float(r[5, 10])) for n, r in top_hat(ctx)]
    [('tophat_dark_s1', 1.0, 0.0)]
    """
    out = []
    for s in ctx.sigmas:
        size = tuple(2 * int(h) + 1 for h in _half_widths(ctx, s))
        for pol, _ in _polarities(ctx):
            op = ndi.black_tophat if pol == "dark" else ndi.white_tophat
            out.append((f"tophat_{pol}_s{s:g}", op(ctx.array, size=size, mode="reflect").astype(np.float32)))
    return out

"""Per-pixel/voxel feature filters, registered by name in :data:`FEATURES`.

Every filter works on one spatial channel (a float32 array ``(y, x)`` or ``(z, y, x)``)
with its physical ``spacing``; scales are physical lengths (mm, or pixels when the
image has no physical spacing) and are converted to per-axis voxel sigmas, so the same
configuration means the same thing on anisotropic volumes. Derivatives are taken with
:func:`numpy.gradient` in physical units on Gaussian-smoothed copies (like
scikit-image's ``hessian_matrix``), and smoothed copies are shared between filters
through a :class:`FeatureContext` cache.

A filter is a function ``fn(ctx) -> list[(name, array)]``; every returned array has the
channel's spatial shape. Filters are local: each declares the radius (in voxels, per
axis) it reads around a voxel through :func:`filter_halo`, which lets
:func:`medseg.features.stack.feature_stack` process large volumes in blocks with a halo
and obtain the same values as in one piece.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from medseg.registry import Registry

log = logging.getLogger(__name__)

__all__ = ["FEATURES", "TRUNCATE", "FeatureContext", "filter_halo", "register_feature"]

FeatureFn = Callable[["FeatureContext"], list]
FEATURES: Registry[FeatureFn] = Registry("feature")
TRUNCATE = 4.0  # Gaussian kernels are cut at 4 sigma (scipy's default)
_HALO: dict[str, Callable[[FeatureContext], np.ndarray]] = {}


def register_feature(name: str, halo: Callable[[FeatureContext], np.ndarray]):
    """Register a filter under ``name``; ``halo(ctx)`` gives its read radius per axis (voxels)."""
    def deco(fn: FeatureFn) -> FeatureFn:
        _HALO[name] = halo
        return FEATURES.register(name)(fn)
    return deco


def filter_halo(name: str, ctx: FeatureContext) -> np.ndarray:
    """Voxels per axis that filter ``name`` reads beyond the voxel it computes."""
    return np.asarray(_HALO[name](ctx), dtype=int)


@dataclass
class FeatureContext:
    """One channel plus everything a filter needs; caches smoothed copies and Hessians.

    Parameters
    ----------
    array : numpy.ndarray
        ``(y, x)`` or ``(z, y, x)`` float32 channel (already normalised).
    spacing : tuple of float
        Physical voxel size per axis.
    sigmas : tuple of float
        Physical scales.
    value_range : float
        Robust intensity range of the *whole* channel (used by filters needing a
        contrast constant or quantisation, so blocks agree with the whole image).
    value_min : float
        Robust minimum of the whole channel (quantisation offset).
    ridges : str
        ``"dark"``, ``"bright"`` or ``"both"``: polarity of vesselness filters.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    sigmas: tuple[float, ...]
    value_range: float = 1.0
    value_min: float = 0.0
    ridges: str = "both"
    _cache: dict = field(default_factory=dict, repr=False)
    _locks: dict = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def cached(self, key: tuple, compute: Callable[[], object]):
        """``compute()`` once per ``key``, also when filters of this channel run in several
        threads (a thread asking for a value another is computing waits for it)."""
        if key in self._cache:
            return self._cache[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._cache:
                self._cache[key] = compute()
        return self._cache[key]

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def vox(self, sigma: float) -> tuple[float, ...]:
        """Physical ``sigma`` as per-axis voxel sigmas."""
        return tuple(float(sigma) / s for s in self.spacing)

    def smooth(self, sigma: float) -> np.ndarray:
        return self.cached(("g", sigma), lambda: ndi.gaussian_filter(
            self.array, self.vox(sigma), mode="reflect", truncate=TRUNCATE).astype(np.float32, copy=False))

    def gradient(self, sigma: float) -> list[np.ndarray]:
        return self.cached(("d", sigma), lambda: [d.astype(np.float32, copy=False)
                                                  for d in np.gradient(self.smooth(sigma), *self.spacing)])

    def hessian_eigvals(self, sigma: float) -> np.ndarray:
        """Scale-normalised (``sigma**2 * H``) Hessian eigenvalues, descending: ``(ndim, *shape)``."""
        def compute():
            from skimage.feature import hessian_matrix_eigvals

            grads = self.gradient(sigma)
            elems = []
            for i in range(self.ndim):
                row = np.gradient(grads[i], *self.spacing)
                elems.extend(row[j] * sigma**2 for j in range(i, self.ndim))
            return hessian_matrix_eigvals([e.astype(np.float32) for e in elems]).astype(np.float32)

        return self.cached(("h", sigma), compute)


# ---------------------------------------------------------------------------- halos
def _gauss_r(ctx: FeatureContext, sigma: float) -> np.ndarray:
    return np.array([int(TRUNCATE * v + 0.5) for v in ctx.vox(sigma)])


def _h_smooth(ctx):
    return _gauss_r(ctx, max(ctx.sigmas))


def _h_grad(ctx):
    return _h_smooth(ctx) + 1


def _h_hess(ctx):
    return _h_smooth(ctx) + 2


def _h_none(ctx):
    return np.zeros(ctx.ndim, dtype=int)


def _h_structure(ctx):
    return _gauss_r(ctx, _inner_sigma(ctx)) + 1 + _h_smooth(ctx)


def _h_local(ctx):
    return _h_smooth(ctx) + _gauss_r(ctx, min(ctx.sigmas))


def _h_planar(ctx):  # 2D-in-plane filters (LBP, Gabor) applied slice-wise
    vox = ctx.vox(max(ctx.sigmas))
    r = np.full(ctx.ndim, int(np.ceil(3.0 * max(vox[-2:]))) + 2)
    if ctx.ndim == 3:
        r[0] = 0
    return r


def _h_entropy(ctx):
    return np.array([int(np.ceil(max(ctx.sigmas) / s)) for s in ctx.spacing])


# ---------------------------------------------------------------------------- filters
@register_feature("intensity", _h_none)
def intensity(ctx: FeatureContext) -> list:
    """The (normalised) intensity itself."""
    return [("intensity", ctx.array)]


@register_feature("gaussian", _h_smooth)
def gaussian(ctx: FeatureContext) -> list:
    """Gaussian-smoothed intensity at each scale."""
    return [(f"gaussian_s{s:g}", ctx.smooth(s)) for s in ctx.sigmas]


@register_feature("gradient", _h_grad)
def gradient_magnitude(ctx: FeatureContext) -> list:
    """Scale-normalised gradient magnitude ``sigma * |grad G_sigma * I|``."""
    out = []
    for s in ctx.sigmas:
        g = ctx.gradient(s)
        out.append((f"gradient_s{s:g}", (s * np.sqrt(sum(d * d for d in g))).astype(np.float32)))
    return out


@register_feature("log", _h_hess)
def laplacian_of_gaussian(ctx: FeatureContext) -> list:
    """Scale-normalised Laplacian of Gaussian (trace of ``sigma**2 * H``)."""
    return [(f"log_s{s:g}", ctx.hessian_eigvals(s).sum(axis=0)) for s in ctx.sigmas]


@register_feature("dog", _h_smooth)
def difference_of_gaussians(ctx: FeatureContext) -> list:
    """Differences of consecutive Gaussian scales (band-pass)."""
    s = sorted(ctx.sigmas)
    return [(f"dog_s{a:g}_{b:g}", ctx.smooth(a) - ctx.smooth(b)) for a, b in zip(s[:-1], s[1:])]


@register_feature("hessian", _h_hess)
def hessian_eigenvalues(ctx: FeatureContext) -> list:
    """Eigenvalues of the scale-normalised Hessian, descending, at each scale."""
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
    integrated with a Gaussian of each scale), descending."""
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
    eigenvalues of ``sigma**2 * H`` (as scikit-image's ``sato``, but spacing-aware)."""
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
    scikit-image it is not rescaled per image, so blocks agree with the whole image."""
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
    """Gaussian-weighted local standard deviation (a cheap texture contrast) per scale."""
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
    scale in in-plane pixels (3D: slice by slice)."""
    from skimage.feature import local_binary_pattern as lbp

    q = _quantise(ctx, 256)
    px = min(ctx.spacing[-2:])
    out = []
    for s in ctx.sigmas:
        r = max(1.0, s / px)
        sub = FeatureContext(q, ctx.spacing, ctx.sigmas)
        out.append((f"lbp_s{s:g}", _planar(sub, lambda a, r=r: lbp(a, 8, r, method="uniform"))))
    return out


@register_feature("gabor", _h_planar)
def gabor(ctx: FeatureContext) -> list:
    """Gabor energy, max and mean over 4 orientations, at wavelength ``4 * sigma``
    (in-plane; 3D slice by slice); the envelope sigma is per axis from the spacing."""
    from skimage.filters import gabor_kernel

    sy, sx = ctx.spacing[-2], ctx.spacing[-1]
    out = []
    for s in ctx.sigmas:
        freq = 1.0 / (4.0 * s / min(sy, sx))
        energies = []
        for theta in np.arange(4) * np.pi / 4:
            k = gabor_kernel(freq, theta=theta, sigma_x=s / sx, sigma_y=s / sy, n_stds=3)
            kr, ki = np.real(k).astype(np.float32), np.imag(k).astype(np.float32)

            def energy(a, k=(kr + 1j * ki).astype(np.complex64)):
                from scipy.signal import fftconvolve

                py, px = k.shape[0] // 2, k.shape[1] // 2
                padded = np.pad(a, ((py, py), (px, px)), mode="symmetric")  # = ndimage "reflect"
                return np.abs(fftconvolve(padded, k, mode="valid"))
            energies.append(_planar(ctx, energy))
        e = np.stack(energies)
        out.append((f"gabor_max_s{s:g}", e.max(axis=0)))
        out.append((f"gabor_mean_s{s:g}", e.mean(axis=0)))
    return out


def ellipsoid_footprint(radius: float, spacing: tuple[float, ...]) -> np.ndarray:
    """A boolean ball of physical ``radius`` on a grid of ``spacing`` (at least 3 voxels wide)."""
    r = [max(1, int(np.ceil(radius / s))) for s in spacing]
    grids = np.meshgrid(*[np.arange(-ri, ri + 1) * s for ri, s in zip(r, spacing)], indexing="ij")
    return sum(g * g for g in grids) <= max(radius, max(spacing)) ** 2 + 1e-9


@register_feature("entropy", _h_entropy)
def local_entropy(ctx: FeatureContext) -> list:
    """Local Shannon entropy (bits) of the intensity quantised to 64 levels, in a ball of
    each physical scale (the histogram-texture counterpart of GLCM statistics)."""
    from skimage.filters.rank import entropy

    q = _quantise(ctx, 64)
    out = []
    for s in ctx.sigmas:
        fp = ellipsoid_footprint(s, ctx.spacing)
        out.append((f"entropy_s{s:g}", entropy(q, fp).astype(np.float32)))
    return out

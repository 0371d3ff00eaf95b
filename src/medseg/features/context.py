"""The feature registry and the per-channel context every filter reads.

A filter is a function ``fn(ctx) -> list[(name, array)]`` on a `FeatureContext` (one
spatial channel, ``(y, x)`` or ``(z, y, x)``, with its physical spacing and scales); every
returned array has the channel's spatial shape. Filters are local: each is registered
(`register_feature`) together with its *halo*, the radius in voxels per axis it reads
around a voxel, so a `FEATURES` entry (a `Feature`) carries everything about
its name. The halo lets `medseg.features.stack` process large volumes in blocks and
obtain the same values as in one piece. The built-in filters are in
[`medseg.features.filters`][].
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from medseg.registry import Registry

__all__ = ["FEATURES", "TRUNCATE", "Feature", "FeatureContext", "register_feature"]

FeatureFn = Callable[["FeatureContext"], list]
HaloFn = Callable[["FeatureContext"], Any]
TRUNCATE = 4.0
"""Gaussian kernels are cut at this many sigmas (scipy's default)."""


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

    Examples
    --------
    >>> ctx = FeatureContext(np.ones((4, 6), np.float32), (1.0, 2.0), (2.0,))
    >>> ctx.vox(2.0), ctx.smooth(2.0).shape
    ((2.0, 1.0), (4, 6))
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

    def cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
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
        """Number of spatial axes of the channel (2 or 3)."""
        return self.array.ndim

    def vox(self, sigma: float) -> tuple[float, ...]:
        """Physical ``sigma`` as per-axis voxel sigmas."""
        return tuple(float(sigma) / s for s in self.spacing)

    def smooth(self, sigma: float) -> np.ndarray:
        """The channel smoothed with a Gaussian of physical ``sigma`` (float32, cached)."""
        return self.cached(("g", sigma), lambda: ndi.gaussian_filter(
            self.array, self.vox(sigma), mode="reflect", truncate=TRUNCATE).astype(np.float32, copy=False))

    def gradient(self, sigma: float) -> list[np.ndarray]:
        """Physical-unit derivatives of `smooth`, one float32 array per axis (cached)."""
        return self.cached(("d", sigma), lambda: [d.astype(np.float32, copy=False)
                                                  for d in np.gradient(self.smooth(sigma), *self.spacing)])

    def hessian_eigvals(self, sigma: float) -> np.ndarray:
        """Scale-normalised (``sigma**2 * H``) Hessian eigenvalues, descending: ``(ndim, *shape)``."""
        def compute() -> np.ndarray:
            from skimage.feature import hessian_matrix_eigvals

            grads = self.gradient(sigma)
            elems = []
            for i in range(self.ndim):
                row = np.gradient(grads[i], *self.spacing)
                elems.extend(row[j] * sigma**2 for j in range(i, self.ndim))
            return hessian_matrix_eigvals([e.astype(np.float32) for e in elems]).astype(np.float32)

        return self.cached(("h", sigma), compute)


@dataclass(frozen=True)
class Feature:
    """A registered filter: its name, the function computing it and its halo.

    Calling the entry computes the filter, so ``FEATURES.get(name)(ctx)`` gives the
    ``(name, array)`` pairs.

    Parameters
    ----------
    name : str
        The registered name (``FeatureConfig.features`` entries).
    fn : callable
        ``fn(ctx) -> list of (str, ndarray)``; each array has the channel's spatial shape
        ``(y, x)`` or ``(z, y, x)``.
    reach : callable
        ``reach(ctx) -> int array, shape (ndim,)``: voxels per axis the filter reads
        beyond the voxel it computes (see `halo`).

    Examples
    --------
    >>> import medseg.features  # registers the built-in filters
    >>> ctx = FeatureContext(np.zeros((8, 8), np.float32), (1.0, 2.0), (1.0, 2.0))
    >>> FEATURES.get("gaussian").halo(ctx).tolist()
    [8, 4]
    >>> [name for name, _ in FEATURES.get("gaussian")(ctx)]
    ['gaussian_s1', 'gaussian_s2']
    """

    name: str
    fn: FeatureFn
    reach: HaloFn

    def __call__(self, ctx: FeatureContext) -> list:
        """The filter's ``(name, array)`` pairs for the channel in ``ctx``."""
        return self.fn(ctx)

    def halo(self, ctx: FeatureContext) -> np.ndarray:
        """Voxels per axis the filter reads beyond the voxel it computes.

        Parameters
        ----------
        ctx : FeatureContext
            Spacing and scales (the array itself is not read).

        Returns
        -------
        numpy.ndarray
            Integer radii, shape ``(ndim,)``.
        """
        return np.asarray(self.reach(ctx), dtype=int)


FEATURES: Registry[Feature] = Registry("feature")
"""Every feature filter by name; entries are `Feature` (function and halo)."""


def register_feature(name: str, halo: HaloFn) -> Callable[[FeatureFn], FeatureFn]:
    """Decorator: register the filter ``fn`` in `FEATURES` under ``name`` with its halo.

    Parameters
    ----------
    name : str
        The feature name.
    halo : callable
        ``halo(ctx) -> int array, shape (ndim,)``: the filter's read radius per axis in voxels.

    Returns
    -------
    callable
        A decorator that registers ``fn`` and returns it unchanged.
    """
    def deco(fn: FeatureFn) -> FeatureFn:
        FEATURES.register(name)(Feature(name, fn, halo))
        return fn
    return deco

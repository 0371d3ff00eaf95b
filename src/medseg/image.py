"""The `Image` data model: an array with its physical geometry.

Spatial axes are in NumPy order, ``(y, x)`` in 2D and ``(z, y, x)`` in 3D, optionally
preceded by one channel axis. ``spacing``, ``origin`` and ``direction`` are given in the
same (NumPy) axis order, so ``spacing[0]`` is the spacing of ``array``'s first spatial
axis. ``direction`` is a ``d x d`` matrix whose *column* ``i`` is the unit vector (in
world coordinates, in the same reversed order as ITK's LPS axes would give ``(z,y,x)``)
of spatial axis ``i``. The world position of index ``p`` is ``origin + direction @
(spacing * p)``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from medseg.errors import GeometryError, InputError

__all__ = ["Image", "require_finite", "same_grid", "SPACING_UNKNOWN", "length_unit"]

SPACING_UNKNOWN = "spacing_unknown"
"""``meta`` key set by readers of formats that store no physical pixel size (PNG, JPEG, BMP, GIF,
TIFF without resolution tags, ``.npy`` without a sidecar): the spacing is then 1 per pixel and
lengths are in pixels, not millimetres."""


def length_unit(*images: Image | None) -> str:
    """``"mm"``, or ``"px"`` when none of ``images`` has a spacing from its file.

    Examples
    --------
    >>> import numpy as np
    >>> length_unit(Image(np.zeros((2, 2)), meta={SPACING_UNKNOWN: True}))
    'px'
    >>> length_unit(Image(np.zeros((2, 2))))
    'mm'
    """
    known = [im for im in images if im is not None]
    if known and all(im.meta.get(SPACING_UNKNOWN) for im in known):
        return "px"
    return "mm"


def require_finite(array: np.ndarray, *, case: str | None = None, before: str = "segmenting") -> None:
    """Refuse an image array holding NaN or Inf with one clear message.

    Such values would silently poison thresholds, normalisation and gradients.

    Parameters
    ----------
    array : ndarray, any shape
        The image data.
    case : str, optional
        Case name to put in the message.
    before : str
        What the values must be fixed before ("segmenting", "training", ...).

    Raises
    ------
    InputError
        When a float array holds NaN or Inf.

    Examples
    --------
    >>> import numpy as np
    >>> require_finite(np.zeros(3))
    >>> require_finite(np.array([1.0, np.nan]))
    Traceback (most recent call last):
    ...
    medseg.errors.InputError: the image contains 1 NaN/Inf value(s); fill or mask them before segmenting
    """
    a = np.asarray(array)
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        n = int(a.size - np.count_nonzero(np.isfinite(a)))
        where = f"case '{case}': the image" if case is not None else "the image"
        raise InputError(f"{where} contains {n} NaN/Inf value(s); fill or mask them before {before}"
                         + (" (`medseg inspect` lists such cases)" if case is not None else ""))


def _as_tuple(values, n: int, name: str) -> tuple[float, ...]:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != n:
        raise InputError(f"{name} has {arr.size} values but the image has {n} spatial axes")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or Inf: {tuple(arr)}")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True, eq=False)
class Image:
    """An image or label map with geometry.

    Parameters
    ----------
    array : numpy.ndarray
        ``(y, x)``, ``(z, y, x)``, or either preceded by a channel axis.
    spacing : tuple of float, optional
        Physical size of a pixel/voxel along each spatial axis (mm). Default 1.
    origin : tuple of float, optional
        World position of the first voxel's centre. Default 0.
    direction : array_like, optional
        ``d x d`` direction cosines (columns are axis directions). Default identity.
    meta : mapping, optional
        Format-specific, patient-free metadata (modality, window, source format, ...).

    Examples
    --------
    >>> import numpy as np
    >>> img = Image(np.zeros((4, 5)), spacing=(0.5, 0.25))
    >>> img.ndim, img.shape, img.has_channels
    (2, (4, 5), False)
    >>> img.with_array(np.ones((4, 5))).spacing
    (0.5, 0.25)
    """

    # None in the constructor means the default; after construction the geometry is always
    # filled in (hence the attribute types and the ignores on the None defaults)
    array: np.ndarray
    spacing: tuple[float, ...] = None  # type: ignore[assignment]
    origin: tuple[float, ...] = None  # type: ignore[assignment]
    direction: np.ndarray = None  # type: ignore[assignment]
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asarray(self.array)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise InputError(f"unsupported array dtype {arr.dtype}: expected bool, integer or float")
        if arr.size == 0:
            raise InputError(f"the image is empty (shape {arr.shape})")
        if self.spacing is None:
            if arr.ndim not in (2, 3):
                raise InputError(
                    f"cannot infer spatial dimensions of an array with shape {arr.shape}: pass spacing"
                )
            nsp = arr.ndim
        else:
            nsp = len(np.asarray(self.spacing).reshape(-1))
        if nsp not in (2, 3):
            raise InputError(f"images must have 2 or 3 spatial axes, got {nsp}")
        if arr.ndim not in (nsp, nsp + 1):
            raise InputError(
                f"array shape {arr.shape} does not fit {nsp} spatial axes (plus at most one channel axis)"
            )
        spacing = _as_tuple(self.spacing, nsp, "spacing") if self.spacing is not None else (1.0,) * nsp
        if any(s <= 0 for s in spacing):
            raise InputError(f"spacing must be positive, got {spacing}")
        origin = _as_tuple(self.origin, nsp, "origin") if self.origin is not None else (0.0,) * nsp
        if self.direction is None:
            direction = np.eye(nsp)
        else:
            direction = np.asarray(self.direction, dtype=float)
            if direction.size != nsp * nsp:
                raise InputError(f"direction must be {nsp}x{nsp}, got {direction.size} values")
            direction = direction.reshape(nsp, nsp)
            if not np.all(np.isfinite(direction)):
                raise InputError("direction contains NaN or Inf")
        direction = direction.copy()
        direction.setflags(write=False)
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    # ------------------------------------------------------------------ properties
    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return len(self.spacing)

    @property
    def has_channels(self) -> bool:
        """True when ``array`` has a channel axis before the spatial axes."""
        return self.array.ndim == self.ndim + 1

    @property
    def n_channels(self) -> int:
        """Number of channels (1 without a channel axis)."""
        return int(self.array.shape[0]) if self.has_channels else 1

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape (without the channel axis)."""
        return tuple(int(s) for s in self.array.shape[-self.ndim:])

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype."""
        return self.array.dtype

    # ------------------------------------------------------------------ constructors
    def with_array(self, array: np.ndarray, *, meta: Mapping[str, Any] | None = None) -> Image:
        """A new Image with the same geometry and ``array``.

        Parameters
        ----------
        array : ndarray, shape ``spatial`` or ``(C, *spatial)``
            Must have this image's spatial shape; a channel axis may be added or dropped.
        meta : mapping, optional
            Replaces ``meta`` (default: keep this image's).

        Returns
        -------
        Image
        """
        arr = np.asarray(array)
        if tuple(arr.shape[-self.ndim:]) != self.shape or arr.ndim not in (self.ndim, self.ndim + 1):
            raise GeometryError(
                f"new array shape {arr.shape} does not match the spatial shape {self.shape}"
            )
        return Image(arr, self.spacing, self.origin, self.direction, self.meta if meta is None else meta)

    def with_meta(self, **updates: Any) -> Image:
        """A new Image with ``updates`` merged into ``meta`` (same array and geometry)."""
        meta = dict(self.meta)
        meta.update(updates)
        return Image(self.array, self.spacing, self.origin, self.direction, meta)

    def channel(self, index: int) -> Image:
        """One channel as a channel-less Image (index 0 of a channel-less image is itself)."""
        if not self.has_channels:
            if index not in (0, -1):
                raise InputError(f"the image has 1 channel; channel {index} does not exist")
            return self
        if not -self.n_channels <= index < self.n_channels:
            raise InputError(f"the image has {self.n_channels} channels; channel {index} does not exist")
        return Image(self.array[index], self.spacing, self.origin, self.direction, self.meta)

    def channels_first(self) -> np.ndarray:
        """The array with a channel axis always present: ``(C, *spatial)``."""
        return self.array if self.has_channels else self.array[None]

    # ------------------------------------------------------------------ geometry
    def affine(self) -> np.ndarray:
        """The ``(d+1)x(d+1)`` index-to-world matrix in NumPy axis order."""
        d = self.ndim
        a = np.eye(d + 1)
        a[:d, :d] = self.direction @ np.diag(self.spacing)
        a[:d, d] = self.origin
        return a

    def same_geometry(self, other: Image, *, atol: float = 1e-4) -> bool:
        """True when ``other`` lies on the same grid (see `same_grid`)."""
        return same_grid(self, other, atol=atol)

    def __repr__(self) -> str:
        ch = f", channels={self.n_channels}" if self.has_channels else ""
        sp = ", ".join(f"{s:.4g}" for s in self.spacing)
        return f"Image(shape={self.shape}{ch}, dtype={self.dtype}, spacing=({sp}))"


def same_grid(a: Image, b: Image, *, atol: float = 1e-4) -> bool:
    """True when ``a`` and ``b`` share spatial shape, spacing, origin and direction.

    Tolerances are relative to spacing for origin (``atol`` times the smallest spacing
    plus ``atol`` mm) and absolute for the direction cosines.
    """
    if a.ndim != b.ndim or a.shape != b.shape:
        return False
    if not np.allclose(a.spacing, b.spacing, rtol=atol, atol=atol):
        return False
    tol = atol * (1 + min(a.spacing))
    if not np.allclose(a.origin, b.origin, rtol=0, atol=max(tol, 1e-3 * min(a.spacing))):
        return False
    return bool(np.allclose(a.direction, b.direction, atol=max(atol, 1e-4)))

"""Conversions between medseg's NumPy-order geometry and ITK/NIfTI conventions.

medseg stores spacing, origin and direction in NumPy axis order with world coordinates
in ITK's LPS frame, reversed to the same order: for a 3D image, axis 0 is ``z``. ITK
(SimpleITK, NRRD, MHA, DICOM) uses ``(x, y, z)`` index order and LPS; NIfTI uses RAS.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["from_itk", "to_itk", "from_ras_affine", "to_ras_affine"]


def from_itk(spacing: Sequence[float], origin: Sequence[float], direction: ArrayLike
             ) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """ITK (x, y, z) geometry -> medseg NumPy-order geometry.

    Parameters
    ----------
    spacing, origin : sequence of float, length d
        In ITK order ``(x, y[, z])``.
    direction : array_like, d*d values
        ITK's row-major direction matrix (columns are axis directions).

    Returns
    -------
    spacing, origin : tuple of float, length d
        In NumPy order.
    direction : ndarray, shape (d, d)

    Examples
    --------
    >>> from_itk((0.5, 2.0), (1.0, 3.0), (1, 0, 0, 1))[:2]
    ((2.0, 0.5), (3.0, 1.0))
    """
    d = len(spacing)
    D = np.asarray(direction, dtype=float).reshape(d, d)
    return tuple(float(s) for s in spacing[::-1]), tuple(float(o) for o in origin[::-1]), D[::-1, ::-1].copy()


def to_itk(spacing: Sequence[float], origin: Sequence[float], direction: ArrayLike
           ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """medseg NumPy-order geometry -> ITK (x, y, z) spacing, origin, flat direction.

    Parameters
    ----------
    spacing, origin : sequence of float, length d
        In NumPy order.
    direction : array_like, shape (d, d)

    Returns
    -------
    tuple of three tuples of float
        Spacing and origin in ITK order, the direction flattened row-major (d*d values).

    Examples
    --------
    >>> to_itk((2.0, 0.5), (3.0, 1.0), [[1.0, 0.0], [0.0, 1.0]])
    ((0.5, 2.0), (1.0, 3.0), (1.0, 0.0, 0.0, 1.0))
    """
    D = np.asarray(direction, dtype=float)
    return (tuple(float(s) for s in spacing[::-1]), tuple(float(o) for o in origin[::-1]),
            tuple(float(v) for v in D[::-1, ::-1].reshape(-1)))


def from_ras_affine(affine: ArrayLike, ndim: int = 3) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """A NIfTI RAS voxel-to-world affine -> medseg geometry (3D).

    Parameters
    ----------
    affine : array_like, shape (4, 4)
        Voxel ``(i, j, k)`` to RAS world.
    ndim : int
        Unused (3D only); kept for callers that pass it.

    Returns
    -------
    spacing, origin : tuple of float, length 3
        NumPy order ``(z, y, x)``, LPS world.
    direction : ndarray, shape (3, 3)

    Examples
    --------
    >>> import numpy as np
    >>> from_ras_affine(np.diag([0.5, 1.0, 2.0, 1.0]))[0]
    (2.0, 1.0, 0.5)
    """
    A = np.asarray(affine, dtype=float)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ A
    M = lps[:3, :3]
    spacing = np.linalg.norm(M, axis=0)
    spacing[spacing == 0] = 1.0
    D = M / spacing
    sp, org, dirn = from_itk(spacing, lps[:3, 3], D)
    return sp, org, dirn


def to_ras_affine(spacing: Sequence[float], origin: Sequence[float], direction: ArrayLike) -> np.ndarray:
    """medseg 3D geometry -> NIfTI RAS affine.

    Parameters
    ----------
    spacing, origin : sequence of float, length 3
        NumPy order ``(z, y, x)``, LPS world.
    direction : array_like, shape (3, 3)

    Returns
    -------
    ndarray, shape (4, 4)
        Voxel ``(i, j, k)`` to RAS world.

    Examples
    --------
    >>> to_ras_affine((2.0, 1.0, 0.5), (0.0, 0.0, 0.0), np.eye(3)).diagonal().tolist()
    [-0.5, -1.0, 2.0, 1.0]
    """
    sp, org, flat = to_itk(spacing, origin, direction)
    D = np.asarray(flat).reshape(3, 3)
    A = np.eye(4)
    A[:3, :3] = D @ np.diag(sp)
    A[:3, 3] = org
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ A

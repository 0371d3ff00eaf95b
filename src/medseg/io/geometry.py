"""Conversions between medseg's NumPy-order geometry and ITK/NIfTI conventions.

medseg stores spacing, origin and direction in NumPy axis order with world coordinates
in ITK's LPS frame, reversed to the same order: for a 3D image, axis 0 is ``z``. ITK
(SimpleITK, NRRD, MHA, DICOM) uses ``(x, y, z)`` index order and LPS; NIfTI uses RAS.
"""
from __future__ import annotations

import numpy as np

__all__ = ["from_itk", "to_itk", "from_ras_affine", "to_ras_affine"]


def from_itk(spacing, origin, direction) -> tuple[tuple, tuple, np.ndarray]:
    """ITK (x, y, z) geometry -> medseg NumPy-order geometry."""
    d = len(spacing)
    D = np.asarray(direction, dtype=float).reshape(d, d)
    return tuple(float(s) for s in spacing[::-1]), tuple(float(o) for o in origin[::-1]), D[::-1, ::-1].copy()


def to_itk(spacing, origin, direction) -> tuple[tuple, tuple, tuple]:
    """medseg NumPy-order geometry -> ITK (x, y, z) spacing, origin, flat direction."""
    D = np.asarray(direction, dtype=float)
    return (tuple(float(s) for s in spacing[::-1]), tuple(float(o) for o in origin[::-1]),
            tuple(float(v) for v in D[::-1, ::-1].reshape(-1)))


def from_ras_affine(affine: np.ndarray, ndim: int = 3) -> tuple[tuple, tuple, np.ndarray]:
    """A NIfTI RAS voxel-to-world affine -> medseg geometry (3D)."""
    A = np.asarray(affine, dtype=float)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ A
    M = lps[:3, :3]
    spacing = np.linalg.norm(M, axis=0)
    spacing[spacing == 0] = 1.0
    D = M / spacing
    sp, org, dirn = from_itk(spacing, lps[:3, 3], D)
    return sp, org, dirn


def to_ras_affine(spacing, origin, direction) -> np.ndarray:
    """medseg 3D geometry -> NIfTI RAS affine."""
    sp, org, flat = to_itk(spacing, origin, direction)
    D = np.asarray(flat).reshape(3, 3)
    A = np.eye(4)
    A[:3, :3] = D @ np.diag(sp)
    A[:3, 3] = org
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ A

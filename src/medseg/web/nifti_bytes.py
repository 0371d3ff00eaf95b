"""NIfTI bytes for the browser: images and label maps to ``.nii.gz`` bytes and back.

The viewer (niivue) reads NIfTI; every image goes out as one, with its geometry (the same
RAS affine [`medseg.io.write_image`][] would write). A 2D image is a one-slice volume, a
colour photograph an RGB24 volume (3 channels shown in colour), other multi-channel images a
4D volume (one frame per channel). Label maps the browser sends back are decoded with
`decode_label` and checked against the image's grid.

Examples
--------
>>> import numpy as np
>>> from medseg.image import Image
>>> img = Image(np.zeros((4, 5), np.uint8), spacing=(0.5, 0.25))
>>> data = encode(img)
>>> decode_label(data, img).shape
(4, 5)
"""
from __future__ import annotations

import gzip
from typing import Any

import numpy as np

from medseg.errors import GeometryError, InputError
from medseg.image import Image
from medseg.io.geometry import from_ras_affine, to_ras_affine

__all__ = ["affine_of", "as_integer", "encode", "decode", "decode_label", "is_rgb"]

_RGB = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])


def affine_of(image: Image) -> np.ndarray:
    """The RAS voxel-to-world affine of ``image`` as a (one-slice, for 2D) NIfTI volume.

    Parameters
    ----------
    image : Image

    Returns
    -------
    ndarray, shape (4, 4)

    Examples
    --------
    >>> import numpy as np
    >>> affine_of(Image(np.zeros((2, 3)), spacing=(2.0, 0.5))).diagonal().tolist()
    [-0.5, -2.0, 1.0, 1.0]
    """
    if image.ndim == 3:
        return to_ras_affine(image.spacing, image.origin, np.asarray(image.direction))
    aff = image.meta.get("nifti_affine")
    if aff is not None:  # a 2D image read from NIfTI: its slice geometry
        sp, org, dirn = from_ras_affine(np.asarray(aff))
        D = np.eye(3)
        D[1:, 1:] = image.direction
        D[0, 0] = 1.0 if dirn[0, 0] == 0 else float(np.sign(dirn[0, 0]))
        return to_ras_affine((sp[0], *image.spacing), (org[0], *image.origin), D)
    D = np.eye(3)
    D[1:, 1:] = image.direction
    return to_ras_affine((1.0, *image.spacing), (0.0, *image.origin), D)


def is_rgb(image: Image) -> bool:
    """True for a colour photograph: 2D, 3 or 4 channels of 8-bit values.

    Parameters
    ----------
    image : Image

    Returns
    -------
    bool
    """
    return (image.has_channels and image.n_channels in (3, 4) and image.ndim == 2
            and (image.array.dtype == np.uint8 or bool(image.meta.get("rgb"))))


def _xyz(arr: np.ndarray, ndim: int) -> np.ndarray:
    """``(z, y, x)`` / ``(y, x)`` -> NIfTI's ``(x, y, z)``."""
    if ndim == 2:
        arr = arr[None]
    return np.transpose(arr, (2, 1, 0))


def encode(image: Image, *, compress: bool = True) -> bytes:
    """``image`` as NIfTI-1 bytes (gzip-compressed unless ``compress=False``).

    Parameters
    ----------
    image : Image
        Grey, RGB (3/4 channels of uint8, sent as RGB24) or multi-channel (4D, a frame per channel).
    compress : bool
        gzip the bytes (``.nii.gz``).

    Returns
    -------
    bytes
    """
    import nibabel as nib

    arr = image.array
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    elif arr.dtype == np.float16 or arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    elif arr.dtype == np.int64 or arr.dtype == np.uint64:
        arr = arr.astype(np.int32) if np.abs(arr).max(initial=0) < 2 ** 31 else arr.astype(np.float32)
    if is_rgb(image):
        rgb = np.clip(arr[:3], 0, 255).astype(np.uint8)
        data = np.empty(rgb.shape[1:], dtype=_RGB)
        for i, k in enumerate("RGB"):
            data[k] = rgb[i]
        data = _xyz(data, image.ndim)
    elif image.has_channels:
        data = np.stack([_xyz(c, image.ndim) for c in arr], axis=-1)
    else:
        data = _xyz(arr, image.ndim)
    nii = nib.Nifti1Image(np.ascontiguousarray(data), affine_of(image))
    nii.set_qform(nii.affine, code=1)
    nii.set_sform(nii.affine, code=1)
    nii.header.set_slope_inter(1.0, 0.0)
    raw = nii.to_bytes()
    return gzip.compress(raw, compresslevel=1) if compress else raw


def decode(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Parse NIfTI-1 bytes (plain or gzip) into ``(array in NumPy order, affine)``.

    Parameters
    ----------
    data : bytes

    Returns
    -------
    array : ndarray
        ``(z, y, x)``.
    affine : ndarray, shape (4, 4)

    Raises
    ------
    InputError
        Not NIfTI bytes, or not a 3D volume.
    """
    import nibabel as nib

    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        nii = nib.Nifti1Image.from_bytes(data)
        arr = np.asanyarray(nii.dataobj)
    except Exception as exc:  # noqa: BLE001 - nibabel/gzip raise many kinds on bad bytes
        raise InputError(f"the body is not a NIfTI-1 image ({type(exc).__name__}: {exc})") from None
    while arr.ndim > 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise InputError(f"a label map must be a 3D (or one-slice) volume, got shape {arr.shape}")
    return np.ascontiguousarray(np.transpose(arr, (2, 1, 0))), np.asarray(nii.affine, float)


def decode_label(data: bytes, image: Image, *, what: str = "label map") -> np.ndarray:
    """Decode NIfTI bytes into an integer map on ``image``'s grid.

    Parameters
    ----------
    data : bytes
        The NIfTI (or ``.nii.gz``) bytes.
    image : Image
        The case's image: the map must have its spatial shape and affine (within 1e-3).
    what : str
        What the map is, for messages.

    Returns
    -------
    ndarray
        Integer array of shape ``image.shape`` (non-negative; uint8 when the values fit).

    Raises
    ------
    InputError
        Not NIfTI, non-integer or negative values.
    GeometryError
        Another grid (shape or affine).
    """
    arr, affine = decode(data)
    if image.ndim == 2:
        if arr.shape[0] != 1:
            raise GeometryError(f"the {what} has shape {arr.shape[::-1]} (x, y, z); the image is 2D "
                                f"{image.shape[::-1]} (x, y)")
        arr = arr[0]
    if tuple(arr.shape) != tuple(image.shape):
        raise GeometryError(f"the {what} has shape {tuple(arr.shape)}; the image has {tuple(image.shape)}")
    if not np.allclose(affine, affine_of(image), atol=1e-3):
        raise GeometryError(f"the {what}'s geometry (affine) differs from the image's: save it on the image grid")
    return as_integer(arr, what=what)


def as_integer(arr: Any, *, what: str = "label map") -> np.ndarray:
    """``arr`` as a non-negative integer array (uint8 or uint16 when the values fit).

    Parameters
    ----------
    arr : array_like
    what : str
        For messages.

    Returns
    -------
    ndarray

    Raises
    ------
    InputError
        Non-integer or negative values.

    Examples
    --------
    >>> as_integer(np.array([0.0, 2.0])).dtype
    dtype('uint8')
    """
    a = np.asarray(arr)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            raise InputError(f"the {what} holds non-integer values")
    elif a.dtype.kind not in "biu":
        raise InputError(f"the {what} has dtype {a.dtype}; expected integers")
    if a.size and a.min() < 0:
        raise InputError(f"the {what} holds negative values")
    top = int(a.max(initial=0))
    return a.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32)

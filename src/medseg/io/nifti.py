"""NIfTI-1/2 (``.nii``, ``.nii.gz``) through nibabel, affine preserved exactly.

Data are read in voxel order (i, j, k) and reversed to NumPy order (k, j, i). A 4th
dimension becomes the channel axis. A volume with a single slice (X, Y, 1), as nnU-Net
writes 2D data, reads as a 2D image; the slice's geometry is kept in ``meta`` so it is
written back unchanged. The original affine, qform/sform codes and header scaling are
reused on writing whenever the geometry has not changed, so a read -> write round trip
preserves the affine bit for bit.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from medseg.errors import FormatError
from medseg.image import Image
from medseg.io.base import Format, register_format
from medseg.io.geometry import from_ras_affine, to_ras_affine

__all__ = ["read_nifti", "write_nifti"]


def read_nifti(path: Path) -> Image:
    """Read a NIfTI-1/2 file.

    Parameters
    ----------
    path : Path
        ``.nii`` or ``.nii.gz``.

    Returns
    -------
    Image
        Array ``(z, y, x)`` (``(C, z, y, x)`` for a 4th/5th dimension), or ``(y, x)`` for
        a single-slice volume; ``meta`` keeps the affine, qform/sform codes, stored shape,
        dtype and scaling for writing back.

    Raises
    ------
    FormatError
        Not a NIfTI file, truncated data, or more than 4 usable dimensions.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> p = Path(tempfile.mkdtemp()) / "v.nii.gz"
    >>> write_nifti(Image(np.zeros((3, 4, 5), np.int16), (2.0, 1.0, 0.5)), p)
    >>> img = read_nifti(p)
    >>> img.shape, img.spacing
    ((3, 4, 5), (2.0, 1.0, 0.5))
    """
    import nibabel as nib

    try:
        nii = nib.load(str(path))
        if not isinstance(nii, nib.nifti1.Nifti1Image):  # Nifti2Image is a subclass
            raise FormatError(f"{path}: not a NIfTI file (nibabel read it as {type(nii).__name__})")
        data = np.asanyarray(nii.dataobj)
        if str(path).lower().endswith(".gz"):
            _check_gzip(path)
    except nib.filebasedimages.ImageFileError as exc:
        raise FormatError(f"{path}: not a NIfTI file ({exc})") from None
    except FormatError:
        raise
    except (EOFError, OSError, ValueError, Exception) as exc:  # noqa: BLE001 - gzip/zlib/struct errors
        reason = " ".join(str(exc).split())
        raise FormatError(f"{path}: cannot read NIfTI data ({type(exc).__name__}: {reason}); "
                          "the file may be truncated") from None
    hdr = nii.header
    affine = np.asarray(nii.affine, dtype=np.float64)
    slope, inter = hdr.get_slope_inter()
    meta = {
        "nifti_affine": affine.tolist(),
        "nifti_qform_code": int(hdr["qform_code"]),
        "nifti_sform_code": int(hdr["sform_code"]),
        "nifti_shape": list(data.shape),
        "nifti_dtype": str(hdr.get_data_dtype()),
    }
    if slope is not None and not np.isnan(slope):
        meta["nifti_scl"] = [float(slope), float(0.0 if inter is None or np.isnan(inter) else inter)]
    spacing, origin, direction = from_ras_affine(affine)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim == 5 and data.shape[3] == 1:  # (X, Y, Z, 1, C): NIfTI's vector intent
        data = data[:, :, :, 0, :]
    if data.ndim == 3:
        arr = np.transpose(data, (2, 1, 0))
    elif data.ndim == 4:
        arr = np.transpose(data, (3, 2, 1, 0))
    else:
        raise FormatError(f"{path}: NIfTI with {data.ndim} dimensions {data.shape} is not supported")
    sp_axis = 1 if arr.ndim == 4 else 0
    if arr.shape[sp_axis] == 1:  # single-slice volume -> 2D image
        arr = np.take(arr, 0, axis=sp_axis)
        return Image(np.ascontiguousarray(arr), spacing[1:], origin[1:], direction[1:, 1:],
                     meta={**meta, "nifti_2d": True})
    return Image(np.ascontiguousarray(arr), spacing, origin, direction, meta=meta)


def _check_gzip(path: Path) -> None:
    """Read a gzip stream to its end, so that its CRC and length are checked: nibabel stops
    after the bytes the header declares, so damage in the compressed data would pass."""
    with gzip.open(path, "rb") as f:
        while f.read(1 << 22):
            pass


def _geometry_3d(image: Image) -> tuple[tuple, tuple, np.ndarray]:
    if image.ndim == 3:
        return image.spacing, image.origin, np.asarray(image.direction)
    # 2D: restore the slice axis, from meta when available
    aff = image.meta.get("nifti_affine")
    if aff is not None:
        sp, org, dirn = from_ras_affine(np.asarray(aff))
        z_sp, z_org, z_dir = sp[0], org[0], dirn[0, 0]
        D = np.eye(3)
        D[1:, 1:] = image.direction
        D[0, 0] = 1.0 if z_dir == 0 else np.sign(z_dir)
        return (z_sp, *image.spacing), (z_org, *image.origin), D
    D = np.eye(3)
    D[1:, 1:] = image.direction
    return (1.0, *image.spacing), (0.0, *image.origin), D


def write_nifti(image: Image, path: Path) -> None:
    """Write ``image`` as NIfTI-1, reusing its original affine and header codes when unchanged.

    Parameters
    ----------
    image : Image
        Array ``([C,] *spatial)``; a 2D image is stored as a one-slice volume (its slice
        geometry restored from ``meta`` when it came from NIfTI), channels in the 5th
        dimension (vector intent).
    path : Path
        ``.nii`` or ``.nii.gz``.
    """
    import nibabel as nib

    spacing, origin, direction = _geometry_3d(image)
    affine = to_ras_affine(spacing, origin, direction)
    orig = image.meta.get("nifti_affine")
    if orig is not None and np.allclose(np.asarray(orig), affine, atol=1e-5, rtol=1e-6):
        affine = np.asarray(orig, dtype=float)  # exact original affine
    arr = image.array
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if image.ndim == 2:
        arr = arr[:, None] if image.has_channels else arr[None]
    data = np.transpose(arr, tuple(range(arr.ndim))[::-1])  # (x, y, z[, c])
    if data.ndim == 4:
        data = data.reshape(data.shape[:3] + (1, data.shape[3]))  # NIfTI puts components in dim 5
    # nibabel refuses 64-bit integers unless asked explicitly; NIfTI stores them exactly
    dtype = data.dtype if data.dtype in (np.int64, np.uint64) else None
    nii = nib.Nifti1Image(np.asarray(data), affine, dtype=dtype)
    hdr = nii.header
    qcode = int(image.meta.get("nifti_qform_code", 1))
    scode = int(image.meta.get("nifti_sform_code", 1))
    nii.set_qform(affine, code=qcode if qcode > 0 else 1)
    nii.set_sform(affine, code=scode if scode > 0 else 1)
    if data.ndim == 5:
        hdr.set_intent("vector")
    scl = image.meta.get("nifti_scl")
    if scl is None:
        hdr.set_slope_inter(1.0, 0.0)
    nib.save(nii, str(path))


register_format(Format("NIfTI", (".nii", ".nii.gz"), read_nifti, write_nifti, "NIfTI-1 (affine kept exactly)"))

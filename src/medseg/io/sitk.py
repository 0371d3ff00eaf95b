"""NRRD, MetaImage (MHA/MHD) and other ITK formats through SimpleITK."""
from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError, InputError
from medseg.image import Image
from medseg.io.base import Format, register_format
from medseg.io.geometry import from_itk, to_itk
from medseg.io.native import NativeOutput, itk_trouble, native_output

__all__ = ["image_from_sitk", "image_to_sitk", "read_sitk", "write_sitk"]


def image_from_sitk(img: Any, meta: dict | None = None) -> Image:
    """A SimpleITK image as an `Image` (NumPy axis order, geometry converted).

    Parameters
    ----------
    img : SimpleITK.Image
        2D or 3D, scalar or vector pixels.
    meta : dict, optional
        The new image's ``meta``.

    Returns
    -------
    Image
        Array ``(y, x)`` or ``(z, y, x)``, channel-first ``(C, ...)`` for vector pixels.

    Raises
    ------
    FormatError
        An image with other than 2 or 3 dimensions.

    Examples
    --------
    >>> import SimpleITK as sitk
    >>> s = sitk.Image(5, 4, sitk.sitkUInt8)
    >>> s.SetSpacing((0.5, 2.0))
    >>> img = image_from_sitk(s)
    >>> img.shape, img.spacing
    ((4, 5), (2.0, 0.5))
    """
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(img)  # (z, y, x[, c])
    dim = img.GetDimension()
    if dim not in (2, 3):
        raise FormatError(f"{dim}-dimensional ITK images are not supported (2D or 3D only)")
    spacing, origin, direction = from_itk(img.GetSpacing(), img.GetOrigin(), img.GetDirection())
    if img.GetNumberOfComponentsPerPixel() > 1:
        arr = np.moveaxis(arr, -1, 0)
    return Image(np.ascontiguousarray(arr), spacing, origin, direction, meta=meta or {})


def image_to_sitk(image: Image) -> Any:
    """An `Image` as a SimpleITK image with the same geometry.

    Parameters
    ----------
    image : Image
        Array ``([C,] *spatial)``; a channel axis becomes vector pixels. ``bool`` is
        stored as ``uint8`` and ``float16`` as ``float32``.

    Returns
    -------
    SimpleITK.Image

    Examples
    --------
    >>> import numpy as np
    >>> s = image_to_sitk(Image(np.zeros((4, 5), np.uint8), (2.0, 0.5)))
    >>> s.GetSize(), s.GetSpacing()
    ((5, 4), (0.5, 2.0))
    """
    import SimpleITK as sitk

    arr = image.array
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    if image.has_channels:
        img = sitk.GetImageFromArray(np.ascontiguousarray(np.moveaxis(arr, 0, -1)), isVector=True)
    else:
        img = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    sp, org, dirn = to_itk(image.spacing, image.origin, image.direction)
    img.SetSpacing(sp)
    img.SetOrigin(org)
    img.SetDirection(dirn)
    return img


def read_sitk(path: Path) -> Image:
    """Read a file SimpleITK understands (NRRD, MetaImage).

    Parameters
    ----------
    path : Path

    Returns
    -------
    Image
        See `image_from_sitk`.

    Raises
    ------
    FormatError
        Unreadable, truncated or corrupt file (one line, from ITK's message).
    """
    import SimpleITK as sitk

    out = NativeOutput()
    try:
        with native_output() as out:
            img = sitk.ReadImage(str(path))
            image = image_from_sitk(img)  # the pixel buffer is read here too: inside the capture
    except RuntimeError as exc:
        said = itk_trouble(out)
        reason = f"ITK: {said}" if said else _itk_reason(str(exc))
        raise FormatError(f"{path}: cannot read ({reason}); the file may be truncated or corrupt") from None
    trouble = itk_trouble(out) or _compressed_data_damage(Path(path))
    if trouble is not None:  # ITK read "successfully" but the data are damaged
        raise FormatError(f"{path}: cannot read (ITK: {trouble}); the file may be truncated or corrupt")
    return image


def _compressed_data_damage(path: Path) -> str | None:
    """Check the checksum of compressed data attached to a NRRD or MetaImage header.

    ITK inflates only the bytes its header declares and skips the stream's checksum, so a
    damaged compressed stream can read "successfully". Returns what is wrong, or None.
    """
    suffix = path.suffix.lower()
    if suffix not in (".nrrd", ".mha"):
        return None
    data = path.read_bytes()
    if suffix == ".mha":
        end = data.find(b"ElementDataFile = LOCAL")
        if end < 0 or not re.search(rb"CompressedData\s*=\s*True", data[:end]):
            return None
        start = data.find(b"\n", end) + 1
        inflate = zlib.decompressobj()
    else:
        end = data.find(b"\n\n")
        if end < 0 or not re.search(rb"\nencoding:\s*(gzip|gz)\s*\n", data[:end + 1]):
            return None
        start = end + 2
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper: its CRC-32 is checked
    try:
        inflate.decompress(data[start:])
    except zlib.error as exc:
        return f"compressed data damaged ({exc})"
    return None if inflate.eof else "compressed data end early"


def _itk_reason(text: str) -> str:
    """The informative line of an ITK exception text, on one line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Exception thrown in SimpleITK")]
    if not lines:
        return "unknown ITK error"
    itk = next((re.sub(r"^ITK ERROR: \w+\(0x[0-9a-f]+\): ", "", ln) for ln in lines if ln.startswith("ITK ERROR")),
               None)
    last = re.sub(r"^\[\w+\] ", "", lines[-1])
    reason = last if (itk is None or (not lines[-1].startswith("ITK ERROR") and not last.startswith("Reason"))) else itk
    return " ".join(reason.split())[:200]


def write_sitk(image: Image, path: Path) -> None:
    """Write ``image`` with SimpleITK (compressed), the format chosen by ``path``'s suffix.

    Parameters
    ----------
    image : Image
        Array ``([C,] *spatial)``.
    path : Path
        ``.nrrd``, ``.nhdr``, ``.mha`` or ``.mhd``.

    Raises
    ------
    InputError
        64-bit integers outside the 32-bit range, or SimpleITK refuses the image.
    """
    import SimpleITK as sitk

    a = image.array
    if a.dtype == np.int64 and a.size and (a.max() > 2**31 - 1 or a.min() < -(2**31)):
        raise InputError(f"{path}: values exceed the 32-bit range")
    try:
        with native_output() as out:
            sitk.WriteImage(image_to_sitk(image), str(path), useCompression=True)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1][:200]
        raise InputError(f"{path}: SimpleITK cannot write this image ({reason})") from None
    trouble = itk_trouble(out)
    if trouble is not None:
        raise InputError(f"{path}: SimpleITK could not write this image (ITK: {trouble})")


register_format(Format("NRRD", (".nrrd",), read_sitk, write_sitk, "NRRD"))
register_format(Format("NRRD", (".nhdr",), read_sitk, write_sitk, "NRRD (detached header + data file)",
                       multi_file=True))
register_format(Format("MetaImage", (".mha",), read_sitk, write_sitk, "MetaImage"))
register_format(Format("MetaImage", (".mhd",), read_sitk, write_sitk, "MetaImage (header + .raw/.zraw data file)",
                       multi_file=True))

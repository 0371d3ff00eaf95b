"""2D raster formats: PNG, JPEG, BMP, GIF through Pillow; TIFF through tifffile.

Grey images are ``(H, W)``; colour images are channel-first ``(3, H, W)`` (alpha is
dropped when fully opaque). Palette images become grey when the palette is grey, RGB
otherwise. 8- and 16-bit grey are kept at their depth. Multi-page TIFF stacks read as
3D ``(z, y, x)`` volumes.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import DependencyError, FormatError, InputError
from medseg.image import SPACING_UNKNOWN, Image
from medseg.io.base import Format, register_format

__all__ = ["read_pil", "read_tiff", "write_tiff"]


def _pil_to_array(im) -> tuple[np.ndarray, bool]:
    """Return (array, is_rgb)."""
    mode = im.mode
    if mode == "P":
        pal = im.getpalette() or []
        used = np.unique(np.asarray(im))
        rgb = np.array(pal[: 3 * 256], dtype=np.int64).reshape(-1, 3) if pal else None
        if rgb is not None and len(rgb):
            used = used[used < len(rgb)]
            cols = rgb[used]
            if np.all(cols[:, 0] == cols[:, 1]) and np.all(cols[:, 1] == cols[:, 2]):
                return np.asarray(im.convert("L")), False
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("1",):
        return np.asarray(im, dtype=np.uint8), False
    if mode in ("L", "I;16", "I;16B", "I;16L"):
        a = np.asarray(im)
        return (a.astype(np.uint16) if mode.startswith("I;16") else a), False
    if mode == "I":
        a = np.asarray(im)
        if a.min() >= 0 and a.max() < 65536:
            a = a.astype(np.uint16)
        return a, False
    if mode == "F":
        return np.asarray(im, dtype=np.float32), False
    if mode == "LA":
        return np.asarray(im)[..., 0], False
    if mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
        if mode not in ("RGB", "RGBA"):
            im = im.convert("RGB")
        a = np.asarray(im)
        if a.shape[-1] == 4 and np.all(a[..., 3] == 255):
            a = a[..., :3]
        return np.moveaxis(a, -1, 0).copy(), True
    return np.asarray(im.convert("RGB")).transpose(2, 0, 1).copy(), True


def read_pil(path: Path) -> Image:
    """Read a PNG, JPEG, BMP or GIF file through Pillow.

    Parameters
    ----------
    path : Path

    Returns
    -------
    Image
        ``(H, W)`` grey (8/16-bit kept, palette resolved) or ``(3, H, W)`` colour, unit
        spacing; ``meta["rgb"]`` says which.

    Raises
    ------
    FormatError
        Unrecognised, truncated or corrupt data.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image as PILImage
    >>> p = Path(tempfile.mkdtemp()) / "a.png"
    >>> PILImage.fromarray(np.zeros((4, 5), np.uint8)).save(p)
    >>> img = read_pil(p)
    >>> img.shape, img.meta["rgb"]
    ((4, 5), False)
    """
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(path) as im:
            im.load()
            arr, rgb = _pil_to_array(im)
    except UnidentifiedImageError:
        raise FormatError(f"{path}: not a readable {path.suffix} image (unrecognised or corrupt data)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FormatError(f"{path}: cannot decode image ({exc}); the file may be truncated") from None
    if rgb and arr.shape[0] == 3 and np.array_equal(arr[0], arr[1]) and np.array_equal(arr[0], arr[2]):
        arr, rgb = arr[0], False
    # these formats store no physical pixel size: lengths are in pixels (see SPACING_UNKNOWN)
    return Image(arr, (1.0, 1.0), meta={"rgb": rgb, SPACING_UNKNOWN: True})


def _to_2d_raster(image: Image, path: Path, allowed: tuple[str, ...]) -> np.ndarray:
    if image.ndim != 2:
        raise InputError(f"{path}: {path.suffix} holds 2D images only; this image is 3D {image.shape} "
                         "(write .nii.gz, .nrrd, .mha or .tif)")
    a = image.array
    if image.has_channels:
        if a.shape[0] == 1:
            a = a[0]
        elif a.shape[0] in (3, 4):
            a = np.moveaxis(a, 0, -1)
        else:
            raise InputError(f"{path}: cannot store {a.shape[0]} channels in {path.suffix}; use .tif, .nii.gz or .npz")
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.dtype.kind in "iu" and a.dtype not in (np.uint8, np.uint16):
        if a.min() >= 0 and a.max() <= 255:
            a = a.astype(np.uint8)
        elif a.min() >= 0 and a.max() <= 65535:
            a = a.astype(np.uint16)
    if a.dtype.name not in allowed:
        raise InputError(
            f"{path}: {path.suffix} cannot store {a.dtype} values (range {a.min():g}..{a.max():g}); "
            f"rescale to {' or '.join(allowed)} or write .tif/.nii.gz/.npz"
        )
    if a.dtype == np.uint16 and a.ndim == 3:
        raise InputError(f"{path}: 16-bit colour is not supported in {path.suffix}; use .tif")
    return a


def _writer(fmt: str, allowed: tuple[str, ...]) -> Callable[[Image, Path], None]:
    """A Pillow writer for format ``fmt`` accepting the dtypes named in ``allowed``."""
    def write(image: Image, path: Path) -> None:
        from PIL import Image as PILImage

        a = _to_2d_raster(image, path, allowed)
        if a.dtype == np.uint16:
            im = PILImage.fromarray(a.astype(np.uint16), mode=None)
        else:
            im = PILImage.fromarray(a)
        kwargs = {"quality": 95} if fmt == "JPEG" else {}
        im.save(path, format=fmt, **kwargs)
    return write


def read_tiff(path: Path) -> Image:
    """Read a TIFF through tifffile: 2D, RGB, 16-bit, float; a multi-page stack as 3D.

    Parameters
    ----------
    path : Path

    Returns
    -------
    Image
        ``(y, x)``, ``(z, y, x)`` for a stack, channel-first ``(3, ...)`` for colour; the
        pixel spacing from the resolution tags (mm), slice spacing 1.

    Raises
    ------
    FormatError
        Unreadable or truncated file, or an array that is not 2D or 3D.
    DependencyError
        A compressed TIFF whose codec (``imagecodecs``) is missing.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.tif"
    >>> write_tiff(Image(np.zeros((4, 5), np.float32), (0.5, 0.25)), p)
    >>> read_tiff(p).spacing
    (0.5, 0.25)
    """
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            arr = tf.asarray()
            page = tf.pages[0]
            photometric = getattr(page, "photometric", None)
            spacing_xy = _tiff_spacing(page)
            n_pages = len(tf.pages)
    except (tifffile.TiffFileError, ValueError, OSError, IndexError) as exc:
        if "imagecodecs" in str(exc):  # a compressed TIFF whose codec is not installed: not a bad file
            raise DependencyError(f"{path}: this TIFF is compressed ({exc}); install it with: "
                                  "pip install imagecodecs") from None
        raise FormatError(f"{path}: not a readable TIFF ({exc}); the file may be truncated") from None
    rgb = photometric is not None and int(photometric) == 2  # RGB
    meta: dict[str, Any] = {"rgb": bool(rgb)}
    if spacing_xy is None:  # no resolution tags: lengths are in pixels
        spacing_xy = (1.0, 1.0)
        meta[SPACING_UNKNOWN] = True
    if rgb and arr.shape[-1] in (3, 4):
        if arr.shape[-1] == 4 and np.all(arr[..., 3] == np.iinfo(arr.dtype).max if arr.dtype.kind in "iu" else True):
            arr = arr[..., :3]
        arr = np.moveaxis(arr, -1, 0 if arr.ndim == 3 else 1)
        if arr.ndim == 4:  # (z, C, y, x) -> (C, z, y, x)
            arr = np.moveaxis(arr, 1, 0)
    arr = np.ascontiguousarray(arr)
    nsp = arr.ndim - (1 if rgb else 0)
    spacing: tuple[float, ...]
    if nsp == 2:
        spacing = spacing_xy
    elif nsp == 3:
        spacing = (1.0, *spacing_xy)
    else:
        raise FormatError(f"{path}: TIFF with array shape {arr.shape} ({n_pages} pages) is not a 2D or 3D image")
    if rgb and arr.shape[0] == 3 and np.array_equal(arr[0], arr[1]) and np.array_equal(arr[0], arr[2]):
        arr = arr[0]
        meta["rgb"] = False
    return Image(arr, spacing, meta=meta)


def _tiff_spacing(page: Any) -> tuple[float, float] | None:
    """(y, x) pixel spacing in mm from a page's resolution tags; None when absent or odd."""
    try:
        tags = page.tags
        unit = tags.get("ResolutionUnit")
        xr, yr = tags.get("XResolution"), tags.get("YResolution")
        if unit is None or xr is None or yr is None:
            return None
        per_mm = {2: 25.4, 3: 10.0}.get(int(unit.value))
        if per_mm is None:
            return None
        xv = xr.value[0] / xr.value[1]
        yv = yr.value[0] / yr.value[1]
        if xv <= 0 or yv <= 0:
            return None
        return (per_mm / yv, per_mm / xv)
    except Exception:  # noqa: BLE001 - odd resolution tags never block reading
        return None


def write_tiff(image: Image, path: Path) -> None:
    """Write a TIFF: grey or RGB, any dtype tifffile stores; a 3D image as a page stack.

    Parameters
    ----------
    image : Image
        Array ``(y, x)``, ``(z, y, x)`` or RGB(A) channel-first ``(3|4, ...)``. The pixel
        spacing goes into the resolution tags.
    path : Path

    Raises
    ------
    InputError
        Channels other than RGB(A).
    """
    import tifffile

    a = image.array
    if a.dtype == bool:
        a = a.astype(np.uint8)
    rgb = image.has_channels and a.shape[0] in (3, 4) and image.meta.get("rgb", True)
    if rgb:
        a = np.moveaxis(a, 0, -1)
    elif image.has_channels:
        raise InputError(f"{path}: writing {a.shape[0]}-channel images to TIFF is not supported; use .nii.gz or .npz")
    sy, sx = image.spacing[-2:]
    tifffile.imwrite(path, np.ascontiguousarray(a), photometric="rgb" if rgb else "minisblack",
                     resolution=(10.0 / sx, 10.0 / sy), resolutionunit="CENTIMETER")


register_format(Format("PNG", (".png",), read_pil, _writer("PNG", ("uint8", "uint16")), "Portable Network Graphics"))
register_format(Format("JPEG", (".jpg", ".jpeg"), read_pil, _writer("JPEG", ("uint8",)),
                       "JPEG (lossy: avoid for label maps)"))
register_format(Format("BMP", (".bmp",), read_pil, _writer("BMP", ("uint8",)), "Windows bitmap"))
register_format(Format("GIF", (".gif",), read_pil, _writer("GIF", ("uint8",)), "GIF"))
register_format(Format("TIFF", (".tif", ".tiff"), read_tiff, write_tiff,
                       "TIFF (2D, RGB, 16-bit, float, multi-page 3D)"))

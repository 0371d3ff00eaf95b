"""Format registry: one reader/writer per file suffix, chosen by the path's suffix."""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medseg.errors import FormatError, InputError, MedsegError, suggest
from medseg.image import Image

log = logging.getLogger(__name__)

__all__ = ["Format", "register_format", "format_for", "read_image", "read_label", "write_image",
           "image_suffix", "strip_suffix", "supported_suffixes", "is_image_file"]


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Path], Image]
    write: Callable[[Image, Path], None] | None
    description: str = ""
    sidecar: Callable[[Image, Path], None] | None = None  # called with the final path after the rename


_FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    for s in fmt.suffixes:
        _FORMATS[s.lower()] = fmt
    return fmt


def _ensure_loaded() -> None:
    if _FORMATS:
        return
    from medseg.io import dicom, nifti, npy, pil, sitk  # noqa: F401  (registration side effects)


def supported_suffixes() -> list[str]:
    _ensure_loaded()
    return sorted(_FORMATS)


def image_suffix(path: str | Path) -> str:
    """The format suffix of ``path`` (``.nii.gz`` counts as one suffix), lower-case."""
    name = Path(path).name.lower()
    _ensure_loaded()
    for s in sorted(_FORMATS, key=len, reverse=True):
        if name.endswith(s):
            return s
    return Path(name).suffix


def strip_suffix(path: str | Path) -> str:
    """The file name without its format suffix (``case_01.nii.gz`` -> ``case_01``)."""
    name = Path(path).name
    suf = image_suffix(name)
    return name[: len(name) - len(suf)] if suf and name.lower().endswith(suf) else Path(name).stem


def is_image_file(path: Path) -> bool:
    _ensure_loaded()
    return path.is_file() and not path.name.startswith(".") and image_suffix(path) in _FORMATS


def format_for(path: str | Path, *, for_writing: bool = False) -> Format:
    _ensure_loaded()
    p = Path(path)
    if not for_writing and p.is_dir():
        return _FORMATS[".dcm"]  # a folder is read as a DICOM series
    suf = image_suffix(p)
    fmt = _FORMATS.get(suf)
    if fmt is None:
        if not for_writing and p.is_file() and suf == "":
            from medseg.io.dicom import looks_like_dicom

            if looks_like_dicom(p):
                return _FORMATS[".dcm"]
        raise FormatError(
            f"{p}: unsupported file type '{suf or '(no suffix)'}'{suggest(suf, _FORMATS)}; "
            f"supported: {', '.join(sorted(_FORMATS))}"
        )
    if for_writing and fmt.write is None:
        raise FormatError(f"{p}: medseg cannot write {fmt.name} files; choose another suffix (.nii.gz, .nrrd, .mha, .tif, .png, .npz)")
    return fmt


def read_image(path: str | Path) -> Image:
    """Read any supported image file (or a DICOM series folder) into an :class:`Image`.

    Examples
    --------
    >>> img = read_image("case_01.nii.gz")  # doctest: +SKIP
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    fmt = format_for(p)
    try:
        img = fmt.read(p)
    except MedsegError:
        raise
    except MemoryError:
        raise InputError(f"{p}: not enough memory to read this file") from None
    except Exception as exc:  # noqa: BLE001 - every library error becomes one clear message
        raise FormatError(f"{p}: cannot read as {fmt.name} ({type(exc).__name__}: {exc}); the file may be truncated or corrupt") from None
    return img.with_meta(source=str(p), format=fmt.name)


def read_label(path: str | Path) -> Image:
    """Read a label map: integer values, 0 = background.

    Binary masks stored as 0/255 (or 0/65535) become 0/1; grey RGB(A) masks become
    single-channel; float files whose values are all integers are cast to integers.
    """
    img = read_image(path)
    return as_label(img, name=str(path))


def as_label(img: Image, *, name: str = "label map") -> Image:
    a = img.array
    if img.has_channels:
        chans = a
        if chans.shape[0] in (3, 4) and img.meta.get("rgb"):
            rgb = chans[:3]
            if np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[0], rgb[2]):
                a = rgb[0]
            else:
                raise InputError(f"{name}: a colour label image must be grey (R=G=B); convert it to integer labels first")
        else:
            raise InputError(f"{name}: a label map must have one channel, got {chans.shape[0]}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise InputError(f"{name}: label map contains NaN or Inf")
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise InputError(f"{name}: label map has non-integer values (e.g. {a[np.mod(a, 1) != 0].flat[0]:g}); labels must be integers")
        a = a.astype(np.int64)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.min() < 0:
        raise InputError(f"{name}: label map has negative values (min {a.min()}); labels must be >= 0")
    vals = np.unique(a)
    if len(vals) == 2 and vals[0] == 0 and vals[1] in (255, 65535):
        a = (a > 0).astype(np.uint8)
    mx = int(a.max())
    dtype = np.uint8 if mx < 256 else (np.uint16 if mx < 65536 else np.int32)
    return Image(a.astype(dtype, copy=False), img.spacing, img.origin, img.direction, img.meta)


def write_image(image: Image, path: str | Path) -> Path:
    """Write ``image`` atomically in the format chosen by ``path``'s suffix."""
    from medseg.io.atomic import atomic_path

    p = Path(path)
    fmt = format_for(p, for_writing=True)
    try:
        with atomic_path(p) as tmp:
            fmt.write(image, tmp)
        if fmt.sidecar is not None:
            fmt.sidecar(image, p)
    except MedsegError:
        raise
    except OSError as exc:
        raise InputError(f"{p}: cannot write ({exc.strerror or exc})") from None
    return p

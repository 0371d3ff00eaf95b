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
    multi_file: bool = False  # the writer makes companion files named after the path (e.g. .mhd + .zraw)
    options: tuple[str, ...] = ()  # keyword options the reader accepts (e.g. DICOM's ``series``)


_FORMATS: dict[str, Format] = {}
_FORMAT_MODULES = ("npy", "pil", "nifti", "sitk", "dicom")


def register_format(fmt: Format) -> Format:
    for s in fmt.suffixes:
        _FORMATS[s.lower()] = fmt
    return fmt


def _ensure_loaded() -> None:
    """Import every format module (registration is their import side effect).

    Checked per module, not by "any format registered", so importing one format module
    directly (e.g. ``medseg.io.sitk``) does not hide the others.
    """
    import importlib
    import sys

    for name in _FORMAT_MODULES:
        if f"medseg.io.{name}" not in sys.modules:
            importlib.import_module(f"medseg.io.{name}")


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
        if not for_writing and p.is_file():  # DICOM files are often named IM0001 or by their UID
            from medseg.io.dicom import looks_like_dicom

            if looks_like_dicom(p):
                return _FORMATS[".dcm"]
        raise FormatError(
            f"{p}: unsupported file type '{suf or '(no suffix)'}'{suggest(suf, _FORMATS)}; "
            f"supported: {', '.join(sorted(_FORMATS))}"
        )
    if for_writing and fmt.write is None:
        raise FormatError(f"{p}: medseg reads {fmt.name} but cannot write it; choose another suffix "
                          "(.nii.gz, .nrrd, .mha, .tif, .png, .npz)")
    return fmt


def _name_file(exc: MedsegError, p: Path) -> MedsegError:
    """The same error, its message prefixed with the file when it does not name it yet."""
    msg = str(exc)
    if str(p) in msg:
        return exc
    return type(exc)(f"{p}: {msg}")


def read_image(path: str | Path, *, series: str | None = None) -> Image:
    """Read any supported image file (or a DICOM series folder) into an :class:`Image`.

    Parameters
    ----------
    path : an image file, or a folder holding a DICOM series.
    series : for a DICOM folder holding several series, the Series Instance UID (or
        series number, or unique description) to read.

    Returns
    -------
    Image
        Spatial axes in NumPy order (``(y, x)`` or ``(z, y, x)``), channel-first when the
        file has several channels; ``meta["source"]`` and ``meta["format"]`` are set.

    Examples
    --------
    >>> img = read_image("case_01.nii.gz")  # doctest: +SKIP
    >>> vol = read_image("dicom_study/", series="1.2.826.0.1.3680043.8.498.1")  # doctest: +SKIP
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    fmt = format_for(p)
    kwargs = {}
    if series is not None:
        if "series" not in fmt.options:
            raise InputError(f"{p}: --series/series= applies to DICOM folders only, this is a {fmt.name} file")
        kwargs["series"] = series
    try:
        img = fmt.read(p, **kwargs)
    except MedsegError as exc:
        raise _name_file(exc, p) from None
    except MemoryError:
        raise InputError(f"{p}: not enough memory to read this file") from None
    except Exception as exc:  # noqa: BLE001 - every library error becomes one clear message
        reason = " ".join(str(exc).split())[:200]
        raise FormatError(f"{p}: cannot read as {fmt.name} ({type(exc).__name__}: {reason}); "
                          "the file may be truncated or corrupt") from None
    return img.with_meta(source=str(p), format=fmt.name)


def read_label(path: str | Path, *, series: str | None = None) -> Image:
    """Read a label map: integer values, 0 = background.

    Binary masks stored as 0/255 (or 0/65535) become 0/1; grey RGB(A) masks become
    single-channel; float files whose values are all integers are cast to integers.
    """
    img = read_image(path, series=series)
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
    """Write ``image`` atomically in the format chosen by ``path``'s suffix.

    The image goes to a temporary name beside ``path`` and is renamed into place when
    complete; formats made of several files (``.mhd`` + ``.zraw``, ``.nhdr`` + data) are
    written in a temporary folder and moved data-first, header-last. On any error
    nothing is left at ``path``.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> write_image(Image(np.zeros((4, 5), np.uint8)), "mask.png")  # doctest: +SKIP
    """
    from medseg.io.atomic import atomic_files, atomic_path

    p = Path(path)
    fmt = format_for(p, for_writing=True)
    if not isinstance(image, Image):
        raise InputError(f"{p}: expected a medseg Image to write, got {type(image).__name__}")
    tmp_names: list[str] = []
    try:
        with (atomic_files(p) if fmt.multi_file else atomic_path(p)) as tmp:
            tmp_names.append(str(tmp))
            fmt.write(image, tmp)
        if fmt.sidecar is not None:
            fmt.sidecar(image, p)
    except MedsegError as exc:
        msg = str(exc)
        for t in tmp_names:  # the writer saw the temporary name: report the real one
            msg = msg.replace(f"{t}: ", "").replace(t, str(p))
        raise _name_file(type(exc)(msg), p) from None
    except OSError as exc:
        raise InputError(f"{p}: cannot write ({exc.strerror or exc})") from None
    except (ValueError, TypeError, RuntimeError) as exc:  # library refusals (dtype, shape)
        raise InputError(f"{p}: cannot write this {image.dtype} image of shape {image.array.shape} as "
                         f"{fmt.name} ({' '.join(str(exc).split())[:200]}); choose another suffix (.nrrd, .npz)") from None
    return p

"""Format registry: one reader/writer per file suffix, chosen by the path's suffix.

Each format module (``npy``, ``pil``, ``nifti``, ``sitk``, ``dicom``) registers a
`Format` when it is imported (``medseg.io`` imports them all). A format may carry
sniffing hooks: ``sniff`` claims a file whose suffix is not registered (DICOM files are
often named ``IM0001``) and ``sniff_folder`` claims a folder that holds one image (a DICOM
series). This module names no format: it only asks the registered ones.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medseg.errors import FormatError, InputError, MedsegError, suggest
from medseg.image import Image
from medseg.io.atomic import atomic_files, atomic_path

log = logging.getLogger(__name__)

__all__ = ["Format", "register_format", "registered_formats", "format_for", "sniff_format", "is_image_folder",
           "read_image", "write_image", "image_suffix", "strip_suffix",
           "supported_suffixes", "is_image_file"]


@dataclass(frozen=True)
class Format:
    """One image format: its suffixes, reader, optional writer and sniffing hooks.

    Parameters
    ----------
    name : str
        Display name (``"NIfTI"``), used in messages and ``meta["format"]``.
    suffixes : tuple of str
        Lower-case suffixes with the dot (``(".nii", ".nii.gz")``).
    read : callable
        ``read(path, **options) -> Image``.
    write : callable or None
        ``write(image, path) -> None``; ``None`` for read-only formats.
    description : str
        One line for listings.
    sidecar : callable or None
        Called with the image and the final path after the atomic rename.
    multi_file : bool
        The writer makes companion files named after the path (``.mhd`` + ``.zraw``).
    options : tuple of str
        Keyword options the reader accepts (DICOM's ``series``).
    sniff : callable or None
        ``sniff(file) -> bool``: the file holds this format whatever its suffix.
    sniff_folder : callable or None
        ``sniff_folder(folder) -> bool``: the folder holds one image of this format (its
        files directly inside). A format with this hook reads folders.

    Examples
    --------
    >>> fmt = format_for("scan.nii.gz")
    >>> fmt.name, fmt.write is not None
    ('NIfTI', True)
    """

    name: str
    suffixes: tuple[str, ...]
    read: Callable[..., Image]
    write: Callable[[Image, Path], None] | None
    description: str = ""
    sidecar: Callable[[Image, Path], None] | None = None
    multi_file: bool = False
    options: tuple[str, ...] = ()
    sniff: Callable[[Path], bool] | None = None
    sniff_folder: Callable[[Path], bool] | None = None


_FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    """Register ``fmt`` under each of its suffixes (a later registration replaces an earlier one).

    Parameters
    ----------
    fmt : Format
        The format to register.

    Returns
    -------
    Format
        ``fmt``, so the call can wrap a definition.
    """
    for s in fmt.suffixes:
        _FORMATS[s.lower()] = fmt
    return fmt


def registered_formats() -> list[Format]:
    """Every registered format once, in registration order.

    Returns
    -------
    list of Format

    Examples
    --------
    >>> "NIfTI" in [f.name for f in registered_formats()]
    True
    """
    out: dict[int, Format] = {}
    for fmt in _FORMATS.values():
        out.setdefault(id(fmt), fmt)
    return list(out.values())


def supported_suffixes() -> list[str]:
    """Every registered suffix, sorted.

    Returns
    -------
    list of str
        Lower-case suffixes with the dot.

    Examples
    --------
    >>> ".nii.gz" in supported_suffixes() and ".png" in supported_suffixes()
    True
    """
    return sorted(_FORMATS)


def image_suffix(path: str | Path) -> str:
    """The format suffix of ``path`` (``.nii.gz`` counts as one suffix), lower-case.

    Parameters
    ----------
    path : str or Path
        Any file name; it need not exist.

    Returns
    -------
    str
        The longest registered suffix the name ends with, else its last suffix (``""``
        when it has none).

    Examples
    --------
    >>> image_suffix("Case_01.NII.GZ"), image_suffix("notes.txt"), image_suffix("IM0001")
    ('.nii.gz', '.txt', '')
    """
    name = Path(path).name.lower()
    for s in sorted(_FORMATS, key=len, reverse=True):
        if name.endswith(s):
            return s
    return Path(name).suffix


def strip_suffix(path: str | Path) -> str:
    """The file name without its format suffix.

    Parameters
    ----------
    path : str or Path
        Any file name.

    Returns
    -------
    str

    Examples
    --------
    >>> strip_suffix("data/case_01.nii.gz"), strip_suffix("IM0001")
    ('case_01', 'IM0001')
    """
    name = Path(path).name
    suf = image_suffix(name)
    return name[: len(name) - len(suf)] if suf and name.lower().endswith(suf) else Path(name).stem


def is_image_file(path: Path) -> bool:
    """True for an existing, non-hidden file with a registered suffix.

    Parameters
    ----------
    path : Path

    Returns
    -------
    bool
        Files claimed only by their content (see `sniff_format`) are not included.
    """
    return path.is_file() and not path.name.startswith(".") and image_suffix(path) in _FORMATS


def sniff_format(path: str | Path) -> Format | None:
    """The format whose sniffing hook claims ``path``, whatever its suffix.

    Parameters
    ----------
    path : str or Path
        A file (asked of each format's ``sniff``) or a folder (``sniff_folder``).

    Returns
    -------
    Format or None
        ``None`` when no format claims it (or it does not exist).
    """
    p = Path(path)
    is_dir = p.is_dir()
    if not is_dir and not p.is_file():
        return None
    for fmt in registered_formats():
        hook = fmt.sniff_folder if is_dir else fmt.sniff
        if hook is not None and hook(p):
            return fmt
    return None


def is_image_folder(path: str | Path) -> bool:
    """True when a format claims the folder ``path`` as one image (e.g. a DICOM series).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    bool
    """
    p = Path(path)
    return p.is_dir() and sniff_format(p) is not None


def _folder_format(p: Path) -> Format:
    """The format a folder is read with: the only one that reads folders, or the one that claims it."""
    readers = [f for f in registered_formats() if f.sniff_folder is not None]
    if len(readers) == 1:
        return readers[0]  # its reader says what is wrong with a folder it does not recognise
    fmt = sniff_format(p)
    if fmt is None:
        raise FormatError(f"{p}: a folder is read as an image only when it holds one "
                          f"({', '.join(f.name for f in readers) or 'no format reads folders'})")
    return fmt


def format_for(path: str | Path, *, for_writing: bool = False) -> Format:
    """The format ``path`` is read (or written) with.

    Parameters
    ----------
    path : str or Path
        A file name; for reading also a folder (one image, such as a DICOM series) or a
        file whose content a format recognises (a DICOM file without suffix).
    for_writing : bool
        Choose by suffix only and refuse read-only formats.

    Returns
    -------
    Format

    Raises
    ------
    FormatError
        Unknown suffix (with the nearest known one), or a read-only format for writing.

    Examples
    --------
    >>> format_for("mask.png", for_writing=True).name
    'PNG'
    """
    p = Path(path)
    if not for_writing and p.is_dir():
        return _folder_format(p)
    suf = image_suffix(p)
    fmt = _FORMATS.get(suf)
    if fmt is None:
        sniffed = sniff_format(p) if not for_writing and p.is_file() else None
        if sniffed is not None:
            return sniffed
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
    """Read any supported image file (or a DICOM series folder) into an `Image`.

    Parameters
    ----------
    path : str or Path
        An image file, or a folder holding one image (a DICOM series).
    series : str, optional
        For a folder holding several DICOM series: the Series Instance UID (or series
        number, or unique description) to read.

    Returns
    -------
    Image
        Array of shape ``(y, x)`` or ``(z, y, x)`` (NumPy order), preceded by a channel
        axis ``C`` when the file has several channels; ``meta["source"]`` and
        ``meta["format"]`` are set.

    Raises
    ------
    InputError
        Missing path, or ``series`` for a format without series.
    FormatError
        Unsupported, truncated or corrupt file (the message names it).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> p = Path(tempfile.mkdtemp()) / "scan.nrrd"
    >>> p = write_image(Image(np.arange(20, dtype=np.uint8).reshape(4, 5), (0.5, 0.25)), p)
    >>> img = read_image(p)
    >>> img.shape, img.spacing, img.meta["format"]
    ((4, 5), (0.5, 0.25), 'NRRD')
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    fmt = format_for(p)
    kwargs: dict[str, Any] = {}
    if series is not None:
        if "series" not in fmt.options:
            takes = " or ".join(f.name for f in registered_formats() if "series" in f.options) or "no"
            raise InputError(f"{p}: --series/series= applies to {takes} folders only, this is a {fmt.name} file")
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


def write_image(image: Image, path: str | Path) -> Path:
    """Write ``image`` atomically in the format chosen by ``path``'s suffix.

    The image goes to a temporary name beside ``path`` and is renamed into place when
    complete; formats made of several files (``.mhd`` + ``.zraw``, ``.nhdr`` + data) are
    written in a temporary folder and moved data-first, header-last. On any error
    nothing is left at ``path``. Missing parent folders are created.

    Parameters
    ----------
    image : Image
        Array ``([C,] *spatial)`` with its geometry.
    path : str or Path
        Target file; its suffix chooses the format.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FormatError
        Unknown or read-only suffix.
    InputError
        The format cannot hold this image (dimensionality, dtype, channels) or the file
        cannot be written.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> write_image(Image(np.zeros((4, 5), np.uint8)), Path(tempfile.mkdtemp()) / "mask.png").name
    'mask.png'
    """
    p = Path(path)
    fmt = format_for(p, for_writing=True)
    if not isinstance(image, Image):
        raise InputError(f"{p}: expected a medseg Image to write, got {type(image).__name__}")
    write = fmt.write
    if write is None:  # format_for(for_writing=True) refuses read-only formats
        raise FormatError(f"{p}: medseg cannot write {fmt.name}")
    tmp_names: list[str] = []
    try:
        with (atomic_files(p) if fmt.multi_file else atomic_path(p)) as tmp:
            tmp_names.append(str(tmp))
            write(image, tmp)
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
                         f"{fmt.name} ({' '.join(str(exc).split())[:200]}); "
                         "choose another suffix (.nrrd, .npz)") from None
    return p

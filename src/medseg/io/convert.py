"""Converting an image to another format, or a dataset to another layout, safely.

The guards live here, not in the command line: the output is never the input nor a folder
holding it, an existing output is replaced only when asked, and an unknown or read-only
output format fails before anything is read. Writes are atomic.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from medseg.errors import InputError
from medseg.image import Image
from medseg.io.atomic import refuse_existing
from medseg.io.base import format_for, read_image, write_image
from medseg.io.datasets import Dataset, load_dataset
from medseg.io.inputs import input_kind
from medseg.io.labels import read_label
from medseg.io.listing import list_images
from medseg.io.writing import write_dataset

log = logging.getLogger(__name__)

__all__ = ["check_conversion", "is_dataset_input", "convert_image", "convert_dataset"]


def _same_or_inside(a: Path, b: Path) -> bool:
    """True when ``a`` is ``b`` or lies inside ``b``."""
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def check_conversion(src: str | Path, dst: str | Path) -> None:
    """Refuse a conversion whose output would replace its input.

    Parameters
    ----------
    src : str or Path
        The input file or folder.
    dst : str or Path
        The output file or folder.

    Raises
    ------
    InputError
        ``src`` is missing, ``dst`` is ``src`` (or lies inside the input file's path), or
        ``src`` lies inside ``dst``.

    Examples
    --------
    >>> import tempfile
    >>> src = Path(tempfile.mkdtemp()) / "scan.nrrd"
    >>> _ = src.write_bytes(b"")
    >>> check_conversion(src, src.with_suffix(".mha"))
    >>> check_conversion(src, src)
    Traceback (most recent call last):
    ...
    medseg.errors.InputError: ...scan.nrrd: this is the input; choose another output
    """
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if _same_or_inside(dst, src) and (src.is_file() or dst.resolve() == src.resolve()):
        raise InputError(f"{dst}: this is the input; choose another output")
    if src.is_dir() and _same_or_inside(src, dst):
        raise InputError(f"{dst}: the input {src} lies inside it; writing it would replace the input")


def is_dataset_input(src: str | Path) -> bool:
    """True when ``src`` is converted as a dataset rather than as one image.

    A dataset is a folder with a dataset layout or an ``images.npy``/``.npz`` stack, or a
    folder of plain image files; a DICOM series, a scanner export (series below) or a
    folder of series sub-folders is one image (choose the series with ``series=``).

    Parameters
    ----------
    src : str or Path

    Returns
    -------
    bool

    Raises
    ------
    InputError
        ``src`` does not exist.
    """
    kind = input_kind(src)
    if kind == "folder":  # a folder holding series sub-folders is a study: one image, like a series
        return not any(m.is_dir() for m in list_images(Path(src)))
    return kind == "dataset"


def convert_image(src: str | Path, dst: str | Path, *, series: str | None = None, label: bool = False,
                  overwrite: bool = False) -> Image:
    """Convert one image (file, DICOM file or series folder) to the format of ``dst``'s suffix.

    Parameters
    ----------
    src : str or Path
        An image file or DICOM folder.
    dst : str or Path
        The output file; its suffix chooses the format.
    series : str, optional
        The DICOM series to convert from a folder holding several.
    label : bool
        Read ``src`` as a label map (0/255 masks become 0/1).
    overwrite : bool
        Replace an existing ``dst``.

    Returns
    -------
    Image
        The image written: array ``([C,] *spatial)``, geometry unchanged.

    Raises
    ------
    FormatError
        Unknown or read-only output suffix (before anything is read).
    InputError
        ``dst`` is the input, a folder, or exists without ``overwrite``.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> root = Path(tempfile.mkdtemp())
    >>> src = write_image(Image(np.zeros((3, 4, 5), np.int16), (2.0, 1.0, 1.0)), root / "scan.nrrd")
    >>> convert_image(src, root / "scan.nii.gz").spacing
    (2.0, 1.0, 1.0)
    """
    src, dst = Path(src), Path(dst)
    check_conversion(src, dst)
    format_for(dst, for_writing=True)  # unknown or read-only suffix: fail before reading
    if dst.is_dir():
        raise InputError(f"{dst}: is a folder; give an output file name with a suffix (e.g. {dst}/image.nii.gz)")
    refuse_existing([dst], force=overwrite)
    img = read_label(src, series=series) if label else read_image(src, series=series)
    write_image(img, dst)
    return img


def convert_dataset(src: str | Path, dst: str | Path, *, layout: str = "folders", suffix: str | None = None,
                    overwrite: bool = False) -> Dataset:
    """Convert a dataset (any layout medseg reads) to ``layout`` at ``dst``, written atomically.

    ROI masks are kept only by the ``folders`` layout and unlabelled test cases only by
    ``msd``; what a layout cannot hold is left out with a warning.

    Parameters
    ----------
    src : str or Path
        A dataset folder or ``images.npy`` stack.
    dst : str or Path
        The output folder.
    layout : {"folders", "msd", "npy"}
    suffix : str, optional
        The image files' suffix (default: lossless per image).
    overwrite : bool
        Replace an existing non-empty ``dst``.

    Returns
    -------
    Dataset
        The source dataset (its cases were written).

    Raises
    ------
    InputError
        ``dst`` is the input, a file, or a non-empty folder without ``overwrite``.

    Examples
    --------
    >>> import tempfile
    >>> from medseg.testing import make_dataset
    >>> root = Path(tempfile.mkdtemp())
    >>> ds = convert_dataset(make_dataset(root / "d", kind="disc", n=2, shape=(16, 16)), root / "msd", layout="msd")
    >>> len(ds.cases), sorted(p.name for p in (root / "msd").iterdir())
    (2, ['dataset.json', 'imagesTr', 'labelsTr'])
    """
    src, dst = Path(src), Path(dst)
    check_conversion(src, dst)
    if dst.is_file():
        raise InputError(f"{dst}: is a file; a dataset is written to a folder")
    refuse_existing([dst], force=overwrite)
    ds = load_dataset(src)
    if ds.has_roi and layout != "folders":
        log.warning("the %s layout has no place for ROI masks: they are not written", layout)
    keep_tests = bool(ds.test_cases) and layout == "msd"
    if ds.test_cases and not keep_tests:
        log.warning("%d unlabelled test case(s) (imagesTs/) are not converted: only the msd layout holds them",
                    len(ds.test_cases))

    def cases() -> Iterator[tuple[str, Image, Image | None, Image | None]]:
        for case in ds.cases:
            img = ds.load_image(case)
            yield case.case_id, img, ds.load_label(case, img), ds.load_roi(case, img)

    tests = ((c.case_id, ds.load_image(c)) for c in ds.test_cases) if keep_tests else ()
    write_dataset(cases(), dst, layout=layout, suffix=suffix, label_names=ds.label_names or None,
                  channel_names=ds.channel_names or None, overwrite=overwrite, test_cases=tests)
    return ds

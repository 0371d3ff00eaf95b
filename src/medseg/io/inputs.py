"""What an input path means: an image file, a one-image folder, a folder of images, a dataset.

Commands and the web app take "a file or a folder" and must tell these apart the same way;
`input_kind` is that one answer. It asks the registered formats (their sniffing
hooks), so it names no format itself.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from medseg.errors import InputError
from medseg.io.base import is_image_file, is_image_folder, sniff_format
from medseg.io.datasets import IMAGE_DIRS
from medseg.io.listing import list_images

__all__ = ["InputKind", "input_kind", "is_dataset", "DATASET_MARKERS"]

InputKind = Literal["image", "unknown", "series", "study", "folder", "dataset"]
"""What `input_kind` answers."""

DATASET_MARKERS = (*IMAGE_DIRS, "imagesTr", "dataset.json", "images.npy", "images.npz")
"""Entries whose presence makes a folder a dataset root (see [`medseg.io.load_dataset`][])."""


def is_dataset(path: str | Path) -> bool:
    """True when ``path`` is a dataset by its layout: a root folder or an ``images.npy`` stack.

    Parameters
    ----------
    path : str or Path
        A folder holding ``images/`` (or ``image/``, ``imgs/``), ``imagesTr/``,
        ``dataset.json`` or ``images.npy``/``.npz``; or such a ``.npy``/``.npz`` file.

    Returns
    -------
    bool
        ``False`` for anything else, missing paths included.

    Examples
    --------
    >>> import tempfile
    >>> from medseg.testing import make_dataset
    >>> root = make_dataset(Path(tempfile.mkdtemp()) / "ds", kind="disc", n=2, shape=(16, 16))
    >>> is_dataset(root), is_dataset(root / "images")
    (True, False)
    """
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() in (".npy", ".npz") and p.name.lower().startswith("images")
    return p.is_dir() and any((p / m).exists() for m in DATASET_MARKERS)


def _image_folder_below(folder: Path) -> bool:
    """True when a folder at any depth below ``folder`` holds one image (e.g. a DICOM series)."""
    for dirpath, dirnames, _ in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if Path(dirpath) != folder and is_image_folder(Path(dirpath)):
            return True
    return False


def input_kind(path: str | Path) -> InputKind:
    """What the input ``path`` is.

    Parameters
    ----------
    path : str or Path
        A file or folder given as input.

    Returns
    -------
    str
        ``"image"``
            a file a format reads (by suffix, or by content: a DICOM file without suffix);
        ``"unknown"``
            a file no format claims (reading it says why);
        ``"dataset"``
            an ``images.npy``/``.npz`` stack, or a folder with a dataset layout (``images/``,
            ``imagesTr/``, ``dataset.json``, ``images.npy``) and no image of its own;
        ``"series"``
            a folder holding one image's files directly (a DICOM series; several series
            in it are told apart with ``series=``);
        ``"folder"``
            a folder of images: image files and/or one-image sub-folders (series), each
            an input of its own (also an empty folder);
        ``"study"``
            a folder without images of its own whose series lie deeper (a scanner export:
            patient/study/series); it is read as one image, choosing with ``series=``.

    Raises
    ------
    InputError
        ``path`` does not exist.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from medseg.image import Image
    >>> from medseg.io import write_image
    >>> p = write_image(Image(np.zeros((4, 4), np.uint8)), Path(tempfile.mkdtemp()) / "scans" / "a.png")
    >>> input_kind(p), input_kind(p.parent)
    ('image', 'folder')
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if not p.is_dir():
        if is_dataset(p):
            return "dataset"
        return "image" if is_image_file(p) or sniff_format(p) is not None else "unknown"
    if is_image_folder(p):
        return "series"
    if is_dataset(p):
        return "dataset"
    if list_images(p):
        return "folder"
    return "study" if _image_folder_below(p) else "folder"

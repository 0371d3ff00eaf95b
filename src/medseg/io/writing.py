"""Writing datasets in any layout (``folders``, ``msd``, ``npy``), atomically.

The whole dataset is written into a temporary folder beside the target and renamed
into place at the end, so an interrupted write never leaves a half-written dataset.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from medseg.errors import ConfigError, InputError, suggest
from medseg.image import Image
from medseg.io.atomic import atomic_dir, refuse_existing
from medseg.io.base import write_image

__all__ = ["write_dataset", "default_suffix", "LAYOUTS"]

LAYOUTS = ("folders", "msd", "npy")
"""The dataset layouts `write_dataset` writes: ``folders`` (images/, labels/, roi/), ``msd`` (the
nnU-Net v2 raw layout) and ``npy``."""
CaseTuple = tuple[str, Image, "Image | None", "Image | None"]


def default_suffix(image: Image) -> str:
    """A lossless suffix that can hold ``image``: PNG for 8/16-bit 2D grey/RGB, TIFF for
    other 2D, NIfTI for 3D.

    Parameters
    ----------
    image : Image
        Array ``([C,] *spatial)``.

    Returns
    -------
    str

    Examples
    --------
    >>> default_suffix(Image(np.zeros((4, 5), np.uint8))), default_suffix(Image(np.zeros((4, 5), np.float32)))
    ('.png', '.tif')
    >>> default_suffix(Image(np.zeros((3, 4, 5), np.float32)))
    '.nii.gz'
    """
    if image.ndim == 3:
        return ".nii.gz"
    a = image.array
    if a.dtype in (np.uint8, np.bool_) and (not image.has_channels or a.shape[0] in (1, 3, 4)):
        return ".png"
    if a.dtype == np.uint16 and not image.has_channels:
        return ".png"
    if not image.has_channels or (a.shape[0] in (3, 4) and image.meta.get("rgb")):
        return ".tif"
    return ".nii.gz"


def _label_suffix(label: Image, img_suffix: str) -> str:
    if img_suffix in (".jpg", ".jpeg"):
        return ".png"  # never store labels lossily
    if img_suffix in (".png", ".bmp", ".gif", ".tif", ".tiff") and int(label.array.max(initial=0)) > 65535:
        return ".tif"
    return img_suffix


def write_dataset(cases: Iterable[CaseTuple], root: str | Path, *, layout: str = "folders",
                  suffix: str | None = None, label_names: Mapping[int, str] | None = None,
                  channel_names: list[str] | None = None, overwrite: bool = False,
                  test_cases: Iterable[tuple[str, Image]] = ()) -> Path:
    """Write ``(case_id, image, label, roi)`` tuples as a dataset at ``root``.

    Parameters
    ----------
    cases : iterable of (str, Image, Image or None, Image or None)
        ``(case_id, image, label, roi)``; images ``([C,] *spatial)``, maps ``spatial``.
    root : str or Path
        The dataset folder to write.
    layout : {"folders", "msd", "npy"}
        ``folders`` (images/, labels/, roi/), ``msd`` (nnU-Net v2 raw layout) or ``npy``
        (images.npy + labels.npy; all cases must share one 2D/3D shape).
    suffix : str, optional
        File suffix for ``folders``/``msd`` (default: chosen per image, see
        `default_suffix`; ``msd`` defaults to ``.nii.gz``).
    label_names : mapping of int to str, optional
        Label names for ``dataset.json`` (``msd``).
    channel_names : list of str, optional
        Channel names for ``dataset.json`` (``msd``).
    overwrite : bool
        Replace an existing non-empty ``root`` (default: refuse).
    test_cases : iterable of (str, Image)
        Unlabelled ``(case_id, image)`` pairs, written to ``imagesTs/`` (``msd`` layout
        only; other layouts refuse them).

    Returns
    -------
    Path
        ``root``.

    Examples
    --------
    >>> import tempfile
    >>> img = Image(np.zeros((3, 8, 8), np.float32), (2.0, 1.0, 1.0))
    >>> lab = img.with_array(np.zeros((3, 8, 8), np.uint8))
    >>> root = write_dataset([("case_000", img, lab, None)], Path(tempfile.mkdtemp()) / "Dataset001_X", layout="msd")
    >>> sorted(p.name for p in root.iterdir())
    ['dataset.json', 'imagesTr', 'labelsTr']
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout '{layout}'{suggest(layout, LAYOUTS)}; choose {', '.join(LAYOUTS)}")
    root = Path(root)
    refuse_existing([root], force=overwrite, flag="overwrite=True")
    test_cases = list(test_cases)
    if test_cases and layout != "msd":
        raise InputError(f"the {layout} layout has no place for unlabelled test cases; use --layout msd")
    with atomic_dir(root) as tmp:
        for cid, img in test_cases:
            chans = img.channels_first()
            for c in range(chans.shape[0]):
                write_image(Image(chans[c], img.spacing, img.origin, img.direction, img.meta),
                            tmp / "imagesTs" / f"{cid}_{c:04d}{suffix or '.nii.gz'}")
        if layout == "npy":
            _write_npy(cases, tmp)
        elif layout == "msd":
            _write_msd(cases, tmp, suffix or ".nii.gz", label_names, channel_names)
        else:
            _write_folders(cases, tmp, suffix)
    return root


def _write_folders(cases, tmp: Path, suffix: str | None) -> None:
    n = 0
    for cid, img, lab, roi in cases:
        suf = suffix or default_suffix(img)
        write_image(img, tmp / "images" / f"{cid}{suf}")
        if lab is not None:
            write_image(lab, tmp / "labels" / f"{cid}{_label_suffix(lab, suf)}")
        if roi is not None:
            write_image(roi, tmp / "roi" / f"{cid}{_label_suffix(roi, suf)}")
        n += 1
    if n == 0:
        raise InputError("no cases to write")


def _write_msd(cases, tmp: Path, suffix: str, label_names, channel_names) -> None:
    n = 0
    n_ch = None
    rgb = False
    values: set[int] = set()
    for cid, img, lab, _roi in cases:
        chans = img.channels_first()
        if n_ch is None:
            n_ch = chans.shape[0]
            rgb = bool(img.meta.get("rgb")) and n_ch == 3
        elif chans.shape[0] != n_ch:
            raise InputError(f"case {cid} has {chans.shape[0]} channels, earlier cases {n_ch}")
        for c in range(chans.shape[0]):
            write_image(Image(chans[c], img.spacing, img.origin, img.direction, img.meta),
                        tmp / "imagesTr" / f"{cid}_{c:04d}{suffix}")
        if lab is not None:
            write_image(lab, tmp / "labelsTr" / f"{cid}{suffix}")
            values.update(int(v) for v in np.unique(lab.array))
        n += 1
    if n == 0:
        raise InputError("no cases to write")
    names = dict(label_names or {})
    labels = {str(names.get(v, "background" if v == 0 else f"label_{v}")): v for v in sorted(values | set(names))}
    chn = channel_names or (["R", "G", "B"] if rgb else
                            [f"channel_{i}" for i in range(n_ch)] if n_ch and n_ch > 1 else ["image"])
    info = {"channel_names": {str(i): name for i, name in enumerate(chn)}, "labels": labels,
            "numTraining": n, "file_ending": suffix}
    (tmp / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")


def _write_npy(cases, tmp: Path) -> None:
    imgs, labs = [], []
    shape = None
    for cid, img, lab, _roi in cases:
        a = np.moveaxis(img.array, 0, -1) if img.has_channels else img.array
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise InputError(f"npy layout needs one shape for all cases: case {cid} is {a.shape}, earlier {shape}; "
                             "use --layout folders or msd")
        imgs.append(a)
        if lab is not None:
            labs.append(lab.array)
    if not imgs:
        raise InputError("no cases to write")
    if labs and len(labs) != len(imgs):
        raise InputError("npy layout needs a label for every case or for none")
    np.save(tmp / "images.npy", np.stack(imgs), allow_pickle=False)
    if labs:
        np.save(tmp / "labels.npy", np.stack(labs), allow_pickle=False)

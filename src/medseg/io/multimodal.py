"""Multimodal cases: several modalities of one case (T1, FLAIR, ADC, CT + PET, ...) stacked
as channels on the grid of one reference modality.

Where the modalities come from
------------------------------
* the MSD/nnU-Net layout: ``CASE_0000``, ``CASE_0001``, ... with ``channel_names`` in
  ``dataset.json`` ([`medseg.io.load_dataset`][]);
* a folder layout with one sub-folder per modality: ``images/T1/case1.nii.gz``,
  ``images/FLAIR/case1.nii.gz`` (+ ``labels/case1.nii.gz``); the channel names are the
  sub-folder names, sorted (`modality_folders`, `pair_modalities`);
* a DICOM study whose series are picked by description, number, UID or folder name
  (``--series T1post --series FLAIR``; `read_study`, `convert_study`).

Geometry
--------
Modalities on different grids are resampled in physical space (SimpleITK, linear for
images, nearest neighbour for label maps) onto the reference modality: the one named by
``reference`` (``--reference NAME``), by default the finest (smallest voxel volume; ties:
the first). The stacked image has the reference's geometry. A modality whose physical
extent does not overlap the reference's, or a case that lacks a modality, is one
[`InputError`][medseg.errors.InputError] naming both.

Examples
--------
>>> import numpy as np
>>> t1 = Image(np.zeros((8, 8), np.float32), spacing=(1.0, 1.0))
>>> flair = Image(np.ones((4, 4), np.float32), spacing=(2.0, 2.0))
>>> both = stack_modalities([t1, flair], ["T1", "FLAIR"])
>>> both.array.shape, both.spacing, both.meta["channel_names"], both.meta["reference"]
((2, 8, 8), (1.0, 1.0), ['T1', 'FLAIR'], 'T1')
"""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medseg.errors import ConfigError, InputError
from medseg.image import Image, same_grid
from medseg.io.base import is_image_folder
from medseg.io.geometry import to_itk
from medseg.io.labels import as_label
from medseg.io.listing import case_key, list_images, short_list

log = logging.getLogger(__name__)

__all__ = ["physical_bounds", "overlap_fraction", "choose_reference", "resample_onto", "stack_modalities",
           "label_onto", "modality_folders", "pair_modalities", "read_study", "convert_study", "norm_name",
           "channel_difference"]


def norm_name(name: str) -> str:
    """A channel name for comparisons: lower case, letters and digits only.

    Examples
    --------
    >>> norm_name("FLAIR_reg") == norm_name("FLAIRreg"), norm_name("T1 post")
    (True, 't1post')
    """
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def channel_difference(trained: Sequence[str], given: Sequence[str]) -> str | None:
    """How the channels of an input differ from those a model was trained on (None: they agree).

    Names are compared with `norm_name`; an empty list means "unknown" and agrees with
    any list of the same length.

    Parameters
    ----------
    trained, given : sequence of str
        Channel names, in channel order.

    Returns
    -------
    str or None
        One sentence naming the difference.

    Examples
    --------
    >>> channel_difference(["T1post", "FLAIR"], ["FLAIR", "T1post"])
    'channel order differs: trained on T1post, FLAIR; got FLAIR, T1post'
    >>> channel_difference(["T1", "FLAIR"], ["T1", "T2"])
    'missing FLAIR; unexpected T2 (trained on T1, FLAIR; got T1, T2)'
    >>> channel_difference(["T1", "FLAIR"], ["t1", "flair"]) is None
    True
    """
    a, b = [norm_name(x) for x in trained], [norm_name(x) for x in given]
    if not a or not b:
        return None
    if a == b:
        return None
    both = f"trained on {', '.join(trained)}; got {', '.join(given)}"
    if sorted(a) == sorted(b):
        return f"channel order differs: {both}"
    missing = [t for t, n in zip(trained, a) if n not in b]
    extra = [g for g, n in zip(given, b) if n not in a]
    parts = [f"missing {', '.join(missing)}"] if missing else []
    parts += [f"unexpected {', '.join(extra)}"] if extra else []
    return f"{'; '.join(parts) or 'channels differ'} ({both})"


# ---------------------------------------------------------------------- geometry
def physical_bounds(image: Image) -> tuple[np.ndarray, np.ndarray]:
    """The axis-aligned world box (mm, NumPy axis order) covered by ``image``'s voxels.

    Parameters
    ----------
    image : Image

    Returns
    -------
    lo, hi : ndarray, shape (ndim,)
        The box's corners, voxel edges included (index -0.5 .. n-0.5).

    Examples
    --------
    >>> lo, hi = physical_bounds(Image(np.zeros((4, 10)), spacing=(2.0, 1.0), origin=(0.0, 5.0)))
    >>> lo.tolist(), hi.tolist()
    ([-1.0, 4.5], [7.0, 14.5])
    """
    d = image.ndim
    shape = np.array(image.shape, float)
    corners = np.array(np.meshgrid(*[(-0.5, n - 0.5) for n in shape], indexing="ij")).reshape(d, -1)
    world = np.asarray(image.origin, float)[:, None] + np.asarray(image.direction, float) @ (
        np.asarray(image.spacing, float)[:, None] * corners)
    return world.min(axis=1), world.max(axis=1)


def overlap_fraction(a: Image, b: Image) -> float:
    """The fraction of ``a``'s world box that ``b``'s world box covers (0: disjoint).

    Parameters
    ----------
    a, b : Image
        With the same number of spatial axes.

    Returns
    -------
    float
        In ``[0, 1]``.

    Examples
    --------
    >>> a = Image(np.zeros((10, 10)))
    >>> overlap_fraction(a, Image(np.zeros((10, 10)), origin=(5.0, 0.0)))
    0.5
    >>> overlap_fraction(a, Image(np.zeros((10, 10)), origin=(50.0, 0.0)))
    0.0
    """
    alo, ahi = physical_bounds(a)
    blo, bhi = physical_bounds(b)
    inter = np.clip(np.minimum(ahi, bhi) - np.maximum(alo, blo), 0.0, None)
    vol = float(np.prod(ahi - alo))
    return float(np.prod(inter)) / vol if vol > 0 else 0.0


def choose_reference(images: Sequence[Image], names: Sequence[str], reference: str | None = None) -> int:
    """The index of the reference modality: the one named ``reference``, else the finest.

    Parameters
    ----------
    images : sequence of Image
        The modalities.
    names : sequence of str
        Their names (compared with `norm_name`).
    reference : str, optional
        The reference's name (``--reference``); default: the smallest voxel volume, ties
        (within 0.1 %) going to the first.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        ``reference`` names no modality.

    Examples
    --------
    >>> ims = [Image(np.zeros((4, 4)), spacing=(2.0, 2.0)), Image(np.zeros((8, 8)))]
    >>> choose_reference(ims, ["T2", "T1"]), choose_reference(ims, ["T2", "T1"], "t2")
    (1, 0)
    """
    if reference:
        hits = [i for i, n in enumerate(names) if norm_name(n) == norm_name(reference)]
        if not hits:
            raise ConfigError(f"--reference {reference}: no such modality; the case has {', '.join(names)}")
        return hits[0]
    vols = [float(np.prod(im.spacing)) for im in images]
    best = min(vols)
    return next(i for i, v in enumerate(vols) if v <= best * 1.001)


def _check_overlap(image: Image, reference: Image, name: str, reference_name: str, where: str) -> None:
    if image.ndim != reference.ndim:
        raise InputError(f"{where}{name} is {image.ndim}D but the reference modality {reference_name} is "
                         f"{reference.ndim}D; the modalities of a case must have the same dimensionality")
    if overlap_fraction(reference, image) <= 0.0:
        lo, hi = physical_bounds(image)
        rlo, rhi = physical_bounds(reference)
        raise InputError(
            f"{where}{name} does not overlap the reference modality {reference_name} in physical space "
            f"({name} spans {np.round(lo, 1).tolist()}..{np.round(hi, 1).tolist()} mm, {reference_name} "
            f"{np.round(rlo, 1).tolist()}..{np.round(rhi, 1).tolist()} mm); are they from the same study "
            "and frame of reference?")


def resample_onto(image: Image, reference: Image, *, label: bool = False) -> Image:
    """``image`` resampled in physical space onto ``reference``'s grid.

    Linear interpolation for images (float32 result), nearest neighbour for label maps
    (dtype kept); voxels outside ``image`` become 0. An image already on the grid is
    returned with its array unchanged.

    Parameters
    ----------
    image : Image
        Single-channel, with ``reference.ndim`` spatial axes.
    reference : Image
        The grid (shape, spacing, origin, direction) to resample onto.
    label : bool
        Nearest-neighbour interpolation (label maps).

    Returns
    -------
    Image
        Shape ``reference.shape``, ``reference``'s geometry, ``image``'s meta.

    Raises
    ------
    InputError
        A multi-channel image or a different dimensionality.

    Examples
    --------
    >>> coarse = Image(np.arange(4, dtype=np.float32).reshape(2, 2), spacing=(2.0, 2.0), origin=(0.5, 0.5))
    >>> fine = Image(np.zeros((4, 4), np.float32))
    >>> resample_onto(coarse, fine).array[1:3, 1:3].tolist()  # voxel centres at 1, 2 mm; coarse ones at 0.5, 2.5
    [[0.75, 1.25], [1.75, 2.25]]
    """
    if image.has_channels:
        raise InputError("a modality must be a single-channel image to be resampled; split multi-channel files")
    if image.ndim != reference.ndim:
        raise InputError(f"cannot resample a {image.ndim}D image onto a {reference.ndim}D grid")
    if same_grid(image, reference, atol=1e-3):
        return Image(image.array, reference.spacing, reference.origin, reference.direction, image.meta)
    import SimpleITK as sitk

    from medseg.io.sitk import image_to_sitk  # deferred: the sitk format module imports SimpleITK

    arr = image.array
    if not label:
        arr = arr.astype(np.float32, copy=False)
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8)
    moving = image_to_sitk(Image(arr, image.spacing, image.origin, image.direction))
    grid = sitk.Image([int(n) for n in reference.shape[::-1]], moving.GetPixelID())
    sp, org, dirn = to_itk(reference.spacing, reference.origin, reference.direction)
    grid.SetSpacing(sp)
    grid.SetOrigin(org)
    grid.SetDirection(dirn)
    interp = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    out = sitk.Resample(moving, grid, sitk.Transform(), interp, 0.0, moving.GetPixelID())
    res = sitk.GetArrayFromImage(out).astype(arr.dtype, copy=False)
    return Image(np.ascontiguousarray(res), reference.spacing, reference.origin, reference.direction, image.meta)


def stack_modalities(images: Sequence[Image], names: Sequence[str], *, reference: str | None = None,
                     where: str = "") -> Image:
    """Stack single-channel modalities as channels on the reference modality's grid.

    Parameters
    ----------
    images : sequence of Image
        One single-channel image per modality, any grids that overlap in physical space.
    names : sequence of str
        The modalities' names (the channel names).
    reference : str, optional
        The reference modality's name; default: the finest (`choose_reference`).
    where : str
        Prefix of error messages (the case or file).

    Returns
    -------
    Image
        ``(C, *reference.shape)`` with the reference's geometry; float32 when a modality was
        resampled (else the modalities' common dtype). ``meta`` is the reference's plus
        ``channel_names`` and ``reference``.

    Raises
    ------
    InputError
        A multi-channel modality, mixed dimensionality, or a modality that does not overlap
        the reference.
    ConfigError
        ``reference`` names no modality.
    """
    if len(images) != len(names) or not images:
        raise InputError(f"{where}need one name per modality, got {len(images)} images and {len(names)} names")
    for im, n in zip(images, names):
        if im.has_channels:
            raise InputError(f"{where}modality {n} has {im.n_channels} channels; each modality must be one "
                             "single-channel image")
    r = choose_reference(images, names, reference)
    ref = images[r]
    arrays = []
    for i, (im, n) in enumerate(zip(images, names)):
        if i != r:
            _check_overlap(im, ref, n, names[r], where)
            cover = overlap_fraction(ref, im)
            if cover < 0.5:
                log.warning("%s%s covers only %.0f%% of the reference modality %s; the rest is filled with 0",
                            where, n, 100 * cover, names[r])
        arrays.append(resample_onto(im, ref).array if i != r else im.array)
    dtype = np.result_type(*arrays)
    if dtype.kind not in "biuf" or dtype == np.float64 and not any(a.dtype == np.float64 for a in arrays):
        dtype = np.dtype(np.float32)
    stack = np.stack([a.astype(dtype, copy=False) for a in arrays])
    meta = {k: v for k, v in ref.meta.items() if k not in ("modality", "channel_names", "reference", "rgb")}
    meta.update(channel_names=[str(n) for n in names], reference=str(names[r]),
                channel_modality=[str(im.meta.get("modality") or "") for im in images])
    return Image(stack, ref.spacing, ref.origin, ref.direction, meta)


def label_onto(label: Image, image: Image, *, where: str = "label map") -> Image:
    """A label map on ``image``'s grid: unchanged when it is already there, else resampled
    (nearest neighbour) after checking that it overlaps.

    Parameters
    ----------
    label : Image
        Integer label map.
    image : Image
        The (stacked) image whose grid the map must lie on.
    where : str
        What the map is, for messages.

    Returns
    -------
    Image

    Raises
    ------
    InputError
        The map does not overlap the image.
    """
    if same_grid(label, image, atol=1e-3):
        return Image(label.array, image.spacing, image.origin, image.direction, label.meta)
    _check_overlap(label, Image(np.zeros(image.shape, np.uint8), image.spacing, image.origin, image.direction),
                   where, "reference grid", "")
    log.info("%s is not on the reference grid: resampled onto it (nearest neighbour)", where)
    return resample_onto(label, Image(np.zeros(image.shape, np.uint8), image.spacing, image.origin, image.direction),
                         label=True)


# ---------------------------------------------------------------------- folder layout
#: sub-folder names of a dataset root (never modalities): a root is not a folder of modalities
_LAYOUT_DIRS = {"images", "image", "imgs", "labels", "masks", "label", "mask_labels", "gt", "ground_truth",
                "segmentations", "roi", "rois", "fov", "imagestr", "labelstr", "imagests", "labelsts"}

def modality_folders(images_dir: Path) -> list[Path]:
    """The modality sub-folders of a dataset's ``images/`` folder (empty when it is not one).

    ``images/`` is a folder of modalities when it holds no images of its own, only
    sub-folders (none of them a one-image folder such as a DICOM series, none named as a
    dataset's parts: ``labels``, ``roi``, ``imagesTr``, ...) of image files.

    Parameters
    ----------
    images_dir : Path

    Returns
    -------
    list of Path
        Sorted by name; the channel names are their names.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for m in ("T1", "FLAIR"):
    ...     _ = (root / m).mkdir()
    ...     _ = (root / m / "case1.npy").write_bytes(b"")
    >>> [p.name for p in modality_folders(root)]
    ['FLAIR', 'T1']
    """
    if not images_dir.is_dir():
        return []
    subs, files = [], False
    for p in sorted(images_dir.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir() and not is_image_folder(p):
            subs.append(p)
        elif not p.name.endswith(".json"):
            files = True
    if files or not subs or any(s.name.lower() in _LAYOUT_DIRS for s in subs):
        return []
    return [s for s in subs if list_images(s)] if any(list_images(s) for s in subs) else []


def pair_modalities(folders: Sequence[Path]) -> list[tuple[str, tuple[Path, ...]]]:
    """Group the files of the modality folders by case (one file per modality).

    Cases are matched by identical stems, else by a shared leading id, else by a shared
    number (as labels pair with images).

    Parameters
    ----------
    folders : sequence of Path
        One folder per modality (`modality_folders`).

    Returns
    -------
    list of (str, tuple of Path)
        ``(case_id, files in folder order)``, sorted by case id.

    Raises
    ------
    InputError
        A case that lacks a modality (naming both), or names that identify no case.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for m in ("FLAIR", "T1"):
    ...     _ = (root / m).mkdir()
    ...     _ = (root / m / "case1.npy").write_bytes(b"")
    >>> [(c, [p.parent.name for p in fs]) for c, fs in pair_modalities([root / "FLAIR", root / "T1"])]
    [('case1', ['FLAIR', 'T1'])]
    """
    files = {f: list_images(f) for f in folders}
    best: tuple[str, list[dict[str, Path]]] | None = None
    for rule in ("stem", "lead", "number"):
        keyed = []
        for f in folders:
            keys = {case_key(p, rule): p for p in files[f]}
            if len(keys) != len(files[f]):
                break
            keyed.append(keys)
        else:
            if all(set(k) == set(keyed[0]) for k in keyed):
                ids = sorted(keyed[0])
                return [(cid, tuple(k[cid] for k in keyed)) for cid in ids]
            if best is None:
                best = (rule, keyed)
    if best is None:
        raise InputError(f"{folders[0].parent}: the file names in the modality folders do not identify cases")
    _, keyed = best
    every = sorted(set().union(*keyed))
    gaps = [f"case {cid} has no {f.name} image ({f}/)" for cid in every for f, k in zip(folders, keyed)
            if cid not in k]
    raise InputError(f"{folders[0].parent}: {len(gaps)} missing modality file(s): {short_list(gaps, 4)}")


# ---------------------------------------------------------------------- DICOM study
def _channel_name(want: str, info) -> str:
    """The channel name of a series picked with ``want``: the word the user gave, or the series'
    description when a UID or number picked it."""
    if want in (info.uid, info.number) and info.description:
        return str(info.description)
    return str(want)


def read_study(folder: str | Path, series: Sequence[str], *, reference: str | None = None,
               label_series: str | None = None, allow_uneven: bool = False) -> tuple[Image, Image | None]:
    """Several series of a DICOM study as one multichannel image on the reference's grid.

    Parameters
    ----------
    folder : str or Path
        The study folder (series at any depth).
    series : sequence of str
        The series to stack, in channel order: UID, number, description or folder name.
        The channel names are these words (the description for a UID or number).
    reference : str, optional
        The reference modality's name; default: the finest.
    label_series : str, optional
        A series holding the label map (e.g. a tumour mask), put on the same grid.
    allow_uneven : bool
        Read series with uneven slice gaps (median gap).

    Returns
    -------
    image : Image
        ``(C, *spatial)``; ``meta["channel_names"]``.
    label : Image or None

    Raises
    ------
    InputError
        A series matching nothing, no overlap, or a label series asked as a channel too.

    Examples
    --------
    >>> img, mask = read_study("PGBM-001/", ["T1post", "FLAIRreg"], label_series="MaskTumor")  # doctest: +SKIP
    >>> img.meta["channel_names"], img.shape == mask.shape  # doctest: +SKIP
    (['T1post', 'FLAIRreg'], True)
    """
    from medseg.io.dicom import read_dicom_series  # deferred: keeps this module free of pydicom at import

    series = [str(s) for s in series]
    if not series:
        raise InputError("give at least one --series to read from a DICOM study")
    wants = series + ([str(label_series)] if label_series else [])
    read = read_dicom_series(folder, wants, allow_uneven=allow_uneven)
    names = [_channel_name(w, info) for w, (info, _) in zip(series, read)]
    image = stack_modalities([im for _, im in read[:len(series)]], names, reference=reference, where=f"{folder}: ")
    label = None
    if label_series:
        info, raw = read[-1]
        lab = as_label(raw, name=f"{folder} ('{info.description or info.uid}')")
        label = label_onto(lab, image, where=f"label series {label_series}")
    return image, label


def convert_study(src: str | Path, dst: str | Path, *, series: Sequence[str], label_series: str | None = None,
                  layout: str = "msd", reference: str | None = None, case_id: str | None = None,
                  suffix: str | None = None, overwrite: bool = False) -> tuple[Image, Image | None]:
    """Write a DICOM study as a one-case multimodal dataset (``imagesTr/CASE_0000``, ``CASE_0001``,
    ``labelsTr/CASE``, ``dataset.json`` with ``channel_names``), atomically.

    Parameters
    ----------
    src : str or Path
        The study folder.
    dst : str or Path
        The dataset folder to write.
    series : sequence of str
        The channel series, in order (see `read_study`).
    label_series : str, optional
        The series holding the label map.
    layout : {"msd", "folders", "npy"}
        The dataset layout.
    reference : str, optional
        The reference modality (default: the finest).
    case_id : str, optional
        The case's name (default: the study folder's name).
    suffix : str, optional
        The files' suffix (default ``.nii.gz``).
    overwrite : bool
        Replace an existing ``dst``.

    Returns
    -------
    (Image, Image or None)
        The image and label map written.

    Examples
    --------
    >>> convert_study("PGBM-001/", "pgbm_msd/", series=["T1post", "FLAIRreg"],
    ...               label_series="MaskTumor")  # doctest: +SKIP
    """
    from medseg.io.atomic import refuse_existing  # deferred: atomic writes only when converting
    from medseg.io.writing import write_dataset  # deferred: writing only when converting

    src, dst = Path(src), Path(dst)
    refuse_existing([dst], force=overwrite)
    cid = case_id or re.sub(r"[^0-9A-Za-z.\-]+", "-", src.resolve().name).strip("-") or "case"
    image, label = read_study(src, series, reference=reference, label_series=label_series)
    names = list(image.meta["channel_names"])
    write_dataset([(cid, image, label, None)], dst, layout=layout, suffix=suffix or ".nii.gz",
                  channel_names=names, label_names={1: str(label_series)} if label_series else None,
                  overwrite=overwrite)
    return image, label

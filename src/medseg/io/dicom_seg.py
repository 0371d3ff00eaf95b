"""DICOM Segmentation objects (SEG) out, through highdicom; in, through [`medseg.io.dicom_seg_read`][].

A label map computed from a DICOM series (or a single DICOM image) is written as one
BINARY Segmentation Storage object (SOP Class ``1.2.840.10008.5.1.4.1.1.66.4``) that
references its source series: ``medseg predict/segment ... --format dicom-seg`` and
``medseg convert MASK OUT.dcm --format dicom-seg --reference SERIES``. It needs the optional
``highdicom`` package (``pip install 'medseg[dicom-seg]'``).

What the SEG holds
------------------
* **One segment per label value** ``1..K``: ``K`` is the largest value of the model's
  classes (``model.json``) or of the label map, whichever is larger, so a class absent
  from this prediction is still a segment (empty). Segment labels are the model's class
  names; a class without a name (classical methods, names that are only the number) is
  ``"label k"``.
* **A frame for every slice** of the source (empty frames are kept), so the SEG alone
  gives the source grid and reads back exactly (``read_image``/``read_label`` of the
  ``.dcm`` file give the label map, segment numbers as values).
* **Codes**: segmented property category and type are both SNOMED CT ``85756007``
  "Tissue", a generic code: medseg does not know what a class is anatomically. Edit the
  SEG's ``SegmentSequence`` to give specific codes (e.g. with highdicom).
* **Algorithm identification** (``AUTOMATIC``): name ``medseg <method>``, version the
  medseg version, family from the method (Artificial Intelligence for trained models;
  histogram analysis, clustering, deformable models, edge detection, morphology,
  neighbourhood analysis or multiscale filtering for classical methods). A mask converted
  with ``medseg convert`` was not computed by medseg: its segments are ``MANUAL``, without
  an algorithm.
* **References**: patient and study come from the source (a SEG belongs to the study of
  the images it segments), ``ReferencedSeriesSequence`` and each frame's
  ``SourceImageSequence`` name the source series and instances. The SEG's Series and SOP
  Instance UIDs are new.

Nothing about the source is kept in ``Image.meta``: the source series is passed
explicitly, so no other writer sees identifying tags. Writing is atomic.
"""
from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medseg._version import __version__
from medseg.errors import FormatError, InputError, MedsegError, require
from medseg.image import Image
from medseg.io.atomic import atomic_path, refuse_existing
from medseg.io.base import strip_suffix
from medseg.io.dicom import _choose, _dcmread, _scan, _stack_geometry, dicom_files, looks_like_dicom, read_dicom
from medseg.io.dicom_header import enhanced_pixel_spacing, float_list, frame_positions, orientation, pixel_spacing
from medseg.io.dicom_seg_read import SEGMENTATION_STORAGE, is_segmentation
from medseg.io.geometry import from_itk
from medseg.io.labels import read_label

log = logging.getLogger(__name__)

__all__ = ["DICOM_SEG", "SEGMENTATION_STORAGE", "require_highdicom", "is_dicom_source", "segment_labels",
           "segmenter_class_names", "write_dicom_seg", "read_dicom_seg", "dicom_seg_pairs", "convert_to_dicom_seg"]

DICOM_SEG = "dicom-seg"
"""The ``--format`` value that writes label maps as DICOM SEG."""

# Type 2 attributes highdicom copies from the source: present (maybe empty) in the copy it gets
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID", "StudyDate",
          "StudyTime", "ReferringPhysicianName")

# the DICOM algorithm family (CID 7162) of the classical methods
_FAMILY = {"threshold": "HistogramAnalysis", "otsu": "HistogramAnalysis", "li": "HistogramAnalysis",
           "triangle": "HistogramAnalysis", "multi-otsu": "HistogramAnalysis", "local": "HistogramAnalysis",
           "kmeans": "ClusterAnalysis", "gmm": "ClusterAnalysis", "chan-vese": "DeformableModels",
           "geodesic-active-contour": "DeformableModels", "edges": "EdgeDetection",
           "watershed": "MorphologicalOperations", "skull-strip": "MorphologicalOperations",
           "region-growing": "NeighborhoodAnalysis", "random-walker": "NeighborhoodAnalysis",
           "vesselness": "MultiScaleResolutionFiltering"}


def require_highdicom() -> Any:
    """Import highdicom, or raise [`DependencyError`][medseg.errors.DependencyError] naming the extra.

    Returns
    -------
    module
        ``highdicom``.

    Raises
    ------
    DependencyError
        highdicom is not installed: ``pip install 'medseg[dicom-seg]'``.

    Examples
    --------
    >>> require_highdicom().__name__  # doctest: +SKIP
    'highdicom'
    """
    return require("highdicom", extra="dicom-seg", purpose="DICOM SEG output (--format dicom-seg)")


def is_dicom_source(path: str | Path) -> bool:
    """True when ``path`` is a DICOM file or a folder holding DICOM files (a series or a study).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    bool

    Examples
    --------
    >>> is_dicom_source("scan.nii.gz")
    False
    """
    p = Path(path)
    if p.is_file():
        return p.name.lower().endswith(".dcm") or looks_like_dicom(p)
    return p.is_dir() and bool(dicom_files(p))


def segment_labels(top: int, class_names: Mapping[int, str] | None = None) -> list[tuple[int, str]]:
    """``(segment number, label)`` for ``1..top``: the class name, else ``"label k"``.

    A name that is only the number (``{1: "1"}``, what unnamed classes are called) counts as
    no name. Labels are cut to 64 characters (the DICOM LO limit), backslashes replaced.

    Parameters
    ----------
    top : int
        The largest label value (at least one segment is made).
    class_names : mapping of int to str, optional

    Returns
    -------
    list of (int, str)

    Examples
    --------
    >>> segment_labels(3, {1: "liver", 2: "2"})
    [(1, 'liver'), (2, 'label 2'), (3, 'label 3')]
    """
    names = {int(k): str(v) for k, v in (class_names or {}).items()}
    out = []
    for k in range(1, max(1, int(top)) + 1):
        name = re.sub(r"[\\\x00-\x1f]", " ", names.get(k, "")).strip()
        out.append((k, name[:64] if name and name != str(k) else f"label {k}"))
    return out


def segmenter_class_names(segmenter: Any) -> dict[int, str]:
    """The foreground classes of a loaded model, ``{value: name}`` (``{}`` for other segmenters).

    Trained ``unet`` models give their plan's classes (``plan.n_classes``, ``plan.class_names``);
    scikit-learn models their ``classes_`` and ``class_names_``.

    Parameters
    ----------
    segmenter : object

    Returns
    -------
    dict

    Examples
    --------
    >>> segmenter_class_names(object())
    {}
    """
    try:
        plan = getattr(segmenter, "plan", None)
    except MedsegError:  # an untrained method
        plan = None
    if plan is not None and getattr(plan, "n_classes", None):
        names = {int(k): str(v) for k, v in (getattr(plan, "class_names", None) or {}).items()}
        return {c: names.get(c, str(c)) for c in range(1, int(plan.n_classes))}
    try:
        classes = getattr(segmenter, "classes_", None)
    except MedsegError:
        classes = None
    if classes is None:
        return {}
    names = {int(k): str(v) for k, v in (getattr(segmenter, "class_names_", None) or {}).items()}
    return {int(c): names.get(int(c), str(int(c))) for c in np.asarray(classes).tolist() if int(c) > 0}


# ---------------------------------------------------------------------- the source series
def _source(source: Path, series: str | None) -> tuple[list[Any], Image, np.ndarray | None]:
    """The source datasets (medseg's slice order), an empty Image on their grid, and for a
    multi-frame source the file frame of each slice."""
    if source.is_dir():
        found, parsed = _scan(source)
        chosen = _choose(found, series, source)
        dss = [parsed[f] for f in chosen.files]
        where = f"{source} ({chosen.description or chosen.uid})"
    elif source.is_file():
        dss = [_dcmread(source, pixels=False)]
        where = str(source)
        if "Rows" not in dss[0]:
            raise InputError(f"{source}: this DICOM file holds no image, so a SEG cannot reference it")
    else:
        raise InputError(f"{source}: no such DICOM file or series folder")
    if any(is_segmentation(d) for d in dss):
        raise InputError(f"{where}: is a segmentation itself; give the image series the label map was computed on")
    ds0 = dss[0]
    rows, cols = int(ds0.Rows), int(ds0.Columns)
    frames = int(ds0.get("NumberOfFrames", 1) or 1)
    if len(dss) == 1 and frames == 1:
        return dss, Image(np.zeros((rows, cols), np.uint8), pixel_spacing(ds0)), None
    if len(dss) == 1:
        fp = frame_positions(ds0)
        if fp is None:
            raise FormatError(f"{where}: the multi-frame image gives no per-frame positions; a SEG cannot place "
                              "its frames")
        pix = enhanced_pixel_spacing(ds0)
        order, dz, origin, direction = _stack_geometry(fp[0], fp[1], pix, where, True)
        shape: tuple[int, ...] = (frames, rows, cols)
    else:
        rcs = [orientation(d) for d in dss]
        pos = [float_list(d.get("ImagePositionPatient"), 3) for d in dss]
        rc0 = rcs[0]
        if rc0 is None or any(rc is None for rc in rcs) or any(not p for p in pos):
            raise FormatError(f"{where}: slices without ImagePositionPatient/ImageOrientationPatient; a SEG "
                              "cannot reference them")
        pix = pixel_spacing(ds0)
        order, dz, origin, direction = _stack_geometry(np.asarray(pos), rc0, pix, where, True)
        dss = [dss[i] for i in order]
        order = None
        shape = (len(dss), rows, cols)
    sp, org, dirn = from_itk((pix[1], pix[0], dz), origin, direction.reshape(-1))
    return dss, Image(np.zeros(shape, np.uint8), sp, org, dirn), order


def _check_grid(labels: Image, grid: Image, where: str) -> None:
    """Refuse a label map that does not lie on the source's grid."""
    same = (labels.shape == grid.shape and np.allclose(labels.spacing, grid.spacing, rtol=1e-4, atol=1e-5)
            and (labels.ndim == 2 or (np.allclose(labels.origin, grid.origin, atol=1e-3)
                                      and np.allclose(labels.direction, grid.direction, atol=1e-4))))
    if not same:
        raise InputError(f"{where}: the label map (shape {labels.shape}, spacing "
                         f"{tuple(round(s, 4) for s in labels.spacing)}) is not on the grid of the DICOM source "
                         f"(shape {grid.shape}, spacing {tuple(round(s, 4) for s in grid.spacing)}); a SEG must "
                         "reference the series the label map was drawn on")


def _label_array(labels: Image, where: str) -> np.ndarray:
    if labels.has_channels:
        raise InputError(f"{where}: a DICOM SEG holds a label map, not a {labels.n_channels}-channel image")
    arr = np.asarray(labels.array)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise InputError(f"{where}: a label map holds whole numbers; this one has fractions")
        arr = arr.astype(np.int64)
    if arr.size and int(arr.min()) < 0:
        raise InputError(f"{where}: label values are 0 (background) and positive segment numbers, not {arr.min()}")
    if arr.size and int(arr.max()) > 65535:
        raise InputError(f"{where}: label value {arr.max()} is beyond the 65535 segments a SEG can number")
    top = int(arr.max()) if arr.size else 0
    return arr.astype(np.uint8 if top <= 255 else np.uint16)


def write_dicom_seg(labels: Image, path: str | Path, source: str | Path, *, series: str | None = None,
                    class_names: Mapping[int, str] | None = None, method: str | None = None) -> Path:
    """Write a label map as a DICOM SEG referencing the DICOM series (or file) it lies on.

    Parameters
    ----------
    labels : Image
        Integer label map on the source's grid (0 background), ``(z, y, x)`` for a series or
        multi-frame image, ``(y, x)`` for a single image.
    path : str or Path
        The ``.dcm`` file to write (replaced when it exists; callers check ``--force``).
    source : str or Path
        The DICOM series folder (or study folder, with ``series``) or single DICOM file the
        label map was computed on.
    series : str, optional
        The source series in a folder holding several (UID, number, description, folder name).
    class_names : mapping of int to str, optional
        Segment labels by value; the model's classes also fix the number of segments.
    method : str, optional
        The medseg method that computed the label map (its algorithm identification); without
        it the segments are recorded as ``MANUAL``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DependencyError
        highdicom is not installed.
    InputError
        The source is not a DICOM image series, or the label map is not on its grid.
    FormatError
        The source lacks what a SEG needs (positions, frame of reference, ...).

    Examples
    --------
    >>> from medseg.io import read_image, read_label
    >>> image = read_image("study/T1/")  # doctest: +SKIP
    >>> labels = image.with_array((image.array > 300).astype("uint8"))  # doctest: +SKIP
    >>> names = {1: "tumour"}
    >>> write_dicom_seg(labels, "t1_seg.dcm", "study/T1/", class_names=names, method="threshold")  # doctest: +SKIP
    >>> (read_label("t1_seg.dcm").array == labels.array).all()  # doctest: +SKIP
    True
    """
    hd = require_highdicom()
    from pydicom import dcmwrite  # deferred: pydicom is imported only when DICOM is used
    from pydicom.sr.codedict import codes  # deferred: pydicom is imported only when DICOM is used

    src, out = Path(source), Path(path)
    arr = _label_array(labels, str(out))
    dss, grid, frame_order = _source(src, series)
    _check_grid(labels, grid, str(out))
    if frame_order is not None:  # a multi-frame source: frames in the file's order
        file_order = np.empty_like(arr)
        file_order[frame_order] = arr
        arr = file_order
    top = max([int(arr.max()) if arr.size else 0, *[int(k) for k in (class_names or {})]])
    for d in dss:  # highdicom copies these Type 2 attributes: give it them, empty when absent (in memory only)
        for key in _TYPE2:
            if key not in d:
                setattr(d, key, None)
    algo = None
    if method:
        family_name = "ArtificialIntelligence" if method not in _FAMILY else _FAMILY[method]
        algo = hd.AlgorithmIdentificationSequence(name=f"medseg {method}"[:64], version=__version__,
                                                  family=getattr(codes.cid7162, family_name), source="medseg")
    descriptions = [hd.seg.SegmentDescription(segment_number=k, segment_label=name,
                                              segmented_property_category=codes.SCT.Tissue,
                                              segmented_property_type=codes.SCT.Tissue,
                                              algorithm_type="AUTOMATIC" if algo is not None else "MANUAL",
                                              algorithm_identification=algo)
                    for k, name in segment_labels(top, class_names)]
    measures = None
    if grid.ndim == 3:  # the slice spacing, so that a reader can place the frames without the source series
        thick = float_list(dss[0].get("SliceThickness"), 1)
        measures = hd.PixelMeasuresSequence(pixel_spacing=[float(v) for v in grid.spacing[1:]],
                                            slice_thickness=thick[0] if thick and thick[0] > 0 else None,
                                            spacing_between_slices=float(grid.spacing[0]))
    number = str(dss[0].get("SeriesNumber", "") or "")
    what = f"medseg {method}" if method else "medseg mask"
    hd_log = logging.getLogger("highdicom")  # it logs each module it copies at INFO: too much for the CLI
    level = hd_log.level
    try:
        hd_log.setLevel(max(level, logging.WARNING))
        with warnings.catch_warnings():  # a one-part patient name ('PGBM-001') is valid, not worth a warning
            warnings.filterwarnings("ignore", message=".*intended person name", category=UserWarning)
            seg = hd.seg.Segmentation(
                source_images=dss, pixel_array=arr, segmentation_type="BINARY", segment_descriptions=descriptions,
                series_instance_uid=hd.UID(), series_number=1000 + (int(number) if number.isdigit() else 0) % 90000,
                sop_instance_uid=hd.UID(), instance_number=1, manufacturer="medseg", manufacturer_model_name="medseg",
                software_versions=__version__, device_serial_number="none", content_label="MEDSEG",
                content_description=what[:64], series_description=f"{what} segmentation"[:64],
                pixel_measures=measures, omit_empty_frames=False)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise FormatError(f"{src}: cannot build a DICOM SEG referencing this source ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    finally:
        hd_log.setLevel(level)
    with atomic_path(out) as tmp:
        dcmwrite(str(tmp), seg, enforce_file_format=True)
    log.debug("%s: DICOM SEG with %d segment(s) referencing %s", out, len(descriptions), src)
    return out


def read_dicom_seg(path: str | Path) -> Image:
    """Read a DICOM SEG file (or a folder holding one) as a label map on its source grid.

    The same as ``read_label(path)``; see [`medseg.io.dicom_seg_read`][] for the rules.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Image
        Segment numbers as label values; ``meta["segments"]`` gives their labels.

    Raises
    ------
    InputError
        ``path`` is not a DICOM SEG.

    Examples
    --------
    >>> read_dicom_seg("t1_seg.dcm").meta["segments"]  # doctest: +SKIP
    {1: 'tumour'}
    """
    img = read_dicom(path)
    if img.meta.get("modality") != "SEG":
        raise InputError(f"{path}: not a DICOM Segmentation object")
    return img


def dicom_seg_pairs(pairs: Sequence[tuple[Path, Path]], out: str | Path,
                    series: str | Sequence[str] | None = None) -> list[tuple[Path, Path]]:
    """Check inputs and name outputs for ``--format dicom-seg``: one ``.dcm`` SEG per DICOM input.

    Parameters
    ----------
    pairs : sequence of (Path, Path)
        ``(input, output)`` as [`medseg.run.pair_paths`][] names them.
    out : str or Path
        The output argument: an explicit file name must end in ``.dcm``.
    series : str or sequence of str, optional
        The ``--series`` given: at most one (a SEG references one series).

    Returns
    -------
    list of (Path, Path)
        The pairs, outputs named ``<stem>.dcm``.

    Raises
    ------
    DependencyError
        highdicom is not installed.
    InputError
        An input that is not DICOM, several series, or an output that is not ``.dcm``.

    Examples
    --------
    >>> dicom_seg_pairs([(Path("scan.nii.gz"), Path("out/scan.nii.gz"))], "out")  # doctest: +SKIP
    Traceback (most recent call last):
    medseg.errors.InputError: scan.nii.gz: --format dicom-seg needs a DICOM source series ...
    """
    require_highdicom()
    if series is not None and not isinstance(series, str) and len(list(series)) > 1:
        raise InputError("--format dicom-seg references one source series; give at most one --series")
    bad = [src for src, _ in pairs if not is_dicom_source(src)]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise InputError(f"{bad[0]}: --format dicom-seg needs a DICOM source series (a DICOM file or series "
                         f"folder) for the SEG to reference; this input is not DICOM{more}")
    fixed = []
    for src, dst in pairs:
        if not dst.name.lower().endswith(".dcm"):
            if dst == Path(out):
                raise InputError(f"{out}: a DICOM SEG is a .dcm file; name the output NAME.dcm (or give a folder)")
            dst = dst.with_name(f"{strip_suffix(dst)}.dcm")
        if dst.resolve() == src.resolve():
            raise InputError(f"{dst}: output would overwrite the input; choose another path")
        fixed.append((src, dst))
    return fixed


def convert_to_dicom_seg(src: str | Path, dst: str | Path, reference: str, *, series: str | None = None,
                         overwrite: bool = False) -> tuple[Image, Path]:
    """Convert a mask (any label file or DICOM mask series) to a DICOM SEG referencing a DICOM series.

    Parameters
    ----------
    src : str or Path
        The label map: an image file, a DICOM mask series or a study holding it (``series``).
        Read as a label map (0/255 masks become 0/1).
    dst : str or Path
        The ``.dcm`` file, or a folder (then ``<src stem>.dcm`` in it).
    reference : str
        The DICOM series the mask lies on: a DICOM file or series folder, or the name of a
        series of ``src``'s study (UID, number, description or folder name).
    series : str, optional
        The mask series in ``src`` when it holds several.
    overwrite : bool
        Replace an existing output.

    Returns
    -------
    (Image, Path)
        The label map written and the SEG's path.

    Raises
    ------
    InputError
        No such reference, the mask not on the reference's grid, an output that exists.

    Examples
    --------
    >>> convert_to_dicom_seg("PGBM-001/", "mask.dcm", "T1post", series="MaskTumor")  # doctest: +SKIP
    """
    require_highdicom()
    src, dst = Path(src), Path(dst)
    if not dst.name.lower().endswith(".dcm"):
        if dst.suffix and not dst.is_dir():
            raise InputError(f"{dst}: a DICOM SEG is a .dcm file; name the output NAME.dcm (or give a folder)")
        dst = dst / f"{src.name if src.is_dir() else strip_suffix(src)}.dcm"
    if dst.resolve() == src.resolve():
        raise InputError(f"{dst}: this is the input; choose another output")
    refuse_existing([dst], force=overwrite)
    ref_path, ref_series = Path(reference), None
    if not ref_path.exists():
        if not src.is_dir():
            raise InputError(f"{reference}: no such DICOM file or series folder (a series name needs SRC to be "
                             "a DICOM study folder)")
        ref_path, ref_series = src, reference
    if not is_dicom_source(ref_path):
        raise InputError(f"{reference}: --reference must be the DICOM series the mask was drawn on; this is not DICOM")
    labels = read_label(src, series=series)
    write_dicom_seg(labels, dst, ref_path, series=ref_series)
    return labels, dst

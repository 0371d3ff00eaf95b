"""DICOM through pydicom: series folders become volumes, single files 2D images.

Reading rules
-------------
* A **folder** is searched (recursively) for DICOM files: files ending in ``.dcm`` and
  files of any name that carry the ``DICM`` preamble. Files without pixel data (reports,
  structure sets, DICOMDIR) are skipped. Files are grouped by Series Instance UID.
  Several series in one folder is an error that lists each series' UID, description,
  modality and slice count; choose one with ``read_image(path, series=UID)`` (or the
  series number, or its unique description) — ``--series UID`` on the command line.
* The slices of a series are ordered by their position along the slice normal
  (``ImageOrientationPatient`` row x column), never by file name or instance number.
  The slice spacing comes from those positions, not from ``SliceThickness`` or
  ``SpacingBetweenSlices``.
* **Uneven slice spacing** (a gap differing from the median by more than 1 % and
  0.01 mm, e.g. a missing slice) raises `FormatError` with the gaps found: a
  volume on a regular grid would misplace every slice after the gap. Pass
  ``allow_uneven=True`` (Python) to read it anyway with the median spacing and a
  warning. Slices at the same position (several echoes/phases in one series) and
  stacks whose slices are offset sideways (gantry tilt) are errors too.
* ``RescaleSlope``/``RescaleIntercept`` are applied per slice. The result is float32
  when any slope or intercept is non-integer, otherwise the smallest integer type that
  holds every value the stored bits (``BitsStored``) can produce after rescaling.
* A **single file** is a 2D image, spacing from ``PixelSpacing`` (or
  ``ImagerPixelSpacing``); its 3D pose is kept in ``meta`` (``dicom_position``,
  ``dicom_orientation``). A **multi-frame** file becomes a 3D volume when it gives a
  position per frame (enhanced CT/MR), otherwise a ``(frames, H, W)`` stack with unit
  frame spacing and ``meta["frames"] = "unpositioned"``.
* Geometry follows medseg's convention (NumPy axis order, LPS world coordinates in the
  same reversed order), identical to [`medseg.io.sitk.image_from_sitk`][] applied to
  SimpleITK's reading of the same files.
* ``meta`` holds modality, window centre/width, series description/UID/number,
  photometric interpretation and body part — never patient-identifying tags.
* A **DICOM SEG** (Segmentation Storage) file, or a folder holding one, is read as a label
  map on its source grid, segment numbers as values ([`medseg.io.dicom_seg_read`][]).

DICOM images are read-only in medseg: write ``.nii.gz``, ``.nrrd`` or ``.mha`` instead; label
maps can be written as DICOM SEG (``--format dicom-seg``, [`medseg.io.dicom_seg`][]).
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError, InputError
from medseg.image import Image
from medseg.io.base import Format, register_format
from medseg.io.dicom_header import (
    TRUNCATED,
    apply_rescale,
    enhanced_pixel_spacing,
    float_list,
    frame_positions,
    header_meta,
    orientation,
    pixel_data,
    pixel_spacing,
    rescale_of,
)
from medseg.io.dicom_seg_read import is_segmentation, read_segmentation
from medseg.io.geometry import from_itk
from medseg.io.native import library_messages

log = logging.getLogger(__name__)

__all__ = ["looks_like_dicom", "looks_like_dicom_folder", "read_dicom", "read_dicom_series", "list_series",
           "SeriesInfo", "dicom_files"]

_SKIP_NAMES = {"dicomdir"}
_GAP_RTOL = 0.01
_GAP_ATOL = 0.01  # mm


def looks_like_dicom(path: Path) -> bool:
    """True when ``path`` is a file with the 128-byte preamble followed by ``DICM``.

    Parameters
    ----------
    path : Path
        Any path; folders and unreadable files give ``False``.

    Returns
    -------
    bool

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "IM0001"
    >>> _ = f.write_bytes(bytes(128) + b"DICM")
    >>> looks_like_dicom(f), looks_like_dicom(f.parent / "nowhere")
    (True, False)
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
        return len(head) == 132 and head[128:132] == b"DICM"
    except OSError:
        return False


def looks_like_dicom_folder(folder: Path) -> bool:
    """True when ``folder`` holds DICOM files directly (a series, or several to choose from).

    Looks at the first entries only (sorted by name), so it stays fast on large folders:
    a ``.dcm`` file or a file with the ``DICM`` preamble among them is enough.

    Parameters
    ----------
    folder : Path

    Returns
    -------
    bool
    """
    if not folder.is_dir():
        return False
    for i, f in enumerate(sorted(folder.iterdir())):
        if i > 20:
            break
        if f.is_file() and (f.suffix.lower() == ".dcm" or looks_like_dicom(f)):
            return True
    return False


def dicom_files(folder: Path) -> list[Path]:
    """DICOM files under ``folder`` (recursively): ``.dcm`` files and files with the preamble.

    Hidden files and folders and ``DICOMDIR`` are skipped.

    Parameters
    ----------
    folder : Path

    Returns
    -------
    list of Path
        Sorted by folder, then by name.
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.lower() in _SKIP_NAMES:
                continue
            p = Path(dirpath) / name
            if name.lower().endswith(".dcm") or looks_like_dicom(p):
                out.append(p)
    return out


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a folder.

    Parameters
    ----------
    uid : str
        Series Instance UID.
    number : str
        Series number (``""`` when absent).
    description : str
        Series description (``""`` when absent).
    modality : str
        ``CT``, ``MR``, ... (``""`` when absent).
    files : tuple of Path
        The series' image files.
    """

    uid: str
    number: str
    description: str
    modality: str
    files: tuple[Path, ...]

    @property
    def n_files(self) -> int:
        """Number of image files."""
        return len(self.files)

    def describe(self) -> str:
        """One line: UID, description, modality, file count.

        Returns
        -------
        str
        """
        desc = self.description or "(no description)"
        return f"{self.uid} '{desc}' {self.modality or '?'} {self.n_files} file(s)"


def _dcmread(path: Path, *, pixels: bool) -> Any:
    """Parse a file; with ``pixels=False`` large elements (the pixel data) are deferred:
    read from the file only when accessed, so headers are parsed once per file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with library_messages("pydicom") as msgs:
            ds = pydicom.dcmread(str(path), defer_size=None if pixels else 4096,
                                 force=path.name.lower().endswith(".dcm"))
        cut = [m for m in msgs.messages if TRUNCATED.search(m)]
        if cut:
            raise FormatError(f"{path}: the file ends early ({cut[0]}); it is truncated")
        return ds
    except InvalidDicomError as exc:
        raise FormatError(f"{path}: not a DICOM file ({exc})") from None
    except (EOFError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError(f"{path}: cannot read DICOM ({type(exc).__name__}: {exc}); "
                          "the file may be truncated or corrupt") from None


def list_series(folder: str | Path) -> list[SeriesInfo]:
    """The image series found under ``folder`` (recursively), in order of series number then UID.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    list of SeriesInfo

    Raises
    ------
    InputError
        No DICOM files, or none holding an image.

    Examples
    --------
    >>> for s in list_series("study/"):  # doctest: +SKIP
    ...     print(s.describe())
    """
    return _scan(Path(folder))[0]


def _scan(folder: Path) -> tuple[list[SeriesInfo], dict[Path, Any]]:
    """Series under ``folder`` and the parsed header of every image file (pixels deferred)."""
    files = dicom_files(folder)
    if not files:
        raise InputError(f"{folder}: no DICOM files found (expected .dcm files or files with the DICM preamble)")
    groups: dict[str, list[Path]] = {}
    heads: dict[str, Any] = {}
    parsed: dict[Path, Any] = {}
    for f in files:
        ds = _dcmread(f, pixels=False)
        parsed[f] = ds
        if "Rows" not in ds or "Columns" not in ds:
            log.debug("%s: no image pixels (SOP class %s), skipped", f, ds.get("SOPClassUID", "?"))
            continue
        uid = str(ds.get("SeriesInstanceUID", "") or f"(no series UID) {f.parent}")
        groups.setdefault(uid, []).append(f)
        heads.setdefault(uid, ds)
    if not groups:
        raise InputError(f"{folder}: the DICOM files hold no images (only reports, structure sets or similar)")
    out = []
    for uid, fs in groups.items():
        ds = heads[uid]
        out.append(SeriesInfo(uid, str(ds.get("SeriesNumber", "") or ""), str(ds.get("SeriesDescription", "") or ""),
                              str(ds.get("Modality", "") or ""), tuple(fs)))

    def order(s: SeriesInfo) -> tuple[int, str]:
        return (int(s.number) if s.number.lstrip("-").isdigit() else 1 << 30, s.uid)

    return sorted(out, key=order), parsed


def _choose(series: list[SeriesInfo], want: str | None, folder: Path) -> SeriesInfo:
    if want is None:
        if len(series) == 1:
            return series[0]
        listing = "; ".join(s.describe() for s in series)
        raise InputError(f"{folder}: holds {len(series)} DICOM series; choose one with --series UID "
                         f"(Python: series=UID): {listing}")
    want_s = str(want).strip()

    def norm(text: str) -> str:  # 'Mask_Tumor' and 'MaskTumor', 'T1 post' and 't1post'
        return re.sub(r"[^0-9a-z]", "", text.lower())

    def folder_tokens(s: SeriesInfo) -> set[str]:  # TCIA/scanner exports name folders '5388-MaskTumor-63335'
        parents = {f.parent for f in s.files}
        if len(parents) != 1:
            return set()
        name = next(iter(parents)).name
        return {norm(name)} | {norm(t) for t in re.split(r"[-_ .]+", name) if t}

    for hits in ([s for s in series if s.uid == want_s],
                 [s for s in series if s.number == want_s],
                 [s for s in series if s.description.lower() == want_s.lower()],
                 [s for s in series if norm(want_s) and norm(s.description) == norm(want_s)],
                 [s for s in series if norm(want_s) and norm(want_s) in folder_tokens(s)]):
        if len(hits) == 1:
            return hits[0]
    listing = "; ".join(s.describe() for s in series)
    raise InputError(f"{folder}: no single DICOM series matches '{want_s}' (give a series UID, number, unique "
                     f"description or its folder's name): {listing}")


# ---------------------------------------------------------------------- geometry of a stack
def _stack_geometry(positions: np.ndarray, rc: np.ndarray, pix: tuple[float, float], where: str,
                    allow_uneven: bool) -> tuple[np.ndarray, float, tuple, np.ndarray]:
    """Sort positions along the normal; return (order, slice spacing, origin, itk direction)."""
    r, c = rc
    n = np.cross(r, c)
    n /= np.linalg.norm(n)
    dist = positions @ n
    order = np.argsort(dist, kind="stable")
    d = dist[order]
    gaps = np.diff(d)
    if len(gaps) and np.min(gaps) <= _GAP_ATOL:
        k = int(np.argmin(gaps))
        raise FormatError(f"{where}: {int(np.sum(gaps <= _GAP_ATOL)) + 1} slices share a position "
                          f"(e.g. {d[k]:.3f} mm along the normal): the series holds several volumes "
                          "(echoes, phases or times); split it first")
    if len(gaps):
        step = positions[order][-1] - positions[order][0]
        lateral = step - (step @ n) * n
        if np.linalg.norm(lateral) > max(_GAP_ATOL * len(gaps), 0.05 * min(pix)):
            raise FormatError(f"{where}: slices are offset sideways by {np.linalg.norm(lateral):.3f} mm across the "
                              "stack (gantry tilt or a sheared stack); resample it to an orthogonal grid first")
        med = float(np.median(gaps))
        bad = np.abs(gaps - med) > np.maximum(_GAP_RTOL * med, _GAP_ATOL)
        if np.any(bad):
            uniq, counts = np.unique(np.round(gaps, 3), return_counts=True)
            desc = ", ".join(f"{u:g} mm x{k}" for u, k in zip(uniq, counts))
            at = ", ".join(f"{d[i]:.2f}->{d[i + 1]:.2f}" for i in np.flatnonzero(bad)[:5])
            msg = (f"{where}: uneven slice spacing: gaps {desc} (median {med:g} mm; irregular at {at} mm along the "
                   "normal); a slice may be missing")
            if not allow_uneven:
                raise FormatError(msg + "; fix the series, or read it with allow_uneven=True to use the median spacing")
            log.warning("%s; using the median spacing", msg)
        spacing = float(np.mean(gaps)) if not np.any(bad) else med
    else:
        spacing = 1.0
    direction = np.column_stack([r, c, n])
    return order, spacing, tuple(positions[order][0]), direction


def _volume(arr_zyx: np.ndarray, rgb: bool, spacing_xyz: tuple[float, float, float], origin_xyz: tuple,
            direction_itk: np.ndarray, meta: dict[str, Any]) -> Image:
    """A volume from a ``(z, y, x[, 3])`` stack and its ITK-order geometry."""
    sp, org, dirn = from_itk(spacing_xyz, origin_xyz, direction_itk.reshape(-1))
    if rgb:
        arr_zyx = np.moveaxis(arr_zyx, -1, 0)
    return Image(np.ascontiguousarray(arr_zyx), sp, org, dirn, meta={**meta, "rgb": rgb} if rgb else meta)


def _read_series(files: Sequence[Path], where: str, allow_uneven: bool, parsed: dict[Path, Any] | None = None
                 ) -> Image:
    """One series' files as a volume, slices ordered by position along the normal."""
    dss = [(parsed or {}).get(f) or _dcmread(f, pixels=True) for f in files]
    if len(dss) == 1:
        return _read_single(dss[0], files[0], allow_uneven)
    ds0 = dss[0]
    sizes = {(int(d.Rows), int(d.Columns), int(d.get("SamplesPerPixel", 1) or 1)) for d in dss}
    if len(sizes) > 1:
        raise FormatError(f"{where}: slices of one series differ in size {sorted(sizes)}; "
                          "the series mixes images (e.g. localizers)")
    found = [orientation(d) for d in dss]
    pos = [float_list(d.get("ImagePositionPatient"), 3) for d in dss]
    rcs = [o for o in found if o is not None]
    if len(rcs) < len(found) or any(not p for p in pos):
        missing = [f.name for f, o, p in zip(files, found, pos) if o is None or not p][:5]
        raise FormatError(f"{where}: slices without ImagePositionPatient/ImageOrientationPatient "
                          f"({', '.join(missing)}); cannot order them in space")
    if max(np.abs(o - rcs[0]).max() for o in rcs) > 1e-3:
        raise FormatError(f"{where}: slices of one series have different orientations; the series mixes planes")
    pix = pixel_spacing(ds0)
    order, dz, origin, direction = _stack_geometry(np.asarray(pos), rcs[0], pix, where, allow_uneven)
    raw = [pixel_data(dss[i], files[i]) for i in order]
    arr = apply_rescale(raw, [rescale_of(dss[i]) for i in order], ds0)
    rgb = arr.ndim == 4
    meta = {**header_meta(ds0), "n_files": len(files)}
    return _volume(arr, rgb, (pix[1], pix[0], dz), origin, direction, meta)


def _read_single(ds: Any, path: Path, allow_uneven: bool) -> Image:
    """One file: a 2D image, or a volume/stack for a multi-frame object (a SEG: its label map)."""
    if is_segmentation(ds):
        return read_segmentation(ds, path)
    arr = pixel_data(ds, path)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    rgb = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    meta = header_meta(ds)
    if frames > 1:
        fp = frame_positions(ds)
        pix = enhanced_pixel_spacing(ds)
        rescale = [rescale_of(ds)] * frames
        if fp is not None:
            order, dz, origin, direction = _stack_geometry(fp[0], fp[1], pix, str(path), allow_uneven)
            arr = apply_rescale([arr[i] for i in order], rescale, ds)
            return _volume(arr, rgb, (pix[1], pix[0], dz), origin, direction, meta)
        log.warning("%s: %d frames without per-frame positions; read as a stack with unit frame spacing",
                    path, frames)
        arr = apply_rescale(list(arr), rescale, ds)
        arr = np.moveaxis(arr, -1, 0) if rgb else arr
        return Image(np.ascontiguousarray(arr), (1.0, *pix), meta={**meta, "frames": "unpositioned", "rgb": rgb})
    arr = apply_rescale([arr], [rescale_of(ds)], ds)[0]
    if rgb:
        arr = np.moveaxis(arr, -1, 0)
        meta["rgb"] = True
    rc = orientation(ds)
    pos = float_list(ds.get("ImagePositionPatient"), 3)
    if rc is not None:
        meta["dicom_orientation"] = [float(v) for v in rc.reshape(-1)]
    if pos:
        meta["dicom_position"] = [float(v) for v in pos]
    return Image(np.ascontiguousarray(arr), pixel_spacing(ds), meta=meta)


# ---------------------------------------------------------------------- entry point
def read_dicom(path: str | Path, *, series: str | None = None, allow_uneven: bool = False) -> Image:
    """Read a DICOM file (2D) or a series folder (3D).

    Parameters
    ----------
    path : str or Path
        A DICOM file, or a folder holding one series (or several, with ``series``).
    series : str, optional
        Series Instance UID (or series number, or unique description) to read when the
        folder holds several series.
    allow_uneven : bool
        Read a series with uneven slice gaps using the median gap (warns).

    Returns
    -------
    Image
        ``(z, y, x)`` for a series, ``(y, x)`` for a single frame, channel-first for RGB.

    Raises
    ------
    InputError
        No DICOM image found, or several series and no (matching) ``series``.
    FormatError
        Unreadable files, or slices that do not form one regular volume.

    Examples
    --------
    >>> vol = read_dicom("study/", series="1.2.840.113619.2.55.3")  # doctest: +SKIP
    >>> vol.shape, vol.spacing, vol.meta["modality"]  # doctest: +SKIP
    ((24, 320, 260), (6.5, 0.6875, 0.6875), 'MR')
    """
    p = Path(path)
    if p.is_dir():
        found, parsed = _scan(p)
        chosen = _choose(found, series, p)
        where = (f"{p} (series {chosen.uid})" if series or chosen.description == ""
                 else f"{p} ('{chosen.description}')")
        return _read_series(chosen.files, where, allow_uneven, parsed)
    if not p.is_file():
        raise InputError(f"{p}: no such DICOM file or folder")
    ds = _dcmread(p, pixels=True)
    if series is not None and str(ds.get("SeriesInstanceUID", "")) != str(series):
        raise InputError(f"{p}: this file belongs to series {ds.get('SeriesInstanceUID', '?')}, not {series}")
    if "Rows" not in ds:
        raise FormatError(f"{p}: this DICOM file holds no image (SOP class {ds.get('SOPClassUID', '?')})")
    return _read_single(ds, p, allow_uneven)


def read_dicom_series(folder: str | Path, series: Sequence[str], *, allow_uneven: bool = False
                      ) -> list[tuple[SeriesInfo, Image]]:
    """Read several series of one study folder (scanned once), in the order asked.

    Parameters
    ----------
    folder : str or Path
        A study folder holding several series (at any depth).
    series : sequence of str
        Each a series UID, number, description or its folder's name (as ``series=`` of
        `read_dicom`).
    allow_uneven : bool
        Read series with uneven slice gaps using the median gap (warns).

    Returns
    -------
    list of (SeriesInfo, Image)

    Raises
    ------
    InputError
        No DICOM series in ``folder``, a name matching no single series, or one series asked twice.

    Examples
    --------
    >>> [(s.description, im.shape) for s, im in read_dicom_series("study/", ["T1post", "FLAIR"])]  # doctest: +SKIP
    [('T1post', (24, 320, 260)), ('FLAIR_reg', (24, 320, 260))]
    """
    p = Path(folder)
    if not p.is_dir():
        raise InputError(f"{p}: not a DICOM study folder")
    found, parsed = _scan(p)
    chosen = [_choose(found, want, p) for want in series]
    seen: dict[str, str] = {}
    for want, info in zip(series, chosen):
        if info.uid in seen:
            raise InputError(f"{p}: --series '{seen[info.uid]}' and '{want}' pick the same series ({info.describe()})")
        seen[info.uid] = want
    return [(info, _read_series(info.files, f"{p} ('{info.description or info.uid}')", allow_uneven, parsed))
            for info in chosen]


def _read(path: Path, **kwargs: Any) -> Image:
    """The registered reader: `read_dicom`."""
    return read_dicom(path, **kwargs)


register_format(Format("DICOM", (".dcm",), _read, None, "DICOM file or series folder (read-only)",
                       options=("series",), sniff=looks_like_dicom, sniff_folder=looks_like_dicom_folder))

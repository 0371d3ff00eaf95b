"""Reading a DICOM Segmentation object (SEG) back as a label map, with pydicom alone.

[`medseg.io.dicom.read_dicom`][] calls `read_segmentation` for a file whose SOP
Class is Segmentation Storage (or Label Map Segmentation Storage), so ``read_image`` /
``read_label`` of a SEG file, or of a folder holding one, give the label map.

Reading rules
-------------
* The grid comes from the SEG itself: the orientation and pixel spacing of its functional
  groups and the ``ImagePositionPatient`` of each frame. Frames are ordered along the slice
  normal (row x column), as [`medseg.io.dicom`][] orders a series' slices, so a SEG that
  holds a frame for every slice of its source series (medseg writes them so) reads back on
  exactly the grid of that series. A SEG that left out empty frames is read on the grid
  from its first to its last frame, the missing slices zero, when the gaps are whole
  multiples of the slice spacing (``SpacingBetweenSlices``, else the smallest gap).
* One frame position is a 2D image, as a single DICOM image file is; its pose is kept in
  ``meta`` (``dicom_position``, ``dicom_orientation``).
* Each segment's pixels get its segment number as label value (BINARY: non-zero pixels;
  FRACTIONAL: above half of ``MaximumFractionalValue``; LABELMAP: the stored values).
  **Overlapping segments** cannot be one label map: reading them is an error naming the
  two segments (split the SEG with another tool first).
* ``meta`` holds ``modality`` ``"SEG"``, the SEG's series UID/description/number,
  ``segments`` (``{number: label}``) and ``referenced_series_uid`` — nothing identifying
  the patient.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.image import Image
from medseg.io.dicom_header import float_list, orientation, pixel_data
from medseg.io.geometry import from_itk

__all__ = ["SEGMENTATION_STORAGE", "LABEL_MAP_SEGMENTATION_STORAGE", "is_segmentation", "read_segmentation"]

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
"""SOP Class UID of Segmentation Storage (BINARY and FRACTIONAL SEGs)."""
LABEL_MAP_SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
"""SOP Class UID of Label Map Segmentation Storage (DICOM 2024)."""

_POS_ATOL = 0.01  # mm: frames closer than this along the normal share a slice


def is_segmentation(ds: Any) -> bool:
    """True when the parsed dataset is a DICOM Segmentation object.

    Parameters
    ----------
    ds : pydicom.Dataset
        Any object with a ``get`` method.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_segmentation({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.66.4"}), is_segmentation({"Modality": "CT"})
    (True, False)
    """
    return str(ds.get("SOPClassUID", "") or "") in (SEGMENTATION_STORAGE, LABEL_MAP_SEGMENTATION_STORAGE)


def _group(item: Any, shared: Any, name: str) -> Any:
    """The first item of functional group ``name``: per-frame, else shared, else None."""
    for src in (item, shared):
        seq = src.get(name) if src is not None else None
        if seq:
            return seq[0]
    return None


def _frames(ds: Any, path: Path) -> np.ndarray:
    """The stored frames, ``(F, rows, cols)``."""
    arr = pixel_data(ds, path)  # bit-packed BINARY frames are unpacked to 0/1
    n = int(ds.get("NumberOfFrames", 1) or 1)
    return arr.reshape(n, int(ds.Rows), int(ds.Columns))


def _on_grid(u: np.ndarray, dz: float) -> bool:
    """True when the sorted positions ``u`` are whole multiples of ``dz`` apart."""
    steps = (u - u[0]) / dz
    return bool(np.max(np.abs(steps - np.round(steps))) * dz <= max(_POS_ATOL, 0.01 * dz))


def _slice_index(dist: np.ndarray, spacing_hint: float | None, where: str) -> tuple[np.ndarray, float]:
    """Each frame's slice index along the normal and the slice spacing."""
    uniq: list[float] = []
    for d in np.sort(dist):
        if not uniq or d - uniq[-1] > _POS_ATOL:
            uniq.append(float(d))
    u = np.asarray(uniq)
    if len(u) == 1:
        return np.zeros(len(dist), int), 1.0
    gaps = np.diff(u)
    med = float(np.median(gaps))
    regular = bool(np.all(np.abs(gaps - med) <= np.maximum(0.01 * med, _POS_ATOL)))
    hint = float(spacing_hint) if spacing_hint and spacing_hint > 0 else None
    if hint is not None and not _on_grid(u, hint):
        hint = None  # a SpacingBetweenSlices the positions contradict: ignore it
    if regular and (hint is None or abs(med - hint) <= max(0.01 * hint, _POS_ATOL)):
        dz = float(np.mean(gaps))  # every slice present: the spacing medseg's series reader gives
    else:
        dz = hint if hint is not None else float(np.min(gaps))
    steps = (u - u[0]) / dz
    if not _on_grid(u, dz):
        raise FormatError(f"{where}: the segmentation's frames are not on a regular grid (positions "
                          f"{', '.join(f'{v:.2f}' for v in u[:6])} mm along the normal, slice spacing {dz:g} mm)")
    idx_of = {round(float(d), 6): int(round(s)) for d, s in zip(u, steps)}
    out = np.empty(len(dist), int)
    for i, d in enumerate(dist):
        near = u[np.argmin(np.abs(u - d))]
        out[i] = idx_of[round(float(near), 6)]
    return out, dz


def read_segmentation(ds: Any, path: str | Path) -> Image:
    """A parsed DICOM SEG as a label map (segment numbers as label values).

    Parameters
    ----------
    ds : pydicom.Dataset
        The SEG, parsed by pydicom (pixel data deferred or not).
    path : str or Path
        Its file, for messages.

    Returns
    -------
    Image
        ``(z, y, x)`` label map (uint8, or uint16 beyond 255 segments); ``(y, x)`` when all
        frames lie in one plane.

    Raises
    ------
    FormatError
        Missing geometry, frames off a regular grid, or overlapping segments.

    Examples
    --------
    >>> import pydicom
    >>> labels = read_segmentation(pydicom.dcmread("seg.dcm"), "seg.dcm")  # doctest: +SKIP
    >>> labels.meta["segments"]  # doctest: +SKIP
    {1: 'liver', 2: 'tumour'}
    """
    p = Path(path)
    where = str(p)
    kind = str(ds.get("SegmentationType", "BINARY") or "BINARY").upper()
    segments = {int(s.SegmentNumber): str(s.get("SegmentLabel", "") or "") for s in ds.get("SegmentSequence", [])}
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    frames = _frames(ds, p)
    if len(per) != len(frames):
        raise FormatError(f"{where}: the segmentation has {len(frames)} frames but {len(per)} per-frame descriptions")
    orient = _group(None, shared, "PlaneOrientationSequence")
    measures = _group(None, shared, "PixelMeasuresSequence")
    pos, seg_no = [], []
    for item in per:
        o = _group(item, shared, "PlaneOrientationSequence")
        orient = orient if orient is not None else o
        measures = measures if measures is not None else _group(item, shared, "PixelMeasuresSequence")
        pp = _group(item, None, "PlanePositionSequence")
        position = float_list(pp.get("ImagePositionPatient") if pp is not None else None, 3)
        if not position:
            raise FormatError(f"{where}: a frame of the segmentation has no ImagePositionPatient; cannot place it")
        pos.append(position)
        sid = _group(item, shared, "SegmentIdentificationSequence")
        seg_no.append(int(sid.ReferencedSegmentNumber) if sid is not None else 0)
    rc = orientation(orient) if orient is not None else None
    pix = float_list(measures.get("PixelSpacing") if measures is not None else None, 2)
    if rc is None or not pix:
        raise FormatError(f"{where}: the segmentation gives no plane orientation or pixel spacing")
    r, c = rc
    n = np.cross(r, c)
    n /= np.linalg.norm(n)
    positions = np.asarray(pos, float)
    dist = positions @ n
    hint = float_list(measures.get("SpacingBetweenSlices"), 1) if measures is not None else []
    index, dz = _slice_index(dist, hint[0] if hint else None, where)
    nz = int(index.max()) + 1
    top = max([*segments, *seg_no, 0])
    out = np.zeros((nz, frames.shape[1], frames.shape[2]), np.uint8 if top <= 255 else np.uint16)
    max_frac = float(ds.get("MaximumFractionalValue", 255) or 255)
    for f, (k, s) in enumerate(zip(index, seg_no)):
        if kind == "LABELMAP" or str(ds.SOPClassUID) == LABEL_MAP_SEGMENTATION_STORAGE:
            vals = frames[f]
            on, value = vals > 0, vals
        else:
            on = frames[f] > (max_frac / 2 if kind == "FRACTIONAL" else 0)
            value = np.full(frames.shape[1:], s, out.dtype)
        clash = on & (out[k] != 0) & (out[k] != value)
        if clash.any():
            other = int(out[k][clash][0])
            this = int(np.asarray(value)[clash][0])
            raise FormatError(f"{where}: segments {min(other, this)} and {max(other, this)} overlap (e.g. on slice "
                              f"{k}); a label map cannot hold overlapping segments: split the SEG per segment first")
        out[k][on] = np.asarray(value)[on] if np.ndim(value) else value
    first = positions[int(np.argmin(dist))]  # the lowest frame along the normal: the grid's origin
    step = positions - first
    lateral = np.linalg.norm(step - np.outer(step @ n, n), axis=1).max()
    if lateral > max(_POS_ATOL * nz, 0.05 * min(pix)):
        raise FormatError(f"{where}: the segmentation's frames are offset sideways by {lateral:.3f} mm; "
                          "they do not form one stack of slices")
    meta: dict[str, Any] = {"modality": "SEG", "series_uid": str(ds.get("SeriesInstanceUID", "") or ""),
                            "series_description": str(ds.get("SeriesDescription", "") or ""),
                            "series_number": str(ds.get("SeriesNumber", "") or ""), "segments": segments}
    ref = ds.get("ReferencedSeriesSequence")
    if ref:
        meta["referenced_series_uid"] = str(ref[0].get("SeriesInstanceUID", "") or "")
    if nz == 1:
        meta["dicom_orientation"] = [float(v) for v in rc.reshape(-1)]
        meta["dicom_position"] = [float(v) for v in first]
        return Image(out[0], (float(pix[0]), float(pix[1])), meta=meta)
    sp, org, dirn = from_itk((pix[1], pix[0], dz), tuple(first), np.column_stack([r, c, n]).reshape(-1))
    return Image(np.ascontiguousarray(out), sp, org, dirn, meta=meta)

"""Values out of parsed DICOM headers: numbers, rescaling, pixel data, spacing, orientation.

Helpers of [`medseg.io.dicom`][]. Each takes a parsed dataset (``pydicom.Dataset``, or any
object with its ``get`` method and attributes) and never fails on a missing or malformed
optional tag: it falls back to the DICOM default.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.io.native import library_messages

__all__ = ["float_list", "rescale_of", "apply_rescale", "pixel_data", "header_meta", "pixel_spacing", "orientation",
           "frame_positions", "enhanced_pixel_spacing"]


def float_list(value: Any, n: int | None = None) -> list[float]:
    """A DICOM value (single or multi-valued) as floats.

    Parameters
    ----------
    value : Any
        A tag's value (number, string, multi-value) or ``None``.
    n : int, optional
        The number of values expected.

    Returns
    -------
    list of float
        ``[]`` when absent, malformed or not ``n`` long.

    Examples
    --------
    >>> float_list(["0.5", "0.5"], 2), float_list("abc"), float_list([1, 2, 3], 2)
    ([0.5, 0.5], [], [])
    """
    if value is None or value == "":
        return []
    try:
        items = value if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)) else [value]
        vals = [float(v) for v in items]
    except (TypeError, ValueError):
        return []
    return vals if n is None or len(vals) == n else []


def rescale_of(ds: Any) -> tuple[float, float]:
    """``(RescaleSlope, RescaleIntercept)``; ``(1, 0)`` when absent or malformed, slope 0 read as 1.

    Parameters
    ----------
    ds : pydicom.Dataset

    Returns
    -------
    tuple of float
    """
    slope = ds.get("RescaleSlope", None)
    inter = ds.get("RescaleIntercept", None)
    try:
        s = float(slope) if slope not in (None, "") else 1.0
        i = float(inter) if inter not in (None, "") else 0.0
    except (TypeError, ValueError):
        s, i = 1.0, 0.0
    return (s if s != 0 else 1.0), i


def _int_dtype_for(lo: float, hi: float) -> np.dtype:
    """The smallest integer dtype holding ``[lo, hi]``."""
    for dt in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def apply_rescale(raw: list[np.ndarray], rescale: list[tuple[float, float]], ds0: Any) -> np.ndarray:
    """Stack slices and apply per-slice slope/intercept with a safe output dtype.

    Parameters
    ----------
    raw : list of ndarray
        ``N`` slices of one shape ``(y, x[, 3])``, stored values.
    rescale : list of (slope, intercept)
        One pair per slice.
    ds0 : pydicom.Dataset
        A header of the series (``BitsStored``, ``PixelRepresentation``).

    Returns
    -------
    ndarray, shape (N, y, x[, 3])
        Unchanged when every pair is ``(1, 0)``; float32 when any slope or intercept is
        non-integer; else the smallest integer dtype that holds every value the stored
        bits can produce after rescaling.

    Examples
    --------
    >>> a = apply_rescale([np.array([[0, 4095]], np.uint16)], [(1.0, -1024.0)], {"BitsStored": 12})
    >>> a.dtype, a.tolist()
    (dtype('int16'), [[[-1024, 3071]]])
    """
    stack = np.stack(raw)
    if all(s == 1.0 and i == 0.0 for s, i in rescale):
        return stack
    integral = all(float(s).is_integer() and float(i).is_integer() for s, i in rescale)
    if not integral:
        out = stack.astype(np.float32)
        for k, (s, i) in enumerate(rescale):
            out[k] = (out[k].astype(np.float64) * s + i).astype(np.float32)
        return out
    bits = int(ds0.get("BitsStored", stack.dtype.itemsize * 8) or stack.dtype.itemsize * 8)
    signed = int(ds0.get("PixelRepresentation", 0) or 0) == 1
    lo_raw, hi_raw = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    lo_raw, hi_raw = min(lo_raw, int(stack.min())), max(hi_raw, int(stack.max()))
    ends = [v * s + i for s, i in rescale for v in (lo_raw, hi_raw)]
    dt = _int_dtype_for(min(ends), max(ends))
    result = np.empty(stack.shape, dtype=dt)
    for k, (s, i) in enumerate(rescale):
        result[k] = (stack[k].astype(np.int64) * int(s) + int(i)).astype(dt)
    return result


#: a decoder plugin is missing (as opposed to data it could not decode)
_NO_DECODER = re.compile(r"missing dependencies|unavailable because|no (available )?(image |pixel data )?handler|"
                         r"not installed", re.I)
#: what a decoder says when it went on past damaged data (its other warnings, e.g. about a
#: header's Bits Stored, are about the header and leave the pixels intact)
_DECODE_TROUBLE = re.compile(r"non-?conformant|invalid|corrupt|truncat|insufficient|unexpected|expected|"
                             r"too (short|long)|fail|error|unable|end of file|\beof\b", re.I)
#: what a parser says when the file ends early (its other warnings are about odd header values)
TRUNCATED = re.compile(r"end of file|\beof\b|truncat|fewer bytes|not enough (data|bytes)", re.I)


def _first_reason(text: str) -> str:
    """The decoder's own reason, without pydicom's 'exceptions were raised by all plugins' frame."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    inner = [ln.split(":", 1)[1].strip() if ":" in ln else ln for ln in lines[1:]]
    return (inner or lines or ["unknown reason"])[0]


def pixel_data(ds: Any, path: Path) -> np.ndarray:
    """The decoded pixel data (YBR colour converted to RGB).

    Parameters
    ----------
    ds : pydicom.Dataset
        Parsed with its pixel data.
    path : Path
        The file, for messages.

    Returns
    -------
    ndarray
        ``(y, x)``, ``(y, x, 3)``, or with a leading frame axis for multi-frame files.

    Raises
    ------
    FormatError
        No pixel data, a missing decoder (the message says which to install), truncated
        data, or compressed data that do not decode cleanly (the decoder failed, or warned
        that it went on past damage).
    """
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    name = getattr(ts, "name", ts)
    with library_messages("pydicom") as msgs:
        try:
            arr = ds.pixel_array
        except (NotImplementedError, RuntimeError) as exc:
            if _NO_DECODER.search(str(exc)):
                raise FormatError(f"{path}: no decoder for the pixel data (transfer syntax {name}); install one "
                                  "such as 'pip install pylibjpeg pylibjpeg-libjpeg' or 'python-gdcm'") from None
            raise FormatError(f"{path}: the pixel data (transfer syntax {name}) cannot be decoded "
                              f"({_first_reason(str(exc))}); the file is corrupt") from None
        except (AttributeError, KeyError) as exc:
            raise FormatError(f"{path}: no pixel data ({exc})") from None
        except (ValueError, EOFError, OSError) as exc:
            raise FormatError(f"{path}: pixel data unreadable ({exc}); the file may be truncated") from None
    trouble = [m for m in msgs.messages if _DECODE_TROUBLE.search(m)]
    if trouble:  # the decoder went on past damage: what it returned is not the image
        raise FormatError(f"{path}: the pixel data (transfer syntax {name}) did not decode cleanly ({trouble[0]}); "
                          "the file is corrupt")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if spp > 1 and photometric.startswith("YBR"):
        from pydicom.pixels import convert_color_space

        arr = convert_color_space(arr, photometric, "RGB")
    return np.asarray(arr)


def header_meta(ds: Any) -> dict[str, Any]:
    """The patient-free tags medseg keeps in ``Image.meta``.

    Parameters
    ----------
    ds : pydicom.Dataset

    Returns
    -------
    dict
        ``modality``, ``series_uid``, ``series_description``, ``series_number``,
        ``photometric``; ``window_center``/``window_width`` and ``body_part`` when present.

    Examples
    --------
    >>> header_meta({"Modality": "CT", "WindowCenter": "40", "WindowWidth": "400"})["window_width"]
    400.0
    """
    meta: dict[str, Any] = {"modality": str(ds.get("Modality", "") or ""),
                            "series_uid": str(ds.get("SeriesInstanceUID", "") or ""),
                            "series_description": str(ds.get("SeriesDescription", "") or ""),
                            "series_number": str(ds.get("SeriesNumber", "") or ""),
                            "photometric": str(ds.get("PhotometricInterpretation", "") or "")}
    wc, ww = float_list(ds.get("WindowCenter")), float_list(ds.get("WindowWidth"))
    if wc and ww:
        meta["window_center"], meta["window_width"] = wc[0], ww[0]
    if ds.get("BodyPartExamined"):
        meta["body_part"] = str(ds.get("BodyPartExamined"))
    return meta


def pixel_spacing(ds: Any) -> tuple[float, float]:
    """``(row spacing, column spacing)`` = spacing along ``(y, x)`` in mm; ``(1, 1)`` when absent.

    Parameters
    ----------
    ds : pydicom.Dataset
        ``PixelSpacing``, else ``ImagerPixelSpacing``.

    Returns
    -------
    tuple of float

    Examples
    --------
    >>> pixel_spacing({"PixelSpacing": ["0.8", "0.7"]}), pixel_spacing({})
    ((0.8, 0.7), (1.0, 1.0))
    """
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        vals = float_list(ds.get(tag), 2)
        if vals and all(v > 0 for v in vals):
            return vals[0], vals[1]
    return 1.0, 1.0


def orientation(ds: Any) -> np.ndarray | None:
    """The unit row and column directions from ``ImageOrientationPatient``.

    Parameters
    ----------
    ds : pydicom.Dataset

    Returns
    -------
    ndarray, shape (2, 3), or None
        Rows: the direction of increasing column index, then of increasing row index
        (LPS); ``None`` when absent or degenerate.
    """
    iop = float_list(ds.get("ImageOrientationPatient"), 6)
    if not iop:
        return None
    r, c = np.asarray(iop[:3]), np.asarray(iop[3:])
    if np.linalg.norm(r) == 0 or np.linalg.norm(c) == 0:
        return None
    return np.stack([r / np.linalg.norm(r), c / np.linalg.norm(c)])


def frame_positions(ds: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-frame positions and the orientation of an enhanced multi-frame object.

    Parameters
    ----------
    ds : pydicom.Dataset

    Returns
    -------
    (ndarray of shape (F, 3), ndarray of shape (2, 3)) or None
        ``None`` unless every frame has a position and an orientation is known.
    """
    per = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    if not per:
        return None
    pos, rc = [], None
    for item in per:
        pps = item.get("PlanePositionSequence")
        if not pps:
            return None
        p = float_list(pps[0].get("ImagePositionPatient"), 3)
        if not p:
            return None
        pos.append(p)
        pos_o = item.get("PlaneOrientationSequence")
        if rc is None and pos_o:
            rc = orientation(pos_o[0])
    if rc is None and shared and shared[0].get("PlaneOrientationSequence"):
        rc = orientation(shared[0].PlaneOrientationSequence[0])
    if rc is None:
        return None
    return np.asarray(pos), rc


def enhanced_pixel_spacing(ds: Any) -> tuple[float, float]:
    """The pixel spacing of an enhanced multi-frame object (functional groups, else the top level).

    Parameters
    ----------
    ds : pydicom.Dataset

    Returns
    -------
    tuple of float
        Spacing along ``(y, x)`` in mm.
    """
    for seq_name in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        seq = ds.get(seq_name)
        if seq and seq[0].get("PixelMeasuresSequence"):
            vals = float_list(seq[0].PixelMeasuresSequence[0].get("PixelSpacing"), 2)
            if vals:
                return vals[0], vals[1]
    return pixel_spacing(ds)

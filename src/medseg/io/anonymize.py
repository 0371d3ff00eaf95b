"""De-identification: DICOM by the PS3.15 Annex E Basic Profile, NIfTI/NRRD/MHA free text cleared.

``medseg anonymize IN OUT`` (and `anonymize`) writes a de-identified copy of a DICOM file,
series, study or any folder holding them, or of a NIfTI/NRRD/MHA file or folder:

- **DICOM**: every attribute of the Basic Application Level Confidentiality Profile
  ([`medseg.io.deid_profile.BASIC_PROFILE`][], PS3.15 Table E.1-1) is removed, emptied, given a
  dummy value or (UIDs) replaced, in the top-level data set and in every sequence item; private
  attributes, curve data and overlay comments/data are removed. Where the profile leaves a
  choice (``X/Z``, ``X/Z/D``) the attribute is emptied, keeping type-2 attributes valid; ``X/D`` and
  ``Z/D`` get a dummy. UIDs are replaced by ``2.25.<hash>`` UIDs derived from a secret salt, so
  the same UID maps to the same new UID in every file of a run (a study's series and the
  references between them stay consistent) and, with ``uid_map``, across runs. Dates may instead
  be shifted by a per-patient number of days (``date_shift=True``; the Retain Longitudinal
  Temporal Information with Modified Dates option). Patient Identity Removed, the
  De-identification Method and its code sequence are recorded. Files flagged with burned-in
  annotation (or of modalities that usually carry it and are not flagged "NO") are reported:
  pixels are never changed, so burned-in text stays.
- **NIfTI**: ``descrip``, ``aux_file``, ``db_name`` and ``intent_name`` are blanked and header
  extensions (which may hold a DICOM header) zeroed, byte for byte in place: the voxels and the
  affine are the original bytes.
- **NRRD / MHA**: header lines other than the geometry and encoding fields (comments,
  ``content``, key/value pairs, ``Name``, ``Comment``) are dropped; the data bytes are copied.

File and folder names are not copied (they often hold names, dates or IDs): outputs are
``OUT/study_NNN/series_NNN/IMNNNNN.dcm`` for DICOM and ``OUT/image_NNN<suffix>`` for other files.
The input is never modified; OUT must not be IN or inside it.
"""
from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medseg.errors import FormatError, InputError
from medseg.io.atomic import atomic_path, atomic_write_text, refuse_existing
from medseg.io.base import image_suffix
from medseg.io.deid_profile import BASIC_PROFILE
from medseg.io.dicom import looks_like_dicom

__all__ = ["AnonymizeReport", "Anonymizer", "anonymize"]

log = logging.getLogger(__name__)

#: what the dummy value of a ``D`` action is, by VR (dates/times: the earliest legal values)
DUMMY = {"PN": "ANONYMOUS", "LO": "ANONYMOUS", "SH": "ANONYMOUS", "ST": "ANONYMOUS", "LT": "ANONYMOUS",
         "UT": "ANONYMOUS", "UC": "ANONYMOUS", "AE": "ANONYMOUS", "CS": "ANONYMOUS", "DA": "19000101",
         "TM": "000000", "DT": "19000101000000", "AS": "000Y", "IS": "0", "DS": "0", "UR": "", "UI": ""}
#: modalities whose images often have text burned into the pixels
BURNED_IN_MODALITIES = {"US", "SC", "XC", "ES", "OT", "GM", "SM", "OP", "IVUS", "DOC"}
#: NRRD fields that describe the data (kept); everything else in the header is dropped
NRRD_KEEP = {"type", "dimension", "space", "space dimension", "sizes", "space directions", "space origin",
             "kinds", "endian", "encoding", "spacings", "thicknesses", "axis mins", "axis maxs", "centerings",
             "measurement frame", "byte skip", "line skip", "data file", "datafile", "space units", "units",
             "min", "max", "old min", "old max", "oldmin", "oldmax", "block size", "blocksize", "sample units"}
#: MetaImage fields that describe the data (kept)
MHA_KEEP = {"ObjectType", "NDims", "BinaryData", "BinaryDataByteOrderMSB", "ElementByteOrderMSB",
            "CompressedData", "CompressedDataSize", "TransformMatrix", "Rotation", "Orientation", "Offset",
            "Position", "Origin", "CenterOfRotation", "AnatomicalOrientation", "ElementSpacing", "ElementSize",
            "DimSize", "HeaderSize", "ElementType", "ElementNumberOfChannels", "ElementMin", "ElementMax",
            "ElementDataFile"}
#: the NIfTI header's free-text fields
NIFTI_TEXT = ("descrip", "aux_file", "db_name", "intent_name")
METHOD = "DICOM PS3.15 E.1 Basic Profile (medseg)"  # LO: at most 64 characters


@dataclass
class AnonymizeReport:
    """What `anonymize` did.

    Parameters
    ----------
    written : list of Path
        The output files.
    burned_in : list of Path
        Input DICOM files whose pixels may hold burned-in text (flagged ``YES``, or of an
        ultrasound/secondary-capture-like modality not flagged ``NO``).
    uids : int
        Distinct UIDs replaced.
    skipped : list of Path
        Files that are neither DICOM nor a supported image format (not copied).
    """

    written: list[Path] = field(default_factory=list)
    burned_in: list[Path] = field(default_factory=list)
    uids: int = 0
    skipped: list[Path] = field(default_factory=list)


class Anonymizer:
    """The state one de-identification run shares: the UID map and the per-patient date offsets.

    Parameters
    ----------
    salt : bytes, optional
        Secret that new UIDs and date offsets derive from (random when not given: a new mapping
        every run).
    date_shift : bool
        Shift dates by a per-patient offset (-3650 to -365 days) instead of removing them.
    uids : dict, optional
        Known ``{old UID: new UID}`` pairs (from an earlier run's mapping file).

    Examples
    --------
    >>> a = Anonymizer(salt=b"k")
    >>> new = a.uid("1.2.840.1")
    >>> new.startswith("2.25.") and new == a.uid("1.2.840.1") and new != a.uid("1.2.840.2")
    True
    """

    def __init__(self, salt: bytes | None = None, *, date_shift: bool = False,
                 uids: dict[str, str] | None = None) -> None:
        self.salt = salt if salt is not None else secrets.token_bytes(32)
        self.date_shift = date_shift
        self.uids: dict[str, str] = dict(uids or {})

    def uid(self, old: str) -> str:
        """The replacement of a UID: the same for the same UID, ``2.25.`` + 128 bits of a keyed hash.

        Parameters
        ----------
        old : str

        Returns
        -------
        str
        """
        old = str(old).strip().rstrip("\x00")
        if not old:
            return old
        if old not in self.uids:
            digest = hashlib.sha256(self.salt + b"uid:" + old.encode()).digest()
            self.uids[old] = f"2.25.{int.from_bytes(digest[:16], 'big')}"
        return self.uids[old]

    def offset_days(self, patient: str) -> int:
        """The patient's date offset in days (-3650 to -365), fixed by the salt.

        Parameters
        ----------
        patient : str
            The original Patient ID (and name) the offset is keyed on.

        Returns
        -------
        int
        """
        digest = hashlib.sha256(self.salt + b"date:" + patient.encode()).digest()
        return -365 - int.from_bytes(digest[:4], "big") % (3650 - 365)

    # ------------------------------------------------------------------ DICOM
    def dataset(self, ds: Any) -> Any:
        """De-identify a pydicom Dataset in place (file meta included) and return it.

        Parameters
        ----------
        ds : pydicom.Dataset

        Returns
        -------
        pydicom.Dataset
        """
        from pydicom.dataset import Dataset
        from pydicom.sequence import Sequence

        patient = f"{ds.get('PatientID', '')}|{ds.get('PatientName', '')}"
        days = self.offset_days(patient) if self.date_shift else 0
        self._walk(ds, days)
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.uid(meta.MediaStorageSOPInstanceUID)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD + (", dates shifted" if self.date_shift else "")
        codes = [("113100", "Basic Application Confidentiality Profile")]
        if self.date_shift:
            codes.append(("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))
            ds.LongitudinalTemporalInformationModified = "MODIFIED"
        items = []
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            items.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(items)
        return ds

    def _walk(self, ds: Any, days: int) -> None:
        from pydicom.sequence import Sequence

        for elem in list(ds):
            tag = elem.tag
            group, element = tag.group, tag.element
            if tag.is_private or (0x5000 <= group <= 0x50FF and group % 2 == 0) or (
                    0x6000 <= group <= 0x60FF and group % 2 == 0 and element in (0x3000, 0x4000)):
                del ds[tag]
                continue
            action = BASIC_PROFILE.get(int(tag))
            if elem.VR == "SQ":
                if action is None or "U" in action:
                    for item in elem.value or []:
                        self._walk(item, days)
                elif action == "X":
                    del ds[tag]
                else:  # Z, X/Z, D...: an empty sequence
                    elem.value = Sequence([])
                continue
            if action is None:
                continue
            if "U" in action:
                elem.value = self._uids(elem.value)
            elif days and elem.VR in ("DA", "DT") and elem.value:
                elem.value = _shift(elem.value, elem.VR, days)
            elif days and elem.VR == "TM":
                continue  # times of day are kept with shifted dates
            elif action == "X":
                del ds[tag]
            elif action in ("Z", "X/Z", "X/Z/D"):
                elem.value = "" if elem.VR not in ("US", "SS", "UL", "SL", "FL", "FD", "OB", "OW") else None
            else:  # D, X/D, Z/D: a dummy value
                elem.value = DUMMY.get(elem.VR, "") if elem.VR in DUMMY else None

    def _uids(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return [self.uid(v) for v in value]
        return self.uid(value)

    def mapping(self) -> dict[str, Any]:
        """The run's mapping, to keep UIDs and date offsets consistent in a later run.

        It is a key to re-identification: keep it as private as the original data.

        Returns
        -------
        dict
            ``{"salt": hex, "date_shift": bool, "uids": {old: new}}``.
        """
        return {"salt": self.salt.hex(), "date_shift": self.date_shift, "uids": dict(sorted(self.uids.items()))}


def _shift(value: Any, vr: str, days: int) -> Any:
    """A DA/DT value (or several) moved by ``days``; a value that does not parse is emptied."""
    values = list(value) if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue" else [value]
    out = []
    for v in values:
        s = str(v).strip()
        try:
            d = datetime.datetime.strptime(s[:8], "%Y%m%d") + datetime.timedelta(days=days)
            out.append(d.strftime("%Y%m%d") + (s[8:] if vr == "DT" else ""))
        except ValueError:
            out.append("")
    return out if len(out) > 1 else out[0]


# ---------------------------------------------------------------------- other formats
def _nifti_clean(data: bytes, where: Path) -> bytes:
    """A NIfTI-1/2 file's bytes with the free-text fields blanked and extensions zeroed, in place."""
    import nibabel as nib

    size = int.from_bytes(data[:4], "little")
    if size not in (348, 540):
        size = int.from_bytes(data[:4], "big")
    if size == 348:
        dtype = nib.Nifti1Header.template_dtype
    elif size == 540:
        dtype = nib.Nifti2Header.template_dtype
    else:
        raise FormatError(f"{where}: not a NIfTI-1 or NIfTI-2 file")
    fields: Any = dtype.fields or {}
    out = bytearray(data)
    for name in NIFTI_TEXT:
        fdtype, offset = fields[name][:2]
        out[offset:offset + fdtype.itemsize] = b"\x00" * fdtype.itemsize
    little = int.from_bytes(data[:4], "little") == size
    vox_off = fields["vox_offset"]
    off_bytes = bytes(data[vox_off[1]:vox_off[1] + vox_off[0].itemsize])
    import numpy as np

    vox_offset = int(np.frombuffer(off_bytes, dtype=vox_off[0].newbyteorder("<" if little else ">"))[0])
    if len(out) >= size + 4 and any(out[size:size + 4]):  # extensions: flag off, bytes zeroed
        end = max(vox_offset, size + 4) if vox_offset else len(out)
        out[size:end] = b"\x00" * (end - size)
    return bytes(out)


def _text_header_clean(data: bytes, where: Path, kind: str) -> bytes:
    """NRRD or MetaImage bytes with only the data-describing header fields kept."""
    if kind == "nrrd":
        end = data.find(b"\n\n")
        if not data.startswith(b"NRRD") or end < 0:
            raise FormatError(f"{where}: not an NRRD file with an attached header")
        lines = data[:end].decode("latin-1").split("\n")
        kept = [lines[0]]
        for ln in lines[1:]:
            if ln.startswith("#") or ":=" in ln:
                continue
            key = ln.split(":", 1)[0].strip().lower()
            if key in NRRD_KEEP:
                kept.append(ln)
        return "\n".join(kept).encode("latin-1") + data[end:]
    marker = re.search(rb"ElementDataFile\s*=\s*[^\r\n]*\r?\n", data)
    if marker is None:
        raise FormatError(f"{where}: not a MetaImage file (no ElementDataFile line)")
    head = data[:marker.end()].decode("latin-1").splitlines(keepends=True)
    kept_lines = [ln for ln in head if ln.split("=", 1)[0].strip() in MHA_KEEP]
    return "".join(kept_lines).encode("latin-1") + data[marker.end():]


def _clean_file(src: Path) -> tuple[bytes, str]:
    """The de-identified bytes of a NIfTI/NRRD/MHA file and its suffix."""
    suffix = image_suffix(src)
    data = src.read_bytes()
    if suffix == ".nii.gz":
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise FormatError(f"{src}: the gzip stream is damaged ({exc})") from None
        return gzip.compress(_nifti_clean(raw, src), compresslevel=6, mtime=0), suffix
    if suffix == ".nii":
        return _nifti_clean(data, src), suffix
    if suffix in (".nrrd", ".mha"):
        return _text_header_clean(data, src, suffix[1:]), suffix
    raise FormatError(f"{src}: {suffix or 'this file'} cannot be anonymized (DICOM, NIfTI, NRRD and MHA can)")


# ---------------------------------------------------------------------- entry point
def _inputs(inp: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(DICOM files, other image files, skipped files) under ``inp``."""
    files = [inp] if inp.is_file() else sorted(p for p in inp.rglob("*") if p.is_file() and not p.name.startswith("."))
    dicom, other, skipped = [], [], []
    for f in files:
        if image_suffix(f) in (".nii.gz", ".nii", ".nrrd", ".mha"):
            other.append(f)
        elif looks_like_dicom(f):
            dicom.append(f)
        else:
            skipped.append(f)
    return dicom, other, skipped


def anonymize(inp: str | Path, out: str | Path, *, date_shift: bool = False, uid_map: str | Path | None = None,
              overwrite: bool = False, progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None
              ) -> AnonymizeReport:
    """Write a de-identified copy of a DICOM/NIfTI/NRRD/MHA file or folder (see the module doc).

    Parameters
    ----------
    inp : str or Path
        A file, a series folder, a study folder or any folder holding such files.
    out : str or Path
        The output folder (for a single NIfTI/NRRD/MHA file: the output file or folder).
    date_shift : bool
        Shift dates by a per-patient offset instead of removing them.
    uid_map : str or Path, optional
        A JSON mapping file: read when it exists (its salt keeps UIDs and offsets the same as in
        the run that wrote it), then written with this run's UIDs added. It re-identifies:
        keep it private.
    overwrite : bool
        Replace outputs that exist.
    progress : callable, optional
        Wraps the file iteration (a progress bar).

    Returns
    -------
    AnonymizeReport

    Raises
    ------
    InputError
        IN missing or without supported files, OUT equal to or inside IN, a bad mapping file,
        or (without ``overwrite``) existing outputs.
    FormatError
        A file that cannot be parsed.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from medseg.image import Image
    >>> from medseg.io import read_image, write_image
    >>> root = Path(tempfile.mkdtemp())
    >>> src = write_image(Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4)), root / "scan.nii.gz")
    >>> rep = anonymize(src, root / "anon")
    >>> [p.name for p in rep.written]
    ['image_000.nii.gz']
    >>> bool((read_image(rep.written[0]).array == read_image(src).array).all())
    True
    """
    import pydicom

    inp, out = Path(inp), Path(out)
    if not inp.exists():
        raise InputError(f"{inp}: no such file or folder")
    ri, ro = inp.resolve(), out.resolve()
    if ro == ri or ri in ro.parents:
        raise InputError(f"{out}: the output must not be the input or inside it")
    dicom, other, skipped = _inputs(inp)
    if not dicom and not other:
        raise InputError(f"{inp}: no DICOM, NIfTI, NRRD or MHA files to anonymize")
    salt, known = None, {}
    if uid_map is not None and Path(uid_map).is_file():
        try:
            doc = json.loads(Path(uid_map).read_text())
            salt, known = bytes.fromhex(doc["salt"]), dict(doc.get("uids", {}))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{uid_map}: not a mapping file written by medseg anonymize ({exc})") from None
    anon = Anonymizer(salt, date_shift=date_shift, uids=known)
    # names: study/series by first appearance, instances by InstanceNumber then file order
    headers = []
    for f in dicom:
        try:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged files
            raise FormatError(f"{f}: cannot read DICOM ({type(exc).__name__}: {exc})") from None
        headers.append((f, str(ds.get("StudyInstanceUID", "")), str(ds.get("SeriesInstanceUID", "")),
                        ds.get("InstanceNumber", None), str(ds.get("Modality", "")),
                        str(ds.get("BurnedInAnnotation", "")).upper()))
    studies: dict[str, int] = {}
    series: dict[tuple[str, str], int] = {}
    count: dict[tuple[str, str], int] = {}
    targets: list[tuple[Path, Path, str]] = []
    for f, st, se, _, _, _ in sorted(headers, key=lambda h: (h[1], h[2], _num(h[3]), str(h[0]))):
        s_no = studies.setdefault(st, len(studies) + 1)
        se_no = series.setdefault((st, se), len([k for k in series if k[0] == st]) + 1)
        count[(st, se)] = count.get((st, se), 0) + 1
        targets.append((f, out / f"study_{s_no:03d}" / f"series_{se_no:03d}" / f"IM{count[(st, se)]:05d}.dcm",
                        "dicom"))
    if inp.is_file() and other and image_suffix(out):
        targets.append((other[0], out, "file"))
    else:
        targets += [(f, out / f"image_{i:03d}{image_suffix(f)}", "file") for i, f in enumerate(other)]
    refuse_existing([t for _, t, _ in targets], force=overwrite, where=out)
    report = AnonymizeReport(skipped=skipped)
    burned = {f for f, _, _, _, mod, flag in headers
              if flag == "YES" or (mod.upper() in BURNED_IN_MODALITIES and flag != "NO")}
    items = progress(targets) if progress is not None else targets
    for src, dst, kind in items:
        if kind == "dicom":
            try:
                ds = pydicom.dcmread(str(src))
            except Exception as exc:  # noqa: BLE001 - pydicom raises many types on damaged files
                raise FormatError(f"{src}: cannot read DICOM ({type(exc).__name__}: {exc})") from None
            anon.dataset(ds)
            dst.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dst) as tmp:
                ds.save_as(str(tmp), enforce_file_format=bool(getattr(ds, "file_meta", None)))
            if src in burned:
                report.burned_in.append(src)
        else:
            data, _ = _clean_file(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dst) as tmp:
                tmp.write_bytes(data)
        report.written.append(dst)
    report.uids = len(anon.uids) - len(known)
    if uid_map is not None:
        atomic_write_text(uid_map, json.dumps(anon.mapping(), indent=1))
        try:
            os.chmod(uid_map, 0o600)
        except OSError:  # pragma: no cover - file systems without permissions
            pass
    for f in skipped[:5]:
        log.warning("%s: not DICOM, NIfTI, NRRD or MHA; not copied", f)
    return report


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("inf")

"""Helpers for the I/O tests: oblique geometry and DICOM series built with pydicom."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """A proper 3x3 rotation (orthonormal columns, det +1)."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def write_dicom_series(folder: Path, raw: np.ndarray, *, pixel_spacing=(0.8, 0.7), gap=2.5,
                       row_dir=(1.0, 0.0, 0.0), col_dir=(0.0, 1.0, 0.0), origin=(-10.0, 20.0, 30.0),
                       slope=None, intercept=None, bits_stored=16, signed=False, series_uid=None,
                       description="T1", modality="MR", shuffle_seed=0, suffix=".dcm",
                       positions=None, window=(40.0, 400.0), compress: str | None = None) -> list[Path]:
    """Write ``raw`` ``(z, y, x)`` as one DICOM file per slice, in shuffled file order.

    Slice ``k`` lies at ``origin + k * gap * normal`` (``normal = row x col``) unless
    ``positions`` gives each slice's position. ``compress="rle"`` writes RLE Lossless
    (encapsulated) pixel data. Returns the written paths.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    r, c = np.asarray(row_dir, float), np.asarray(col_dir, float)
    n = np.cross(r, c)
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    nz = raw.shape[0]
    pos = positions if positions is not None else [np.asarray(origin) + k * gap * n for k in range(nz)]
    order = np.random.default_rng(shuffle_seed).permutation(nz)
    paths = []
    for file_no, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        p = folder / f"img{file_no:03d}{suffix}"
        ds = FileDataset(str(p), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^Jane", "SECRET-ID-42", "19700101"
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = modality, description, 7
        ds.InstanceNumber = int(nz - file_no)  # deliberately unrelated to the position
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos[k]]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*r, *c)]
        ds.PixelSpacing = [f"{pixel_spacing[0]:g}", f"{pixel_spacing[1]:g}"]
        ds.SliceThickness = "99"  # wrong on purpose: spacing must come from the positions
        ds.Rows, ds.Columns = raw.shape[1], raw.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
        ds.PixelRepresentation = 1 if signed else 0
        if slope is not None:
            s = slope[k] if isinstance(slope, (list, tuple)) else slope
            i = intercept[k] if isinstance(intercept, (list, tuple)) else intercept
            ds.RescaleSlope, ds.RescaleIntercept = f"{s:g}", f"{i:g}"
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = f"{window[0]:g}", f"{window[1]:g}"
        plane = np.ascontiguousarray(raw[k].astype(np.int16 if signed else np.uint16))
        ds.PixelData = plane.tobytes()
        if compress == "rle":
            from pydicom.uid import RLELossless

            ds.compress(RLELossless, plane)
        pydicom.dcmwrite(str(p), ds, enforce_file_format=True)
        paths.append(p)
    return paths

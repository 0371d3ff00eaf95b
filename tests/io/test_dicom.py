"""DICOM: series built with pydicom read back with order, geometry, rescale and metadata."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from io_helpers import rotation, write_dicom_series

from medseg.errors import FormatError, InputError
from medseg.io import read_image, read_label, write_image
from medseg.io.dicom import list_series, read_dicom
from medseg.io.geometry import from_itk
from medseg.io.sitk import image_from_sitk


def _raw(shape=(6, 10, 12), seed=0, hi=4000):
    return np.random.default_rng(seed).integers(0, hi, shape).astype(np.uint16)


def _sitk_series(folder):
    import SimpleITK as sitk

    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(str(folder)))
    return image_from_sitk(r.Execute())


def test_oblique_shuffled_series_with_rescale(tmp_path):
    raw = _raw()
    R = rotation(0.3, -0.2, 0.5)
    r, c = R[:, 0], R[:, 1]
    write_dicom_series(tmp_path / "s", raw, row_dir=r, col_dir=c, slope=0.5, intercept=-100.0, gap=2.5,
                       pixel_spacing=(0.8, 0.7), origin=(-10, 20, 30))
    img = read_image(tmp_path / "s")
    assert img.shape == raw.shape and img.dtype == np.float32
    np.testing.assert_allclose(img.array, raw * 0.5 - 100.0, rtol=0, atol=1e-4)  # position order, not file order
    exp_sp, exp_org, exp_dir = from_itk((0.7, 0.8, 2.5), (-10, 20, 30), np.column_stack([r, c, np.cross(r, c)]))
    np.testing.assert_allclose(img.spacing, exp_sp, atol=1e-5)
    np.testing.assert_allclose(img.origin, exp_org, atol=1e-5)
    np.testing.assert_allclose(img.direction, exp_dir, atol=1e-6)
    ref = _sitk_series(tmp_path / "s")  # independent reading
    np.testing.assert_allclose(img.spacing, ref.spacing, atol=1e-5)
    np.testing.assert_allclose(img.origin, ref.origin, atol=1e-4)
    np.testing.assert_allclose(img.direction, ref.direction, atol=1e-6)
    np.testing.assert_allclose(img.array, ref.array, atol=1e-3)


def test_integer_rescale_picks_smallest_safe_type(tmp_path):
    raw = _raw(hi=4096)
    write_dicom_series(tmp_path / "ct", raw, slope=1, intercept=-1024, bits_stored=12, modality="CT")
    img = read_image(tmp_path / "ct")
    assert img.dtype == np.int16  # 12 stored bits: -1024..3071
    np.testing.assert_array_equal(img.array, raw.astype(np.int32) - 1024)
    assert img.meta["modality"] == "CT"


def test_per_slice_rescale(tmp_path):
    raw = _raw((3, 4, 5))
    write_dicom_series(tmp_path / "p", raw, slope=[1.0, 2.0, 0.25], intercept=[0.0, 5.0, -1.0], shuffle_seed=3)
    img = read_image(tmp_path / "p")
    exp = raw.astype(np.float64) * np.array([1.0, 2.0, 0.25])[:, None, None] + np.array([0.0, 5.0, -1.0])[:, None, None]
    np.testing.assert_allclose(img.array, exp, atol=1e-4)


def test_without_rescale_keeps_stored_type(tmp_path):
    raw = _raw()
    write_dicom_series(tmp_path / "u", raw)
    img = read_image(tmp_path / "u")
    assert img.dtype == np.uint16
    np.testing.assert_array_equal(img.array, raw)


def test_metadata_is_patient_free(tmp_path):
    write_dicom_series(tmp_path / "m", _raw((2, 4, 4)), description="FLAIR", window=(50, 350))
    img = read_image(tmp_path / "m")
    assert img.meta["series_description"] == "FLAIR"
    assert img.meta["window_center"] == 50 and img.meta["window_width"] == 350
    assert img.meta["series_uid"]
    text = repr(dict(img.meta))
    for secret in ("Doe", "SECRET-ID-42", "19700101"):
        assert secret not in text


def test_files_without_suffix_found_by_preamble(tmp_path):
    raw = _raw((3, 5, 6))
    write_dicom_series(tmp_path / "nosuf", raw, suffix="")
    (tmp_path / "nosuf" / "notes.txt").write_text("not dicom")
    img = read_image(tmp_path / "nosuf")
    np.testing.assert_array_equal(img.array, raw)
    single = read_image(next(p for p in (tmp_path / "nosuf").iterdir() if p.name.startswith("img")))
    assert single.ndim == 2
    uid_named = write_dicom_series(tmp_path / "uid", raw[:1], suffix=".1.2.840.99")[0]  # unknown "suffix"
    np.testing.assert_array_equal(read_image(uid_named).array, raw[0])


def test_several_series_listed_and_selectable(tmp_path):
    a, b = _raw((3, 4, 5), seed=1), _raw((5, 4, 5), seed=2)
    write_dicom_series(tmp_path / "study", a, series_uid="1.2.3.1", description="T1", shuffle_seed=1)
    write_dicom_series(tmp_path / "study", b, series_uid="1.2.3.2", description="T2", suffix=".DCM", shuffle_seed=2)
    # one folder, both series' files mixed (second with upper-case suffix)
    with pytest.raises(InputError) as e:
        read_image(tmp_path / "study")
    msg = str(e.value)
    assert "1.2.3.1" in msg and "1.2.3.2" in msg and "'T1'" in msg and "'T2'" in msg
    assert "3 file(s)" in msg and "5 file(s)" in msg and "--series" in msg
    np.testing.assert_array_equal(read_image(tmp_path / "study", series="1.2.3.2").array, b)
    np.testing.assert_array_equal(read_image(tmp_path / "study", series="T1").array, a)
    assert [s.uid for s in list_series(tmp_path / "study")] == ["1.2.3.1", "1.2.3.2"]
    with pytest.raises(InputError, match="no single DICOM series matches '9.9'"):
        read_image(tmp_path / "study", series="9.9")


def test_uneven_spacing_is_reported(tmp_path, caplog):
    raw = _raw((5, 4, 4))
    pos = [(0.0, 0.0, z) for z in (0.0, 2.0, 4.0, 8.0, 10.0)]  # slice at 6.0 missing
    write_dicom_series(tmp_path / "gap", raw, positions=pos)
    with pytest.raises(FormatError) as e:
        read_image(tmp_path / "gap")
    assert "uneven slice spacing" in str(e.value) and "2 mm x3" in str(e.value) and "4 mm x1" in str(e.value)
    assert str(tmp_path / "gap") in str(e.value)
    with caplog.at_level(logging.WARNING):
        img = read_dicom(tmp_path / "gap", allow_uneven=True)
    assert img.spacing[0] == pytest.approx(2.0) and "uneven" in caplog.text


def test_small_rounding_in_positions_is_accepted(tmp_path):
    pos = [(0.0, 0.0, z) for z in (0.0, 2.0004, 3.9998, 6.0003)]
    write_dicom_series(tmp_path / "r", _raw((4, 3, 3)), positions=pos)
    assert read_image(tmp_path / "r").spacing[0] == pytest.approx(2.0, abs=1e-3)


def test_duplicate_positions_and_tilt_are_errors(tmp_path):
    write_dicom_series(tmp_path / "dup", _raw((3, 4, 4)), positions=[(0, 0, 0), (0, 0, 2), (0, 0, 2)])
    with pytest.raises(FormatError, match="share a position"):
        read_image(tmp_path / "dup")
    write_dicom_series(tmp_path / "tilt", _raw((3, 4, 4)), positions=[(0, 0, 0), (0, 1, 2), (0, 2, 4)])
    with pytest.raises(FormatError, match="sideways"):
        read_image(tmp_path / "tilt")


def test_single_file_is_2d(tmp_path):
    raw = _raw((1, 6, 7))
    paths = write_dicom_series(tmp_path / "one", raw, pixel_spacing=(0.5, 0.25), slope=2, intercept=1)
    img = read_image(paths[0])
    assert img.ndim == 2 and img.shape == (6, 7) and img.spacing == (0.5, 0.25)
    np.testing.assert_array_equal(img.array, raw[0].astype(np.int64) * 2 + 1)
    assert len(img.meta["dicom_position"]) == 3 and img.meta["format"] == "DICOM"
    vol = read_image(tmp_path / "one")  # a folder with one file is a one-slice image
    assert vol.shape == (6, 7)


def _multiframe(tmp_path, positions):
    import pydicom
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    raw = _raw((3, 4, 5))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    p = tmp_path / "mf.dcm"
    ds = FileDataset(str(p), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality, ds.NumberOfFrames, ds.Rows, ds.Columns = "MR", 3, 4, 5
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if positions:
        shared = Dataset()
        po, pm = Dataset(), Dataset()
        po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        pm.PixelSpacing = [0.5, 0.6]
        shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([po]), Sequence([pm])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        per = []
        for z in (4.0, 0.0, 2.0):  # frames stored out of order
            item, pp = Dataset(), Dataset()
            pp.ImagePositionPatient = [0, 0, z]
            item.PlanePositionSequence = Sequence([pp])
            per.append(item)
        ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = raw.tobytes()
    pydicom.dcmwrite(str(p), ds, enforce_file_format=True)
    return p, raw


def test_multiframe_with_positions_is_a_volume(tmp_path):
    p, raw = _multiframe(tmp_path, positions=True)
    img = read_image(p)
    assert img.shape == (3, 4, 5) and img.spacing == pytest.approx((2.0, 0.5, 0.6))
    np.testing.assert_array_equal(img.array, raw[[1, 2, 0]])


def test_multiframe_without_positions_is_a_stack(tmp_path):
    p, raw = _multiframe(tmp_path, positions=False)
    img = read_image(p)
    assert img.shape == (3, 4, 5) and img.meta["frames"] == "unpositioned"
    np.testing.assert_array_equal(img.array, raw)


def test_dicom_is_read_only(tmp_path):
    img = read_label(write_dicom_series(tmp_path / "x", _raw((1, 3, 3), hi=2))[0])
    with pytest.raises(FormatError, match="cannot write"):
        write_image(img, tmp_path / "out.dcm")
    assert not (tmp_path / "out.dcm").exists()


def test_corrupt_dicom_names_the_file(tmp_path):
    paths = write_dicom_series(tmp_path / "c", _raw((2, 8, 8)))
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) - 60])  # truncated pixel data
    with pytest.raises(FormatError) as e:
        read_image(tmp_path / "c")
    assert str(paths[0]) in str(e.value)
    bad = tmp_path / "garbage.dcm"
    bad.write_bytes(b"\x00\x01nonsense" * 10)
    with pytest.raises(FormatError, match="garbage.dcm"):
        read_image(bad)


def test_empty_folder_is_an_input_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no DICOM files"):
        read_image(tmp_path / "empty")


def test_single_rgb_file(tmp_path):
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rgb = np.random.default_rng(5).integers(0, 255, (6, 7, 3)).astype(np.uint8)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.4"  # VL photographic image
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    p = tmp_path / "photo.dcm"
    ds = FileDataset(str(p), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality, ds.Rows, ds.Columns = "XC", 6, 7
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = rgb.tobytes()
    pydicom.dcmwrite(str(p), ds, enforce_file_format=True)
    img = read_image(p)
    assert img.ndim == 2 and img.n_channels == 3 and img.meta["rgb"] is True
    np.testing.assert_array_equal(np.moveaxis(img.array, 0, -1), rgb)

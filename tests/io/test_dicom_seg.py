"""DICOM SEG: label maps written with highdicom against a synthetic (or the TCIA) series and read back."""
from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
from io_helpers import rotation, write_dicom_series

from medseg.errors import DependencyError, FormatError, InputError
from medseg.image import Image
from medseg.io import read_image, read_label
from medseg.io.dicom_seg import (
    SEGMENTATION_STORAGE,
    convert_to_dicom_seg,
    dicom_seg_pairs,
    is_dicom_source,
    read_dicom_seg,
    segmenter_class_names,
    write_dicom_seg,
)

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")


def _series(tmp_path, shape=(5, 12, 10), name="t1", **kw):
    raw = np.random.default_rng(0).integers(0, 900, shape).astype(np.uint16)
    R = rotation(0.3, -0.2, 0.4)
    files = write_dicom_series(tmp_path / name, raw, row_dir=R[:, 0], col_dir=R[:, 1], gap=3.0, **kw)
    return tmp_path / name, files


def _labels(shape, seed=1):
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    lab[1:4, 2:8, 3:7] = 1
    lab[2, 5:10, 1:4] = 2
    lab[rng.random(shape) > 0.97] = 2
    return lab


def _same_geometry(a, b):
    assert a.shape == b.shape
    np.testing.assert_allclose(a.spacing, b.spacing, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.origin, b.origin, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-6)


def test_3d_round_trip_names_references_and_empty_class(tmp_path):
    folder, files = _series(tmp_path)
    image = read_image(folder)
    lab = _labels(image.shape)
    names = {1: "liver", 2: "tumour", 3: "vessel"}  # class 3 is absent from this label map
    out = write_dicom_seg(image.with_array(lab), tmp_path / "seg.dcm", folder, class_names=names, method="unet")
    back = read_label(out)
    assert np.array_equal(back.array, lab) and back.array.dtype == np.uint8
    _same_geometry(back, image)
    assert back.meta["segments"] == names and back.meta["modality"] == "SEG"

    ds = pydicom.dcmread(out)
    sources = [pydicom.dcmread(f) for f in files]
    assert ds.SOPClassUID == SEGMENTATION_STORAGE == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
    assert ds.SeriesInstanceUID != sources[0].SeriesInstanceUID
    assert ds.SOPInstanceUID not in {s.SOPInstanceUID for s in sources}
    assert ds.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    ref = ds.ReferencedSeriesSequence[0]
    assert ref.SeriesInstanceUID == sources[0].SeriesInstanceUID == back.meta["referenced_series_uid"]
    assert {r.ReferencedSOPInstanceUID for r in ref.ReferencedInstanceSequence} == {s.SOPInstanceUID for s in sources}
    per_frame = {item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                 for item in ds.PerFrameFunctionalGroupsSequence}
    assert per_frame == {s.SOPInstanceUID for s in sources}
    assert int(ds.NumberOfFrames) == 3 * len(files)  # every slice of every segment, empty ones too
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["liver", "tumour", "vessel"]
    seg0 = ds.SegmentSequence[0]
    assert seg0.SegmentAlgorithmType == "AUTOMATIC"
    assert seg0.SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "medseg unet"
    assert seg0.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "85756007"
    assert seg0.SegmentedPropertyTypeCodeSequence[0].CodeValue == "85756007"
    # nothing identifying leaks into the label map's meta, and other writers can still write it
    assert not any("patient" in k.lower() for k in back.meta)


def test_2d_single_file_round_trip_unnamed_labels(tmp_path):
    _, files = _series(tmp_path, shape=(1, 9, 11))
    image = read_image(files[0])
    assert image.ndim == 2
    lab = np.zeros(image.shape, np.uint8)
    lab[2:5, 3:9] = 2
    out = write_dicom_seg(image.with_array(lab), tmp_path / "seg2d.dcm", files[0], method="otsu")
    back = read_label(out)
    assert back.ndim == 2 and np.array_equal(back.array, lab)
    _same_geometry(back, image)
    assert back.meta["segments"] == {1: "label 1", 2: "label 2"}
    ds = pydicom.dcmread(out)
    assert ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmFamilyCodeSequence[0] \
        .CodeMeaning == "Histogram Analysis"
    np.testing.assert_allclose(back.meta["dicom_position"], image.meta["dicom_position"], atol=1e-6)


def test_empty_label_map_and_folder_holding_the_seg(tmp_path):
    folder, _ = _series(tmp_path, shape=(3, 6, 7))
    image = read_image(folder)
    zeros = np.zeros(image.shape, np.uint8)
    out = write_dicom_seg(image.with_array(zeros), tmp_path / "segdir" / "empty.dcm", folder)
    back = read_label(tmp_path / "segdir")  # a folder holding the SEG reads as it
    assert np.array_equal(back.array, zeros)
    _same_geometry(back, image)
    assert read_dicom_seg(out).meta["segments"] == {1: "label 1"}
    assert pydicom.dcmread(out).SegmentSequence[0].SegmentAlgorithmType == "MANUAL"  # not computed by medseg


def test_study_folder_with_series_choice_and_frames_left_out(tmp_path):
    _series(tmp_path, name="study/t1", description="T1", series_uid="1.2.3.1")
    folder, files = _series(tmp_path, name="study/t2", description="T2", series_uid="1.2.3.2")
    image = read_image(tmp_path / "study", series="T2")
    lab = np.zeros(image.shape, np.uint8)
    lab[1, 2:4, 2:4] = 1
    lab[3, 5:7, 1:3] = 1  # slice 2 empty, slices 0 and 4 too
    out = write_dicom_seg(image.with_array(lab), tmp_path / "t2seg.dcm", tmp_path / "study", series="T2")
    assert np.array_equal(read_label(out).array, lab)
    # a SEG from another tool may leave empty frames out: read on the grid of the frames it has
    dss = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(np.dot(
        np.asarray(d.ImagePositionPatient, float),
        np.cross(np.asarray(d.ImageOrientationPatient[:3], float), np.asarray(d.ImageOrientationPatient[3:], float)))))
    desc = hd.seg.SegmentDescription(1, "x", hd.sr.CodedConcept("85756007", "SCT", "Tissue"),
                                     hd.sr.CodedConcept("85756007", "SCT", "Tissue"), "MANUAL")
    for d in dss:
        for key in ("PatientSex", "AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName"):
            d.setdefault(key, None)
    measures = hd.PixelMeasuresSequence(pixel_spacing=image.spacing[1:], slice_thickness=1.0,
                                        spacing_between_slices=image.spacing[0])
    seg = hd.seg.Segmentation(dss, lab, "BINARY", [desc], hd.UID(), 5, hd.UID(), 1, "x", "x", "1", "1",
                              pixel_measures=measures, omit_empty_frames=True)
    seg.save_as(tmp_path / "sparse.dcm")
    sparse = read_label(tmp_path / "sparse.dcm")
    assert sparse.shape == (3, *lab.shape[1:]) and np.array_equal(sparse.array, lab[1:4])
    np.testing.assert_allclose(sparse.spacing, image.spacing, atol=1e-6)
    one_slice_up = np.asarray(image.origin) + np.asarray(image.direction) @ (np.array([1, 0, 0]) * image.spacing)
    np.testing.assert_allclose(sparse.origin, one_slice_up, atol=1e-5)  # its first frame is the source's slice 1


def test_multiframe_source_frames_in_file_order(tmp_path):
    folder, files = _series(tmp_path, shape=(4, 6, 5), shuffle_seed=3)
    dss = [pydicom.dcmread(f) for f in files]  # file order is not slice order
    for d in dss:
        for key in ("PatientSex", "AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName",
                    "Manufacturer"):
            d.setdefault(key, None)
    hd.legacy.LegacyConvertedEnhancedMRImage(dss, hd.UID(), 3, hd.UID(), 1).save_as(tmp_path / "mf.dcm")
    image = read_image(tmp_path / "mf.dcm")
    assert np.array_equal(image.array, read_image(folder).array)
    lab = _labels(image.shape)
    back = read_label(write_dicom_seg(image.with_array(lab), tmp_path / "mfseg.dcm", tmp_path / "mf.dcm"))
    assert np.array_equal(back.array, lab)
    _same_geometry(back, image)


def test_overlapping_segments_are_refused(tmp_path):
    folder, files = _series(tmp_path, shape=(2, 6, 6))
    dss = [pydicom.dcmread(f) for f in files]
    for d in dss:
        for key in ("PatientSex", "AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName"):
            d.setdefault(key, None)
    masks = np.zeros((2, 6, 6, 2), np.uint8)
    masks[:, 1:4, 1:4, 0] = 1
    masks[:, 3:5, 3:5, 1] = 1  # overlaps segment 1 at (3, 3)
    tissue = hd.sr.CodedConcept("85756007", "SCT", "Tissue")
    descs = [hd.seg.SegmentDescription(k, f"s{k}", tissue, tissue, "MANUAL") for k in (1, 2)]
    hd.seg.Segmentation(dss, masks, "BINARY", descs, hd.UID(), 5, hd.UID(), 1, "x", "x", "1", "1").save_as(
        tmp_path / "overlap.dcm")
    with pytest.raises(FormatError, match="segments 1 and 2 overlap"):
        read_label(tmp_path / "overlap.dcm")


def test_refusals_leave_nothing_behind(tmp_path):
    folder, _ = _series(tmp_path, shape=(3, 6, 7))
    image = read_image(folder)
    out = tmp_path / "bad.dcm"
    with pytest.raises(InputError, match="not on the grid of the DICOM source"):
        write_dicom_seg(Image(np.zeros((2, 6, 7), np.uint8), image.spacing, image.origin, image.direction), out, folder)
    with pytest.raises(InputError, match="not on the grid of the DICOM source"):  # shifted by a slice
        write_dicom_seg(Image(np.zeros(image.shape, np.uint8), image.spacing, np.add(image.origin, 3.0),
                              image.direction), out, folder)
    with pytest.raises(InputError, match="fractions"):
        write_dicom_seg(image.with_array(np.full(image.shape, 0.5, np.float32)), out, folder)
    with pytest.raises(InputError, match="is a segmentation itself"):
        seg = write_dicom_seg(image.with_array(np.zeros(image.shape, np.uint8)), tmp_path / "s" / "a.dcm", folder)
        write_dicom_seg(image.with_array(np.zeros(image.shape, np.uint8)), out, seg)
    assert not out.exists() and not list(tmp_path.glob(".bad.dcm*"))


def test_non_dicom_source_and_output_naming(tmp_path):
    folder, _ = _series(tmp_path, shape=(2, 4, 4))
    nii = tmp_path / "scan.nii.gz"
    nii.write_bytes(b"x")
    assert not is_dicom_source(nii) and is_dicom_source(folder)
    with pytest.raises(InputError, match="needs a DICOM source series"):
        dicom_seg_pairs([(nii, tmp_path / "out" / "scan.nii.gz")], tmp_path / "out")
    with pytest.raises(InputError, match="one source series"):
        dicom_seg_pairs([(folder, tmp_path / "o.dcm")], tmp_path / "o.dcm", ["T1", "T2"])
    with pytest.raises(InputError, match="is a .dcm file"):
        dicom_seg_pairs([(folder, tmp_path / "o.nii.gz")], tmp_path / "o.nii.gz")
    assert dicom_seg_pairs([(folder, tmp_path / "out" / "t1.nii.gz")], tmp_path / "out") == [
        (folder, tmp_path / "out" / "t1.dcm")]


def test_missing_highdicom_is_a_dependency_error(tmp_path, monkeypatch):
    folder, _ = _series(tmp_path, shape=(2, 4, 4))
    image = read_image(folder)
    monkeypatch.setitem(sys.modules, "highdicom", None)  # import highdicom -> ImportError
    with pytest.raises(DependencyError, match=r"pip install 'medseg\[dicom-seg\]'"):
        write_dicom_seg(image.with_array(np.zeros(image.shape, np.uint8)), tmp_path / "x.dcm", folder)
    with pytest.raises(DependencyError, match="dicom-seg"):
        dicom_seg_pairs([(folder, tmp_path / "x.dcm")], tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_class_names_of_segmenters():
    unet = SimpleNamespace(plan=SimpleNamespace(n_classes=3, class_names={"0": "background", "1": "liver"}))
    assert segmenter_class_names(unet) == {1: "liver", 2: "2"}
    forest = SimpleNamespace(classes_=np.array([0, 1, 4]), class_names_={0: "bg", 4: "vessel"})
    assert segmenter_class_names(forest) == {1: "1", 4: "vessel"}


@pytest.mark.realdata
def test_tcia_tumour_mask_as_seg_on_t1post(real_data, tmp_path):
    root = real_data("TCIA-Brain-Tumor-Progression", "PGBM-001")
    study = next(p for p in root.iterdir() if p.is_dir())
    t1 = read_image(study, series="T1post")
    mask, out = convert_to_dicom_seg(study, tmp_path / "tumour.dcm", "T1post", series="MaskTumor")
    assert mask.array.max() == 1 and mask.array.sum() > 0
    back = read_label(out)
    assert np.array_equal(back.array, mask.array)
    _same_geometry(back, t1)
    ds = pydicom.dcmread(out)  # a valid dataset of the Segmentation Storage class
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == t1.meta["series_uid"]
    assert int(ds.NumberOfFrames) == t1.shape[0]
    # the reference as a series folder gives the same label map
    _, out2 = convert_to_dicom_seg(study, tmp_path / "tumour2.dcm", str(next(study.glob("*T1post*"))),
                                   series="MaskTumor")
    assert np.array_equal(read_label(out2).array, mask.array)

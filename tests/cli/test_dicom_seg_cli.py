"""``--format dicom-seg`` on segment, predict and convert: DICOM SEG outputs that read back as the label map."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.io import read_image, read_label, write_image
from medseg.testing import disc_phantom

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from io_helpers import write_dicom_series  # noqa: E402

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("highdicom")


def _disc_series(folder, n=3, size=20, seed=0, **kw):
    img, _ = disc_phantom((size, size), seed=seed)
    plane = np.clip(img.array * 1000, 0, 4000).astype(np.uint16)
    return write_dicom_series(folder, np.stack([plane] * n), **kw)


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_segment_series_to_seg_equals_the_nifti_output(tmp_path, capsys):
    _disc_series(tmp_path / "s")
    assert main(["segment", str(tmp_path / "s"), str(tmp_path / "mask.nii.gz"), "--method", "otsu"]) == 0
    assert main(["segment", str(tmp_path / "s"), str(tmp_path / "mask.dcm"), "--method", "otsu",
                 "--format", "dicom-seg"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "mask.nii.gz"), str(tmp_path / "mask.dcm")]
    nii, seg = read_label(tmp_path / "mask.nii.gz"), read_label(tmp_path / "mask.dcm")
    assert np.array_equal(seg.array, nii.array) and seg.array.max() == 1
    np.testing.assert_allclose(seg.spacing, nii.spacing, atol=1e-6)
    np.testing.assert_allclose(seg.origin, nii.origin, atol=1e-6)
    ds = pydicom.dcmread(tmp_path / "mask.dcm")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert ds.SegmentSequence[0].SegmentLabel == "label 1"
    assert ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0].AlgorithmName == "medseg otsu"
    # the overwrite rule: refused without --force (nothing changed), replaced with it
    before = (tmp_path / "mask.dcm").read_bytes()
    assert main(["segment", str(tmp_path / "s"), str(tmp_path / "mask.dcm"), "--method", "otsu",
                 "--format", "dicom-seg"]) == 2
    assert "exists already" in _err(capsys) and (tmp_path / "mask.dcm").read_bytes() == before
    assert main(["segment", str(tmp_path / "s"), str(tmp_path / "mask.dcm"), "--method", "otsu",
                 "--format", "dicom-seg", "--force"]) == 0
    assert pydicom.dcmread(tmp_path / "mask.dcm").SOPInstanceUID != pydicom.dcmread(
        pydicom.filebase.DicomBytesIO(before)).SOPInstanceUID


def test_segment_folder_of_series_gives_one_seg_per_case(tmp_path, capsys):
    _disc_series(tmp_path / "in" / "caseA", seed=0)
    _disc_series(tmp_path / "in" / "caseB", seed=1, n=2)
    assert main(["segment", str(tmp_path / "in"), str(tmp_path / "out"), "--method", "otsu",
                 "--format", "dicom-seg"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("*.dcm")) == ["caseA.dcm", "caseB.dcm"]
    for case in ("caseA", "caseB"):
        seg = read_label(tmp_path / "out" / f"{case}.dcm")
        assert seg.shape == read_image(tmp_path / "in" / case).shape
        ref = pydicom.dcmread(tmp_path / "out" / f"{case}.dcm").ReferencedSeriesSequence[0].SeriesInstanceUID
        assert ref == read_image(tmp_path / "in" / case).meta["series_uid"]


def test_non_dicom_input_and_bad_output_are_one_line_errors(tmp_path, capsys):
    img, _ = disc_phantom((16, 16))
    write_image(img, tmp_path / "scan.nii.gz")
    assert main(["segment", str(tmp_path / "scan.nii.gz"), str(tmp_path / "o.dcm"), "--method", "otsu",
                 "--format", "dicom-seg"]) == 2
    assert "needs a DICOM source series" in _err(capsys)
    _disc_series(tmp_path / "s")
    assert main(["segment", str(tmp_path / "s"), str(tmp_path / "o.nii.gz"), "--method", "otsu",
                 "--format", "dicom-seg"]) == 2
    assert ".dcm file" in _err(capsys)
    assert not list(tmp_path.glob("o.*"))


def test_missing_highdicom_names_the_extra(tmp_path, capsys, monkeypatch):
    _disc_series(tmp_path / "s")
    monkeypatch.setitem(sys.modules, "highdicom", None)
    assert main(["segment", str(tmp_path / "s"), str(tmp_path / "o.dcm"), "--method", "otsu",
                 "--format", "dicom-seg"]) == 2
    assert "pip install 'medseg[dicom-seg]'" in _err(capsys)
    assert not (tmp_path / "o.dcm").exists()


def test_predict_names_segments_after_the_model_classes(tmp_path, capsys):
    data = tmp_path / "data"
    for i in range(2):
        img, lab = disc_phantom((24, 24), seed=i)
        write_image(img.with_array(np.clip(img.array * 1000, 0, 4000).astype(np.uint16)),
                    data / "imagesTr" / f"case_{i:03d}_0000.nii.gz")
        write_image(lab, data / "labelsTr" / f"case_{i:03d}.nii.gz")
    (data / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MR"}, "labels": {"background": 0,
                                                   "disc": 1}, "numTraining": 2, "file_ending": ".nii.gz"}))
    assert main(["train", str(data), "--method", "random-forest", "--out", str(tmp_path / "rf")]) == 0
    src = _disc_series(tmp_path / "dicom", n=1, size=24, seed=5)[0]  # one file: a 2D image
    assert main(["predict", str(tmp_path / "rf"), str(src), str(tmp_path / "pred"), "--format", "dicom-seg"]) == 0
    out = tmp_path / "pred" / f"{src.stem}.dcm"
    assert capsys.readouterr().out.split()[-1] == str(out)
    ds = pydicom.dcmread(out)
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["disc"]
    algo = ds.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == "medseg random-forest"
    assert algo.AlgorithmFamilyCodeSequence[0].CodeMeaning == "Artificial Intelligence"
    assert ds.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0] \
        .ReferencedSOPInstanceUID == pydicom.dcmread(src).SOPInstanceUID
    assert main(["predict", str(tmp_path / "rf"), str(src), str(tmp_path / "plain.nii.gz")]) == 0
    assert np.array_equal(read_label(out).array, read_label(tmp_path / "plain.nii.gz").array)


def test_convert_mask_to_seg_with_reference(tmp_path, capsys):
    _disc_series(tmp_path / "study" / "t1", description="T1", series_uid="1.2.3.1")
    t1 = read_image(tmp_path / "study" / "t1")
    mask = (t1.array > 500).astype(np.uint8) * 255  # a 0/255 mask file on the T1 grid
    write_image(t1.with_array(mask), tmp_path / "mask.nrrd")
    dst = tmp_path / "mask_seg.dcm"
    assert main(["convert", str(tmp_path / "mask.nrrd"), str(dst), "--format", "dicom-seg",
                 "--reference", str(tmp_path / "study" / "t1")]) == 0
    assert str(dst) in capsys.readouterr().out
    assert np.array_equal(read_label(dst).array, mask // 255)
    assert pydicom.dcmread(dst).ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3.1"
    # refused without --force; the reference is required; a series of SRC's study names it too
    assert main(["convert", str(tmp_path / "mask.nrrd"), str(dst), "--format", "dicom-seg",
                 "--reference", str(tmp_path / "study" / "t1")]) == 2
    assert "--force" in _err(capsys)
    assert main(["convert", str(tmp_path / "mask.nrrd"), str(tmp_path / "x.dcm"), "--format", "dicom-seg"]) == 2
    assert "--reference" in _err(capsys)
    write_dicom_series(tmp_path / "study" / "mask", mask // 255, description="Mask", series_uid="1.2.3.9")
    assert main(["convert", str(tmp_path / "study"), str(tmp_path / "segs"), "--format", "dicom-seg",
                 "--series", "Mask", "--reference", "T1"]) == 0
    assert np.array_equal(read_label(tmp_path / "segs" / "study.dcm").array, mask // 255)

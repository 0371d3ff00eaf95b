"""medseg anonymize: the PS3.15 Basic Profile applied, UIDs consistent, pixels and geometry identical."""
from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from io_helpers import write_dicom_series

from medseg.cli.main import main
from medseg.errors import InputError
from medseg.image import Image
from medseg.io import read_image, write_image
from medseg.io.anonymize import anonymize
from medseg.io.deid_profile import BASIC_PROFILE
from medseg.testing import shared_data

RAW = (np.random.default_rng(0).random((3, 8, 10)) * 900).astype(np.uint16)


def _study(root):
    """Two series of one patient; the second references the first; identifying text everywhere."""
    a = write_dicom_series(root / "Doe_Jane_19700101" / "T1", RAW, description="T1 Jane", series_uid="1.2.3.4.1")
    b = write_dicom_series(root / "Doe_Jane_19700101" / "mask", (RAW > 450).astype(np.uint16),
                           description="mask", series_uid="1.2.3.4.2")
    first = pydicom.dcmread(a[0])
    for p in a + b:
        ds = pydicom.dcmread(p)
        ds.StudyDate, ds.SeriesDate, ds.StudyTime = "20200115", "20200116", "101500"
        ds.InstitutionName, ds.ReferringPhysicianName, ds.OperatorsName = "St Elsewhere", "House^Greg", "Op^One"
        ds.AccessionNumber, ds.PatientAge, ds.OtherPatientIDs = "ACC123", "052Y", "OTHER-9"
        ds.add_new(0x00091010, "LO", "private secret")  # a private attribute
        ds.add_new(0x60004000, "LT", "overlay comment with a name")
        if p in b:
            item = pydicom.Dataset()
            item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = first.SOPClassUID, first.SOPInstanceUID
            ds.ReferencedImageSequence = pydicom.Sequence([item])
        ds.save_as(p)
    return root, a, b


def _all_dicom(root):
    return sorted(p for p in root.rglob("*.dcm"))


def test_basic_profile_applied(tmp_path):
    root, a, b = _study(tmp_path / "in")
    before = {p: p.read_bytes() for p in _all_dicom(root)}
    rep = anonymize(root, tmp_path / "out")
    assert len(rep.written) == 6 and {p: p.read_bytes() for p in _all_dicom(root)} == before  # input unchanged
    originals = {p: pydicom.dcmread(p) for p in a + b}
    outs = [pydicom.dcmread(p) for p in rep.written]
    for ds in outs:
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert not [e for e in ds if e.tag.is_private]
        assert 0x60004000 not in ds
        for tag, action in BASIC_PROFILE.items():
            if tag not in ds or ds[tag].VR == "SQ":
                continue
            for orig in originals.values():
                if tag in orig and orig[tag].value not in ("", None):
                    assert ds[tag].value != orig[tag].value, (pydicom.datadict.keyword_for_tag(tag), action)
    text = "\n".join(str(ds) for ds in outs)
    for secret in ("Doe^Jane", "SECRET-ID-42", "St Elsewhere", "House^Greg", "ACC123", "20200115", "private secret",
                   "Jane", "1.2.3.4.1"):
        assert secret not in text, secret
    assert not [p for p in rep.written if "Doe" in str(p) or "1970" in str(p)]  # names not copied


def test_uids_consistent_and_references_kept(tmp_path):
    root, a, b = _study(tmp_path / "in")
    rep = anonymize(root, tmp_path / "out")
    outs = [pydicom.dcmread(p) for p in rep.written]
    new_sops = {ds.SOPInstanceUID for ds in outs}
    assert len({ds.StudyInstanceUID for ds in outs}) == 1 and len({ds.SeriesInstanceUID for ds in outs}) == 2
    assert len({ds.FrameOfReferenceUID for ds in outs}) == 1
    refs = [ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID for ds in outs if "ReferencedImageSequence" in ds]
    assert refs and all(r in new_sops for r in refs)  # still points at the anonymised T1 slice
    for ds in outs:
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == pydicom.uid.MRImageStorage  # class UIDs are not identifiers


def test_pixels_and_geometry_identical(tmp_path):
    root, a, b = _study(tmp_path / "in")
    anonymize(root, tmp_path / "out")
    for original, series in ((root / "Doe_Jane_19700101" / "T1", "series_001"),
                             (root / "Doe_Jane_19700101" / "mask", "series_002")):
        x, y = read_image(original), read_image(tmp_path / "out" / "study_001" / series)
        np.testing.assert_array_equal(x.array, y.array)
        assert x.spacing == y.spacing and x.origin == y.origin and np.array_equal(x.direction, y.direction)


def test_uid_map_keeps_runs_consistent_and_dates_shift(tmp_path):
    root, a, b = _study(tmp_path / "in")
    m = tmp_path / "private" / "map.json"
    r1 = anonymize(root, tmp_path / "o1", uid_map=m, date_shift=True)
    r2 = anonymize(root, tmp_path / "o2", uid_map=m, date_shift=True)
    d1, d2 = pydicom.dcmread(r1.written[0]), pydicom.dcmread(r2.written[0])
    assert d1.SOPInstanceUID == d2.SOPInstanceUID and d1.StudyDate == d2.StudyDate
    assert d1.StudyDate not in ("", "20200115") and d1.LongitudinalTemporalInformationModified == "MODIFIED"
    import datetime

    gap = (datetime.date.fromisoformat(f"{d1.SeriesDate[:4]}-{d1.SeriesDate[4:6]}-{d1.SeriesDate[6:]}")
           - datetime.date.fromisoformat(f"{d1.StudyDate[:4]}-{d1.StudyDate[4:6]}-{d1.StudyDate[6:]}"))
    assert gap.days == 1  # intervals kept
    assert json.loads(m.read_text())["uids"]
    r3 = anonymize(root, tmp_path / "o3")  # no map: another salt, other UIDs
    assert pydicom.dcmread(r3.written[0]).SOPInstanceUID != d1.SOPInstanceUID


def test_nifti_nrrd_mha_free_text_cleared(tmp_path):
    import nibabel as nib

    arr = (np.random.default_rng(1).random((4, 5, 6)) * 100).astype(np.int16)
    src = write_image(Image(arr, spacing=(2.0, 1.0, 0.5), origin=(1.0, 2.0, 3.0)), tmp_path / "in" / "jane.nii.gz")
    img = nib.load(src)
    img.header["descrip"] = b"Jane Doe 1970"
    img.header["db_name"] = b"SECRET"
    img.header["aux_file"] = b"aux"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"comment: Jane Doe"))
    nib.save(img, src)
    nrrd = write_image(Image(arr), tmp_path / "in" / "jane.nrrd")
    data = nrrd.read_bytes()
    end = data.find(b"\n\n")
    nrrd.write_bytes(data[:end] + b"\n# patient Jane Doe\ncontent: Jane Doe scan\npatient:=Jane Doe" + data[end:])
    mha = write_image(Image(arr), tmp_path / "in" / "jane.mha")
    mdata = mha.read_bytes()
    mha.write_bytes(b"Comment = Jane Doe\nPatientName = Jane Doe\n" + mdata)
    rep = anonymize(tmp_path / "in", tmp_path / "out")
    assert len(rep.written) == 3
    for p in rep.written:
        assert b"Jane" not in (p.read_bytes() if not p.name.endswith(".gz") else __import__("gzip").decompress(
            p.read_bytes())), p
    for orig, new in zip(sorted([src, nrrd, mha]), sorted(rep.written)):
        x, y = read_image(orig), read_image(new)
        np.testing.assert_array_equal(x.array, y.array)
        assert np.allclose(x.spacing, y.spacing) and np.allclose(x.origin, y.origin)


def test_refusals(tmp_path, capsys):
    root, _, _ = _study(tmp_path / "in")
    with pytest.raises(InputError, match="inside"):
        anonymize(root, root / "anon")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="no DICOM"):
        anonymize(tmp_path / "empty", tmp_path / "o")
    assert main(["anonymize", str(root), str(tmp_path / "o")]) == 0
    capsys.readouterr()
    assert main(["anonymize", str(root), str(tmp_path / "o")]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["anonymize", str(root), str(tmp_path / "o"), "--force"]) == 0


def test_burned_in_annotation_reported(tmp_path, capsys):
    paths = write_dicom_series(tmp_path / "in", RAW[:1])
    ds = pydicom.dcmread(paths[0])
    ds.BurnedInAnnotation = "YES"
    ds.save_as(paths[0])
    assert main(["anonymize", str(tmp_path / "in"), str(tmp_path / "out")]) == 0
    assert "burned-in" in capsys.readouterr().out


def test_real_tcia_study(tmp_path):
    study = shared_data("TCIA-Brain-Tumor-Progression/PGBM-001")
    if study is None:
        pytest.skip("shared TCIA data not available")
    rep = anonymize(study, tmp_path / "anon")
    outs = [pydicom.dcmread(p, stop_before_pixels=True) for p in rep.written]
    assert len(outs) == 144
    assert all(str(ds.PatientName) == "" and ds.PatientID == "" and ds.get("StudyDate", "") == "" for ds in outs)
    assert len({ds.StudyInstanceUID for ds in outs}) == 1 and len({ds.SeriesInstanceUID for ds in outs}) == 6
    assert not any(ds.StudyInstanceUID.startswith("1.3.6.1.4.1.14519") for ds in outs)
    # the tumour mask still lies on the T1 post-contrast grid, voxel for voxel
    t1 = read_image(study, series="T1post")
    by_series = {}
    for p, ds in zip(rep.written, outs):
        by_series.setdefault(p.parent, ds)
    arrays = [read_image(folder) for folder in sorted(by_series)]
    match = [a for a in arrays if a.shape == t1.shape and np.array_equal(a.array, t1.array)]
    assert len(match) == 1 and match[0].origin == t1.origin and match[0].spacing == t1.spacing

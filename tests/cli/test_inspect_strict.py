"""inspect: broken layouts are errors; problems are listed, and --strict turns them into exit 2."""
from __future__ import annotations

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.io import read_image, write_image
from medseg.testing import make_dataset


def test_layout_part_that_is_a_file_and_empty_datasets(tmp_path, capsys):
    root = make_dataset(tmp_path / "a", n=2, shape=(24, 24))
    for p in (root / "labels").iterdir():
        p.unlink()
    (root / "labels").rmdir()
    (root / "labels").write_text("not a folder")
    assert main(["inspect", str(root)]) == 2
    assert "labels is a file, not a folder" in capsys.readouterr().err
    msd = make_dataset(tmp_path / "m", n=2, layout="msd", shape=(24, 24))
    for p in (msd / "imagesTr").iterdir():
        p.unlink()
    for p in (msd / "labelsTr").iterdir():
        p.unlink()
    assert main(["inspect", str(msd)]) == 2
    assert "no cases" in capsys.readouterr().err


def test_problems_listed_and_strict(tmp_path, capsys):
    root = make_dataset(tmp_path / "d", n=3, shape=(24, 24), suffix=".nii.gz")
    im = read_image(root / "images" / "case_000.nii.gz")
    a = im.array.astype(np.float32)
    a[0, 0] = np.nan
    write_image(im.with_array(a), root / "images" / "case_000.nii.gz")
    assert main(["inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert "nonfinite" in out and "problems   none" not in out
    assert main(["inspect", str(root), "--strict"]) == 2
    assert "--strict: 1 problem(s)" in capsys.readouterr().err
    clean = make_dataset(tmp_path / "c", n=2, shape=(24, 24))
    assert main(["inspect", str(clean), "--strict"]) == 0


def test_case_ids_survive_segment_and_evaluate(tmp_path, capsys):
    """nnU-Net names: outputs by case id (no _0000), reports show the ids users know, never numbers."""
    import csv

    root = make_dataset(tmp_path / "m", n=3, layout="msd", kind="disc3d", shape=(8, 16, 16))
    assert main(["segment", str(root / "imagesTr"), str(tmp_path / "p"), "--method", "otsu"]) == 0
    names = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert names == [f"case_00{i}.nii.gz" for i in range(3)] + ["manifest.json"]
    assert main(["evaluate", str(tmp_path / "p"), str(root), "--out", str(tmp_path / "e")]) == 0
    with open(tmp_path / "e" / "metrics.csv") as f:
        assert [r["case"] for r in csv.DictReader(f)] == ["case_000", "case_001", "case_002"]
    # predictions that kept the channel suffix still pair by case id, not by number
    for p in (tmp_path / "p").iterdir():
        p.rename(p.with_name(p.name.replace(".nii.gz", "_0000.nii.gz")))
    assert main(["evaluate", str(tmp_path / "p"), str(root), "--out", str(tmp_path / "e2")]) == 0
    with open(tmp_path / "e2" / "metrics.csv") as f:
        assert [r["case"] for r in csv.DictReader(f)] == ["case_000", "case_001", "case_002"]


@pytest.mark.realdata
def test_segment_a_dicom_study_with_series(real_data, tmp_path, capsys):
    """A scanner export holding six series: --series picks one; one output file, never a folder."""
    study = real_data("TCIA-Brain-Tumor-Progression", "PGBM-001")
    out = tmp_path / "t1.nii.gz"
    assert main(["segment", str(study), str(out), "--series", "T1post", "--method", "otsu"]) == 0
    assert out.is_file()
    assert main(["segment", str(study), str(tmp_path / "x.nii.gz"), "--method", "otsu"]) == 2
    assert "--series" in capsys.readouterr().err
    # the study folder itself (six series folders in it): the same, never a folder named *.nii.gz
    inner = next(p for p in study.iterdir() if p.is_dir())
    out2 = tmp_path / "t1b.nii.gz"
    assert main(["segment", str(inner), str(out2), "--series", "T1post", "--method", "otsu"]) == 0
    assert out2.is_file()
    assert main(["segment", str(inner), str(tmp_path / "y.nii.gz"), "--method", "otsu"]) == 2
    assert "must be a folder" in capsys.readouterr().err and not (tmp_path / "y.nii.gz").exists()


def test_a_folder_of_inputs_never_writes_into_a_file_like_path(tmp_path, capsys):
    from medseg.testing import disc_phantom

    for i in range(2):
        img, _ = disc_phantom((16, 16), seed=i)
        write_image(img, tmp_path / "in" / f"c{i}.tif")
    assert main(["segment", str(tmp_path / "in"), str(tmp_path / "out.nii.gz"), "--method", "otsu"]) == 2
    assert "must be a folder" in capsys.readouterr().err
    assert not (tmp_path / "out.nii.gz").exists()
    assert main(["segment", str(tmp_path / "in"), str(tmp_path / "out"), "--method", "otsu"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0.tif", "c1.tif", "manifest.json"]

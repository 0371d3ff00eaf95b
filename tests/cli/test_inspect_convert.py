"""``medseg inspect`` and ``medseg convert`` end to end."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.image import Image, same_grid
from medseg.io import load_dataset, read_image, write_image
from medseg.io.writing import write_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from io_helpers import rotation, write_dicom_series  # noqa: E402


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def user_error(code, err):
    """Exit 2, exactly one line on stderr, no traceback."""
    lines = err.strip().splitlines()
    return code == 2 and len(lines) == 1 and lines[0].startswith("medseg") and "Traceback" not in err


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(0)
    cases = []
    for i in range(4):
        img = Image(rng.normal(100, 20, (5, 8, 9)).astype(np.float32), (3.0, 1.0, 0.5), (1.0, 2.0, 3.0))
        lab = img.with_array(rng.integers(0, 3, (5, 8, 9)).astype(np.uint8))
        cases.append((f"case_{i}", img, lab, None))
    return write_dataset(cases, tmp_path / "ds", layout="folders", suffix=".nii.gz")


def test_inspect_dataset_json(dataset, tmp_path, capsys):
    code, out, err = run(["inspect", dataset, "--json", tmp_path / "fp.json"], capsys)
    assert code == 0, err
    fp = json.loads((tmp_path / "fp.json").read_text())
    assert fp["n_cases"] == 4 and type(fp["n_cases"]) is int
    assert fp["labels"] == [0, 1, 2] and fp["problems"] == []
    assert fp["spacing"]["median"] == [3.0, 1.0, 0.5]
    for word in ("cases", "spacing", "intensity", "labels", "problems   none"):
        assert word in out


def test_inspect_reports_mismatch_without_failing(dataset, capsys):
    write_image(Image(np.zeros((5, 8, 8), np.uint8), (3.0, 1.0, 0.5), (1.0, 2.0, 3.0)),
                dataset / "labels" / "case_2.nii.gz")
    code, out, _ = run(["inspect", dataset], capsys)
    assert code == 0 and "shape_mismatch" in out and "case_2" in out


def test_inspect_user_errors(tmp_path, dataset, capsys):
    code, _, err = run(["inspect", tmp_path / "nothing"], capsys)
    assert user_error(code, err) and "nothing" in err
    code, _, err = run(["inspect", dataset, "--series", "1.2"], capsys)
    assert user_error(code, err)
    (tmp_path / "images_only").mkdir()
    code, _, err = run(["inspect", "--images", tmp_path / "images_only"], capsys)
    assert user_error(code, err)


def test_inspect_single_image_and_dicom_series(tmp_path, capsys):
    raw = np.random.default_rng(1).integers(0, 1000, (3, 6, 7)).astype(np.uint16)
    write_dicom_series(tmp_path / "study", raw, series_uid="1.2.3.1", description="T1")
    write_dicom_series(tmp_path / "study", raw[:2], series_uid="1.2.3.2", description="T2", suffix="")
    code, out, _ = run(["inspect", tmp_path / "study", "--json", tmp_path / "s.json"], capsys)
    assert code == 0 and "2 DICOM series" in out and "1.2.3.1" in out and "T2" in out
    assert {s["uid"] for s in json.loads((tmp_path / "s.json").read_text())["series"]} == {"1.2.3.1", "1.2.3.2"}
    code, out, _ = run(["inspect", tmp_path / "study", "--series", "1.2.3.2"], capsys)
    assert code == 0 and "2 x 6 x 7" in out and "DICOM" in out
    p = write_image(Image(np.ones((4, 5), np.float32), (0.5, 0.25)), tmp_path / "one.nrrd")
    code, out, _ = run(["inspect", p], capsys)
    assert code == 0 and "0.5 x 0.25 mm" in out


def test_convert_file_keeps_geometry(tmp_path, capsys):
    img = Image(np.random.default_rng(2).normal(size=(4, 5, 6)).astype(np.float32), (2.5, 0.75, 0.5),
                (-1.0, 2.0, 3.5), rotation(0.1, 0.2, 0.3))
    src = write_image(img, tmp_path / "a.nrrd")
    for suffix in (".nii.gz", ".mha", ".mhd", ".npz"):
        code, _, err = run(["convert", src, tmp_path / f"b{suffix}"], capsys)
        assert code == 0, err
        back = read_image(tmp_path / f"b{suffix}")
        assert same_grid(back, img, atol=1e-6)
        np.testing.assert_array_equal(back.array, img.array)


def test_convert_dicom_series_and_label(tmp_path, capsys):
    raw = np.random.default_rng(3).integers(0, 2, (4, 6, 7)).astype(np.uint16) * 255
    R = rotation(0.2, 0.1, -0.3)
    write_dicom_series(tmp_path / "study", raw, row_dir=R[:, 0], col_dir=R[:, 1], series_uid="1.2.3.9")
    write_dicom_series(tmp_path / "study" / "other", raw[:2], series_uid="1.2.3.8")  # found recursively
    code, _, err = run(["convert", tmp_path / "study", tmp_path / "x.nii.gz"], capsys)
    assert user_error(code, err) and "1.2.3.9" in err and not (tmp_path / "x.nii.gz").exists()
    code, _, err = run(["convert", tmp_path / "study", tmp_path / "m.nii.gz", "--series", "1.2.3.9", "--label"], capsys)
    assert code == 0, err
    ref = read_image(tmp_path / "study", series="1.2.3.9")
    back = read_image(tmp_path / "m.nii.gz")
    assert same_grid(back, ref, atol=1e-5)
    np.testing.assert_array_equal(back.array, raw // 255)


def test_convert_refuses_input_existing_and_readonly(tmp_path, capsys):
    src = write_image(Image(np.ones((4, 5), np.uint8)), tmp_path / "a.png")
    before = src.read_bytes()
    code, _, err = run(["convert", src, src], capsys)
    assert user_error(code, err) and "input" in err
    code, _, err = run(["convert", src, tmp_path / "." / "a.png", "--force"], capsys)
    assert user_error(code, err)
    assert src.read_bytes() == before
    write_image(Image(np.zeros((4, 5), np.uint8)), tmp_path / "b.tif")
    code, _, err = run(["convert", src, tmp_path / "b.tif"], capsys)
    assert user_error(code, err) and "--force" in err
    code, _, _ = run(["convert", src, tmp_path / "b.tif", "--force"], capsys)
    assert code == 0 and read_image(tmp_path / "b.tif").array.max() == 1
    code, _, err = run(["convert", src, tmp_path / "c.dcm"], capsys)
    assert user_error(code, err) and "cannot write" in err and not (tmp_path / "c.dcm").exists()


def test_convert_corrupt_input_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b broken")
    code, _, err = run(["convert", bad, tmp_path / "out.nrrd"], capsys)
    assert user_error(code, err) and "bad.nii.gz" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nii.gz"]


@pytest.mark.parametrize("layout", ["msd", "npy", "folders"])
def test_convert_dataset_layouts(dataset, tmp_path, layout, capsys):
    dst = tmp_path / f"out_{layout}"
    code, _, err = run(["convert", dataset, dst, "--layout", layout], capsys)
    assert code == 0, err
    a, b = load_dataset(dataset), load_dataset(dst)
    assert b.layout == layout and len(b) == len(a)
    for ca, cb in zip(a.cases, b.cases):
        ia, ib = a.load_image(ca), b.load_image(cb)
        np.testing.assert_array_equal(ia.array, ib.array)
        np.testing.assert_array_equal(a.load_label(ca).array, b.load_label(cb).array)
        if layout != "npy":  # the npy layout holds no geometry
            assert same_grid(ia, ib, atol=1e-6)


def test_convert_dataset_with_mismatch_writes_nothing(dataset, tmp_path, capsys):
    write_image(Image(np.zeros((5, 8, 8), np.uint8)), dataset / "labels" / "case_3.nii.gz")
    code, _, err = run(["convert", dataset, tmp_path / "out", "--layout", "msd"], capsys)
    assert user_error(code, err) and "case_3.nii.gz" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    code, _, err = run(["convert", dataset, tmp_path, "--layout", "msd", "--force"], capsys)
    assert user_error(code, err) and "inside" in err  # would replace the input
    assert (dataset / "labels" / "case_0.nii.gz").exists()


def test_inspect_drive_with_explicit_folders(real_data, tmp_path, capsys):
    root = real_data("DRIVE", "training")
    code, out, err = run(["inspect", "--images", root / "images", "--labels", root / "1st_manual",
                          "--roi", root / "mask",
                          "--json", tmp_path / "drive.json"], capsys)
    assert code == 0, err
    fp = json.loads((tmp_path / "drive.json").read_text())
    assert fp["n_cases"] == 20 and fp["n_labelled"] == 20 and fp["roi_coverage"]["n_cases"] == 20
    assert fp["labels"] == [0, 1] and fp["problems"] == [] and fp["n_channels"] == 3
    assert sorted(c["case_id"] for c in fp["cases"]) == [str(i) for i in range(21, 41)]
    assert 0.05 < fp["label_fractions"]["1"] < 0.15

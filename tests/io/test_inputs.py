"""What an input path means (input_kind), format sniffing hooks, and the conversion guards."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from io_helpers import write_dicom_series

from medseg.errors import InputError
from medseg.image import Image
from medseg.io import input_kind, is_dataset, read_image, write_image
from medseg.io.base import format_for, registered_formats, sniff_format
from medseg.io.convert import check_conversion, convert_image, is_dataset_input
from medseg.testing import make_dataset

RAW = np.arange(2 * 4 * 5, dtype=np.uint16).reshape(2, 4, 5)


def test_kinds_of_files(tmp_path):
    png = write_image(Image(np.zeros((4, 4), np.uint8)), tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("hello")
    np.save(tmp_path / "images.npy", np.zeros((2, 4, 4), np.float32))
    (dcm,) = write_dicom_series(tmp_path / "s", RAW[:1], suffix="")  # a DICOM file named without a suffix
    assert input_kind(png) == "image" and input_kind(dcm) == "image"
    assert input_kind(tmp_path / "notes.txt") == "unknown"
    assert input_kind(tmp_path / "images.npy") == "dataset" and is_dataset(tmp_path / "images.npy")
    with pytest.raises(InputError, match="no such file or folder"):
        input_kind(tmp_path / "missing.png")


def test_kinds_of_folders(tmp_path):
    write_dicom_series(tmp_path / "series", RAW)
    write_dicom_series(tmp_path / "export" / "patient" / "study" / "t1", RAW)  # series two levels down
    write_dicom_series(tmp_path / "study" / "t1", RAW, series_uid="1.2.3.1")  # series in sub-folders
    write_dicom_series(tmp_path / "study" / "t2", RAW, series_uid="1.2.3.2")
    write_image(Image(np.zeros((4, 4), np.uint8)), tmp_path / "photos" / "a.png")
    (tmp_path / "empty").mkdir()
    ds = make_dataset(tmp_path / "ds", kind="disc", n=2, shape=(16, 16))
    assert input_kind(tmp_path / "series") == "series"
    assert input_kind(tmp_path / "export") == "study"
    assert input_kind(tmp_path / "study") == "folder"  # each sub-folder an input of its own
    assert input_kind(tmp_path / "photos") == "folder" and input_kind(tmp_path / "empty") == "folder"
    assert input_kind(ds) == "dataset" and is_dataset(ds) and not is_dataset(ds / "images")


def test_formats_carry_their_own_sniffing(tmp_path):
    (dcm,) = write_dicom_series(tmp_path / "s", RAW[:1], suffix="")
    assert sniff_format(dcm).name == "DICOM" and format_for(dcm).name == "DICOM"
    assert sniff_format(tmp_path / "s").name == "DICOM"
    assert sniff_format(tmp_path) is None
    assert {f.name for f in registered_formats() if f.sniff_folder} == {"DICOM"}
    assert read_image(dcm).shape == (4, 5)


def test_base_names_no_format():
    """io/base.py asks the registered formats; it imports no format module."""
    src = Path(__file__).resolve().parents[2] / "src" / "medseg" / "io" / "base.py"
    imported = {n.module for n in ast.walk(ast.parse(src.read_text())) if isinstance(n, ast.ImportFrom)}
    assert not imported & {f"medseg.io.{m}" for m in ("dicom", "nifti", "npy", "pil", "sitk")}


def test_conversion_guards(tmp_path):
    src = write_image(Image(np.zeros((3, 4, 5), np.int16)), tmp_path / "a.nrrd")
    with pytest.raises(InputError, match="this is the input"):
        check_conversion(src, src)
    with pytest.raises(InputError, match="no such file"):
        check_conversion(tmp_path / "missing.nrrd", tmp_path / "b.nrrd")
    with pytest.raises(InputError, match="lies inside it"):
        check_conversion(tmp_path, tmp_path.parent)
    check_conversion(tmp_path, tmp_path / "inner")  # writing inside a folder input is allowed
    convert_image(src, tmp_path / "b.nii.gz")
    with pytest.raises(InputError, match="exists already; add --force to replace it"):
        convert_image(src, tmp_path / "b.nii.gz")
    convert_image(src, tmp_path / "b.nii.gz", overwrite=True)


def test_dataset_or_one_image(tmp_path):
    write_dicom_series(tmp_path / "study" / "t1", RAW, series_uid="1.2.3.1")
    write_dicom_series(tmp_path / "study" / "t2", RAW, series_uid="1.2.3.2")
    write_image(Image(np.zeros((4, 4), np.uint8)), tmp_path / "photos" / "a.png")
    assert not is_dataset_input(tmp_path / "study")  # a study: one image, chosen with --series
    assert is_dataset_input(make_dataset(tmp_path / "ds", kind="disc", n=2, shape=(16, 16)))
    assert is_dataset_input(tmp_path / "photos")  # plain images without a layout: load_dataset says why

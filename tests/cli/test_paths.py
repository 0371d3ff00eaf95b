"""One path pairer for segment, predict and preprocess (medseg.run), and its output names."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.errors import InputError
from medseg.image import Image
from medseg.io import read_image, write_image
from medseg.run import apply_paths, pair_paths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from io_helpers import write_dicom_series  # noqa: E402


@pytest.fixture
def inputs(tmp_path):
    img = Image(np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8))
    u8 = img.with_array((img.array * 255).astype(np.uint8))
    write_image(u8, tmp_path / "in" / "a.png")
    write_image(u8, tmp_path / "in" / "b.jpg")
    write_image(img, tmp_path / "in" / "c.tif")
    write_image(img, tmp_path / "in" / "d.nrrd")
    write_image(img, tmp_path / "in" / "e.npy")
    write_dicom_series(tmp_path / "in" / "1.2.3.4", np.ones((2, 8, 8), np.uint16))  # a series named by its UID
    return tmp_path / "in"


def _names(pairs):
    return [dst.name for _, dst in pairs]


def test_folder_names_for_labels_and_images(inputs, tmp_path):
    assert _names(pair_paths(inputs, tmp_path / "out")) == [
        "1.2.3.4.nii.gz", "a.png", "b.png", "c.tif", "d.nrrd", "e.npy"]
    assert _names(pair_paths(inputs, tmp_path / "out", output="images")) == [
        "1.2.3.4.nii.gz", "a.tif", "b.tif", "c.tif", "d.nrrd", "e.npy"]


def test_single_inputs(inputs, tmp_path):
    assert _names(pair_paths(inputs / "a.png", tmp_path / "x.png")) == ["x.png"]
    assert _names(pair_paths(inputs / "a.png", tmp_path / "outdir")) == ["a.png"]  # no suffix: a folder
    assert _names(pair_paths(inputs / "a.png", tmp_path / "outdir", output="images")) == ["a.tif"]
    assert _names(pair_paths(inputs / "1.2.3.4", tmp_path)) == ["1.2.3.4.nii.gz"]
    with pytest.raises(InputError, match="overwrite the input"):
        pair_paths(inputs / "d.nrrd", inputs / "d.nrrd")
    with pytest.raises(InputError, match="the output must be a folder"):
        pair_paths(inputs, inputs / "a.png")


def test_apply_paths_reports_bad_files_and_writes_the_others(inputs, tmp_path):
    (inputs / "b.jpg").write_bytes(b"not a jpeg")
    seen = []
    with pytest.raises(InputError, match=r"1 of 6 input\(s\) could not be processed .*b\.jpg"):
        apply_paths(lambda im: im, inputs, tmp_path / "out", output="images", progress=False, on_written=seen.append)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in seen)
    assert len(seen) == 5


def test_preprocess_file_into_folder_and_series(inputs, tmp_path, capsys):
    assert main(["preprocess", str(inputs / "a.png"), str(tmp_path / "pre"), "--step", "minmax"]) == 0
    assert read_image(tmp_path / "pre" / "a.tif").dtype == np.float32
    assert main(["preprocess", str(inputs / "1.2.3.4"), str(tmp_path / "pre"), "--step", "minmax"]) == 0
    assert (tmp_path / "pre" / "1.2.3.4.nii.gz").is_file()
    out = capsys.readouterr().out.split()
    assert out == [str(tmp_path / "pre" / "a.tif"), str(tmp_path / "pre" / "1.2.3.4.nii.gz")]

"""Compressed DICOM pixel data that are damaged: one clear error, nothing printed by pydicom,
never a volume decoded past the damage; and series picked by the names users see."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from io_helpers import write_dicom_series

from medseg.cli.main import main
from medseg.errors import FormatError, InputError, MedsegError
from medseg.image import Image
from medseg.io import read_image

RAW = (np.random.default_rng(3).random((4, 16, 20)) * 900).astype(np.uint16)
FRAGMENT_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000): an item of the encapsulated pixel data


@pytest.fixture(scope="module")
def rle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rle") / "series"
    paths = write_dicom_series(folder, RAW, compress="rle")
    return folder, sorted(paths)


def _damaged(folder, tmp_path, how):
    """A copy of the series with the last file's RLE frame damaged ``how``."""
    out = tmp_path / how
    out.mkdir()
    files = sorted(folder.iterdir())
    for f in files:
        (out / f.name).write_bytes(f.read_bytes())
    target = out / files[-1].name
    b = bytearray(target.read_bytes())
    frame = b.rfind(FRAGMENT_ITEM) + 8  # the RLE frame: a 64-byte header, then the segments
    if how == "header":  # the segment count and offsets
        b[frame:frame + 16] = b"\x7f" * 16
    elif how == "segments":  # damage inside the run-length data
        b[frame + 70:frame + 200] = np.random.default_rng(0).integers(0, 256, 130, dtype=np.uint8).tobytes()
    elif how == "short":  # the frame cut short (the fragment keeps its declared length)
        b[frame + 64:] = b"\x00" * 0
    target.write_bytes(bytes(b))
    return out


def test_clean_rle_series_reads_exactly(rle):
    folder, _ = rle
    np.testing.assert_array_equal(read_image(folder).array, RAW)


@pytest.mark.parametrize("how", ["header", "segments", "short"])
def test_damaged_rle_is_one_error_and_silent(rle, tmp_path, capfd, how):
    bad = _damaged(rle[0], tmp_path, how)
    capfd.readouterr()
    with pytest.raises(MedsegError) as exc:
        read_image(bad)
    assert "\n" not in str(exc.value)
    assert "corrupt" in str(exc.value) or "truncated" in str(exc.value)
    assert "install" not in str(exc.value)  # the decoder is there: the data are bad
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


@pytest.mark.parametrize("how", ["header", "segments"])
def test_cli_on_damaged_rle(rle, tmp_path, capfd, how):
    bad = _damaged(rle[0], tmp_path, how)
    capfd.readouterr()
    for argv in (["convert", str(bad), str(tmp_path / "o.nii.gz")],
                 ["segment", str(bad), str(tmp_path / "s.nii.gz"), "--method", "otsu"],
                 ["inspect", str(bad)]):
        code = main(argv)
        err = capfd.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and err[0].startswith("medseg: error:"), (argv, err)
    assert not (tmp_path / "o.nii.gz").exists() and not (tmp_path / "s.nii.gz").exists()


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.floats(0, 1, exclude_max=True), length=st.integers(1, 64), seed=st.integers(0, 2**16))
def test_random_damage_in_compressed_data(rle, tmp_path_factory, capfd, start, length, seed):
    """Anywhere in a file: an Image of the series' shape or one MedsegError, and nothing printed.
    (RLE carries no checksum: a changed literal byte is a changed pixel, as in uncompressed data.)"""
    folder, paths = rle
    out = tmp_path_factory.mktemp("dmg")
    for p in paths:
        (out / p.name).write_bytes(p.read_bytes())
    target = out / paths[1].name
    b = bytearray(target.read_bytes())
    i = int(start * len(b))
    b[i:i + length] = np.random.default_rng(seed).integers(0, 256, min(length, len(b) - i), dtype=np.uint8).tobytes()
    target.write_bytes(bytes(b))
    capfd.readouterr()
    try:
        img = read_image(out)
        assert isinstance(img, Image) and img.shape[-2:] == RAW.shape[-2:]
    except MedsegError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == "", captured.err[:300]


def test_series_picked_by_description_spelling_or_folder_name(tmp_path):
    study = tmp_path / "study"
    write_dicom_series(study / "5388-MaskTumor-63335", RAW[:2] > 400, description="Mask_Tumor", series_uid="1.2.3.1")
    write_dicom_series(study / "11-T1post-80644", RAW[:2], description="T1post", series_uid="1.2.3.2")
    for want in ("Mask_Tumor", "MaskTumor", "mask tumor", "5388-MaskTumor-63335"):
        assert read_image(study, series=want).shape == (2, 16, 20)
        assert read_image(study, series=want).array.max() == 1
    assert read_image(study, series="t1post").array.max() > 1
    with pytest.raises(InputError, match="folder's name"):
        read_image(study, series="T2")


def test_missing_decoder_is_not_called_corruption():
    from medseg.io.dicom_header import _NO_DECODER

    msg = ("The pixel data decoder for 'JPEG 2000' is unavailable because all of its plugins are missing "
           "dependencies:\n    pylibjpeg - requires numpy, pylibjpeg>=2.0")
    assert _NO_DECODER.search(msg)
    assert not _NO_DECODER.search("Unable to decode as exceptions were raised by all available plugins:\n"
                                  "  pydicom: The RLE header specifies an invalid number of segments (3)")
    assert FormatError  # the class the reader raises for both

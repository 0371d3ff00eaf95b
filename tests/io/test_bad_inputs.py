"""Bad input: truncated/corrupt files, unsupported dtypes, empty images -> one error naming the file."""
from __future__ import annotations

import numpy as np
import pytest

from medseg.errors import FormatError, InputError, MedsegError
from medseg.image import Image
from medseg.io import read_image, read_label, write_image

WRITABLE = [".npy", ".npz", ".png", ".jpg", ".bmp", ".gif", ".tif", ".nii", ".nii.gz", ".nrrd", ".mha"]


def _sample(suffix: str) -> Image:
    rng = np.random.default_rng(0)
    if suffix in (".png", ".jpg", ".bmp", ".gif", ".tif"):
        return Image(rng.integers(0, 255, (64, 64)).astype(np.uint8))
    return Image(rng.normal(size=(8, 16, 16)).astype(np.float32), (2.0, 1.0, 1.0))


@pytest.mark.parametrize("suffix", WRITABLE)
def test_truncated_file(tmp_path, suffix):
    p = write_image(_sample(suffix), tmp_path / f"t{suffix}")
    data = p.read_bytes()
    p.write_bytes(data[: max(len(data) // 2, 20)])
    with pytest.raises(FormatError) as e:
        read_image(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("suffix", WRITABLE + [".mhd", ".nhdr", ".dcm", ".tiff", ".jpeg"])
def test_garbage_file(tmp_path, suffix):
    p = tmp_path / f"g{suffix}"
    p.write_bytes(b"this is not an image \x00\xff\x10" * 7)
    with pytest.raises(FormatError) as e:
        read_image(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_empty_file(tmp_path):
    for suffix in (".png", ".nii.gz", ".nrrd", ".npy", ".tif"):
        p = tmp_path / f"e{suffix}"
        p.write_bytes(b"")
        with pytest.raises(FormatError, match=f"e{suffix}"):
            read_image(p)


def test_mhd_with_truncated_data_file(tmp_path):
    p = write_image(_sample(".mhd"), tmp_path / "a.mhd")
    raw = tmp_path / "a.zraw"
    raw.write_bytes(raw.read_bytes()[:30])
    with pytest.raises(FormatError, match="a.mhd"):
        read_image(p)
    raw.unlink()
    with pytest.raises(FormatError, match="a.mhd"):
        read_image(p)


def test_unsupported_dtype_names_the_file(tmp_path):
    p = tmp_path / "c.npy"
    np.save(p, np.ones((4, 4), dtype=np.complex64))
    with pytest.raises(InputError, match="c.npy.*dtype"):
        read_image(p)
    q = tmp_path / "s.npy"
    np.save(q, np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(InputError, match="s.npy"):
        read_image(q)


def test_zero_size_image_names_the_file(tmp_path):
    p = tmp_path / "z.npy"
    np.save(p, np.zeros((0, 5), np.float32))
    with pytest.raises(InputError, match="z.npy.*empty"):
        read_image(p)


def test_unknown_suffix_suggests(tmp_path):
    p = tmp_path / "x.niii"
    p.write_bytes(b"abc")
    with pytest.raises(FormatError, match="unsupported file type"):
        read_image(p)
    with pytest.raises(MedsegError, match="no such file"):
        read_image(tmp_path / "missing.nii.gz")


def test_unwritable_dtype_or_shape(tmp_path):
    with pytest.raises(InputError, match="x.png"):
        write_image(Image(np.ones((3, 4, 4), np.float32)), tmp_path / "x.png")  # 3D into PNG
    with pytest.raises(InputError, match="y.jpg"):
        write_image(Image(np.ones((4, 4), np.uint16) * 1000), tmp_path / "y.jpg")
    assert list(tmp_path.iterdir()) == []


def test_bad_label_values_name_the_file(tmp_path):
    p = write_image(Image(np.array([[0, 0.5], [1, 2]], np.float32)), tmp_path / "lab.nii.gz")
    with pytest.raises(InputError, match="lab.nii.gz.*non-integer"):
        read_label(p)
    q = write_image(Image(np.array([[0, -1], [1, 2]], np.int16)), tmp_path / "neg.nrrd")
    with pytest.raises(InputError, match="neg.nrrd.*negative"):
        read_label(q)


def test_series_option_on_a_plain_file(tmp_path):
    p = write_image(_sample(".nrrd"), tmp_path / "a.nrrd")
    with pytest.raises(InputError, match="DICOM folders only"):
        read_image(p, series="1.2.3")

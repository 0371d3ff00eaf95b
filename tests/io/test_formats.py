"""Round trip of every format in tmp_path: values, dtype, spacing, origin, direction."""
from __future__ import annotations

import numpy as np
import pytest
from io_helpers import rotation

from medseg.image import Image
from medseg.io import read_image, read_label, supported_suffixes, write_image

RNG = np.random.default_rng(7)
OBLIQUE = rotation(0.2, -0.35, 0.6)
OBLIQUE2 = rotation(0.0, 0.0, 0.4)[:2, :2]


def vol(dtype, shape=(4, 5, 6)):
    if np.dtype(dtype).kind == "f":
        return RNG.normal(0, 100, shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(max(info.min, -30000), min(info.max, 60000), shape, endpoint=True).astype(dtype)


def geom3():
    return dict(spacing=(2.5, 0.75, 0.5), origin=(-12.5, 33.0, 7.25), direction=OBLIQUE)


def geom2():
    return dict(spacing=(0.75, 0.5), origin=(3.0, -4.0), direction=OBLIQUE2)


def check(a: Image, b: Image, *, geometry=True, exact=True):
    assert b.array.shape == a.array.shape
    assert b.dtype == a.dtype, (b.dtype, a.dtype)
    if exact:
        np.testing.assert_array_equal(b.array, a.array)
    if geometry:
        np.testing.assert_allclose(b.spacing, a.spacing, rtol=1e-6)
        np.testing.assert_allclose(b.origin, a.origin, atol=1e-5)
        np.testing.assert_allclose(b.direction, a.direction, atol=1e-6)


# formats that store full 3D geometry
VOLUME_SUFFIXES = [".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd", ".npz", ".npy"]


@pytest.mark.parametrize("suffix", VOLUME_SUFFIXES)
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.int64, np.float32, np.float64])
def test_volume_round_trip(tmp_path, suffix, dtype):
    img = Image(vol(dtype), **geom3())
    out = write_image(img, tmp_path / f"v{suffix}")
    check(img, read_image(out))


@pytest.mark.parametrize("suffix", VOLUME_SUFFIXES)
def test_2d_round_trip_stays_2d(tmp_path, suffix):
    img = Image(vol(np.int16, (7, 9)), **geom2())
    back = read_image(write_image(img, tmp_path / f"p{suffix}"))
    assert back.ndim == 2
    check(img, back)


@pytest.mark.parametrize("suffix", VOLUME_SUFFIXES)
def test_multichannel_round_trip(tmp_path, suffix):
    img = Image(vol(np.float32, (2, 4, 5, 6)), **geom3())
    back = read_image(write_image(img, tmp_path / f"c{suffix}"))
    assert back.has_channels and back.n_channels == 2
    check(img, back)


def test_nifti_oblique_affine_preserved_exactly(tmp_path):
    import nibabel as nib

    aff = np.eye(4)
    aff[:3, :3] = rotation(0.1, 0.25, -0.3) @ np.diag([0.9, 1.1, 3.3])
    aff[:3, 3] = [-90.123456789, 12.5, 40.0000001]
    src = tmp_path / "src.nii.gz"
    nib.save(nib.Nifti1Image(vol(np.int16), aff), str(src))
    back = tmp_path / "back.nii.gz"
    write_image(read_image(src), back)
    np.testing.assert_array_equal(nib.load(str(back)).affine, nib.load(str(src)).affine)
    np.testing.assert_array_equal(np.asanyarray(nib.load(str(back)).dataobj), np.asanyarray(nib.load(str(src)).dataobj))


def test_nifti_geometry_matches_simpleitk(tmp_path):
    import SimpleITK as sitk

    from medseg.io.sitk import image_from_sitk

    img = Image(vol(np.float32), **geom3())
    p = write_image(img, tmp_path / "g.nii.gz")
    ref = image_from_sitk(sitk.ReadImage(str(p)))
    np.testing.assert_allclose(ref.spacing, img.spacing, rtol=1e-5)
    np.testing.assert_allclose(ref.origin, img.origin, atol=1e-4)
    np.testing.assert_allclose(ref.direction, img.direction, atol=1e-5)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_8_16_bit(tmp_path, suffix, dtype):
    img = Image(vol(dtype, (13, 17)))
    check(img, read_image(write_image(img, tmp_path / f"g{suffix}")))


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_rgb_round_trip(tmp_path, suffix):
    img = Image(vol(np.uint8, (3, 11, 14)), (1.0, 1.0), meta={"rgb": True})
    back = read_image(write_image(img, tmp_path / f"rgb{suffix}"))
    assert back.meta["rgb"] is True
    check(img, back)


@pytest.mark.parametrize("suffix", [".bmp", ".gif"])
def test_grey_8_bit_bmp_gif(tmp_path, suffix):
    img = Image(vol(np.uint8, (10, 12)))
    check(img, read_image(write_image(img, tmp_path / f"g{suffix}")))


def test_jpeg_is_lossy_but_close(tmp_path):
    yy, xx = np.mgrid[0:32, 0:40]
    img = Image((yy * 4 + xx * 2).astype(np.uint8))
    back = read_image(write_image(img, tmp_path / "a.jpg"))
    assert back.dtype == np.uint8 and back.shape == img.shape
    assert np.abs(back.array.astype(int) - img.array).mean() < 2


@pytest.mark.parametrize("dtype", [np.float32, np.int16, np.int32])
def test_tiff_keeps_float_and_signed(tmp_path, dtype):
    img = Image(vol(dtype, (9, 8)), (0.5, 0.25))
    back = read_image(write_image(img, tmp_path / "f.tif"))
    check(img, back, geometry=False)
    np.testing.assert_allclose(back.spacing, img.spacing, rtol=1e-6)  # TIFF resolution tags


def test_tiff_stack_is_3d(tmp_path):
    img = Image(vol(np.uint16, (5, 9, 8)), (1.0, 0.5, 0.25))
    back = read_image(write_image(img, tmp_path / "s.tif"))
    assert back.ndim == 3
    check(img, back, geometry=False)
    np.testing.assert_allclose(back.spacing[1:], (0.5, 0.25), rtol=1e-6)


@pytest.mark.parametrize("suffix", [".png", ".gif", ".bmp", ".tif"])
def test_binary_mask_0_255_reads_as_0_1(tmp_path, suffix):
    m = (vol(np.uint8, (12, 10)) > 128).astype(np.uint8) * 255
    p = write_image(Image(m), tmp_path / f"m{suffix}")
    lab = read_label(p)
    assert lab.dtype == np.uint8
    np.testing.assert_array_equal(lab.array, m // 255)


def test_palette_png(tmp_path):
    from PIL import Image as PILImage

    a = (np.arange(12 * 10).reshape(12, 10) % 3).astype(np.uint8)
    grey = PILImage.fromarray(a, mode="P")
    grey.putpalette([0, 0, 0, 128, 128, 128, 255, 255, 255] + [0] * 759)
    grey.save(tmp_path / "grey.png")
    np.testing.assert_array_equal(read_image(tmp_path / "grey.png").array, np.array([0, 128, 255])[a])
    col = PILImage.fromarray(a, mode="P")
    col.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    col.save(tmp_path / "col.png")
    back = read_image(tmp_path / "col.png")
    assert back.n_channels == 3 and back.meta["rgb"]
    np.testing.assert_array_equal(back.array[0], np.where(a == 1, 255, 0))


def test_writes_are_atomic_and_multi_file_formats_consistent(tmp_path):
    img = Image(vol(np.int16), **geom3())
    write_image(img, tmp_path / "a.mhd")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.mhd", "a.zraw"]  # no temporary files left behind
    header = (tmp_path / "a.mhd").read_text()
    assert "ElementDataFile = a.zraw" in header  # points at the final data file, not a temp name
    img2 = img.with_array(img.array + 1)
    write_image(img2, tmp_path / "a.mhd")  # replace in place
    check(img2, read_image(tmp_path / "a.mhd"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mhd", "a.zraw"]


def test_failed_write_leaves_nothing(tmp_path):
    from medseg.errors import InputError

    img = Image(vol(np.float64, (4, 4)))
    with pytest.raises(InputError, match="bad.png") as e:
        write_image(img, tmp_path / "bad.png")  # PNG cannot store float64
    assert ".tmp" not in str(e.value)  # the message names the real file, not the temporary one
    assert list(tmp_path.iterdir()) == []


def test_every_suffix_is_covered():
    tested = set(VOLUME_SUFFIXES) | {".png", ".tif", ".bmp", ".gif", ".jpg"}
    aliases = {".jpeg": ".jpg", ".tiff": ".tif", ".dcm": ".dcm"}  # .dcm: tests/io/test_dicom.py
    assert {aliases.get(s, s) for s in supported_suffixes()} - tested <= {".dcm"}


def test_inputs_are_not_modified(tmp_path):
    arr = vol(np.float32)
    img = Image(arr.copy(), **geom3())
    write_image(img, tmp_path / "x.nii.gz")
    np.testing.assert_array_equal(img.array, arr)
    before = (tmp_path / "x.nii.gz").read_bytes()
    read_image(tmp_path / "x.nii.gz")
    assert (tmp_path / "x.nii.gz").read_bytes() == before


def test_npy_sidecar_written_with_array_and_dropped_when_default(tmp_path):
    img = Image(vol(np.int16), **geom3())
    write_image(img, tmp_path / "a.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "a.npy.json"]
    check(img, read_image(tmp_path / "a.npy"))
    plain = Image(vol(np.int16))
    write_image(plain, tmp_path / "a.npy")  # default geometry: the old sidecar must go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy"]
    check(plain, read_image(tmp_path / "a.npy"))

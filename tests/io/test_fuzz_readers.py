"""Property tests: every reader, fed random truncations, random byte damage and random bytes,
ends in an Image or one MedsegError, and prints nothing of its own (native or Python)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medseg.errors import MedsegError
from medseg.image import Image
from medseg.io import read_image, read_label, write_image

RNG = np.random.default_rng(0)
ARR2 = (RNG.random((20, 24)) * 200).astype(np.uint8)
ARR3 = RNG.random((6, 10, 12)).astype(np.float32)
FORMATS = {".png": ARR2, ".tif": ARR2, ".jpg": ARR2, ".bmp": ARR2, ".gif": ARR2, ".nii.gz": ARR3, ".nii": ARR3,
           ".nrrd": ARR3, ".mha": ARR3, ".npy": ARR3, ".npz": ARR3}
# formats whose data carry a checksum: any damage to the compressed data must be an error
CHECKSUMMED = {".nii.gz", ".nrrd", ".mha", ".npz", ".png"}
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    out = {}
    for suffix, arr in FORMATS.items():
        p = root / f"good{suffix}"
        write_image(Image(arr), p)
        out[suffix] = p.read_bytes()
    return out


def _read(path, capfd, *, label=False):
    capfd.readouterr()
    try:
        img = (read_label if label else read_image)(path)
        result = img
    except MedsegError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), str(exc)
        result = exc
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == "", f"{path.name} printed: {captured.err[:300]}"
    return result


@pytest.mark.parametrize("suffix", sorted(FORMATS))
@SETTINGS
@given(frac=st.floats(0, 1, exclude_max=True))
def test_truncated_files(suffix, frac, good, tmp_path, capfd):
    data = good[suffix]
    p = tmp_path / f"t{suffix}"
    p.write_bytes(data[: int(frac * len(data))])
    result = _read(p, capfd)
    if isinstance(result, Image):  # a truncation that still reads must read the same data
        assert result.shape == FORMATS[suffix].shape[-result.ndim:]


@pytest.mark.parametrize("suffix", sorted(FORMATS))
@SETTINGS
@given(at=st.floats(0, 1, exclude_max=True), junk=st.binary(min_size=1, max_size=48))
def test_damaged_files(suffix, at, junk, good, tmp_path, capfd):
    data = bytearray(good[suffix])
    i = int(at * len(data))
    data[i:i + len(junk)] = junk[: len(data) - i]
    p = tmp_path / f"d{suffix}"
    p.write_bytes(bytes(data))
    result = _read(p, capfd)
    if isinstance(result, Image) and suffix in CHECKSUMMED and bytes(data) != good[suffix] and suffix != ".png":
        # compressed data are checksummed: a read that succeeds must give the original values
        assert np.array_equal(np.asarray(result.array), FORMATS[suffix]), f"silent corruption in {suffix}"
    _read(p, capfd, label=True)


@pytest.mark.parametrize("suffix", sorted(FORMATS))
@SETTINGS
@given(blob=st.binary(min_size=0, max_size=600))
def test_random_bytes(suffix, blob, tmp_path, capfd):
    p = tmp_path / f"r{suffix}"
    p.write_bytes(blob)
    _read(p, capfd)

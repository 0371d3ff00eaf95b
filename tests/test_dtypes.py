"""Every dtype NumPy can hold ends in a result or one clear line, for every method family."""
from __future__ import annotations

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.testing import disc_phantom

DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16", "float32",
          "float64", "complex64", "complex128", "object", "datetime64[s]", "U3", "S3", "V4"]
SUPPORTED = {"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16",
             "float32", "float64"}


def _array(dtype: str) -> np.ndarray:
    img, _ = disc_phantom((24, 24), seed=0)
    a = np.asarray(img.array)
    if dtype == "bool":
        return a > 0.5
    if dtype.startswith(("int", "uint")):
        return np.round(a * 100).astype(dtype)
    if dtype.startswith(("float", "complex")):
        return a.astype(dtype)
    if dtype == "object":
        return a.astype(object)
    if dtype.startswith("datetime"):
        return np.zeros(a.shape, dtype)
    return np.zeros(a.shape, dtype)


@pytest.mark.parametrize("method", ["threshold", "otsu", "watershed", "kmeans"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_segment_any_dtype(dtype, method, tmp_path, capsys):
    src = tmp_path / "in.npy"
    np.save(src, _array(dtype), allow_pickle=dtype == "object")
    before = src.read_bytes()
    code = main(["segment", str(src), str(tmp_path / "out.nii.gz"), "--method", method])
    err = capsys.readouterr().err
    if dtype in SUPPORTED:
        assert code == 0, err
        assert (tmp_path / "out.nii.gz").is_file()
    else:
        assert code == 2, err
        assert err.count("\n") == 1 and err.startswith("medseg: error:"), err
        assert not (tmp_path / "out.nii.gz").exists()
    assert src.read_bytes() == before

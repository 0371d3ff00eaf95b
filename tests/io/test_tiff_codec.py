"""A compressed TIFF whose codec is missing is a dependency problem, not a corrupt file."""
import numpy as np
import pytest

from medseg.errors import DependencyError
from medseg.io import read_image


def test_missing_codec_names_the_package(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")
    p = tmp_path / "a.tif"
    tifffile.imwrite(p, np.arange(64, dtype=np.uint8).reshape(8, 8))

    def no_codec(self, *a, **k):
        raise ValueError("<COMPRESSION.LZW: 5> requires the 'imagecodecs' package")

    monkeypatch.setattr(tifffile.TiffFile, "asarray", no_codec)
    with pytest.raises(DependencyError, match="pip install imagecodecs"):
        read_image(p)

"""Registry-wide contract for every classical method, on 2D and 3D phantoms per declared dims."""
import dataclasses

import numpy as np
import pytest

from medseg.errors import ConfigError, InputError
from medseg.image import Image
from medseg.methods.base import METHODS, segment
from medseg.postprocess import PostParams
from medseg.testing import disc_phantom

CLASSICAL = [n for n in METHODS.names() if METHODS.get(n).family == "classical"]
SHAPES = {2: (40, 48), 3: (16, 24, 28)}
SPACING = {2: (1.2, 1.0), 3: (2.0, 1.0, 0.9)}


def _phantom(dim, seed=0):
    img, truth = disc_phantom(SHAPES[dim], seed=seed, spacing=SPACING[dim], n_objects=4, noise=0.1)
    return Image(img.array, img.spacing, tuple(float(10 * i) for i in range(dim)), np.eye(dim), {"case": "x"}), truth


def test_every_issue_method_is_registered():
    expected = {"threshold", "otsu", "multi-otsu", "li", "triangle", "local", "edges", "region-growing",
                "watershed", "chan-vese", "geodesic-active-contour", "kmeans", "gmm", "random-walker",
                "vesselness"}
    assert expected <= set(CLASSICAL)


def test_every_classical_method_lives_in_the_classical_package():
    """The family lists its methods (threshold included); methods/ only registers them."""
    from medseg.classical import CLASSICAL_METHODS

    assert {cls.name for cls in CLASSICAL_METHODS} == set(CLASSICAL)
    for cls in CLASSICAL_METHODS:
        assert METHODS.get(cls.name) is cls and cls.__module__.startswith("medseg.classical.")


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_contract(name):
    cls = METHODS.get(name)
    assert cls.family == "classical" and cls.summary and set(cls.dims) <= {2, 3}
    # every classical method has the shared post-processing flags
    names = {f.name for f in dataclasses.fields(cls.Params)}
    assert {f.name for f in dataclasses.fields(PostParams)} <= names
    for dim in (2, 3):
        img, _ = _phantom(dim)
        if dim not in cls.dims:
            with pytest.raises(InputError, match=f"{dim}D"):
                segment(img, name)
            continue
        before = img.array.copy()
        out = segment(img, name)  # default params: must run on any image of its dims
        assert isinstance(out, Image) and out.shape == img.shape and not out.has_channels
        assert out.spacing == img.spacing and out.origin == img.origin
        assert np.array_equal(out.direction, img.direction)
        assert out.array.dtype.kind in "iu"
        assert out.array.min() >= 0
        assert np.array_equal(img.array, before)
        assert np.array_equal(segment(img, name).array, out.array), "not deterministic"


@pytest.mark.parametrize("name", CLASSICAL)
def test_classical_handles_rgb_and_constant(name):
    cls = METHODS.get(name)
    if 2 not in cls.dims:
        pytest.skip("3D only")
    img, _ = _phantom(2)
    rgb = Image(np.stack([img.array * 0.5, img.array, img.array * 0.2]), img.spacing, meta={"rgb": True})
    out = segment(rgb, name)
    assert out.shape == img.shape and not out.has_channels
    flat = Image(np.full((20, 20), 3.0, np.float32))
    lab = segment(flat, name)
    assert lab.shape == (20, 20) and lab.array.dtype.kind in "iu"


@pytest.mark.parametrize("name", CLASSICAL)
def test_unknown_parameter_names_nearest(name):
    with pytest.raises(ConfigError, match="did you mean 'min_size'"):
        segment(_phantom(2)[0], name, min_sise=3)

"""The method contract, checked for EVERY registered method (all families), 2D and 3D."""
import numpy as np
import pytest

from medseg.errors import InputError
from medseg.image import Image
from medseg.methods.base import METHODS
from medseg.testing import disc_phantom

SHAPES = {2: (48, 56), 3: (20, 28, 32)}


def _make(name, dim, seed=0):
    img, truth = disc_phantom(SHAPES[dim], seed=seed, spacing=(1.5, 1.0) if dim == 2 else (2.0, 1.0, 0.8))
    img = Image(img.array, img.spacing, tuple(float(i) for i in range(dim)), np.eye(dim), {"case": name})
    return img, truth


def _instance(cls, dim):
    seg = cls(**getattr(cls, "contract_params", {}))
    if cls.trainable:
        imgs, labs = zip(*[_make(cls.name, dim, seed=s) for s in (10, 11)])
        seg = seg.fit(list(imgs), list(labs), **getattr(cls, "contract_fit", {})) or seg
    return seg


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("name", METHODS.names())
def test_method_contract(name, dim):
    cls = METHODS.get(name)
    assert cls.name == name and cls.family in ("classical", "ml", "dl")
    assert set(cls.dims) <= {2, 3} and cls.summary
    img, truth = _make(name, dim)
    if dim not in cls.dims:
        with pytest.raises(InputError, match=f"{dim}D"):
            cls.check(img)
        return
    seg = _instance(cls, dim)
    before = img.array.copy()
    out = seg(img)
    assert isinstance(out, Image)
    assert out.shape == img.shape and not out.has_channels
    assert out.spacing == img.spacing and out.origin == img.origin and np.array_equal(out.direction, img.direction)
    assert out.array.dtype.kind in "iu"
    assert np.array_equal(img.array, before), "the input array was modified"
    assert np.array_equal(seg(img).array, out.array), "not deterministic"
    if hasattr(seg, "predict_proba") and cls.trainable:
        p = seg.predict_proba(img)
        assert p.shape == img.shape and p.has_channels
        assert np.allclose(p.array.sum(axis=0), 1, atol=1e-4)


@pytest.mark.parametrize("name", METHODS.names())
def test_method_refuses_nan(name):
    cls = METHODS.get(name)
    dim = cls.dims[0]
    img, _ = _make(name, dim)
    a = img.array.copy()
    a.flat[5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        cls.check(img.with_array(a))


@pytest.mark.parametrize("name", METHODS.names())
def test_method_describes_itself(name):
    d = METHODS.get(name).describe()
    assert d["name"] == name and isinstance(d["params"], list)
    for p in d["params"]:
        assert p["name"] and "default" in p


def test_parameters_by_dict_dataclass_or_keywords():
    from medseg.errors import ConfigError
    from medseg.methods.threshold import Threshold, ThresholdParams

    assert Threshold({"value": "0.3"}).params.value == 0.3
    assert Threshold(ThresholdParams(value=0.3), above=False).params == ThresholdParams(value=0.3, above=False)
    assert Threshold({"value": 0.3}, above="no").params.above is False
    with pytest.raises(ConfigError, match="did you mean 'value'"):
        Threshold(ThresholdParams(), vaule=1)

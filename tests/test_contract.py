"""The method contract, checked for EVERY registered method (all families), 2D and 3D."""
import numpy as np
import pytest

from contract_settings import fit_options, params, predict_options
from medseg.contract import Trainable, write_model_info
from medseg.errors import InputError, MedsegError, ModelError
from medseg.image import Image
from medseg.methods.base import METHODS, load_model
from medseg.testing import disc_phantom

SHAPES = {2: (48, 56), 3: (20, 28, 32)}


def _make(name, dim, seed=0):
    img, truth = disc_phantom(SHAPES[dim], seed=seed, spacing=(1.5, 1.0) if dim == 2 else (2.0, 1.0, 0.8))
    img = Image(img.array, img.spacing, tuple(float(i) for i in range(dim)), np.eye(dim), {"case": name})
    return img, truth


def _instance(cls, dim):
    seg = cls(**params(cls.name))
    if cls.trainable:
        imgs, labs = zip(*[_make(cls.name, dim, seed=s) for s in (10, 11)])
        seg = seg.fit(list(imgs), list(labs), **fit_options(cls.name)) or seg
    return seg


_FITTED: dict = {}


def _fitted(name, dim):
    """One fitted instance per (trainable method, dim), shared by the tests of this module."""
    if (name, dim) not in _FITTED:
        _FITTED[name, dim] = _instance(METHODS.get(name), dim)
    return _FITTED[name, dim]


TRAINABLE = [n for n in METHODS.names() if METHODS.get(n).trainable]
FAMILIES = sorted({METHODS.get(n).family for n in METHODS.names()})


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
    seg = _fitted(name, dim) if cls.trainable else _instance(cls, dim)
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
    from medseg.classical import Threshold, ThresholdParams
    from medseg.errors import ConfigError

    assert Threshold({"value": "0.3"}).params.value == 0.3
    assert Threshold(ThresholdParams(value=0.3), above=False).params == ThresholdParams(value=0.3, above=False)
    assert Threshold({"value": 0.3}, above="no").params.above is False
    with pytest.raises(ConfigError, match="did you mean 'value'"):
        Threshold(ThresholdParams(), vaule=1)


@pytest.mark.parametrize("name", TRAINABLE)
def test_trainable_methods_declare_the_protocol(name):
    cls = METHODS.get(name)
    assert cls.TrainParams is not None
    assert isinstance(cls(**params(name)), Trainable)


@pytest.mark.parametrize("name", TRAINABLE)
def test_trainable_save_load_round_trip(name, tmp_path):
    cls = METHODS.get(name)
    dim = cls.dims[0]
    seg = _fitted(name, dim)
    img, _ = _make(name, dim, seed=3)
    out = seg.save(tmp_path / "model")
    assert (out / "model.json").is_file()
    again = load_model(out, predict_options(name))
    assert type(again) is cls
    assert np.array_equal(again(img).array, seg(img).array)
    assert np.allclose(again.predict_proba(img).array, seg.predict_proba(img).array, atol=1e-5)


@pytest.mark.parametrize("name", TRAINABLE)
def test_trainable_refuses_predict_before_fit(name):
    cls = METHODS.get(name)
    img, _ = _make(name, cls.dims[0])
    with pytest.raises(MedsegError, match="not trained|fit"):
        cls(**params(name))(img)
    with pytest.raises(MedsegError, match="not trained|fit"):
        cls(**params(name)).save("never-written")


@pytest.mark.parametrize("name", TRAINABLE)
def test_trainable_refuses_a_model_folder_of_another_method(name, tmp_path):
    cls = METHODS.get(name)
    other = next(n for n in TRAINABLE if METHODS.get(n).family != cls.family)
    write_model_info(tmp_path, other, {})
    with pytest.raises(ModelError):
        cls.load(tmp_path)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_refuses_bad_input(family):
    """Each family refuses a non-image and a method name that does not exist."""
    from medseg.errors import ConfigError

    name = next(n for n in METHODS.names() if METHODS.get(n).family == family)
    cls = METHODS.get(name)
    with pytest.raises(InputError, match="expected a medseg Image"):
        cls.check([[1, 2], [3, 4]])
    with pytest.raises(ConfigError, match="did you mean"):
        METHODS.get(name + "x")

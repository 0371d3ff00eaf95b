import numpy as np
import pytest

from medseg.errors import GeometryError, InputError
from medseg.image import Image, same_grid


def test_defaults_2d_3d():
    a = Image(np.zeros((4, 5)))
    assert a.ndim == 2 and a.spacing == (1.0, 1.0) and a.origin == (0.0, 0.0)
    assert np.array_equal(a.direction, np.eye(2))
    b = Image(np.zeros((3, 4, 5)), spacing=(2, 1, 0.5))
    assert b.ndim == 3 and not b.has_channels and b.shape == (3, 4, 5)


def test_channels_follow_spacing_length():
    img = Image(np.zeros((3, 4, 5)), spacing=(1, 1))
    assert img.has_channels and img.n_channels == 3 and img.shape == (4, 5)
    assert img.channel(1).shape == (4, 5) and not img.channel(1).has_channels
    assert img.channels_first().shape == (3, 4, 5)
    assert Image(np.zeros((4, 5))).channels_first().shape == (1, 4, 5)
    with pytest.raises(InputError):
        img.channel(3)


def test_with_array_keeps_geometry_and_checks_shape():
    d = np.array([[0, 1], [1, 0]], float)
    img = Image(np.zeros((4, 5)), spacing=(0.5, 2), origin=(1, 2), direction=d, meta={"modality": "CT"})
    out = img.with_array(np.ones((4, 5), np.uint8))
    assert out.spacing == (0.5, 2.0) and out.origin == (1.0, 2.0) and np.array_equal(out.direction, d)
    assert out.meta["modality"] == "CT"
    assert same_grid(img, out)
    with pytest.raises(GeometryError):
        img.with_array(np.ones((5, 4)))


def test_frozen_and_readonly_direction():
    img = Image(np.zeros((2, 2)))
    with pytest.raises(AttributeError):
        img.spacing = (2, 2)
    with pytest.raises(ValueError):
        img.direction[0, 0] = 5
    with pytest.raises(TypeError):
        img.meta["x"] = 1


@pytest.mark.parametrize("kwargs, arr", [
    ({}, np.zeros((0, 4))),
    ({}, np.zeros((2, 2, 2, 2))),
    ({"spacing": (1, -1)}, np.zeros((2, 2))),
    ({"spacing": (1, float("nan"))}, np.zeros((2, 2))),
    ({"spacing": (1, 1, 1)}, np.zeros((2, 2))),
    ({"direction": np.eye(3)}, np.zeros((2, 2))),
    ({}, np.array([["a", "b"], ["c", "d"]])),
    ({}, np.zeros((2, 2), complex)),
])
def test_bad_images(kwargs, arr):
    with pytest.raises(InputError):
        Image(arr, **kwargs)


def test_affine_maps_index_to_world():
    d = np.array([[0, -1], [1, 0]], float)
    img = Image(np.zeros((4, 5)), spacing=(2, 3), origin=(10, 20), direction=d)
    p = np.array([1, 1, 1.0])
    w = img.affine() @ p
    assert np.allclose(w[:2], np.array([10, 20]) + d @ (np.array([2, 3]) * 1))


def test_same_grid_tolerances():
    a = Image(np.zeros((4, 5)), spacing=(1, 1))
    assert same_grid(a, Image(np.zeros((4, 5)), spacing=(1 + 1e-7, 1)))
    assert not same_grid(a, Image(np.zeros((4, 5)), spacing=(1.1, 1)))
    assert not same_grid(a, Image(np.zeros((4, 5)), origin=(0, 1)))
    assert not same_grid(a, Image(np.zeros((5, 4))))

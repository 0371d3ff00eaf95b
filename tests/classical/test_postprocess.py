"""Shared post-processing: each option on hand-made masks, and through a method's flags."""
import numpy as np
import pytest

from medseg.errors import ConfigError
from medseg.image import Image
from medseg.methods.base import segment
from medseg.postprocess import (
    PostParams,
    ellipsoid_footprint,
    keep_largest,
    postprocess,
)


def blobs():
    m = np.zeros((20, 30), np.uint8)
    m[2:10, 2:12] = 1     # 80 px, with a hole
    m[5, 6] = 0
    m[12:16, 20:24] = 1   # 16 px
    m[18, 28] = 1         # 1 px
    m[0:3, 27:30] = 1     # 9 px touching the border
    return m


def test_min_size_and_keep_largest():
    m = blobs()
    out = postprocess(m, PostParams(min_size=10), (1, 1))
    assert out[18, 28] == 0 and out[1, 28] == 0 and out[13, 21] == 1 and out.dtype == np.uint8
    assert postprocess(m, PostParams(keep_largest=1), (1, 1)).sum() == 79
    two = postprocess(m, PostParams(keep_largest=2), (1, 1))
    assert two.sum() == 79 + 16
    assert np.array_equal(keep_largest(m > 0, 1), postprocess(m, PostParams(keep_largest=1), (1, 1)) > 0)


def test_fill_holes_clear_border_opening_closing():
    m = blobs()
    assert postprocess(m, PostParams(fill_holes=True), (1, 1))[5, 6] == 1
    assert postprocess(m, PostParams(clear_border=True), (1, 1))[1, 28] == 0
    opened = postprocess(m, PostParams(opening=1), (1, 1))
    assert opened[18, 28] == 0 and opened[13, 21] == 1
    closed = postprocess(m, PostParams(closing=1), (1, 1))
    assert closed[5, 6] == 1
    # closing at the border does not erode objects that touch it
    assert closed[0, 29] == 1


def test_clear_border_ignores_first_and_last_slices_in_3d():
    m = np.zeros((4, 8, 8), np.uint8)
    m[:, 3:5, 3:5] = 1   # runs through every slice: kept
    m[1:3, 0:2, 0:2] = 1  # touches the in-plane border: removed
    out = postprocess(m, PostParams(clear_border=True), (1, 1, 1))
    assert out[:, 3:5, 3:5].all() and out[:, :2, :2].sum() == 0


def test_multilabel_maps_are_processed_label_by_label():
    lab = np.zeros((10, 20), np.uint8)
    lab[1:5, 1:5] = 1
    lab[0, 9] = 1
    lab[5:9, 10:18] = 2
    lab[0, 19] = 2
    out = postprocess(lab, PostParams(keep_largest=1), (1, 1))
    assert set(np.unique(out)) == {0, 1, 2} and out[0, 9] == 0 and out[0, 19] == 0
    assert (out == 1).sum() == 16 and (out == 2).sum() == 32


def test_radius_follows_spacing():
    fp = ellipsoid_footprint(2.0, (2.0, 1.0))
    assert fp.shape == (3, 5)
    assert ellipsoid_footprint(1.0, (1, 1, 1)).sum() == 7


def test_invalid_options():
    with pytest.raises(ConfigError, match="--min-size"):
        PostParams(min_size=-1)
    with pytest.raises(ConfigError, match="--opening"):
        PostParams(opening=-2)


def test_every_method_flag_reaches_postprocessing():
    a = blobs().astype(np.float32)
    out = segment(Image(a), "otsu", min_size=10, fill_holes=True, clear_border=True).array
    assert out.sum() == 80 + 16

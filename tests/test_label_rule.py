"""One rule for what a label map's values mean, shared by the readers (so inspect and train)
and the metrics (so evaluate): the same input gives the same foreground or the same refusal."""
from __future__ import annotations

import numpy as np
import pytest

from medseg import metrics
from medseg.errors import InputError
from medseg.image import Image
from medseg.io import as_label, label_values
from medseg.metrics._inputs import label_array

MASK = np.zeros((8, 8), np.uint8)
MASK[2:6, 3:7] = 1


@pytest.mark.parametrize("scale, dtype", [(1, np.uint8), (255, np.uint8), (65535, np.uint16), (1, bool),
                                          (1.0, np.float32)])
def test_same_foreground_everywhere(scale, dtype):
    stored = (MASK.astype(np.float64) * scale).astype(dtype)
    via_reader = as_label(Image(stored)).array
    via_metric = label_array(stored)
    np.testing.assert_array_equal(via_reader, MASK)
    np.testing.assert_array_equal(via_metric, MASK)
    assert metrics.dice(stored, MASK) == 1.0
    assert metrics.hd95(stored, MASK) == 0.0


@pytest.mark.parametrize("bad, words", [(np.where(MASK > 0, np.nan, 0.0), "NaN"),
                                        (MASK * 0.5, "non-integer"),
                                        (MASK.astype(np.int16) - 1, "negative"),
                                        (MASK.astype("U1"), "dtype")])
def test_same_refusal_everywhere(bad, words):
    with pytest.raises(InputError, match=words):
        as_label(Image(bad)) if bad.dtype.kind != "U" else label_values(bad)
    with pytest.raises(InputError, match=words):
        label_array(bad)


def test_multi_label_kept():
    lab = MASK.copy()
    lab[0, 0] = 255
    lab[1, 1] = 2  # 0/1/2/255: a real label 255, not a mask image
    np.testing.assert_array_equal(label_values(lab), lab)

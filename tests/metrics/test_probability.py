import math

import numpy as np
import pytest

from medseg.errors import GeometryError, InputError
from medseg.metrics.probability import ece, pr_auc, probability_metrics, roc_auc


def test_hand_computed_auc_and_ece():
    p = np.array([[0.1, 0.4], [0.35, 0.8]])
    t = np.array([[0, 0], [1, 1]])
    assert roc_auc(p, t) == pytest.approx(0.75)
    # ranking 0.8(+),0.4(-),0.35(+),0.1(-): AP = 0.5*1 + 0.5*(2/3)
    assert pr_auc(p, t) == pytest.approx(0.5 + 1 / 3)
    # 2 bins: [0,0.5): p=.1,.4,.35 y=0,0,1 -> |1/3-.85/3|*3/4; [0.5,1]: p=.8 y=1 -> |1-.8|/4
    assert ece(p, t, bins=2) == pytest.approx((abs(1 - 0.85) + 0.2) / 4)


def test_channel_first_stack_and_roi():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 3, (10, 12))
    probs = rng.random((3, 10, 12))
    probs /= probs.sum(0)
    from sklearn.metrics import roc_auc_score
    assert roc_auc(probs, t, label=2) == pytest.approx(roc_auc_score((t == 2).ravel(), probs[2].ravel()))
    roi = np.zeros((10, 12), int)
    roi[:5] = 1
    expected = roc_auc_score((t[:5] == 1).ravel(), probs[1, :5].ravel())
    assert roc_auc(probs, t, label=1, roi=roi) == pytest.approx(expected)


def test_one_class_truth_is_undefined():
    m = probability_metrics(np.full((4, 4), 0.2), np.zeros((4, 4), int))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"]) and m["ece"] == pytest.approx(0.2)


def test_bad_probabilities():
    with pytest.raises(InputError, match=r"outside \[0, 1\]"):
        roc_auc(np.full((3, 3), 1.5), np.ones((3, 3), int))
    with pytest.raises(InputError, match="NaN"):
        ece(np.full((3, 3), np.nan), np.ones((3, 3), int))
    with pytest.raises(GeometryError):
        roc_auc(np.full((3, 4), 0.5), np.ones((3, 3), int))
    with pytest.raises(InputError, match="no.*label 5|none for label 5"):
        roc_auc(np.full((2, 3, 3), 0.5), np.ones((3, 3), int), label=5)

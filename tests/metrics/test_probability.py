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


def test_histogram_curves_match_the_exact_metrics():
    """With probabilities on a grid coarser than the bins, the binned areas equal scikit-learn's exactly."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from medseg.metrics.probability import probability_histogram

    rng = np.random.default_rng(3)
    t = (rng.random((30, 40)) < 0.3).astype(int)
    p = np.clip(np.round(0.35 * t + rng.random((30, 40)) * 0.65, 2), 0, 1)  # multiples of 0.01: ties included
    h = probability_histogram(p, t)
    assert h.positives.shape == (1000,) and h.positives.sum() + h.negatives.sum() == t.size
    assert h.roc_auc() == pytest.approx(roc_auc_score(t.ravel(), p.ravel()), abs=1e-12)
    assert h.average_precision() == pytest.approx(average_precision_score(t.ravel(), p.ravel()), abs=1e-12)
    assert h.ece() == pytest.approx(ece(p, t), abs=1e-12)
    c = h.curves()
    assert c["fpr"][0] == 0 and c["tpr"][0] == 0 and c["fpr"][-1] == 1 and c["tpr"][-1] == 1
    assert np.all(np.diff(c["fpr"]) >= 0) and np.all(np.diff(c["tpr"]) >= 0)
    assert c["recall"][0] == 0 and c["precision"][0] == 1 and c["recall"][-1] == 1
    assert c["count"].sum() == t.size and np.all((c["frequency"] >= 0) & (c["frequency"] <= 1))


def test_histograms_pool_over_cases_with_a_fixed_size():
    from medseg.metrics.probability import probability_histogram

    rng = np.random.default_rng(4)
    cases = [(rng.random((8, 9, 10)), rng.integers(0, 2, (8, 9, 10))) for _ in range(3)]
    hs = [probability_histogram(p, t, bins=200) for p, t in cases]
    pooled = hs[0] + hs[1] + hs[2]
    assert pooled.positives.shape == (200,)  # the size of the bins, not of the images
    whole = probability_histogram(np.concatenate([p for p, _ in cases]), np.concatenate([t for _, t in cases]),
                                  bins=200)
    assert np.array_equal(pooled.positives, whole.positives) and np.array_equal(pooled.negatives, whole.negatives)
    assert pooled.ece() == pytest.approx(whole.ece())
    roi = np.zeros((8, 9, 10), bool)
    roi[:4] = True
    inside = probability_histogram(cases[0][0], cases[0][1], roi=roi)
    assert inside.positives.sum() + inside.negatives.sum() == roi.sum()
    one_class = probability_histogram(np.full((3, 3), 0.2), np.zeros((3, 3), int))
    assert math.isnan(one_class.roc_auc()) and math.isnan(one_class.average_precision())

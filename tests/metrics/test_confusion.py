import math

import numpy as np
import pytest

from medseg.errors import GeometryError, InputError
from medseg.image import Image
from medseg.metrics import confusion_counts, confusion_matrix, dice, overlap


def test_hand_computed_counts_and_ratios():
    p = np.array([[0, 1, 1, 0], [0, 1, 0, 0]])
    t = np.array([[0, 1, 0, 0], [1, 1, 0, 0]])
    m = overlap(p, t)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 4)
    assert m["dice"] == pytest.approx(4 / 6)
    assert m["iou"] == pytest.approx(2 / 4)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["mcc"] == pytest.approx((2 * 4 - 1 * 1) / math.sqrt(3 * 3 * 5 * 5))
    assert m["volume_difference"] == 0.0
    assert m["volume_similarity"] == 1.0
    assert m["empty"] == ""


def test_empty_conventions():
    z = np.zeros((3, 3), int)
    one = z.copy()
    one[1, 1] = 1
    both = overlap(z, z)
    assert both["empty"] == "both" and math.isnan(both["dice"]) and math.isnan(both["recall"])
    assert both["specificity"] == 1.0
    pe = overlap(z, one)
    assert pe["empty"] == "prediction" and pe["dice"] == 0 and pe["recall"] == 0 and math.isnan(pe["precision"])
    te = overlap(one, z)
    assert te["empty"] == "truth" and te["dice"] == 0 and te["precision"] == 0 and math.isnan(te["recall"])
    assert math.isnan(dice(z, z))


def test_label_none_is_foreground_and_roi_restricts():
    p = np.array([[1, 2, 0], [0, 0, 0]])
    t = np.array([[2, 2, 0], [0, 0, 1]])
    assert dice(p, t) == pytest.approx(2 * 2 / (2 + 3))
    assert dice(p, t, label=2) == pytest.approx(2 * 1 / (1 + 2))
    roi = np.array([[1, 1, 1], [1, 1, 0]])
    assert confusion_counts(p, t, label=None, roi=roi) == (2, 0, 0, 3)
    assert overlap(Image(p, spacing=(2.0, 0.5)), Image(t, spacing=(2.0, 0.5)), label=1)["volume_pred"] == 1.0
    # the default, as in every metric: all foreground (labels 1 and 2: two voxels)
    assert overlap(Image(p, spacing=(2.0, 0.5)), Image(t, spacing=(2.0, 0.5)))["volume_pred"] == 2.0


def test_confusion_matrix():
    p = np.array([[0, 1, 2], [2, 2, 0]])
    t = np.array([[0, 1, 1], [2, 2, 2]])
    cm, labels = confusion_matrix(p, t)
    assert labels == [0, 1, 2]
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 2]]
    assert cm.sum() == p.size


@pytest.mark.parametrize("bad,msg", [
    ((np.zeros((3, 3)), np.zeros((3, 4))), "shape"),
    ((np.full((3, 3), 0.5), np.zeros((3, 3))), "non-integer"),
    ((np.full((3, 3), -1), np.zeros((3, 3), int)), "negative"),
])
def test_bad_input(bad, msg):
    with pytest.raises(InputError, match=msg):
        overlap(*bad)


def test_geometry_mismatch():
    a = Image(np.zeros((4, 4), np.uint8), spacing=(1, 1))
    b = Image(np.zeros((4, 4), np.uint8), spacing=(1, 2))
    with pytest.raises(GeometryError, match="geometry"):
        dice(a, b)


def test_empty_roi_refused():
    with pytest.raises(InputError, match="region of interest is empty"):
        overlap(np.ones((2, 2), int), np.ones((2, 2), int), roi=np.zeros((2, 2)))


def test_one_rule_for_a_masks_foreground():
    """A 0/255 mask and a 0/1 mask are the same mask for every metric, with default arguments."""
    import numpy as np

    from medseg.metrics import assd, dice, evaluate, hd95, nsd, overlap

    t01 = np.zeros((12, 12), np.uint8)
    t01[3:8, 3:8] = 1
    p01 = np.zeros((12, 12), np.uint8)
    p01[4:9, 3:8] = 1
    t255, p255 = t01 * 255, p01 * 255
    for p, t in ((p01, t01), (p255, t255), (p01, t255), (p255, t01)):
        assert dice(p, t) == 0.8
        assert overlap(p, t)["dice"] == 0.8
        assert hd95(p, t) == 1.0 and assd(p, t) > 0 and 0 < nsd(p, t) <= 1
        rows = evaluate([p], [t]).rows
        assert [r["label"] for r in rows] == [1] and rows[0]["dice"] == 0.8

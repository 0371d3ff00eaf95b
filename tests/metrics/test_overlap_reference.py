"""Overlap metrics vs SimpleITK's LabelOverlapMeasuresImageFilter and MONAI's confusion-matrix metrics."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medseg.image import Image
from medseg.metrics import overlap

sitk = pytest.importorskip("SimpleITK")


@st.composite
def mask_pairs(draw):
    dim = draw(st.sampled_from([2, 3]))
    shape = tuple(draw(st.lists(st.integers(3, 12), min_size=dim, max_size=dim)))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    rng = np.random.default_rng(seed)
    spacing = tuple(float(s) for s in rng.uniform(0.2, 4.0, size=dim))
    k = draw(st.integers(2, 4))
    fill = rng.uniform(0.2, 0.8)
    a = np.where(rng.random(shape) < fill, rng.integers(1, k, shape), 0).astype(np.uint8)
    b = np.where(rng.random(shape) < fill, rng.integers(1, k, shape), 0).astype(np.uint8)
    return a, b, spacing, k


def _sitk(arr, spacing):
    im = sitk.GetImageFromArray(arr)
    im.SetSpacing(tuple(reversed(spacing)))
    return im


@settings(max_examples=30, deadline=None)
@given(mask_pairs())
def test_matches_simpleitk_label_overlap(pair):
    a, b, spacing, k = pair
    f = sitk.LabelOverlapMeasuresImageFilter()
    f.Execute(_sitk(a, spacing), _sitk(b, spacing))  # source = prediction, target = ground truth
    for label in range(1, k):
        if not (a == label).any() or not (b == label).any():
            continue
        m = overlap(Image(a, spacing=spacing), Image(b, spacing=spacing), label=label)
        assert m["dice"] == pytest.approx(f.GetDiceCoefficient(label), abs=1e-6)
        assert m["iou"] == pytest.approx(f.GetJaccardCoefficient(label), abs=1e-6)
        assert 1 - m["recall"] == pytest.approx(f.GetFalseNegativeError(label), abs=1e-6)
        assert 1 - m["precision"] == pytest.approx(f.GetFalseDiscoveryRate(label), abs=1e-6)
        # ITK's volume similarity is signed 2(|S|-|T|)/(|S|+|T|); ours is Taha's 1 - |.|/2.
        assert m["volume_similarity"] == pytest.approx(1 - abs(f.GetVolumeSimilarity(label)) / 2, abs=1e-6)


@settings(max_examples=20, deadline=None)
@given(mask_pairs())
def test_matches_monai_confusion_metrics(pair):
    torch = pytest.importorskip("torch")
    from monai.metrics import compute_confusion_matrix_metric, compute_dice, compute_iou, get_confusion_matrix

    a, b, spacing, k = pair
    for label in range(1, k):
        pa = torch.as_tensor((a == label)[None, None].astype(np.float32))
        pb = torch.as_tensor((b == label)[None, None].astype(np.float32))
        m = overlap(a, b, label=label)
        cm = get_confusion_matrix(pa, pb, include_background=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            names = {"precision": "precision", "recall": "sensitivity", "specificity": "specificity",
                     "accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "mcc": "mcc"}
            for ours, theirs in names.items():
                ref = compute_confusion_matrix_metric(theirs, cm).item()
                if np.isnan(m[ours]):
                    continue  # MONAI returns nan or its own fill value where the ratio is undefined
                assert m[ours] == pytest.approx(ref, abs=1e-6), ours
            if m["empty"] not in ("both", "truth"):  # MONAI's ignore_empty gives nan for an empty truth; we give 0
                assert m["dice"] == pytest.approx(compute_dice(pa, pb, include_background=True).item(), abs=1e-6)
                assert m["iou"] == pytest.approx(compute_iou(pa, pb, include_background=True).item(), abs=1e-6)

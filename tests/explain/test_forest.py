"""Pixel-classifier explanations: exact tree contributions and the permutation importance of families."""
import numpy as np
import pytest

from medseg.errors import ConfigError, InputError
from medseg.explain.forest import explain_pixel_classifier, permutation_importance, tree_contributions
from medseg.features.stack import feature_rows
from medseg.image import Image
from medseg.ml import SVM, RandomForest
from medseg.ml.autocontext import add_context
from medseg.testing import disc_phantom

FEATS = dict(sigmas=(1.0, 2.0), features=("intensity", "gaussian", "gradient", "hessian"))


@pytest.mark.parametrize("autocontext", [0, 1])
def test_contributions_add_up_to_the_raw_probability_exactly(autocontext):
    img, truth = disc_phantom((40, 44), seed=0)
    rf = RandomForest(n_estimators=8, autocontext=autocontext, n_jobs=1, **FEATS).fit(img, truth)
    ex = explain_pixel_classifier(rf, img, 1, max_pixels=500, repeats=1)
    stage = img if rf.context_ is None else add_context(img, rf.context_.predict_proba(img).array, rf.context_.classes_)
    raw = rf.estimator_.predict_proba(feature_rows(stage, rf.feature_config_).T)[:, 1].reshape(img.shape)
    total = ex.bias + np.sum(list(ex.contributions.values()), axis=0)
    np.testing.assert_allclose(total, raw, atol=1e-5)
    np.testing.assert_allclose(ex.raw_probability, raw, atol=1e-5)
    want = {"intensity", "gaussian", "gradient", "hessian"} | ({"context"} if autocontext else set())
    assert set(ex.contributions) == want
    assert ex.reference == "model prediction" and ex.baseline == 1.0  # the model agrees with itself
    # inside the discs the contributions push towards the class, outside against it
    fg = truth.array > 0
    assert (total - ex.bias)[fg].mean() > 0.3 and (total - ex.bias)[~fg].mean() < 0


def test_tree_contributions_refuse_other_estimators():
    with pytest.raises(ConfigError, match="tree model"):
        tree_contributions(object(), np.zeros((2, 2)), 1)


def test_permutation_importance_ranks_the_informative_channel_above_noise():
    img, truth = disc_phantom((48, 48), seed=1)
    noise = np.random.default_rng(0).normal(size=img.shape).astype(np.float32)
    two = Image(np.stack([img.array.astype(np.float32), noise]), img.spacing)
    rf = RandomForest(n_estimators=10, autocontext=0, n_jobs=1, sigmas=(1.0,), features=("intensity", "gaussian")
                      ).fit(two, truth)
    ex = explain_pixel_classifier(rf, two, 1, reference=truth, repeats=2)
    imp = ex.importance
    assert set(imp) == {"c0_intensity", "c0_gaussian", "c1_intensity", "c1_gaussian"}
    best_signal = max(imp["c0_intensity"]["importance"], imp["c0_gaussian"]["importance"])
    worst_noise = max(imp["c1_intensity"]["importance"], imp["c1_gaussian"]["importance"])
    assert best_signal > 0.05 and best_signal > worst_noise + 0.05
    assert ex.reference == "labels" and ex.baseline > 0.9


def test_permutation_importance_of_a_constructed_table():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = X[:, 0] > 0
    imp = permutation_importance(lambda x: x[:, 0] > 0, X, y, ["signal", "noise", "noise"], repeats=3)
    assert imp["signal"]["importance"] > 0.3 and imp["noise"]["importance"] == 0.0
    assert imp["noise"]["n_features"] == 2


def test_non_tree_models_get_importance_only_and_bad_labels_are_refused():
    img, truth = disc_phantom((32, 32), seed=0)
    svm = SVM(n_components=20, sigmas=(1.0,), features=("intensity", "gaussian")).fit(img, truth)
    ex = explain_pixel_classifier(svm, img, 1, max_pixels=300, repeats=1)
    assert ex.contributions is None and set(ex.importance) == {"intensity", "gaussian"}
    assert any("not a tree model" in n for n in ex.notes)
    with pytest.raises(InputError, match="classes: 0, 1"):
        explain_pixel_classifier(svm, img, 3)

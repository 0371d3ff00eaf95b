"""The machine-learning methods: pixel classifiers on feature stacks (scikit-learn).

Each is a trainable :class:`~medseg.ml.segmenter.PixelClassifier`; train with
``medseg train DATASET --method random-forest --out MODEL`` or ``fit(images, labels)``,
predict with ``medseg predict MODEL IN OUT`` or ``predict(image)``.
"""
from __future__ import annotations

from medseg.methods.base import register_method
from medseg.ml.estimators import (
    BoostingParams,
    ForestParams,
    KNNParams,
    MLPParams,
    SVMParams,
    TreeParams,
)
from medseg.ml.segmenter import PixelClassifier


__all__ = ["KNN", "MLP", "SVM", "DecisionTree", "ExtraTrees", "GradientBoosting", "RandomForest"]


@register_method
class RandomForest(PixelClassifier):
    """Random forest on per-pixel features (the ilastik classic).

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((48, 48), seed=0)
    >>> rf = RandomForest(n_estimators=10).fit(img, truth)
    >>> rf.predict(img).shape
    (48, 48)
    """

    name = "random-forest"
    summary = "random forest on multi-scale pixel features (trainable)"
    Params = ForestParams
    default_samples_per_image = 40000  # each tree fits on max_samples of them


@register_method
class ExtraTrees(PixelClassifier):
    name = "extra-trees"
    summary = "extremely randomised trees on pixel features (trainable)"
    Params = ForestParams
    default_samples_per_image = 40000  # each tree fits on max_samples of them


@register_method
class GradientBoosting(PixelClassifier):
    name = "gradient-boosting"
    summary = "histogram-based gradient boosting on pixel features (trainable)"
    Params = BoostingParams


@register_method
class SVM(PixelClassifier):
    name = "svm"
    summary = "linear SVM on a Nystroem RBF-kernel approximation, calibrated probabilities (trainable)"
    Params = SVMParams


@register_method
class DecisionTree(PixelClassifier):
    name = "decision-tree"
    summary = "single decision tree on pixel features (trainable, interpretable)"
    Params = TreeParams


@register_method
class KNN(PixelClassifier):
    name = "knn"
    summary = "k-nearest-neighbour vote on standardised pixel features (trainable)"
    Params = KNNParams


@register_method
class MLP(PixelClassifier):
    name = "mlp"
    summary = "multi-layer perceptron on standardised pixel features (trainable)"
    Params = MLPParams

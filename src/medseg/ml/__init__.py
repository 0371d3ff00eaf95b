"""Pixel classifiers on feature stacks: the ML methods, their training and prediction,
safe persistence and the interactive scribble path.

Layout: :mod:`~medseg.ml.classifiers` (one class per method, each with its ``Params`` and
``build_estimator``; :data:`ML_METHODS`), :mod:`~medseg.ml.segmenter` (their base,
:class:`PixelClassifier`), :mod:`~medseg.ml.fitting` (one stage), :mod:`~medseg.ml.autocontext`
(the chain of stages), :mod:`~medseg.ml.prediction`, :mod:`~medseg.ml.sampling` (training
pixels), :mod:`~medseg.ml.estimators` (shared options, scikit-learn plumbing),
:mod:`~medseg.ml.persist` (model folders) and :mod:`~medseg.ml.interactive`
(:func:`fit_predict_scribbles`). :mod:`medseg.methods.ml` registers the methods.
"""
from medseg.ml.classifiers import (
    KNN,
    ML_METHODS,
    MLP,
    SVM,
    DecisionTree,
    ExtraTrees,
    GradientBoosting,
    RandomForest,
)
from medseg.ml.estimators import TRUSTED_TYPES, FeatureParams, TrainParams
from medseg.ml.interactive import fit_predict_scribbles
from medseg.ml.segmenter import PixelClassifier

__all__ = ["KNN", "ML_METHODS", "MLP", "SVM", "TRUSTED_TYPES", "DecisionTree", "ExtraTrees", "FeatureParams",
           "GradientBoosting", "PixelClassifier", "RandomForest", "TrainParams", "fit_predict_scribbles"]

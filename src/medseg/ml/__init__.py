"""Pixel classifiers on feature stacks: the ML methods, their training and prediction,
safe persistence and the interactive scribble path.

Layout: [`classifiers`][medseg.ml.classifiers] (one class per method, each with its ``Params`` and
``build_estimator``; `ML_METHODS`), `segmenter` (their base,
`PixelClassifier`), [`fitting`][medseg.ml.fitting] (one stage), [`autocontext`][medseg.ml.autocontext]
(the chain of stages), [`prediction`][medseg.ml.prediction], [`sampling`][medseg.ml.sampling] (training
pixels), [`estimators`][medseg.ml.estimators] (shared options, scikit-learn plumbing),
[`persist`][medseg.ml.persist] (model folders) and `interactive`
(`fit_predict_scribbles`). `medseg.methods.ml` registers the methods.
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

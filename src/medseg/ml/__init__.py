"""Pixel classifiers on feature stacks: sampling, estimators, safe persistence.

The registered methods live in :mod:`medseg.methods.ml`; :func:`fit_predict_scribbles`
is the interactive (web app) path.
"""
from medseg.ml.estimators import ESTIMATORS, TRUSTED_TYPES, TrainParams
from medseg.ml.interactive import fit_predict_scribbles
from medseg.ml.segmenter import PixelClassifier

__all__ = ["ESTIMATORS", "TRUSTED_TYPES", "PixelClassifier", "TrainParams", "fit_predict_scribbles"]

"""Inference: sliding-window prediction with Gaussian weighting, mirroring TTA, fold
ensembling and post-processing, returning results on the input's grid."""
from medseg.infer.predictor import Predictor, keep_largest_component, postprocess

__all__ = ["Predictor", "keep_largest_component", "postprocess"]

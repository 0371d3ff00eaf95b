"""Inference: sliding-window prediction with Gaussian weighting, mirroring TTA, fold
ensembling, returning results on the input's grid ([`Predictor`][medseg.infer.predictor.Predictor]);
the choice of inference settings on validation cases for training
([`PredictorValidator`][medseg.infer.validation.PredictorValidator]); ONNX export.

Modules: `windows` (window layout), [`onednn`][medseg.infer.onednn]
(single 3D windows on the CPU), [`tiered`][medseg.infer.tiered] (``torch.compile`` once it
pays), [`onnx_runtime`][medseg.infer.onnx_runtime] (the ONNX Runtime backend),
[`predictor`][medseg.infer.predictor], `validation`, [`export`][medseg.infer.export].
Post-processing rules are applied with [`medseg.postprocess.apply_rules`][].
"""
from medseg.infer.export import export_onnx
from medseg.infer.predictor import Predictor
from medseg.infer.validation import WINDOW_TOLERANCE, PredictorValidator, select_postprocessing
from medseg.infer.windows import window_overlaps

__all__ = ["Predictor", "PredictorValidator", "WINDOW_TOLERANCE", "select_postprocessing", "window_overlaps",
           "export_onnx"]

"""Inference: sliding-window prediction with Gaussian weighting, mirroring TTA, fold
ensembling, returning results on the input's grid (:class:`~medseg.infer.predictor.Predictor`);
the choice of inference settings on validation cases for training
(:class:`~medseg.infer.validation.PredictorValidator`); ONNX export.

Modules: :mod:`~medseg.infer.windows` (window layout), :mod:`~medseg.infer.onednn`
(single 3D windows on the CPU), :mod:`~medseg.infer.tiered` (``torch.compile`` once it
pays), :mod:`~medseg.infer.onnx_runtime` (the ONNX Runtime backend),
:mod:`~medseg.infer.predictor`, :mod:`~medseg.infer.validation`, :mod:`~medseg.infer.export`.
Post-processing rules are applied with :func:`medseg.postprocess.apply_rules`.
"""
from medseg.infer.export import export_onnx
from medseg.infer.predictor import Predictor
from medseg.infer.validation import WINDOW_TOLERANCE, PredictorValidator, select_postprocessing
from medseg.infer.windows import window_overlaps

__all__ = ["Predictor", "PredictorValidator", "WINDOW_TOLERANCE", "select_postprocessing", "window_overlaps",
           "export_onnx"]

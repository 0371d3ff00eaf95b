"""Explanations of trained models: saliency maps of networks, feature contributions and
importance of pixel classifiers, and the figures that show them.

[`network`][medseg.explain.network] (Grad-CAM, occlusion, integrated gradients for ``unet``
models), [`forest`][medseg.explain.forest] (exact tree-path contributions, permutation
importance of feature families), [`figure`][medseg.explain.figure] (overlay figures) and
[`api`][medseg.explain.api] (`explain_model` for a model folder, `write_explanation`;
``medseg explain`` and ``medseg evaluate --explain``).

The package sits above [`medseg.methods`][] (it loads model folders through
[`medseg.methods.base.load_model`][], then reaches the predictor of a network or the
estimator of a pixel classifier) and below the CLI. Torch is imported only when a network
is explained.
"""
from medseg.explain.api import Explanation, explain_model, write_explanation

__all__ = ["Explanation", "explain_model", "write_explanation"]

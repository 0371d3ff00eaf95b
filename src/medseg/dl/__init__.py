"""What deep-learning training and inference share: the :class:`~medseg.dl.plan.Plan`, the
plan's preprocessing of an image, the network of a plan, checkpoints, devices, fold
selection and the :class:`~medseg.dl.validation.Validator` protocol through which training
uses inference without importing it.

Modules: :mod:`~medseg.dl.plan`, :mod:`~medseg.dl.preprocessing`, :mod:`~medseg.dl.folds`
and :mod:`~medseg.dl.validation` need no torch (their names are re-exported here);
:mod:`~medseg.dl.network`, :mod:`~medseg.dl.checkpoint` and :mod:`~medseg.dl.device` import
torch and are imported by name.
"""
from medseg.dl.folds import parse_folds
from medseg.dl.plan import Plan, plan_from_dict
from medseg.dl.preprocessing import normalise, preprocess
from medseg.dl.validation import InferenceChoice, Validator

__all__ = ["Plan", "plan_from_dict", "preprocess", "normalise", "parse_folds", "Validator", "InferenceChoice"]

"""What deep-learning training and inference share: the [`Plan`][medseg.dl.plan.Plan], the
plan's preprocessing of an image, the network of a plan, checkpoints, devices, fold
selection and the [`Validator`][medseg.dl.validation.Validator] protocol through which training
uses inference without importing it.

Modules: [`plan`][medseg.dl.plan], [`preprocessing`][medseg.dl.preprocessing], `folds`
and [`validation`][medseg.dl.validation] need no torch (their names are re-exported here);
[`network`][medseg.dl.network], [`checkpoint`][medseg.dl.checkpoint] and [`device`][medseg.dl.device] import
torch and are imported by name.
"""
from medseg.dl.folds import parse_folds
from medseg.dl.plan import Plan, plan_from_dict
from medseg.dl.preprocessing import normalise, preprocess
from medseg.dl.validation import InferenceChoice, Validator

__all__ = ["Plan", "plan_from_dict", "preprocess", "normalise", "parse_folds", "Validator", "InferenceChoice"]

"""Deep-learning training: fingerprint -> plan ([`planner`][medseg.train.planner]), prepared cases,
patch sampling and augmentation ([`data`][medseg.train.data]), losses, the training loop
with exact resume ([`loop`][medseg.train.loop]) and k-fold orchestration
([`medseg.train.engine.train_model`][]).

Training never imports [`medseg.infer`][]: what it shares with inference lives in
[`medseg.dl`][], and validation predicts through the
[`Validator`][medseg.dl.validation.Validator] it is given. ``medseg train --method unet`` (and
[`medseg.methods.dl.train_unet`][]) wire the two together. The modules that need torch
(``engine``, ``loop``, ``losses``) are imported by name.
"""
from medseg.train.config import TrainConfig
from medseg.train.planner import augmentation_strength, make_plan

__all__ = ["TrainConfig", "make_plan", "augmentation_strength"]

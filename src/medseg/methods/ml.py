"""Register the machine-learning methods ([`medseg.ml.classifiers`][]) in
[`METHODS`][medseg.methods.base.METHODS]. The classes live in [`medseg.ml`][]."""
from __future__ import annotations

from medseg.methods.base import register_method
from medseg.ml import ML_METHODS

for _cls in ML_METHODS:
    register_method(_cls)

__all__: list[str] = []

"""Register every classical method (see [`medseg.classical`][], ``threshold`` included)
in [`METHODS`][medseg.methods.base.METHODS].

The registry loader imports this module.
"""
from __future__ import annotations

from medseg.classical import CLASSICAL_METHODS
from medseg.methods.base import register_method

for _cls in CLASSICAL_METHODS:
    register_method(_cls)

__all__: list[str] = []

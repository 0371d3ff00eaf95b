"""Segmentation methods behind one contract (see [`medseg.methods.base`][])."""
from medseg.methods.base import METHODS, Segmenter, check_input, get_method, load_model, register_method, segment

__all__ = ["METHODS", "Segmenter", "register_method", "segment", "get_method", "check_input", "load_model"]

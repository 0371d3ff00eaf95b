"""The method registry: every ``--method`` name maps to a [`Segmenter`][medseg.contract.Segmenter].

The contract itself (what a method is) lives in [`medseg.contract`][]; this module only
registers methods, looks them up (with a "did you mean" for unknown names), runs one on an
image (`segment`) and loads trained model folders (`load_model`).
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from medseg.contract import Segmenter, check_input, read_model_info
from medseg.errors import ConfigError, ModelError
from medseg.image import Image
from medseg.registry import Registry
from medseg.roi import needs_roi

__all__ = ["METHODS", "register_method", "segment", "get_method", "load_model", "model_method"]

log = logging.getLogger(__name__)

METHODS: Registry[type[Segmenter]] = Registry("method")
"""Every registered method class, by its ``--method`` name."""

_BUILTIN = ("medseg.methods.classical", "medseg.methods.ml", "medseg.methods.dl")


def register_method(cls: type[Segmenter]) -> type[Segmenter]:
    """Class decorator: add ``cls`` to `METHODS` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    return METHODS.register(cls.name)(cls)


def get_method(name: str) -> type[Segmenter]:
    """The method class registered as ``name``.

    Raises
    ------
    ConfigError
        Unknown name (the message names the nearest registered one).

    Examples
    --------
    >>> get_method("otsu").family
    'classical'
    """
    return METHODS.get(name)


def segment(image: Image | np.ndarray, method: str = "otsu", **params: Any) -> Image:
    """Segment ``image`` with the named method.

    Parameters
    ----------
    image : Image or ndarray
        Shape ``([C,] Y, X)`` or ``([C,] Z, Y, X)``; an array gets unit spacing.
    method : str
        A name of `METHODS` (``medseg methods`` lists them).
    **params
        The method's parameters (its ``Params`` fields).

    Returns
    -------
    Image
        Integer label map on the input's grid (channel axis dropped).

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom(seed=0)
    >>> labels = segment(img, "threshold", value=0.5)
    >>> labels.shape == img.shape
    True
    """
    cls = get_method(method)
    seg = cls(**params)
    if not isinstance(image, Image):
        image = check_input(image, cls)  # arrays become Images; methods validate Images themselves
    return seg(image)


def _builtin_loader() -> None:
    for mod in _BUILTIN:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a dependency of an existing module is missing: say so
                log.warning("methods in %s unavailable: %s", mod, exc)


METHODS.add_loader(_builtin_loader)


def model_method(directory: str | Path) -> type[Segmenter]:
    """The trainable method class that wrote the model folder ``directory``."""
    info = read_model_info(directory)
    name = info.get("method")
    try:
        cls = get_method(str(name))
    except ConfigError as exc:
        raise ModelError(f"{directory}: {exc}") from None
    if not cls.trainable:
        raise ModelError(f"{directory}: method '{name}' is not trainable")
    return cls


def load_model(directory: str | Path, params: Any = None) -> Segmenter:
    """Load a trained model folder written by any trainable method.

    ``params`` (a dict or the method's ``Params``) sets prediction options for methods whose
    models take them (e.g. ``unet``: ``tta``, ``overlap``, ``use_folds``, ``device``); the
    other methods' parameters are fixed by training and refuse them.
    """
    cls = model_method(directory)
    if needs_roi(read_model_info(directory)):
        log.warning("model %s never learnt the outside of its training ROIs: apply an ROI to what it predicts "
                    "(medseg.roi.apply_roi, or medseg predict --roi)", directory)
    return cls.load(Path(directory), params)  # type: ignore[attr-defined]

"""Resolve a segmenter from a name and its options: a method, a recipe or a trained model.

What ``medseg segment --method/--recipe/--model`` and ``medseg predict`` choose from, for
the command line and the web app alike. Options come as command-line tokens
(``--name value``, resolved by [`medseg.config.params_from_tokens`][]).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medseg.config import params_from_tokens
from medseg.contract import Segmenter, read_model_info
from medseg.errors import ConfigError, InputError, MedsegError
from medseg.methods.base import METHODS, get_method, load_model, model_method
from medseg.recipes import RecipeSegmenter, get_recipe
from medseg.roi import needs_roi

log = logging.getLogger(__name__)

__all__ = ["default_method", "method_segmenter", "model_segmenter", "resolve_segmenter"]


def default_method() -> str:
    """The method used when none is named: ``otsu`` when available, else ``threshold``.

    Returns
    -------
    str

    Examples
    --------
    >>> default_method()
    'otsu'
    """
    return "otsu" if "otsu" in METHODS else "threshold"


def method_segmenter(name: str, tokens: Sequence[str] = ()) -> Segmenter:
    """A ready-to-run method: its class built with parameters from ``--name value`` tokens.

    Parameters
    ----------
    name : str
        A name of [`medseg.methods.METHODS`][].
    tokens : sequence of str
        The method's parameters as flags (``["--value", "0.5"]``).

    Returns
    -------
    Segmenter

    Raises
    ------
    ConfigError
        Unknown method or parameter (with the nearest valid one), or a method that must be
        trained first (the message says how).

    Examples
    --------
    >>> seg = method_segmenter("threshold", ["--value", "0.5"])
    >>> seg.params.value
    0.5
    """
    cls = get_method(name)
    if cls.trainable and not getattr(cls, "zero_shot", False):
        raise ConfigError(f"method '{name}' must be trained first: medseg train DATASET --method {name} "
                          "--out MODEL_DIR, then medseg segment IN OUT --model MODEL_DIR")
    params: Any
    params, _ = params_from_tokens(cls.Params, tokens, what=f"method '{name}'")
    return cls(params)


def require_roi(model_dir: str | Path, roi: str | Path | None) -> None:
    """Refuse to predict without an ROI with a model that never learnt the outside of its ROIs.

    Parameters
    ----------
    model_dir : str or Path
        A model folder written by ``medseg train``.
    roi : str or Path, optional
        The ROI given for prediction.

    Raises
    ------
    InputError
        The model needs an ROI (``model.json``'s ``roi.needs_roi``) and ``roi`` is None.
    """
    if roi is None and needs_roi(read_model_info(model_dir)):
        raise InputError(f"model {model_dir} was trained inside regions of interest whose outside it never learnt "
                         "(the training labels outside them are not all background), so its output outside an "
                         "ROI means nothing: give --roi FILE|FOLDER (the masks of the regions to segment)")


def model_segmenter(model_dir: str | Path, tokens: Sequence[str] = ()) -> Segmenter:
    """A trained model folder, loaded with prediction options given as ``--name value`` tokens.

    For example ``unet``'s ``--no-tta``, ``--overlap 0.25``, ``--use-folds 0,2``; see
    ``medseg methods NAME``.

    Parameters
    ----------
    model_dir : str or Path
        A model folder written by ``medseg train``.
    tokens : sequence of str
        The method's prediction options.

    Returns
    -------
    Segmenter

    Raises
    ------
    ModelError
        Not a model folder.
    ConfigError
        Unknown or invalid options.
    """
    if not tokens:
        return load_model(model_dir)
    cls = model_method(model_dir)
    params: Any
    params, _ = params_from_tokens(cls.Params, tokens, what=f"method '{cls.name}'")
    return load_model(model_dir, params)


def resolve_segmenter(*, method: str | None = None, recipe: str | None = None, model: str | Path | None = None,
                      tokens: Sequence[str] = (), roi: str | Path | None = None) -> Segmenter | RecipeSegmenter:
    """The segmenter named by one of ``method``, ``recipe`` or ``model`` (default: `default_method`).

    Parameters
    ----------
    method : str, optional
        A method name; ``tokens`` are its parameters.
    recipe : str, optional
        A recipe name or JSON file; ``tokens`` override its method's parameters.
    model : str or Path, optional
        A trained model folder; ``tokens`` are its prediction options.
    tokens : sequence of str
        ``--name value`` options.
    roi : str or Path, optional
        The ROI the outputs will be restricted to (``--roi``): a model that needs one refuses
        to run without it (`require_roi`), and a method with an ``roi`` parameter of its
        own (``vesselness``) gets a mask file too, so that it restricts its own work to it.

    Returns
    -------
    Segmenter or RecipeSegmenter
        A callable ``Image -> label Image``.

    Raises
    ------
    ConfigError
        Several of ``method``, ``recipe``, ``model``; or see `method_segmenter`.
    InputError
        A model that needs an ROI and none is given.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((32, 32))
    >>> resolve_segmenter(tokens=["--min-size", "5"])(img).shape
    (32, 32)
    """
    if sum(x is not None for x in (method, recipe, model)) > 1:
        raise ConfigError("choose one of a method, a recipe or a model")
    if model is not None:
        require_roi(model, roi)
        return model_segmenter(model, tokens)
    if roi is not None and Path(roi).is_file() and any(
            "roi" in {f.name for f in dataclasses.fields(c)} for c in option_classes(method=method, recipe=recipe)):
        tokens = [*tokens, f"--roi={roi}"]
    if recipe is not None:
        return get_recipe(recipe, tokens)
    if method is None:
        method = default_method()
        log.info("no --method given: segmenting with %s (`medseg methods` lists the others)", method)
    return method_segmenter(method, tokens)


def option_classes(*, method: str | None = None, recipe: str | None = None, model: str | Path | None = None,
                   train: bool = False) -> list[type]:
    """The dataclasses whose fields are the command line's method options.

    ``medseg segment``/``predict``/``train`` give a method's options among their own
    arguments; [`medseg.config.join_option_values`][] needs these classes to keep each
    option's value with it.

    Parameters
    ----------
    method, recipe, model : optional
        What the command runs (as in `resolve_segmenter`; default: `default_method`).
    train : bool
        Include the method's ``TrainParams`` (``medseg train``).

    Returns
    -------
    list of type
        Empty when what is named cannot be resolved (the command then reports that itself).

    Examples
    --------
    >>> [c.__name__ for c in option_classes(method="unet", train=True)]
    ['UNetParams', 'TrainConfig']
    """
    try:
        if model is not None:
            cls = model_method(model)
        elif recipe is not None:
            cls = get_method(get_recipe(recipe).method.name)
        else:
            cls = get_method(method or default_method())
    except MedsegError:
        return []
    classes: list[type] = [cls.Params]
    if train and cls.TrainParams is not None:
        classes.append(cls.TrainParams)
    return classes

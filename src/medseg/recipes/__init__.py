"""Recipes: named, saved pipelines of preprocessing + method + post-processing.

Each recipe is a JSON file in this package (``<name>.json``)::

    {"name": ..., "summary": ..., "dims": [2, 3],
     "preprocess": [{"step": ..., "params": {...}}, ...],   # medseg.preprocess steps
     "method": "otsu", "params": {...},                       # any registered method
     "post": [{"fill_holes": true, ...}, ...],               # extra post-processing stages
     "notes": ...,
     "expects": {"modality": "CT", "units": "HU", "channels": [1]}}   # checked before it runs

``medseg segment IN OUT --recipe NAME [--PARAM VALUE ...]``: the flags override the
recipe's method parameters. From Python: ``get_recipe("lung-ct")(image)``. What a recipe
``expects`` (modality, channels, units, MR weighting, body region) is checked against the
image before it runs ([`medseg.recipes.expectations`][]): an evident mismatch is refused,
what cannot be checked is a warning. A single-channel image skips a recipe's ``channel``
steps (a grey photograph has no green channel to pick).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medseg.config import from_dict, params_from_tokens
from medseg.contract import Segmenter, check_input, label_like
from medseg.errors import ConfigError, InputError, suggest
from medseg.image import Image
from medseg.methods.base import get_method
from medseg.postprocess import PostParams, postprocess
from medseg.preprocess import Pipeline
from medseg.recipes.expectations import check_expectations, validate_expects
from medseg.registry import Registry

__all__ = ["RECIPES", "Recipe", "RecipeSegmenter", "get_recipe", "load_recipe", "check_expectations"]

log = logging.getLogger(__name__)

_KEYS = {"name", "summary", "dims", "preprocess", "method", "params", "post", "notes", "expects"}


@dataclass(frozen=True)
class Recipe:
    """A named pipeline: preprocessing steps, a method with parameters, post-processing.

    Parameters
    ----------
    name : str
        The recipe's name (``--recipe NAME``).
    method : str
        A registered method.
    summary : str
        One line for ``medseg methods``.
    dims : tuple of int
        The image dimensions it is made for (2, 3).
    preprocess : tuple of dict
        Preprocessing steps ``{"step": ..., "params": {...}}`` (see [`medseg.preprocess`][]).
    params : dict
        The method's parameters.
    post : tuple of dict
        Post-processing stages ([`PostParams`][medseg.postprocess.PostParams] fields).
    notes : str
        Free text: where it works, where it does not.
    expects : dict
        What the input must be, checked before the recipe runs (see
        [`medseg.recipes.expectations`][]): ``modality`` (``"CT"``, ``"MR"`` or ``"photo"``),
        ``channels`` (allowed counts, e.g. ``[1, 3]``), ``units`` (``"HU"``: air near -1000, so
        the minimum must be below -500), ``weighting`` (``"T1"``) and ``region`` (``"head"``).
    """

    name: str
    method: str
    summary: str = ""
    dims: tuple[int, ...] = (2, 3)
    preprocess: tuple[dict[str, Any], ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    post: tuple[dict[str, Any], ...] = ()
    notes: str = ""
    expects: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, what: str = "recipe") -> Recipe:
        """A recipe from its JSON object; unknown keys are errors (with a suggestion).

        Parameters
        ----------
        data : dict
            The recipe's JSON object.
        what : str
            Where it came from, for messages.

        Returns
        -------
        Recipe
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{what}: expected a JSON object")
        for k in data:
            if k not in _KEYS:
                raise ConfigError(f"{what}: unknown key '{k}'{suggest(k, _KEYS)}")
        if "name" not in data or "method" not in data:
            raise ConfigError(f"{what}: a recipe needs 'name' and 'method'")
        return cls(name=str(data["name"]), method=str(data["method"]), summary=str(data.get("summary", "")),
                   dims=tuple(int(d) for d in data.get("dims", (2, 3))),
                   preprocess=tuple(data.get("preprocess", ())), params=dict(data.get("params", {})),
                   post=tuple(data.get("post", ())), notes=str(data.get("notes", "")),
                   expects=validate_expects(data.get("expects", {}), what))

    def to_dict(self) -> dict[str, Any]:
        """The recipe as its JSON object.

        Returns
        -------
        dict
        """
        return {"name": self.name, "summary": self.summary, "dims": list(self.dims),
                "preprocess": list(self.preprocess), "method": self.method, "params": dict(self.params),
                "post": list(self.post), "notes": self.notes, "expects": dict(self.expects)}

    def describe(self) -> dict[str, Any]:
        """Name, dims, summary (what ``medseg methods`` lists) plus the full definition.

        Returns
        -------
        dict
            `to_dict` with ``family: "recipe"``.
        """
        return {**self.to_dict(), "family": "recipe"}

    def build(self, tokens: Sequence[str] = (), **overrides: Any) -> RecipeSegmenter:
        """A runnable segmenter; ``tokens`` (``--param value``) and ``overrides`` change method params.

        Parameters
        ----------
        tokens : sequence of str
            Method parameters as flags; they win over ``overrides``.
        **overrides
            Method parameters; they win over the recipe's.

        Returns
        -------
        RecipeSegmenter
        """
        return RecipeSegmenter(self, tokens, overrides)


class RecipeSegmenter:
    """Callable ``Image -> label Image`` running a `Recipe` (same grid as the input).

    Parameters
    ----------
    recipe : Recipe
    tokens : sequence of str
        Method parameters as ``--name value`` flags (they win over ``overrides``).
    overrides : dict, optional
        Method parameters (they win over the recipe's).
    """

    family = "recipe"

    def __init__(self, recipe: Recipe, tokens: Sequence[str] = (), overrides: dict[str, Any] | None = None):
        self.recipe = recipe
        self.name = recipe.name
        self.dims = recipe.dims
        self.pipeline = Pipeline.from_dict(list(recipe.preprocess), what=f"recipe '{recipe.name}'")
        #: for single-channel images: the steps without ``channel`` (nothing to choose from)
        self.grey_pipeline = Pipeline.from_dict([s for s in recipe.preprocess if s.get("step") != "channel"],
                                                what=f"recipe '{recipe.name}'")
        cls = get_method(recipe.method)
        what = f"recipe '{recipe.name}' (method '{recipe.method}')"
        base = {**recipe.params, **(overrides or {})}
        params: Any
        params, _ = params_from_tokens(cls.Params, list(tokens), what=what, base=base)
        self.method: Segmenter = cls(params)
        self.post = tuple(from_dict(PostParams, p, what=f"recipe '{recipe.name}' post-processing")
                          for p in recipe.post)

    def __repr__(self) -> str:
        return f"RecipeSegmenter({self.name}: {self.method!r})"

    def __call__(self, image: Image) -> Image:
        """Preprocess, segment and post-process ``image``.

        Parameters
        ----------
        image : Image
            ``([C,] *spatial)``, of one of the recipe's dimensions.

        Returns
        -------
        Image
            Integer label map of shape ``spatial``, same geometry; ``meta["recipe"]`` set.
        """
        image = check_input(image)
        if image.ndim not in self.dims:
            dims = " and ".join(f"{d}D" for d in self.dims)
            raise InputError(f"recipe '{self.name}' is for {dims} images; this image is {image.ndim}D {image.shape}")
        check_expectations(self.recipe, image)
        pre = (self.grey_pipeline if image.n_channels == 1 else self.pipeline)(image)
        if pre.shape != image.shape:
            raise ConfigError(f"recipe '{self.name}': its preprocessing changed the grid {image.shape} -> {pre.shape}; "
                              "recipes must keep the input grid")
        out = self.method(pre)
        labels = np.asarray(out.array)
        for p in self.post:
            labels = postprocess(labels, p, image.spacing)
        if not np.any(labels):  # a recipe that finds nothing has met an image it does not fit
            log.warning("recipe '%s' found nothing in this image (an empty label map); %s", self.name,
                        self.recipe.notes.split(". ")[0] if self.recipe.notes else "check that the image fits it")
        extra = {k: v for k, v in out.meta.items() if k not in image.meta and k not in pre.meta}
        return label_like(image, labels, **extra, recipe=self.name)


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe JSON file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    Recipe

    Raises
    ------
    ConfigError
        Missing file, invalid JSON or an invalid recipe.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"recipe file not found: {p}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: invalid JSON ({exc})") from None
    return Recipe.from_dict(data, what=str(p))


RECIPES: Registry[Recipe] = Registry("recipe")
"""Every recipe by name: the JSON recipes shipped in this package, loaded on first use."""


def _load_builtin() -> None:
    """Register the recipes shipped as JSON files in this package."""
    for f in sorted(Path(__file__).parent.glob("*.json")):
        r = load_recipe(f)
        RECIPES.register(r.name)(r)


RECIPES.add_loader(_load_builtin)


def get_recipe(name: str, extra_cli_tokens: Sequence[str] = (), **overrides: Any) -> RecipeSegmenter:
    """The runnable recipe ``name`` (``"did you mean"`` on typos); a path to a JSON file also works.

    Parameters
    ----------
    name : str
        A registered recipe, or a recipe JSON file.
    extra_cli_tokens : sequence of str
        Method parameters as ``--name value`` flags.
    **overrides
        Method parameters.

    Returns
    -------
    RecipeSegmenter

    Examples
    --------
    >>> from medseg.testing import t1_head_phantom
    >>> img, truth = t1_head_phantom(seed=0)  # a T1 head MR, 6.5 mm slices
    >>> mask = get_recipe("brain-mask")(img)
    >>> mask.shape == img.shape and int(mask.array.max())
    1
    """
    if str(name).endswith(".json") and Path(name).is_file():
        return load_recipe(name).build(extra_cli_tokens, **overrides)
    return RECIPES.get(name).build(extra_cli_tokens, **overrides)

"""The method contract: every segmentation method is a registered :class:`Segmenter`.

A method is a class with

* ``name`` (the ``--method`` word), ``family`` (``classical``, ``ml`` or ``dl``),
  ``dims`` (the spatial dimensionalities it supports) and a short ``summary``;
* ``Params``: a frozen dataclass whose fields become CLI flags (``--min-size 10``);
* ``__call__(image) -> Image``: a label map on the input's grid.

Trainable methods also set ``trainable = True`` and implement ``fit(images, labels,
rois=None)``, ``save(directory)`` and the classmethod ``load(directory)``; those trained
from a whole dataset folder by ``medseg train`` implement ``train(dataset, out_dir,
**options)`` with options from their ``TrainParams`` dataclass. Methods that can give
class probabilities implement ``predict_proba(image) -> Image`` (channel-first, one
channel per class, summing to 1).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from medseg.config import from_dict, to_dict
from medseg.errors import ConfigError, InputError, ModelError
from medseg.image import Image, require_finite
from medseg.registry import Registry

__all__ = ["Segmenter", "METHODS", "register_method", "segment", "get_method", "check_input",
           "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "single_channel", "label_like", "write_model_info",
           "read_model_info", "load_model", "model_method", "EmptyParams"]

METHODS: Registry[type[Segmenter]] = Registry("method")

MODEL_FORMAT = "medseg-model"
MODEL_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class EmptyParams:
    """A method without parameters."""


class Segmenter:
    """Base class of every method (see the module docstring for the contract)."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = "classical"
    dims: ClassVar[tuple[int, ...]] = (2, 3)
    summary: ClassVar[str] = ""
    Params: ClassVar[type] = EmptyParams
    TrainParams: ClassVar[type | None] = None
    trainable: ClassVar[bool] = False
    channels: ClassVar[str] = "any"  # "any" | "single": how multi-channel input is handled
    # Small, fast settings the registry-wide contract test uses (tests/test_contract.py):
    # constructor parameters, and keyword arguments for ``fit`` of trainable methods.
    contract_params: ClassVar[dict[str, Any]] = {}
    contract_fit: ClassVar[dict[str, Any]] = {}

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        if params is None or isinstance(params, dict) or kwargs:
            # one path for every way of passing parameters: validated, converted, unknown names refused
            base = to_dict(params) if dataclasses.is_dataclass(params) else dict(params or {})
            params = from_dict(self.Params, base, what=f"method '{self.name}'", **kwargs)
        self.params = params

    def __call__(self, image: Image) -> Image:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    # -------------------------------------------------------------- helpers for subclasses
    @classmethod
    def check(cls, image: Image) -> Image:
        return check_input(image, cls)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Name, family, dims, summary, parameters (name, type, default, help) and, for
        trainable methods, the options of ``medseg train`` (``train_params``)."""
        out = {"name": cls.name, "family": cls.family, "dims": list(cls.dims), "summary": cls.summary,
               "trainable": cls.trainable, "params": _describe_fields(cls.Params)}
        if cls.trainable and cls.TrainParams is not None:
            out["train_params"] = _describe_fields(cls.TrainParams)
        return out


def _describe_fields(dc: type) -> list[dict[str, Any]]:
    params = []
    for f in dataclasses.fields(dc):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        params.append({"name": f.name, "type": _type_str(f.type), "default": to_dict(default),
                       "help": f.metadata.get("help", "")})
    return params


def _type_str(tp: Any) -> str:
    return tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))


def register_method(cls: type[Segmenter]) -> type[Segmenter]:
    """Class decorator: add ``cls`` to :data:`METHODS` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    return METHODS.register(cls.name)(cls)


def check_input(image: Image, cls: type[Segmenter] | None = None) -> Image:
    """Validate an image for segmentation: finite values, supported dimensionality."""
    if not isinstance(image, Image):
        if isinstance(image, np.ndarray):
            image = Image(image)
        else:
            raise InputError(f"expected a medseg Image or a NumPy array, got {type(image).__name__}")
    if cls is not None and image.ndim not in cls.dims:
        dims = " and ".join(f"{d}D" for d in cls.dims)
        raise InputError(f"method '{cls.name}' supports {dims} images only; this image is {image.ndim}D {image.shape}")
    require_finite(image.array)
    return image


def single_channel(image: Image, channel: int | None = None) -> Image:
    """One channel of ``image``: ``channel`` if given, else the luminance of RGB or the mean."""
    if not image.has_channels:
        if channel not in (None, 0):
            raise InputError(f"channel {channel} requested but the image has a single channel")
        return image
    if channel is not None:
        return image.channel(channel)
    a = image.array.astype(np.float32)
    if image.meta.get("rgb") and a.shape[0] >= 3:
        grey = 0.299 * a[0] + 0.587 * a[1] + 0.114 * a[2]
    else:
        grey = a.mean(axis=0)
    return Image(grey, image.spacing, image.origin, image.direction, image.meta)


def label_like(image: Image, labels: np.ndarray, **meta: Any) -> Image:
    """A label map on ``image``'s grid (its channel axis, if any, dropped)."""
    lab = np.asarray(labels)
    if lab.shape != image.shape:
        raise InputError(f"label array shape {lab.shape} does not match the image shape {image.shape}")
    if lab.dtype == bool or lab.dtype.kind in "iu" and lab.size and lab.max() < 256 and lab.min() >= 0:
        lab = lab.astype(np.uint8, copy=False)
    return Image(lab, image.spacing, image.origin, image.direction, {**dict(image.meta), **meta})


def get_method(name: str) -> type[Segmenter]:
    _load_builtin()
    return METHODS.get(name)


def segment(image: Image | np.ndarray, method: str = "otsu", **params: Any) -> Image:
    """Segment ``image`` with the named method.

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


def _load_builtin() -> None:
    METHODS._load()


def _builtin_loader() -> None:
    import importlib
    import logging

    for mod in ("medseg.methods.threshold", "medseg.methods.classical", "medseg.methods.ml",
                "medseg.methods.dl"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:  # a dependency of an existing module is missing: say so
                logging.getLogger(__name__).warning("methods in %s unavailable: %s", mod, exc)


METHODS.add_loader(_builtin_loader)


# ---------------------------------------------------------------------- saved models
def write_model_info(directory: Path, method: str, info: dict[str, Any]) -> Path:
    from medseg import __version__
    from medseg.config import save_json

    data = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "method": method,
            "medseg_version": __version__, **info}
    return save_json(data, Path(directory) / "model.json")


def read_model_info(directory: str | Path) -> dict[str, Any]:
    d = Path(directory)
    f = d / "model.json"
    if not d.is_dir():
        raise ModelError(f"{d}: no such model folder")
    if not f.is_file():
        raise ModelError(f"{d}: not a medseg model folder (model.json is missing)")
    try:
        info = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{f}: corrupt model description ({exc})") from None
    if not isinstance(info, dict) or info.get("format") != MODEL_FORMAT:
        raise ModelError(f"{f}: not a medseg model description")
    v = info.get("format_version")
    if not isinstance(v, int) or v > MODEL_FORMAT_VERSION:
        raise ModelError(f"{f}: model format version {v} is newer than this medseg understands "
                         f"({MODEL_FORMAT_VERSION}); upgrade medseg")
    return info


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
    import inspect

    cls = model_method(directory)
    if params is None or params == {}:
        return cls.load(Path(directory))
    if "params" not in inspect.signature(cls.load).parameters:
        raise ConfigError(f"method '{cls.name}' models take no prediction options; their parameters are "
                          "fixed when they are trained")
    if isinstance(params, dict):
        params = from_dict(cls.Params, params, what=f"method '{cls.name}'")
    return cls.load(Path(directory), params)

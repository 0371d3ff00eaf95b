"""The method contract, at the bottom of medseg: what every segmentation method is and does.

Every method family (``classical``, ``ml``, ``train``/``infer``) builds on this module;
[`medseg.methods`][] only adapts and registers. A method is a subclass of
`Segmenter` with

* ``name`` (the ``--method`` word), ``family`` (``classical``, ``ml`` or ``dl``),
  ``dims`` (the spatial dimensionalities it supports) and a short ``summary``;
* ``Params``: a frozen dataclass whose fields become CLI flags (``--min-size 10``);
* ``__call__(image) -> Image``: a label map on the input's grid.

Trainable methods (``trainable = True``) also satisfy the `Trainable` protocol:
``fit(images, labels, rois=None, **options)``, ``predict_proba(image)``,
``save(directory)``, the classmethod ``load(directory, params=None)`` and
``train(dataset, out_dir, options=None)`` for ``medseg train``, with the options of their
``TrainParams`` dataclass. A trained model lives in a folder whose ``model.json`` is
written by `write_model_info` and read by `read_model_info`.

Examples
--------
>>> import numpy as np
>>> from medseg.image import Image
>>> class Positive(Segmenter):
...     name = "positive"
...     def __call__(self, image):
...         image = self.check(image)
...         return label_like(image, image.array > 0)
>>> Positive()(Image(np.array([[-1.0, 2.0]]))).array.tolist()
[[0, 1]]
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from medseg._version import __version__
from medseg.config import from_dict, save_json, to_dict
from medseg.errors import ConfigError, InputError, ModelError
from medseg.image import Image, require_finite

__all__ = ["Segmenter", "Trainable", "EmptyParams", "check_input", "single_channel", "label_like",
           "as_params", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "write_model_info", "read_model_info"]

MODEL_FORMAT = "medseg-model"
"""``format`` of every model.json medseg writes."""
MODEL_FORMAT_VERSION = 1
"""The newest model.json layout this medseg reads and writes."""


@dataclasses.dataclass(frozen=True)
class EmptyParams:
    """The ``Params`` of a method without parameters."""


class Segmenter:
    """Base class of every method (see the module docstring for the contract).

    Parameters
    ----------
    params : Params dataclass, dict or None
        The method's parameters; a dict (or keyword arguments) is validated against
        ``Params``: unknown names are refused with the nearest valid one.
    **kwargs
        Parameters by name, overriding ``params``.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "classical"
    dims: ClassVar[tuple[int, ...]] = (2, 3)
    summary: ClassVar[str] = ""
    Params: ClassVar[type] = EmptyParams
    TrainParams: ClassVar[type | None] = None
    trainable: ClassVar[bool] = False
    channels: ClassVar[str] = "any"  # "any" | "single": how multi-channel input is handled

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        self.params = as_params(type(self), params, **kwargs)

    def __call__(self, image: Image) -> Image:  # pragma: no cover - abstract
        """Segment ``image``; returns an integer label map on its grid (channel axis dropped)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    @classmethod
    def check(cls, image: Image | np.ndarray) -> Image:
        """``image`` validated for this method (see `check_input`)."""
        return check_input(image, cls)

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Name, family, dims, summary, parameters (name, type, default, help) and, for
        trainable methods, the options of ``medseg train`` (``train_params``)."""
        out = {"name": cls.name, "family": cls.family, "dims": list(cls.dims), "summary": cls.summary,
               "trainable": cls.trainable, "params": describe_fields(cls.Params)}
        if cls.trainable and cls.TrainParams is not None:
            out["train_params"] = describe_fields(cls.TrainParams)
        return out


@runtime_checkable
class Trainable(Protocol):
    """What a trainable method adds to `Segmenter` (one signature each)."""

    def fit(self, images: Sequence[Image], labels: Sequence[Image | np.ndarray],
            rois: Sequence[Image | np.ndarray | None] | None = None, **options: Any) -> Trainable:
        """Train on in-memory images and label maps (optional regions of interest)."""
        ...

    def train(self, dataset: Any, out_dir: str | Path, options: Any = None) -> Trainable:
        """Train on a [`Dataset`][medseg.io.Dataset] into the model folder ``out_dir``."""
        ...

    def predict_proba(self, image: Image) -> Image:
        """Class probabilities, channel-first (one channel per class), summing to 1."""
        ...

    def save(self, directory: str | Path) -> Path:
        """Write the trained model into the folder ``directory``; returns it."""
        ...

    @classmethod
    def load(cls, directory: str | Path, params: Any = None) -> Trainable:
        """Read a model folder; ``params`` are prediction options where the method has any."""
        ...


def as_params(cls: type[Segmenter], params: Any = None, **kwargs: Any) -> Any:
    """``cls.Params`` from a dataclass, a dict and/or keyword arguments, validated.

    Unknown names are refused with a suggestion; values are converted to the field types.
    """
    if params is not None and not isinstance(params, dict) and not kwargs:
        return params
    base = to_dict(params) if dataclasses.is_dataclass(params) else dict(params or {})
    return from_dict(cls.Params, base, what=f"method '{cls.name}'", **kwargs)


def describe_fields(dc: type) -> list[dict[str, Any]]:
    """Each field of the dataclass ``dc`` as ``{"name", "type", "default", "help"}``."""
    params = []
    for f in dataclasses.fields(dc):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        params.append({"name": f.name, "type": _type_str(f.type), "default": to_dict(default),
                       "help": f.metadata.get("help", "")})
    return params


def _type_str(tp: Any) -> str:
    return tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))


def check_input(image: Image | np.ndarray, cls: type[Segmenter] | None = None) -> Image:
    """Validate an image for segmentation: finite values and a dimensionality ``cls`` supports.

    Boolean images become 0/1 ``uint8``, half floats ``float32``, 64-bit and unsigned 32-bit
    integers ``float64`` (the rest stay as they are).

    Parameters
    ----------
    image : Image or ndarray
        An array becomes an [`Image`][medseg.image.Image] with unit spacing.
    cls : Segmenter subclass, optional
        The method whose ``dims`` the image must match.

    Returns
    -------
    Image

    Raises
    ------
    InputError
        Not an image, an unsupported dimensionality, or NaN/Inf values.

    Examples
    --------
    >>> import numpy as np
    >>> check_input(np.zeros((4, 5))).shape
    (4, 5)
    """
    if not isinstance(image, Image):
        if isinstance(image, np.ndarray):
            image = Image(image)
        else:
            raise InputError(f"expected a medseg Image or a NumPy array, got {type(image).__name__}")
    if cls is not None and image.ndim not in cls.dims:
        dims = " and ".join(f"{d}D" for d in cls.dims)
        raise InputError(f"method '{cls.name}' supports {dims} images only; this image is {image.ndim}D {image.shape}")
    require_finite(image.array)
    # dtypes the algorithms below do not all take: a boolean image is a 0/1 image, half floats
    # widen, and 64-bit and unsigned 32-bit integers become float64 (scikit-image sizes some
    # integer histograms by the dtype's range: 2**32 bins for uint32); the rest stay as they are
    if image.dtype == bool:
        image = image.with_array(image.array.astype(np.uint8))
    elif image.dtype == np.float16:
        image = image.with_array(image.array.astype(np.float32))
    elif image.dtype in (np.uint32, np.int64, np.uint64):
        image = image.with_array(image.array.astype(np.float64))
    return image


def single_channel(image: Image, channel: int | None = None) -> Image:
    """One channel of ``image``: ``channel`` if given, else the luminance of RGB or the mean.

    Parameters
    ----------
    image : Image
        Shape ``(C, *spatial)`` or ``spatial``.
    channel : int, optional
        The channel to keep.

    Returns
    -------
    Image
        Shape ``spatial``, same geometry.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg.image import Image
    >>> rgb = Image(np.ones((3, 2, 2)), spacing=(1.0, 1.0))
    >>> single_channel(rgb).shape
    (2, 2)
    """
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
    """A label map on ``image``'s grid (its channel axis, if any, dropped).

    Parameters
    ----------
    image : Image
        The reference grid, shape ``([C,] *spatial)``.
    labels : ndarray, shape ``spatial``
        Integer or boolean labels; small non-negative ones are stored as ``uint8``.
    **meta
        Added to the label map's ``meta``.

    Examples
    --------
    >>> import numpy as np
    >>> from medseg.image import Image
    >>> label_like(Image(np.zeros((2, 3))), np.ones((2, 3), bool)).array.dtype
    dtype('uint8')
    """
    lab = np.asarray(labels)
    if lab.shape != image.shape:
        raise InputError(f"label array shape {lab.shape} does not match the image shape {image.shape}")
    if lab.dtype == bool or lab.dtype.kind in "iu" and lab.size and lab.max() < 256 and lab.min() >= 0:
        lab = lab.astype(np.uint8, copy=False)
    return Image(lab, image.spacing, image.origin, image.direction, {**dict(image.meta), **meta})


# ---------------------------------------------------------------------- model folders
def write_model_info(directory: str | Path, method: str, info: dict[str, Any]) -> Path:
    """Write ``directory/model.json``: format, version, method name, medseg version and ``info``."""
    data = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "method": method,
            "medseg_version": __version__, **info}
    return save_json(data, Path(directory) / "model.json")


def read_model_info(directory: str | Path) -> dict[str, Any]:
    """The checked contents of ``directory/model.json``.

    Raises
    ------
    ModelError
        No such folder, no or a corrupt model.json, or a format newer than this medseg.
    """
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


def refuse_params(cls: type[Segmenter], params: Any) -> None:
    """For models whose parameters are fixed by training: refuse prediction options."""
    if params not in (None, {}):
        names = ", ".join(f"--{k.replace('_', '-')}" for k in params) if isinstance(params, dict) else "options"
        raise ConfigError(f"method '{cls.name}' models take no prediction options but --n-jobs ({names} given); "
                          "their other parameters are fixed when they are trained")

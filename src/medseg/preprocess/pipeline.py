"""Preprocessing pipelines: an ordered list of named steps that is a value.

A `Pipeline` is built from Python, from CLI strings (``"gaussian:sigma=1"``) or
from JSON, applied with ``pipeline(image)``, and saved/loaded as JSON::

    {"format": "medseg-preprocess", "format_version": 1,
     "steps": [{"step": "clahe", "params": {}}, {"step": "gaussian", "params": {"sigma": 1.0}}]}

Parameters are checked when the pipeline is built (unknown step or parameter -> error
naming the nearest valid one), so a saved pipeline is always runnable.
"""
from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medseg.config import parse_value, save_json, split_kv, to_dict
from medseg.errors import ConfigError, MedsegError, suggest
from medseg.image import Image
from medseg.preprocess import filters, geometry, intensity
from medseg.registry import Registry

__all__ = ["PIPELINE_FORMAT", "STEPS", "Pipeline", "Step", "describe_steps"]

PIPELINE_FORMAT = "medseg-preprocess"
"""The ``format`` of a pipeline JSON file (`Pipeline.save` writes it, `Pipeline.load` checks it)."""
PIPELINE_FORMAT_VERSION = 1

STEPS: Registry[Callable[..., Image]] = Registry("preprocessing step")
"""Preprocessing steps by name (functions ``image, **params -> Image``)."""
for _name, _fn in {
    "minmax": intensity.minmax, "zscore": intensity.zscore, "clip": intensity.clip_percentile,
    "window": intensity.window, "equalize": intensity.equalize, "clahe": intensity.clahe,
    "gamma": intensity.gamma, "gaussian": filters.gaussian, "median": filters.median,
    "bilateral": filters.bilateral, "nlmeans": filters.nlmeans,
    "anisotropic-diffusion": filters.anisotropic_diffusion, "n4": filters.n4,
    "resample": geometry.resample, "crop": geometry.crop_foreground, "uncrop": geometry.uncrop,
    "channel": geometry.select_channel,
}.items():
    STEPS.register(_name)(_fn)


def describe_steps() -> list[dict[str, Any]]:
    """Every registered step: its name, summary, parameters (name, type, default) and the
    help of each parameter from the function's docstring (what ``medseg preprocess
    --list-steps`` prints).

    Returns
    -------
    list of dict
        ``{"name", "summary", "params": [{"name", "type", "default", "help"}]}``.

    Examples
    --------
    >>> clip = next(s for s in describe_steps() if s["name"] == "clip")
    >>> [p["name"] for p in clip["params"]], clip["params"][0]["help"]
    (['lower', 'upper'], 'Percentiles, ``0 <= lower < upper <= 100``.')
    """
    out = []
    for name in STEPS.names():
        fn = STEPS.get(name)
        doc = inspect.getdoc(fn) or ""
        helps = _param_help(doc)
        params = [{"name": k, "type": getattr(tp, "__name__", str(tp)).replace("typing.", ""),
                   "default": default, "help": helps.get(k, "")} for k, (tp, default) in _signature(fn).items()]
        out.append({"name": name, "summary": doc.split("\n", 1)[0], "params": params})
    return out


def _param_help(doc: str) -> dict[str, str]:
    """``{parameter: its description}`` from a numpydoc Parameters section."""
    lines = doc.splitlines()
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Parameters") + 2
    except StopIteration:
        return {}
    helps: dict[str, str] = {}
    names: list[str] = []
    for ln in lines[start:]:
        if ln.strip() in ("Returns", "Raises", "Examples", "Notes", "See Also", "Yields"):
            break
        if ln and not ln.startswith(" "):
            names = [n.strip() for n in ln.split(":", 1)[0].split(",")]
        elif ln.strip() and names:
            for n in names:
                helps[n] = (helps.get(n, "") + " " + ln.strip()).strip()
    return helps


def _signature(fn: Callable) -> dict[str, tuple[Any, Any]]:
    """``{name: (type, default)}`` of ``fn``'s keyword-only parameters."""
    hints = typing.get_type_hints(fn)
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind == inspect.Parameter.KEYWORD_ONLY:
            out[name] = (hints.get(name, str), p.default)
    return out


def _convert(value: Any, tp: Any, name: str) -> Any:
    """``value`` converted to ``tp``; for a union of several types, the first simple type that fits."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) > 1:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        for a in args:  # the first simple type that accepts the value
            if a in (int, float, bool):
                try:
                    return parse_value(value, a, name)
                except ConfigError:
                    continue
        return value
    return parse_value(value, tp, name)


@dataclass(frozen=True)
class Step:
    """One named step with validated parameters.

    Parameters
    ----------
    name : str
        A name of `STEPS`.
    params : mapping
        Keyword parameters of the step's function; converted to its annotated types.

    Raises
    ------
    ConfigError
        Unknown step or parameter (with the nearest valid one), or an invalid value.

    Examples
    --------
    >>> Step("gaussian", {"sigma": "2"}).params
    {'sigma': 2.0}
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        fn = STEPS.get(self.name)
        sig = _signature(fn)
        conv = {}
        for key, val in dict(self.params).items():
            k = str(key).replace("-", "_")
            if k not in sig:
                raise ConfigError(f"unknown parameter '{key}' for preprocessing step '{self.name}'"
                                  f"{suggest(k, sig)}; valid: {', '.join(sig) or 'none'}")
            conv[k] = _convert(val, sig[k][0], k)
        object.__setattr__(self, "params", conv)

    @classmethod
    def parse(cls, text: str) -> Step:
        """A step from its spec ``NAME[:key=value,...]``.

        Parameters
        ----------
        text : str
            ``"gaussian:sigma=1"``.

        Returns
        -------
        Step
            ``Step("gaussian", {"sigma": 1.0})``.
        """
        name, params = split_kv(text)
        if not name:
            raise ConfigError(f"empty step in '{text}'; write NAME or NAME:key=value,...")
        return cls(name, params)

    def __call__(self, image: Image) -> Image:
        """Apply the step: an Image ``([C,] *spatial)`` in, a new Image out."""
        try:
            return STEPS.get(self.name)(image, **self.params)
        except MedsegError as exc:
            raise type(exc)(f"preprocessing step '{self.name}': {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON.

        Returns
        -------
        dict
            ``{"step": name, "params": {...}}``.
        """
        return {"step": self.name, "params": {k: to_dict(v) for k, v in self.params.items()}}


@dataclass(frozen=True)
class Pipeline:
    """An ordered sequence of preprocessing steps (a value: compare, save, load, apply).

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, _ = disc_phantom((32, 32))
    >>> p = Pipeline.parse(["clip", "gaussian:sigma=1", "minmax"])
    >>> out = p(img)
    >>> float(out.array.min()), float(out.array.max())
    (0.0, 1.0)
    >>> Pipeline.from_dict(p.to_dict()) == p
    True
    """

    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        steps = tuple(s if isinstance(s, Step) else Step.parse(s) if isinstance(s, str) else
                      Step(s["step"], s.get("params", {})) for s in self.steps)
        object.__setattr__(self, "steps", steps)

    @classmethod
    def parse(cls, texts: Iterable[str]) -> Pipeline:
        """A pipeline from step specs (``["clahe", "gaussian:sigma=1"]``), in order.

        Parameters
        ----------
        texts : iterable of str

        Returns
        -------
        Pipeline
        """
        return cls(tuple(Step.parse(t) for t in texts))

    def __call__(self, image: Image) -> Image:
        """Apply the steps in order: an Image ``([C,] *spatial)`` in, a new Image out."""
        for step in self.steps:
            image = step(image)
        return image

    def __len__(self) -> int:
        return len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        """The pipeline as JSON.

        Returns
        -------
        dict
            ``{"format": ..., "format_version": ..., "steps": [...]}``.
        """
        return {"format": PIPELINE_FORMAT, "format_version": PIPELINE_FORMAT_VERSION,
                "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Sequence[Any], *, what: str = "pipeline") -> Pipeline:
        """A pipeline from its JSON object, or from a list of steps (specs or objects).

        Parameters
        ----------
        data : mapping or sequence
            ``{"format": ..., "format_version": 1, "steps": [...]}`` or just the steps.
        what : str
            Where it came from, for messages.

        Returns
        -------
        Pipeline

        Raises
        ------
        ConfigError
            Another format, a newer version, unknown keys or an invalid step.
        """
        if isinstance(data, Mapping):
            fmt = data.get("format", PIPELINE_FORMAT)
            if fmt != PIPELINE_FORMAT:
                raise ConfigError(f"{what}: not a medseg preprocessing pipeline (format '{fmt}')")
            v = data.get("format_version", 1)
            if not isinstance(v, int) or v > PIPELINE_FORMAT_VERSION:
                raise ConfigError(f"{what}: pipeline format version {v} is newer than this medseg understands")
            unknown = set(data) - {"format", "format_version", "steps"}
            if unknown:
                raise ConfigError(f"{what}: unknown key(s) {sorted(unknown)}; expected format, format_version, steps")
            data = data.get("steps", [])
        steps = []
        for i, s in enumerate(data):
            if isinstance(s, str):
                steps.append(Step.parse(s))
            elif isinstance(s, Mapping) and "step" in s and set(s) <= {"step", "params"}:
                steps.append(Step(str(s["step"]), dict(s.get("params") or {})))
            else:
                raise ConfigError(f"{what}: step {i + 1} must be \"name:key=value\" or "
                                  f"{{\"step\": ..., \"params\": {{...}}}}")
        return cls(tuple(steps))

    def save(self, path: str | Path) -> Path:
        """Write the pipeline as JSON (atomically).

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        Path
            ``path``.
        """
        return save_json(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> Pipeline:
        """Read a pipeline JSON file (see `save`).

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        Pipeline

        Raises
        ------
        ConfigError
            Missing file, invalid JSON or an invalid pipeline.
        """
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"pipeline file not found: {p}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: invalid JSON ({exc})") from None
        return cls.from_dict(data, what=str(p))

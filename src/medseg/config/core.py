"""Frozen dataclasses from dicts, JSON/YAML files and strings, and back; unknown keys are
refused with a suggestion (see [`medseg.config`][])."""
from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from medseg.errors import ConfigError, require, suggest
from medseg.io.atomic import atomic_write_text

C = TypeVar("C")

__all__ = ["from_dict", "to_dict", "load_config", "save_json", "parse_value", "field_type", "fields_of",
           "strip_optional"]


def fields_of(cls: Any) -> tuple[dataclasses.Field, ...]:
    """The fields of dataclass ``cls``."""
    return dataclasses.fields(cls)


@functools.lru_cache(maxsize=512)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_type(cls: type, f: dataclasses.Field) -> Any:
    """The resolved type annotation of field ``f`` of dataclass ``cls``.

    Parameters
    ----------
    cls : type
        A dataclass.
    f : dataclasses.Field
        One of its fields.

    Returns
    -------
    type
        The annotation with string (postponed) annotations resolved.
    """
    return _hints(cls).get(f.name, f.type)


def strip_optional(tp: Any) -> tuple[Any, bool]:
    """``(T, True)`` for ``T | None`` (``Optional[T]``), else ``(tp, False)``.

    Examples
    --------
    >>> strip_optional(int | None)
    (<class 'int'>, True)
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def parse_value(text: Any, tp: Any, name: str) -> Any:
    """Convert ``text`` (a CLI string or a JSON value) to the annotated type ``tp``.

    Parameters
    ----------
    text : Any
        A command-line string or a JSON value.
    tp : type
        ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``, ``tuple``/``list`` of
        those (comma-separated in a string), ``dict`` (JSON in a string), or ``X | None``.
    name : str
        The parameter's name, for messages.

    Returns
    -------
    Any
        The converted value.

    Raises
    ------
    ConfigError
        A value that does not fit the type (with the valid choices for a ``Literal``).

    Examples
    --------
    >>> parse_value("0.5,1,2", tuple[float, ...], "sigmas"), parse_value("off", bool, "tta")
    ((0.5, 1.0, 2.0), False)
    """
    base, optional = strip_optional(tp)
    if optional and (text is None or (isinstance(text, str) and text.lower() in ("none", "null", ""))):
        return None
    origin = typing.get_origin(base)
    try:
        if base is bool:
            if isinstance(text, bool):
                return text
            t = str(text).strip().lower()
            if t in ("1", "true", "yes", "on"):
                return True
            if t in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if base is int:
            if isinstance(text, float) and not text.is_integer():
                raise ValueError(text)
            if isinstance(text, bool):
                raise ValueError(text)
            return int(text) if not isinstance(text, str) else int(text.strip())
        if base is float:
            if isinstance(text, bool):
                raise ValueError(text)
            return float(text)
        if base is str:
            return str(text)
        if origin is typing.Literal:
            choices = typing.get_args(base)
            for c in choices:
                if str(c) == str(text):
                    return c
            raise ConfigError(
                f"invalid value {text!r} for '{name}'{suggest(str(text), map(str, choices))}; "
                f"choose one of: {', '.join(map(str, choices))}"
            )
        if origin in (tuple, list):
            args = typing.get_args(base)
            items = text
            if isinstance(text, str):
                items = [t for t in text.replace(";", ",").split(",") if t.strip() != ""]
            if not isinstance(items, (list, tuple)):
                items = [items]
            if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
                return tuple(parse_value(i, args[0], name) for i in items)
            if origin is tuple and args:
                if len(items) != len(args):
                    raise ValueError(text)
                return tuple(parse_value(i, a, name) for i, a in zip(items, args))
            sub = args[0] if args else str
            out = [parse_value(i, sub, name) for i in items]
            return tuple(out) if origin is tuple else out
        if origin is dict or base is dict:
            if isinstance(text, str):
                text = json.loads(text)
            if not isinstance(text, dict):
                raise ValueError(text)
            return dict(text)
    except ConfigError:
        raise
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ConfigError(f"invalid value {text!r} for '{name}': expected {_type_name(base)}") from None
    return text


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(tp)))
    if typing.get_origin(tp) in (tuple, list):
        return "a comma-separated list"
    return getattr(tp, "__name__", str(tp))


def from_dict(cls: type[C], values: Mapping[str, Any] | None = None, *, what: str | None = None, **overrides: Any) -> C:
    """Build dataclass ``cls`` from ``values`` then ``overrides``; unknown keys are errors.

    Keys may use ``-`` or ``_``. Values are validated and converted to the field types.

    Parameters
    ----------
    cls : type
        A dataclass.
    values : mapping, optional
        Field values (e.g. from a configuration file).
    what : str, optional
        What ``cls`` configures, for messages (default: its class name).
    **overrides
        Field values that win over ``values``.

    Returns
    -------
    instance of ``cls``

    Raises
    ------
    ConfigError
        Unknown key (with the nearest valid one), a value of the wrong type, or one the
        dataclass refuses.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class P:
    ...     sigma: float = 1.0
    ...     mode: str = "reflect"
    >>> from_dict(P, {"sigma": "2"}, mode="nearest")
    P(sigma=2.0, mode='nearest')
    """
    names = {f.name: f for f in fields_of(cls)}
    merged: dict[str, Any] = {}
    for source in (values or {}, overrides):
        for key, val in source.items():
            k = str(key).replace("-", "_")
            if k not in names:
                label = what or cls.__name__
                valid = ", ".join(sorted(names)) or "none"
                raise ConfigError(f"unknown parameter '{key}' for {label}{suggest(k, names)}; valid: {valid}")
            merged[k] = parse_value(val, field_type(cls, names[k]), k)
    try:
        return cls(**merged)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid configuration for {what or cls.__name__}: {exc}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a dataclass (tuples become lists).

    Parameters
    ----------
    obj : Any
        A dataclass instance (nested dataclasses, sequences, mappings, paths and NumPy
        scalars are converted too).

    Returns
    -------
    dict
    """
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        if hasattr(v, "item") and callable(v.item):
            return v.item()
        return v

    return conv(obj)


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a JSON (or YAML, when PyYAML is installed) mapping.

    Parameters
    ----------
    path : str or Path
        ``.json``, or ``.yaml``/``.yml``.

    Returns
    -------
    dict
        The mapping; a missing file, invalid JSON/YAML or a non-mapping is a `ConfigError`.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"configuration file not found: {p}")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        yaml = require("yaml", purpose="YAML configuration files")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
    return data


def save_json(data: Any, path: str | Path) -> Path:
    """Write ``data`` as indented JSON atomically.

    Parameters
    ----------
    data : Any
        A dataclass instance (converted with `to_dict`) or JSON-serialisable data
        (NumPy arrays and paths allowed).
    path : str or Path

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> p = save_json({"sigma": 1.0}, Path(tempfile.mkdtemp()) / "params.json")
    >>> load_config(p)
    {'sigma': 1.0}
    """
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = to_dict(data)
    return atomic_write_text(Path(path), json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ---------------------------------------------------------------------- command-line tokens

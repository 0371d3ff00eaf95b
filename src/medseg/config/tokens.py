"""Command-line tokens into configuration: ``--name value``, ``--flag``/``--no-flag``,
``key=value`` step specs, and one token list shared between a method's ``Params`` and its
``TrainParams`` (see [`medseg.config`][])."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from medseg.config.core import field_type, fields_of, from_dict, load_config, parse_value, strip_optional
from medseg.errors import ConfigError, suggest

C = TypeVar("C")

__all__ = ["params_from_tokens", "split_params", "split_kv", "join_option_values"]


def _bool_field(tp: Any) -> bool:
    """True for ``bool`` and ``bool | None`` annotations."""
    base, _ = strip_optional(tp)
    return base is bool


def params_from_tokens(cls: type[C], tokens: Sequence[str], *, what: str, base: Mapping[str, Any] | None = None,
                       other: Sequence[type] = ()) -> tuple[C, list[str]]:
    """Resolve ``--field value`` tokens into dataclass ``cls`` (defaults < ``base`` < tokens).

    Tokens for fields of the ``other`` dataclasses are left for them and returned; any
    other unknown flag is an error with a suggestion. Boolean fields accept ``--flag``,
    ``--no-flag`` and ``--flag true|false``; ``--name=value`` works too.

    Parameters
    ----------
    cls : type
        The dataclass to build (a method's ``Params``).
    tokens : sequence of str
        Command-line tokens.
    what : str
        What ``cls`` configures, for messages (``"method 'otsu'"``).
    base : mapping, optional
        Values from a configuration file; tokens override them.
    other : sequence of type
        Dataclasses whose flags are passed through (e.g. training options).

    Returns
    -------
    (instance of ``cls``, list of str)
        The parameters and the tokens left for ``other``.

    Raises
    ------
    ConfigError
        Unknown option (with the nearest valid one and the list), a missing or invalid value.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class P:
    ...     sigma: float = 1.0
    ...     fill_holes: bool = False
    >>> @dataclass(frozen=True)
    ... class T:
    ...     epochs: int = 10
    >>> params_from_tokens(P, ["--sigma", "2", "--fill-holes", "--epochs", "5"], what="demo", other=(T,))
    (P(sigma=2.0, fill_holes=True), ['--epochs', '5'])
    """
    fields = {f.name: f for f in fields_of(cls)}
    other_names = {f.name for o in other for f in fields_of(o)}
    values: dict[str, Any] = dict(base or {})
    rest: list[str] = []
    i = 0
    toks = list(tokens)
    while i < len(toks):
        tok = toks[i]
        if not tok.startswith("--"):
            raise ConfigError(f"unexpected argument '{tok}'")
        key, eq, val = tok[2:].partition("=")
        name = key.replace("-", "_")
        negate = False
        if name not in fields and name.startswith("no_") and name[3:] in fields:
            name, negate = name[3:], True
        if name not in fields:
            if name in other_names or (name.startswith("no_") and name[3:] in other_names):
                rest.append(tok)
                if not eq and i + 1 < len(toks) and not toks[i + 1].startswith("--"):
                    rest.append(toks[i + 1])
                    i += 1
                i += 1
                continue
            valid = sorted({n.replace("_", "-") for n in list(fields) + list(other_names)})
            raise ConfigError(f"unknown option '--{key}' for {what}{suggest(key, valid)}; "
                              f"valid: {', '.join('--' + v for v in valid) or 'none'}")
        tp = field_type(cls, fields[name])
        if _bool_field(tp) and not eq:
            if i + 1 < len(toks) and toks[i + 1].lower() in _BOOL_WORDS:
                val = toks[i + 1]
                i += 1
            else:
                val = "true"
            if negate:
                val = "false" if parse_value(val, bool, name) else "true"
        elif not eq:
            if i + 1 >= len(toks):
                raise ConfigError(f"option '--{key}' needs a value")
            val = toks[i + 1]
            i += 1
        values[name] = parse_value(val, tp, name)
        i += 1
    return from_dict(cls, values, what=what), rest


_BOOL_WORDS = ("true", "false", "yes", "no", "1", "0", "on", "off")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def join_option_values(tokens: Sequence[str], classes: Sequence[type]) -> list[str]:
    """Rewrite ``--name value`` as ``--name=value`` for the fields of ``classes``.

    A command line mixes a command's own arguments with a method's options, which the
    command's parser does not know; given apart, an option's value can be taken for an
    optional positional argument (``train --images DIR --time-budget 20`` read ``20`` as the
    dataset). Joined, the value travels with its option. Boolean fields are joined only with
    an explicit ``true``/``false`` word after them; ``--name=value`` tokens are kept.

    Parameters
    ----------
    tokens : sequence of str
        A command line (after the subcommand).
    classes : sequence of type
        Dataclasses whose fields are options (a method's ``Params``, ``TrainParams``).

    Returns
    -------
    list of str

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class T:
    ...     time_budget: float = 0.0
    ...     resume: bool = False
    >>> join_option_values(["--images", "d", "--time-budget", "20", "--resume", "out"], [T])
    ['--images', 'd', '--time-budget=20', '--resume', 'out']
    """
    types: dict[str, Any] = {}
    for cls in classes:
        for f in fields_of(cls):
            types.setdefault(f.name, field_type(cls, f))
    out: list[str] = []
    toks = list(tokens)
    i = 0
    while i < len(toks):
        tok = toks[i]
        name = tok[2:].replace("-", "_")
        if tok.startswith("--") and "=" not in tok and name in types and i + 1 < len(toks):
            nxt = toks[i + 1]
            if _bool_field(types[name]):
                takes = nxt.lower() in _BOOL_WORDS
            else:
                takes = not nxt.startswith("-") or _is_number(nxt)
            if takes:
                out.append(f"{tok}={nxt}")
                i += 2
                continue
        out.append(tok)
        i += 1
    return out


def split_params(params_cls: type[C], train_cls: type | None, tokens: Sequence[str] = (), *, name: str,
                 config: str | Path | Mapping[str, Any] | None = None) -> tuple[C, Any]:
    """Resolve one token list and one configuration between a method's ``Params`` and ``TrainParams``.

    Precedence: defaults < ``config`` < ``tokens``. A configuration key that names a
    ``Params`` field goes there; every other key goes to ``TrainParams`` (which rejects
    unknown ones with a suggestion). Tokens are resolved the same way.

    Parameters
    ----------
    params_cls : type
        The method's ``Params`` dataclass.
    train_cls : type or None
        Its ``TrainParams`` dataclass (``None``: the method takes no training options).
    tokens : sequence of str
        Command-line tokens (``--name value``).
    name : str
        The method's name, for messages.
    config : str, Path or mapping, optional
        A JSON/YAML configuration file (see `load_config`) or its mapping.

    Returns
    -------
    (instance of ``params_cls``, instance of ``train_cls`` or None)

    Raises
    ------
    ConfigError
        Unknown keys or options, invalid values.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class P:
    ...     sigma: float = 1.0
    >>> @dataclass(frozen=True)
    ... class T:
    ...     epochs: int = 10
    >>> split_params(P, T, ["--epochs", "3"], name="demo", config={"sigma": 2, "epochs": 5})
    (P(sigma=2.0), T(epochs=3))
    """
    base = load_config(config) if isinstance(config, (str, Path)) else dict(config or {})
    pnames = {f.name for f in fields_of(params_cls)}
    pbase = {k: v for k, v in base.items() if k.replace("-", "_") in pnames}
    tbase = {k: v for k, v in base.items() if k.replace("-", "_") not in pnames}
    others = (train_cls,) if train_cls is not None else ()
    params, rest = params_from_tokens(params_cls, tokens, what=f"method '{name}'", base=pbase, other=others)
    if train_cls is None:
        if tbase:
            raise ConfigError(f"unknown configuration keys for '{name}': {', '.join(tbase)}")
        return params, None
    train: Any
    train, _ = params_from_tokens(train_cls, rest, what=f"training of '{name}'", base=tbase)
    return params, train


def split_kv(text: str) -> tuple[str, dict[str, str]]:
    """Split a step spec ``NAME[:key=value,...]`` into its name and raw parameters.

    Parameters
    ----------
    text : str

    Returns
    -------
    (str, dict of str to str)
        The name and the raw values; a part that is not ``key=value`` is a `ConfigError`.

    Examples
    --------
    >>> split_kv("gaussian:sigma=1,mode=reflect")
    ('gaussian', {'sigma': '1', 'mode': 'reflect'})
    """
    name, _, rest = text.partition(":")
    params: dict[str, str] = {}
    if rest:
        for part in rest.split(","):
            if not part.strip():
                continue
            k, eq, v = part.partition("=")
            if not eq:
                raise ConfigError(f"'{part}' in '{text}' is not key=value")
            params[k.strip()] = v.strip()
    return name.strip(), params

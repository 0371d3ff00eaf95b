"""Helpers shared by the subcommands: dataclass-driven flags, dataset arguments, output."""
from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

from medseg.config import field_type, from_dict, parse_value
from medseg.errors import ConfigError, suggest

__all__ = ["add_dataset_args", "dataset_from_args", "params_from_tokens", "flag_help", "split_kv",
           "load_model_with_options"]


def add_dataset_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("dataset", nargs="?", help="dataset folder (images/ + labels/, MSD layout, or images.npy + labels.npy)")
    p.add_argument("--images", metavar="DIR", help="folder of images (instead of DATASET)")
    p.add_argument("--labels", metavar="DIR", help="folder of label maps, paired with --images by case id")
    p.add_argument("--roi", metavar="DIR", help="folder of region-of-interest masks (e.g. field of view)")


def dataset_from_args(args: argparse.Namespace, *, require_labels: bool = False):
    from medseg.io import load_dataset

    if args.dataset and args.images:
        raise ConfigError("give either DATASET or --images, not both")
    if (args.labels or args.roi) and not args.images:
        raise ConfigError("--labels and --roi need --images")
    return load_dataset(args.dataset, images=args.images, labels=args.labels, roi=args.roi,
                        require_labels=require_labels)


def _bool_field(tp: Any) -> bool:
    base = tp
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        base = args[0] if len(args) == 1 else tp
    return base is bool


def params_from_tokens(cls: type, tokens: Sequence[str], *, what: str, base: dict | None = None,
                       other: Sequence[type] = ()) -> tuple[Any, list[str]]:
    """Parse ``--field value`` tokens for dataclass ``cls``.

    Tokens for fields of ``other`` dataclasses are left for them and returned; any other
    unknown flag is an error with a suggestion. Boolean fields accept ``--flag``,
    ``--no-flag`` and ``--flag true|false``.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    other_names = {f.name for o in other for f in dataclasses.fields(o)}
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
            valid = sorted(n.replace("_", "-") for n in list(fields) + list(other_names))
            raise ConfigError(f"unknown option '--{key}' for {what}{suggest(key, valid)}; "
                              f"valid: {', '.join('--' + v for v in valid) or 'none'}")
        tp = field_type(cls, fields[name])
        if _bool_field(tp) and not eq:
            if i + 1 < len(toks) and toks[i + 1].lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
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


def flag_help(cls: type) -> str:
    """Help text listing a Params dataclass's flags."""
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        tp = field_type(cls, f)
        tname = getattr(tp, "__name__", str(tp)).replace("typing.", "")
        lines.append(f"  --{f.name.replace('_', '-'):<24} {tname:<14} default {default!r}  {f.metadata.get('help', '')}")
    return "\n".join(lines)


def split_kv(text: str) -> tuple[str, dict[str, str]]:
    """``"gaussian:sigma=1,mode=reflect"`` -> ``("gaussian", {"sigma": "1", "mode": "reflect"})``."""
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


def load_model_with_options(model_dir: str, tokens: Sequence[str]):
    """``load_model`` with prediction options given as ``--name value`` tokens (e.g. ``unet``'s
    ``--no-tta``, ``--overlap 0.25``, ``--use-folds 0,2``); see ``medseg methods NAME``."""
    from medseg.methods.base import load_model, model_method

    if not tokens:
        return load_model(model_dir)
    cls = model_method(model_dir)
    params, _ = params_from_tokens(cls.Params, tokens, what=f"method '{cls.name}'")
    return load_model(model_dir, params)

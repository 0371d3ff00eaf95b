"""Helpers shared by the subcommands: dataset arguments and flag help.

Token and configuration resolution lives in [`medseg.config`][]
([`params_from_tokens`][medseg.config.params_from_tokens], [`split_params`][medseg.config.split_params]), choosing a
method, recipe or model in [`medseg.resolve`][].
"""
from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medseg.config import field_type
from medseg.errors import ConfigError
from medseg.io import Dataset, load_dataset
from medseg.run import Engine
from medseg.run_engines import ENGINES, make_engine, run_options

__all__ = ["add_dataset_args", "add_force", "dataset_from_args", "flag_help", "add_engine_args", "engine_from_args",
           "manifest_options"]


def add_dataset_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Add ``DATASET``, ``--images/--labels/--roi`` and ``--reference`` to a subcommand's parser.

    Parameters
    ----------
    p : argparse.ArgumentParser
    required : bool
        Unused (a dataset is checked when it is opened); kept for callers that pass it.
    """
    p.add_argument("dataset", nargs="?",
                   help="dataset folder (images/ + labels/, MSD layout, or images.npy + labels.npy)")
    p.add_argument("--images", metavar="DIR", help="folder of images (instead of DATASET)")
    p.add_argument("--labels", metavar="DIR", help="folder of label maps, paired with --images by case id")
    p.add_argument("--roi", metavar="DIR", help="folder of region-of-interest masks (e.g. field of view)")
    p.add_argument("--reference", metavar="NAME", help="multimodal cases: the modality (channel name) whose grid "
                   "the others are resampled onto (default: the finest)")


def add_force(p: argparse.ArgumentParser, what: str = "outputs") -> None:
    """Add ``--force``: the one overwrite rule of every command that writes.

    Without it a command refuses, before doing any work, to replace anything it would write
    that exists already ([`medseg.io.atomic.refuse_existing`][]); with it those outputs
    are replaced, each only once its new version is complete.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    what : str
        What is replaced, for the help text.
    """
    p.add_argument("--force", "-f", action="store_true",
                   help=f"replace {what} if present (without it, an existing output stops the command before any work)")


def dataset_from_args(args: argparse.Namespace, *, require_labels: bool = False) -> Dataset:
    """Open the dataset named by the arguments of `add_dataset_args`.

    Parameters
    ----------
    args : argparse.Namespace
        With ``dataset``, ``images``, ``labels``, ``roi`` (and optionally ``reference``).
    require_labels : bool
        Refuse a dataset without labels.

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        ``DATASET`` and ``--images`` together, or ``--labels``/``--roi`` without ``--images``.
    """
    if args.dataset and args.images:
        raise ConfigError("give either DATASET or --images, not both")
    if (args.labels or args.roi) and not args.images:
        raise ConfigError("--labels and --roi need --images")
    return load_dataset(args.dataset, images=args.images, labels=args.labels, roi=args.roi,
                        require_labels=require_labels, reference=getattr(args, "reference", None))


def flag_help(cls: Any) -> str:
    """Help text listing a Params dataclass's flags, one per line.

    Parameters
    ----------
    cls : type
        A dataclass.

    Returns
    -------
    str
    """
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        tp = field_type(cls, f)
        tname = getattr(tp, "__name__", str(tp)).replace("typing.", "")
        flag = f.name.replace("_", "-")
        lines.append(f"  --{flag:<24} {tname:<14} default {default!r}  {f.metadata.get('help', '')}")
    return "\n".join(lines)


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """Add ``--engine local|ray``, ``--address`` and ``--workers`` (folder runs, [`medseg.run_engines`][]).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("--engine", choices=ENGINES, default="local", help="how the cases of a folder run: local (one "
                   "after the other, default) or ray (sharded over Ray actors; pip install 'medseg[ray]')")
    p.add_argument("--address", metavar="ADDRESS", help="--engine ray: join this Ray cluster (e.g. auto, "
                   "ray://host:10001) instead of starting a local one for the command")
    p.add_argument("--workers", metavar="N", type=int, help="--engine ray: number of actors (default: the CPUs Ray "
                   "sees, at most the number of cases)")


def engine_from_args(args: argparse.Namespace, factory: Callable[[], Any]) -> Engine:
    """The engine of `add_engine_args`'s options (checked before any work).

    Parameters
    ----------
    args : argparse.Namespace
    factory : callable
        The segmenter's picklable recipe, for the Ray actors.

    Returns
    -------
    Engine
    """
    return make_engine(args.engine, factory=factory, workers=args.workers, address=args.address)


def manifest_options(command: str, args: argparse.Namespace, tokens: Sequence[str], *,
                     method: str | None = None, model: str | Path | None = None) -> dict[str, Any]:
    """The options a folder run's ``manifest.json`` records (those that change the outputs).

    Parameters
    ----------
    command : str
    args : argparse.Namespace
    tokens : sequence of str
        The method's ``--name value`` options.
    method : str, optional
        The method actually used (when the command chose a default).
    model : str or Path, optional
        The model folder or file.

    Returns
    -------
    dict
    """
    keys = ("method", "recipe", "probabilities", "uncertainty", "roi", "series", "reference", "format")
    opts = {k: getattr(args, k) for k in keys if hasattr(args, k) and k != "model"}
    if method is not None:
        opts["method"] = method
    if opts.get("roi"):
        opts["roi"] = str(Path(opts["roi"]).resolve())
    return run_options(command, opts, tokens, model=model)

"""``medseg train DATASET --method NAME --out MODEL_DIR [--PARAM VALUE …]``."""
from __future__ import annotations

import argparse
from typing import Any, cast

from medseg import resolve
from medseg.cli.common import add_dataset_args, add_force, dataset_from_args
from medseg.config import split_params
from medseg.contract import Trainable
from medseg.errors import ConfigError
from medseg.io.atomic import refuse_existing, replacing
from medseg.methods.base import get_method

HELP = "train a trainable method (ML or deep learning) on a dataset"
DESCRIPTION = """Train a method on a dataset and write a model folder.

The method's parameters and training options are given as --name value; see
`medseg methods NAME`. Predict with `medseg predict MODEL_DIR INPUT OUTPUT`.
"""

ACCEPTS_EXTRA = True


def option_classes(args: argparse.Namespace) -> list[type]:
    """The dataclasses whose fields are this command's method options (see ``cli.main``)."""
    return resolve.option_classes(method=args.method, train=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg train``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    add_dataset_args(p)
    p.add_argument("--method", "-m", required=True, help="a trainable method (see `medseg methods`)")
    p.add_argument("--out", "-o", required=True, metavar="MODEL_DIR", help="model folder to write")
    p.add_argument("--config", metavar="FILE", help="JSON/YAML with parameters (CLI flags override it)")
    add_force(p, "the model folder (the old one is restored if training fails)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Train the method on the dataset and write the model folder.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    extra : list of str
        The method's (or model's) ``--name value`` options.

    Returns
    -------
    int
        The exit code: 0 (user errors raise a ``MedsegError``).
    """
    cls = get_method(args.method)
    if not cls.trainable:
        raise ConfigError(f"method '{args.method}' is not trainable; "
                          f"use `medseg segment IN OUT --method {args.method}`")
    params: Any
    params, topts = split_params(cls.Params, cls.TrainParams, extra, name=args.method,
                                 config=args.config or None)
    resume = bool(getattr(topts, "resume", False))
    if resume and args.force:
        raise ConfigError("give --resume (continue the run in --out) or --force (replace it), not both")
    also = "or --resume to continue an interrupted run" if hasattr(topts, "resume") else ""
    if not resume:  # refused before the dataset is even read
        refuse_existing([args.out], force=args.force, also=also)
    dataset = dataset_from_args(args, require_labels=True)
    trainer = cast(Trainable, cls(params))
    if resume:
        trainer.train(dataset, args.out, options=topts)
    else:
        with replacing(args.out, force=args.force, also=also) as out:
            trainer.train(dataset, out, options=topts)
    print(f"model written to {args.out}")
    return 0

"""``medseg train DATASET --method NAME --out MODEL_DIR [--PARAM VALUE …]``."""
from __future__ import annotations

import argparse
import os
import sys
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
    p.add_argument("--nproc", type=int, metavar="N", help="train in N processes on this machine (distributed "
                   "data parallel, as `torchrun --standalone --nproc_per_node N -m medseg train ...`; deep-learning "
                   "methods; see --distribute)")


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
    ranks = _ranks()
    if (args.nproc is not None or ranks > 1) and not hasattr(topts, "distribute"):
        raise ConfigError(f"method '{args.method}' trains in one process; --nproc and torchrun are for "
                          "deep-learning methods (e.g. --method unet)")
    also = "or --resume to continue an interrupted run" if hasattr(topts, "resume") else ""
    if args.nproc is not None and args.nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc is not None and args.nproc > 1:
        return _launch(args, resume=resume, also=also)
    if _rank() != 0:  # in a distributed run rank 0 owns the model folder; the others only train
        trainer = cast(Trainable, cls(params))
        trainer.train(dataset_from_args(args, require_labels=True), args.out, options=topts)
        return 0
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


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0")) if _ranks() > 1 else 0
    except ValueError:
        return 0


def _ranks() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _launch(args: argparse.Namespace, *, resume: bool, also: str) -> int:
    """``--nproc N``: run this same command in N processes (torch's elastic launcher)."""
    from medseg.train.distributed import launch  # deferred: imports torch

    if _ranks() > 1:
        raise ConfigError("--nproc starts processes itself; under torchrun leave it out")
    argv = _without_nproc(list(getattr(args, "argv", None) or sys.argv[1:]))
    if resume:
        code = launch(args.nproc, argv)
    else:
        refuse_existing([args.out], force=args.force, also=also)
        try:
            with replacing(args.out, force=args.force, also=also):
                code = launch(args.nproc, argv)
                if code:
                    raise _Failed(code)
        except _Failed as failed:  # the ranks printed the error; the old folder is back
            return failed.code
    return code  # rank 0 said where the model is


class _Failed(Exception):
    """A launched run failed after printing its error: restore the old folder, keep the exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

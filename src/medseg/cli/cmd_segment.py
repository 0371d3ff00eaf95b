"""``medseg segment IN OUT --method NAME [--PARAM VALUE …]`` (or ``--model DIR``)."""
from __future__ import annotations

import argparse

from medseg import resolve
from medseg.cli.common import add_force
from medseg.resolve import resolve_segmenter
from medseg.run import apply_paths

HELP = "segment a file, DICOM series or folder with any method, recipe or trained model"
DESCRIPTION = """Segment IN (an image file, a DICOM series folder or a folder of images) into OUT.

Choose one of:
  --method NAME   any method of `medseg methods` (parameters as --param value)
  --recipe NAME   a saved preprocessing + method + post-processing pipeline
  --model DIR     a model folder written by `medseg train` (its prediction options as
                  flags, e.g. unet's --no-tta or --use-folds 0,2)

Example: medseg segment scan.nii.gz mask.nii.gz --method otsu
"""

ACCEPTS_EXTRA = True


def option_classes(args: argparse.Namespace) -> list[type]:
    """The dataclasses whose fields are this command's method options (see ``cli.main``)."""
    return resolve.option_classes(method=args.method, recipe=args.recipe, model=args.model)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg segment``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--method", "-m", help="method name (default: otsu when available, else threshold)")
    g.add_argument("--recipe", "-r", help="recipe name")
    g.add_argument("--model", help="trained model folder")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to segment "
                   "(UID, series number or description)")
    p.add_argument("--roi", metavar="FILE|FOLDER", help="region-of-interest mask (or a folder of them, paired "
                   "with the inputs by name): the output is 0 and the probability maps are background outside it")
    p.add_argument("--probabilities", action="store_true", help="also write class probabilities (trainable methods)")
    add_force(p, "output files")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Segment IN into OUT; print each written path.

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
    seg = resolve_segmenter(method=args.method, recipe=args.recipe, model=args.model, tokens=extra, roi=args.roi)
    written = apply_paths(seg, args.input, args.output, output="labels", probabilities=args.probabilities,
                          series=args.series, roi=args.roi, overwrite=args.force)
    for w in written:
        print(w)
    return 0

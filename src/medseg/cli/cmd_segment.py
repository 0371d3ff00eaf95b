"""``medseg segment IN OUT --method NAME [--PARAM VALUE …]`` (or ``--model DIR``)."""
from __future__ import annotations

import argparse
from functools import partial

from medseg import resolve
from medseg.cli.common import add_engine_args, add_force, engine_from_args, manifest_options
from medseg.resolve import default_method, resolve_segmenter
from medseg.run import apply_paths, model_reference

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
    p.add_argument("--series", metavar="UID", action="append", help="DICOM folder with several series: the one "
                   "to segment (UID, series number, description or folder name); repeat it to stack several series as "
                   "the channels of one multimodal input, in order (--series T1post --series FLAIR)")
    p.add_argument("--reference", metavar="NAME", help="multimodal inputs: the modality whose grid the others are "
                   "resampled onto and the output lies on (default: the model's, else the finest)")
    p.add_argument("--roi", metavar="FILE|FOLDER", help="region-of-interest mask (or a folder of them, paired "
                   "with the inputs by name): the output is 0 and the probability maps are background outside it")
    p.add_argument("--probabilities", action="store_true", help="also write class probabilities (trainable methods)")
    p.add_argument("--format", choices=("dicom-seg",), help="write each label map as a DICOM SEG (NAME.dcm, "
                   "needs highdicom: pip install 'medseg[dicom-seg]') referencing its DICOM input series, segments "
                   "named by the model's classes; the input must be DICOM")
    add_engine_args(p)
    add_force(p, "output files (a folder run with the same options resumes without it: manifest.json)")


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
    recipe = partial(resolve_segmenter, method=args.method, recipe=args.recipe, model=args.model,
                     tokens=tuple(extra), roi=args.roi)  # what each Ray actor builds its segmenter from
    engine = engine_from_args(args, recipe)
    seg = recipe()
    method = None if args.recipe or args.model else args.method or default_method()
    written = apply_paths(seg, args.input, args.output, output="labels", probabilities=args.probabilities,
                          series=args.series, roi=args.roi, overwrite=args.force,
                          reference=args.reference or model_reference(seg),
                          label_format=args.format, engine=engine,
                          manifest=manifest_options("segment", args, extra, method=method, model=args.model))
    for w in written:
        print(w)
    return 0

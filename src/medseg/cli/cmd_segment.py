"""``medseg segment IN OUT --method NAME [--PARAM VALUE …]`` (or ``--model DIR``)."""
from __future__ import annotations

import logging

from medseg.errors import ConfigError

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
log = logging.getLogger("medseg")


def add_arguments(p) -> None:
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--method", "-m", help="method name (default: otsu when available, else threshold)")
    g.add_argument("--recipe", "-r", help="recipe name")
    g.add_argument("--model", help="trained model folder")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to segment "
                   "(UID, series number or description)")
    p.add_argument("--probabilities", action="store_true", help="also write class probabilities (trainable methods)")


def build_segmenter(args, extra):
    from medseg.cli.common import params_from_tokens
    from medseg.methods.base import METHODS, get_method

    if args.model:  # the flags are the model's prediction options (e.g. unet's --no-tta)
        from medseg.cli.common import load_model_with_options

        return load_model_with_options(args.model, extra)
    if args.recipe:
        from medseg.recipes import get_recipe

        return get_recipe(args.recipe, extra)
    name = args.method or ("otsu" if "otsu" in METHODS else "threshold")
    cls = get_method(name)
    if cls.trainable and not getattr(cls, "zero_shot", False):
        raise ConfigError(f"method '{name}' must be trained first: medseg train DATASET --method {name} --out MODEL_DIR, "
                          "then medseg segment IN OUT --model MODEL_DIR")
    params, _ = params_from_tokens(cls.Params, extra, what=f"method '{name}'")
    return cls(params)


def run(args, extra) -> int:
    from medseg.run import segment_paths

    seg = build_segmenter(args, extra)
    written = segment_paths(seg, args.input, args.output, probabilities=args.probabilities, series=args.series)
    for w in written:
        print(w)
    return 0

"""``medseg predict MODEL_DIR INPUT OUTPUT [--probabilities] [--uncertainty] [--OPTION VALUE ...]``."""
from __future__ import annotations

import argparse

from medseg import resolve
from medseg.cli.common import add_force
from medseg.resolve import model_segmenter, require_roi
from medseg.run import apply_paths

HELP = "apply a trained model folder to a file, DICOM series or folder"
DESCRIPTION = """Apply the model folder MODEL_DIR (written by `medseg train`) to INPUT: an image file, a
DICOM series folder or a folder of images. Outputs keep the input's format and geometry.

Prediction options of the model's method are flags, e.g. for unet: --no-tta, --overlap 0.25,
--use-folds 0,2, --device cpu, --window patch, --checkpoint best (`medseg methods unet`).
"""

ACCEPTS_EXTRA = True


def option_classes(args: argparse.Namespace) -> list[type]:
    """The dataclasses whose fields are this command's method options (see ``cli.main``)."""
    return resolve.option_classes(model=args.model)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg predict``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("input", metavar="INPUT")
    p.add_argument("output", metavar="OUTPUT")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to segment "
                   "(UID, series number or description)")
    p.add_argument("--roi", metavar="FILE|FOLDER", help="region-of-interest mask (or a folder of them, paired "
                   "with the inputs by name): the output is 0 and the probability maps are background outside it")
    p.add_argument("--probabilities", action="store_true", help="also write class probability maps (NAME_prob.*)")
    p.add_argument("--uncertainty", action="store_true", help="also write per-voxel uncertainty maps "
                   "(NAME_uncertainty.*: predictive entropy of the fold and mirroring ensemble; NAME_spread.*: spread "
                   "between folds and between mirrors) and a per-case summary (uncertainty.csv: mean uncertainty "
                   "inside the predicted structure, expected Dice)")
    add_force(p, "output files")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Apply the model to INPUT; print each written path.

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
    require_roi(args.model, args.roi)
    seg = model_segmenter(args.model, extra)
    for w in apply_paths(seg, args.input, args.output, output="labels", probabilities=args.probabilities,
                         series=args.series, roi=args.roi, overwrite=args.force, uncertainty=args.uncertainty):
        print(w)
    return 0

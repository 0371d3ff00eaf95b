"""``medseg predict MODEL_DIR INPUT OUTPUT [--probabilities] [--uncertainty] [--OPTION VALUE ...]``."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from typing import Any

from medseg import resolve
from medseg.cli.common import add_engine_args, add_force, engine_from_args, manifest_options
from medseg.resolve import model_segmenter, require_roi
from medseg.run import apply_paths, model_reference

HELP = "apply a trained model folder to a file, DICOM series or folder"
DESCRIPTION = """Apply the model folder MODEL_DIR (written by `medseg train`) to INPUT: an image file, a
DICOM series folder or a folder of images. Outputs keep the input's format and geometry.
MODEL_DIR may also be an exported NAME.onnx (`medseg export`, with NAME.onnx.json beside it),
run with ONNX Runtime (options --no-tta, --overlap, --window, --no-temperature, --no-postprocess).

Prediction options of the model's method are flags, e.g. for unet: --no-tta, --overlap 0.25,
--use-folds 0,2, --device cpu, --window patch, --checkpoint best (`medseg methods unet`).
"""

ACCEPTS_EXTRA = True


def option_classes(args: argparse.Namespace) -> list[type]:
    """The dataclasses whose fields are this command's method options (see ``cli.main``)."""
    if _is_onnx(args.model):
        from medseg.infer.export import OnnxParams  # deferred: imports torch

        return [OnnxParams]
    return resolve.option_classes(model=args.model)


def _is_onnx(model: str) -> bool:
    """MODEL_DIR is an exported ONNX file (``medseg export``), not a model folder."""
    return str(model).lower().endswith(".onnx")


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
    p.add_argument("--series", metavar="UID", action="append", help="DICOM folder with several series: the one "
                   "to segment (UID, series number, description or folder name); repeat it to stack several series as "
                   "the channels of one multimodal input, in order (--series T1post --series FLAIR)")
    p.add_argument("--reference", metavar="NAME", help="multimodal inputs: the modality whose grid the others are "
                   "resampled onto and the output lies on (default: the model's, else the finest)")
    p.add_argument("--roi", metavar="FILE|FOLDER", help="region-of-interest mask (or a folder of them, paired "
                   "with the inputs by name): the output is 0 and the probability maps are background outside it")
    p.add_argument("--probabilities", action="store_true", help="also write class probability maps (NAME_prob.*)")
    p.add_argument("--uncertainty", action="store_true", help="also write per-voxel uncertainty maps "
                   "(NAME_uncertainty.*: predictive entropy of the fold and mirroring ensemble; NAME_spread.*: spread "
                   "between folds and between mirrors) and a per-case summary (uncertainty.csv: mean uncertainty "
                   "inside the predicted structure, expected Dice)")
    p.add_argument("--format", choices=("dicom-seg",), help="write each label map as a DICOM SEG (NAME.dcm, "
                   "needs highdicom: pip install 'medseg[dicom-seg]') referencing its DICOM input series, segments "
                   "named by the model's classes; the input must be DICOM")
    add_engine_args(p)
    add_force(p, "output files (a folder run with the same options resumes without it: manifest.json)")


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
    if _is_onnx(args.model):
        from medseg.infer.export import OnnxModel  # deferred: imports torch and ONNX Runtime

        recipe: Callable[[], Any] = partial(OnnxModel.from_tokens, args.model, tuple(extra))
    else:
        require_roi(args.model, args.roi)
        recipe = partial(model_segmenter, args.model, tuple(extra))  # what each Ray actor builds its model from
    seg = recipe()
    if getattr(args, "engine", "local") != "local":
        recipe = _same_backend(recipe, seg, extra)
    engine = engine_from_args(args, recipe)
    for w in apply_paths(seg, args.input, args.output, output="labels", probabilities=args.probabilities,
                         series=args.series, roi=args.roi, overwrite=args.force, uncertainty=args.uncertainty,
                         reference=args.reference or model_reference(seg),
                         label_format=args.format, engine=engine,
                         manifest=manifest_options("predict", args, extra, model=args.model)):
        print(w)
    return 0


def _same_backend(recipe: Callable[[], Any], seg: Any, extra: list[str]) -> Callable[[], Any]:
    """The recipe with ``--backend`` as this process resolved ``auto``: a worker with fewer threads would
    otherwise pick ONNX Runtime where this process picks torch, and the probabilities would differ in
    the last bit from the local engine's."""
    params = getattr(seg, "params", None)
    if getattr(params, "backend", None) != "auto" or any(t.startswith("--backend") for t in extra):
        return recipe
    predictor = getattr(seg, "predictor", None)
    if not callable(predictor):
        return recipe
    func, args = getattr(recipe, "func", None), getattr(recipe, "args", ())
    if func is None or len(args) != 2:
        return recipe
    return partial(func, args[0], tuple(args[1]) + ("--backend", predictor().backend))

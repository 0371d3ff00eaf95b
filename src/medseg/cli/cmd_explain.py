"""``medseg explain MODEL IMAGE OUT [--label K] [--method gradcam|occlusion|integrated-gradients]``."""
from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli.common import add_force
from medseg.errors import ConfigError, InputError
from medseg.io.atomic import refuse_existing

HELP = "explain a trained model on one image: saliency map, feature contributions, figure"
DESCRIPTION = """Explain what a trained model folder looks at when it segments class K in IMAGE.

Networks (unet): a saliency map by --method gradcam (default; the last full-resolution
decoder layer, --layer bottleneck or a module name for another), occlusion (a sliding patch
set to the image mean; --patch N) or integrated-gradients (--steps N), for the region the
model predicts as K (the whole image when it predicts none).
Pixel classifiers (random-forest, extra-trees, decision-tree): exact per-feature
contributions from the trees' decision paths, summed per feature family, and the
permutation importance of each family (Dice against --labels FILE, or against the model's
own prediction without it); other pixel classifiers get the importance only. --method does
not apply to them.

Writes the folder OUT: saliency.<ext> (float32 in [0, 1], the input's grid, geometry and
format; 8-bit rasters become float TIFF), overlay.png, explanation.json; for pixel
classifiers also contributions_<family>.<ext> (one file per family) and importance.csv.

examples:
  medseg explain model/ case_001.nii.gz explain/case_001 --label 1
  medseg explain model/ case_001.nii.gz explain/ig --method integrated-gradients --steps 32
  medseg explain rf_model/ fundus.png explain/rf --labels fundus_vessels.png
"""

METHODS = ("gradcam", "occlusion", "integrated-gradients")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg explain``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("model", metavar="MODEL", help="model folder written by medseg train")
    p.add_argument("image", metavar="IMAGE", help="image file or DICOM series folder")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--label", type=int, default=None, metavar="K", help="class to explain (default: the first "
                   "foreground class)")
    p.add_argument("--method", default=None, metavar="NAME",
                   help="networks: gradcam (default), occlusion or integrated-gradients")
    p.add_argument("--labels", metavar="FILE", help="pixel classifiers: the image's label map, scored by the "
                   "permutation importance (default: the model's own prediction)")
    p.add_argument("--steps", type=int, default=16, metavar="N", help="integrated-gradients steps (default 16)")
    p.add_argument("--layer", default="decoder", metavar="NAME",
                   help="Grad-CAM layer: decoder (default), bottleneck or a module name")
    p.add_argument("--patch", type=int, default=None, metavar="N",
                   help="occlusion patch in voxels (default an eighth of each axis, a quarter in 3D)")
    p.add_argument("--device", default="auto", help="networks: auto, cpu or cuda")
    p.add_argument("--max-pixels", type=int, default=65536, metavar="N",
                   help="pixel classifiers: pixels sampled for the permutation importance (default 65536)")
    p.add_argument("--repeats", type=int, default=3, metavar="N", help="permutations per family (default 3)")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to read")
    add_force(p, "the output folder")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Explain the model on the image; print the written files and any notes.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    extra : list of str
        Unused.

    Returns
    -------
    int
        The exit code: 0 (user errors raise a ``MedsegError``).
    """
    from medseg.explain import explain_model, write_explanation  # deferred: CLI start-up time
    from medseg.io import read_image, read_label  # deferred: CLI start-up time

    if args.method is not None and args.method not in METHODS + ("contributions",):
        raise ConfigError(f"unknown --method '{args.method}'; choose {', '.join(METHODS)}")
    for flag, v in (("--steps", args.steps), ("--max-pixels", args.max_pixels), ("--repeats", args.repeats)):
        if v < 1:
            raise ConfigError(f"{flag} must be at least 1, got {v}")
    if args.patch is not None and args.patch < 1:
        raise ConfigError(f"--patch must be at least 1, got {args.patch}")
    if not Path(args.model).is_dir():
        raise InputError(f"{args.model}: no such model folder")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: OUT must be a folder, but a file of that name exists")
    refuse_existing([out], force=args.force)
    image = read_image(args.image, series=args.series)
    labels = read_label(args.labels) if args.labels else None
    expl = explain_model(args.model, image, label=args.label, method=args.method, labels=labels, steps=args.steps,
                         layer=args.layer, patch=args.patch, device=args.device, max_pixels=args.max_pixels,
                         repeats=args.repeats)
    for note in expl.notes:
        print(f"note: {note}")
    if expl.importance:
        top = ", ".join(f"{r['family']} {r['importance']:+.3f}" for r in expl.importance[:4])
        print(f"permutation importance (Dice drop vs {expl.details.get('reference')}): {top}")
    for w in write_explanation(expl, out, args.image, force=args.force):
        print(w)
    return 0

"""``medseg preprocess IN OUT --step clahe --step gaussian:sigma=1`` (or ``--pipeline FILE``)."""
from __future__ import annotations

import argparse

from medseg.cli.common import add_force
from medseg.errors import ConfigError
from medseg.io.atomic import refuse_existing
from medseg.preprocess import STEPS, Pipeline, Step
from medseg.preprocess.pipeline import describe_steps
from medseg.run import apply_paths, pair_paths

HELP = "apply a preprocessing pipeline to an image file or a folder of images"
DESCRIPTION = """Apply preprocessing steps, in order, to IN (a file or a folder) and write OUT.

Steps are NAME or NAME:key=value,key=value, e.g.
  medseg preprocess scan.nii.gz out.nii.gz --step n4 --step clip:lower=1,upper=99 --step zscore
  medseg preprocess fundus.tif out.tif --step channel:index=green --step clahe --step gaussian:sigma=1
Save a pipeline with --save-pipeline FILE.json and reuse it with --pipeline FILE.json.
Folder inputs keep their suffixes, except 8-bit raster formats (.png/.jpg/.bmp/.gif), which
are written as float TIFF.

Steps: {steps}
"""
DESCRIPTION = DESCRIPTION.format(steps=", ".join(STEPS.names()))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg preprocess``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("input", metavar="IN", nargs="?", help="image file, DICOM series folder or folder of images")
    p.add_argument("--list-steps", action="store_true",
                   help="list the steps with their parameters (what each means, its default) and exit")
    p.add_argument("output", metavar="OUT", nargs="?", help="output file or folder")
    p.add_argument("--step", "-s", action="append", default=[], metavar="NAME[:k=v,...]",
                   help="a preprocessing step (repeatable, applied in order)")
    p.add_argument("--pipeline", metavar="FILE", help="a pipeline JSON file (its steps run before any --step)")
    p.add_argument("--save-pipeline", metavar="FILE", help="also write the resolved pipeline as JSON")
    add_force(p, "output files (and the --save-pipeline file)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Build the pipeline, save it if asked, apply it; print each written path.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    extra : list of str
        Unused (this command takes no extra options).

    Returns
    -------
    int
        The exit code: 0 (user errors raise a ``MedsegError``).
    """
    if args.list_steps:
        for st in describe_steps():
            print(f"{st['name']:<22} {st['summary']}")
            for prm in st["params"]:
                print(f"    {prm['name']:<14} {prm['type']:<10} default {prm['default']!r:<10} {prm['help']}")
        return 0
    if args.input is None:
        raise ConfigError("give IN (an image file, DICOM series folder or folder of images), or --list-steps")
    steps: list[Step] = []
    if args.pipeline:
        steps.extend(Pipeline.load(args.pipeline).steps)
    steps.extend(Pipeline.parse(args.step).steps)
    pipeline = Pipeline(tuple(steps))
    if args.save_pipeline:
        refuse_existing([args.save_pipeline], force=args.force)
        if args.output is not None and len(pipeline):  # every output is checked before anything is written
            refuse_existing([d for _, d in pair_paths(args.input, args.output, output="images")],
                            force=args.force, where=args.output)
        pipeline.save(args.save_pipeline)
        print(args.save_pipeline)
    if args.output is None:
        if args.save_pipeline:
            return 0
        raise ConfigError("give OUT (or only --save-pipeline FILE to write the pipeline)")
    if not len(pipeline):
        raise ConfigError("no preprocessing steps: add --step NAME[:key=value,...] or --pipeline FILE")
    apply_paths(pipeline, args.input, args.output, output="images", progress=False, on_written=print,
                overwrite=args.force)
    return 0

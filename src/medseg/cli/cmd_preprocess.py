"""``medseg preprocess IN OUT --step clahe --step gaussian:sigma=1`` (or ``--pipeline FILE``)."""
from __future__ import annotations

from pathlib import Path

from medseg.errors import ConfigError, InputError

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
_RASTER = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def _steps_doc() -> str:
    from medseg.preprocess import STEPS

    return ", ".join(STEPS.names())


try:
    DESCRIPTION = DESCRIPTION.format(steps=_steps_doc())
except ImportError:  # pragma: no cover - optional stack missing
    DESCRIPTION = DESCRIPTION.format(steps="see medseg.preprocess")


def add_arguments(p) -> None:
    p.add_argument("input", metavar="IN", help="image file, DICOM series folder or folder of images")
    p.add_argument("output", metavar="OUT", nargs="?", help="output file or folder")
    p.add_argument("--step", "-s", action="append", default=[], metavar="NAME[:k=v,...]",
                   help="a preprocessing step (repeatable, applied in order)")
    p.add_argument("--pipeline", metavar="FILE", help="a pipeline JSON file (its steps run before any --step)")
    p.add_argument("--save-pipeline", metavar="FILE", help="also write the resolved pipeline as JSON")


def _pairs(inp: Path, out: Path) -> list[tuple[Path, Path]]:
    from medseg.io import image_suffix, list_images, strip_suffix
    from medseg.io.datasets import _is_dicom_dir

    if inp.is_dir() and not _is_dicom_dir(inp):
        files = list_images(inp)
        if not files:
            raise InputError(f"{inp}: no image files found")
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: the input is a folder, so the output must be a folder")
        pairs = []
        for f in files:
            suf = image_suffix(f)
            pairs.append((f, out / f"{strip_suffix(f)}{'.tif' if suf in _RASTER else suf}"))
        return pairs
    if inp.is_dir():  # DICOM series
        return [(inp, out if image_suffix(out) else out / f"{inp.name}.nii.gz")]
    return [(inp, out)]


def run(args, extra) -> int:
    from medseg.io import read_image, write_image
    from medseg.preprocess import Pipeline

    steps = []
    if args.pipeline:
        steps.extend(Pipeline.load(args.pipeline).steps)
    steps.extend(Pipeline.parse(args.step).steps)
    pipeline = Pipeline(tuple(steps))
    if args.save_pipeline:
        pipeline.save(args.save_pipeline)
        print(args.save_pipeline)
    if args.output is None:
        if args.save_pipeline:
            return 0
        raise ConfigError("give OUT (or only --save-pipeline FILE to write the pipeline)")
    if not len(pipeline):
        raise ConfigError("no preprocessing steps: add --step NAME[:key=value,...] or --pipeline FILE")
    inp, out = Path(args.input), Path(args.output)
    if not inp.exists():
        raise InputError(f"{inp}: no such file or folder")
    for src, dst in _pairs(inp, out):
        if dst.exists() and dst.resolve() == src.resolve():
            raise InputError(f"{dst}: output would overwrite the input; choose another path")
        result = pipeline(read_image(src))
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_image(result, dst)
        print(dst)
    return 0

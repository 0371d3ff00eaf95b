"""``medseg inspect DATASET [--images DIR --labels DIR --roi DIR] [--json FILE]``.

Also inspects one image file or DICOM folder (``--series UID`` picks a series; a folder
holding several series lists them).
"""
from __future__ import annotations

from pathlib import Path

from medseg.cli.common import add_dataset_args, add_force, dataset_from_args
from medseg.config import save_json
from medseg.errors import ConfigError, InputError
from medseg.fingerprint import describe_image, fingerprint, format_description, format_fingerprint
from medseg.io import is_image_file
from medseg.io.atomic import refuse_existing
from medseg.io.dicom import dicom_files, looks_like_dicom

HELP = "print a dataset's fingerprint and problems (or describe one image / DICOM folder)"
DESCRIPTION = """Print the fingerprint of a dataset: cases, channels, shapes, spacings
(median/min/max), intensity percentiles per channel (overall and inside the labels),
label values with their voxel fractions, ROI coverage, and the problems found
(image/label mismatch, bad label values, NaN/Inf, empty labels, duplicates).

DATASET is a folder with images/ (+ labels/, roi/), an nnU-Net/MSD folder, or
images.npy + labels.npy; or give --images/--labels/--roi. Given one image file or a
DICOM folder instead, it describes that image (a folder with several DICOM series lists
them; pick one with --series UID).

Exit codes: 0 the dataset was read (its problems, if any, are listed); 2 it could not be
read as a dataset (no cases, a layout part that is not a folder, unreadable files), or
--strict and at least one problem was found (for CI pipelines); 1 an internal error.

Examples:
  medseg inspect data/Hippocampus --json fingerprint.json
  medseg inspect data/ --strict          # exit 2 when any problem is found
  medseg inspect --images DRIVE/images --labels DRIVE/1st_manual --roi DRIVE/mask
  medseg inspect dicom_study/ --series 1.2.840.113619.2.55.3.1
"""


def add_arguments(p) -> None:
    """The options of ``medseg inspect``."""
    add_dataset_args(p)
    p.add_argument("--json", metavar="FILE", help="also write the fingerprint as JSON (atomically)")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to describe")
    p.add_argument("--max-problems", type=int, default=20, metavar="N",
                   help="problems listed in the text output (default 20)")
    p.add_argument("--strict", action="store_true",
                   help="exit with code 2 when any problem is found (for CI pipelines)")
    add_force(p, "the --json file")


def _is_single_image(path: Path) -> bool:
    """True for an image file or a DICOM folder (as opposed to a dataset)."""
    if path.is_file():
        if path.suffix.lower() in (".npy", ".npz") and path.name.lower().startswith("images"):
            return False
        return is_image_file(path) or looks_like_dicom(path)
    if path.is_dir():
        markers = ("images", "image", "imgs", "imagesTr", "dataset.json", "images.npy", "images.npz")
        if any((path / m).exists() for m in markers):
            return False
        return bool(dicom_files(path))
    return False


def run(args, extra) -> int:
    """Print the fingerprint of a dataset, or the description of one image."""
    if args.json:
        refuse_existing([args.json], force=args.force)
    if args.dataset and not args.images and _is_single_image(Path(args.dataset)):
        data = describe_image(Path(args.dataset), series=args.series)
        text = format_description(data)
    else:
        if args.series:
            raise ConfigError("--series applies to a DICOM folder, not to a dataset")
        data = fingerprint(dataset_from_args(args), progress=True)
        text = format_fingerprint(data, max_problems=args.max_problems)
    if args.json:
        save_json(data, args.json)
    print(text)
    if args.json:
        print(f"{'json':<11}{args.json}")
    problems = data.get("problems") or []
    if args.strict and problems:
        raise InputError(f"--strict: {len(problems)} problem(s) found in the dataset (listed above)")
    return 0

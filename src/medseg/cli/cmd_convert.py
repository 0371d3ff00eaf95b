"""``medseg convert SRC DST [--layout msd|folders|npy] [--series UID] [--label] [--force]``."""
from __future__ import annotations

import logging
from pathlib import Path

HELP = "convert an image to another format, or a dataset to another layout"
DESCRIPTION = """Convert SRC to DST, keeping the geometry (spacing, origin, direction).

  file -> file      the format follows DST's suffix (.nii.gz .nii .nrrd .mha .mhd .tif
                    .png .jpg .bmp .gif .npy .npz); SRC may be a DICOM file or series
                    folder (--series UID picks one of several). --label reads SRC as a
                    label map (0/255 masks become 0/1).
  dataset -> folder with --layout msd|folders|npy (default folders); SRC is any dataset
                    medseg reads (images/ + labels/ [+ roi/], nnU-Net/MSD, npy pair).

DST is never the input; an existing DST is replaced only with --force. Writes are
atomic: an interrupted conversion leaves nothing behind.

Examples:
  medseg convert study/ t1.nii.gz --series 1.2.840.113619.2.55.3.1
  medseg convert case.nrrd case.nii.gz
  medseg convert drive_dataset/ drive_msd/ --layout msd
"""
log = logging.getLogger("medseg")


def add_arguments(p) -> None:
    p.add_argument("src", metavar="SRC", help="image file, DICOM folder, or dataset")
    p.add_argument("dst", metavar="DST", help="output file (format by suffix) or dataset folder")
    p.add_argument("--layout", choices=("msd", "folders", "npy"), help="convert a dataset to this layout")
    p.add_argument("--suffix", help="file suffix for a dataset's images (e.g. .nii.gz; default: lossless per image)")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to convert")
    p.add_argument("--label", action="store_true", help="SRC is a label map (0/255 masks become 0/1)")
    p.add_argument("--force", action="store_true", help="replace an existing DST (never the input)")


def _same_or_inside(a: Path, b: Path) -> bool:
    """True when ``a`` is ``b`` or lies inside ``b``."""
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents


def _is_dataset(src: Path) -> bool:
    from medseg.cli.cmd_inspect import _is_single_image

    return not _is_single_image(src)


def run(args, extra) -> int:
    from medseg.errors import ConfigError, InputError

    src, dst = Path(args.src), Path(args.dst)
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    if _same_or_inside(dst, src) and (src.is_file() or dst.resolve() == src.resolve()):
        raise InputError(f"{dst}: this is the input; choose another output")
    if src.is_dir() and _same_or_inside(src, dst):
        raise InputError(f"{dst}: the input {src} lies inside it; writing it would replace the input")
    dataset_mode = args.layout is not None or (src.is_dir() and _is_dataset(src)) or (
        src.suffix.lower() in (".npy", ".npz") and src.name.lower().startswith("images"))
    if dataset_mode:
        if args.series or args.label:
            raise ConfigError("--series and --label apply to single images, not to datasets")
        return _convert_dataset(src, dst, args.layout or "folders", args.suffix, args.force)
    if args.layout or args.suffix:
        raise ConfigError("--layout/--suffix apply to datasets; for one image the format follows DST's suffix")
    return _convert_file(src, dst, args.series, args.label, args.force)


def _convert_file(src: Path, dst: Path, series: str | None, label: bool, force: bool) -> int:
    from medseg.errors import InputError
    from medseg.io import read_image, read_label, write_image
    from medseg.io.base import format_for

    format_for(dst, for_writing=True)  # unknown or read-only suffix: fail before reading
    if dst.is_dir():
        raise InputError(f"{dst}: is a folder; give an output file name with a suffix (e.g. {dst}/image.nii.gz)")
    if dst.exists() and not force:
        raise InputError(f"{dst}: exists; choose another name or pass --force to replace it")
    img = read_label(src, series=series) if label else read_image(src, series=series)
    write_image(img, dst)
    print(f"{dst}  ({img.ndim}D {' x '.join(map(str, img.shape))}, {img.n_channels} channel(s), {img.dtype})")
    return 0


def _convert_dataset(src: Path, dst: Path, layout: str, suffix: str | None, force: bool) -> int:
    from medseg.errors import InputError
    from medseg.io import load_dataset
    from medseg.io.writing import write_dataset

    if dst.is_file():
        raise InputError(f"{dst}: is a file; a dataset is written to a folder")
    if dst.exists() and any(dst.iterdir()) and not force:
        raise InputError(f"{dst}: exists and is not empty; choose another folder or pass --force to replace it")
    ds = load_dataset(src)
    if ds.has_roi and layout != "folders":
        log.warning("the %s layout has no place for ROI masks: they are not written", layout)
    keep_tests = bool(ds.test_cases) and layout == "msd"
    if ds.test_cases and not keep_tests:
        log.warning("%d unlabelled test case(s) (imagesTs/) are not converted: only the msd layout holds them",
                    len(ds.test_cases))

    def cases():
        for case in ds.cases:
            img = ds.load_image(case)
            yield case.case_id, img, ds.load_label(case, img), ds.load_roi(case, img)

    tests = ((c.case_id, ds.load_image(c)) for c in ds.test_cases) if keep_tests else ()
    write_dataset(cases(), dst, layout=layout, suffix=suffix, label_names=ds.label_names or None,
                  channel_names=ds.channel_names or None, overwrite=force, test_cases=tests)
    print(f"{dst}  ({layout} layout, {len(ds.cases)} cases)")
    return 0

"""``medseg convert SRC DST [--layout msd|folders|npy] [--series UID] [--label] [--force]``."""
from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli.common import add_force
from medseg.errors import ConfigError
from medseg.io.convert import check_conversion, convert_dataset, convert_image, is_dataset_input

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg convert``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("src", metavar="SRC", help="image file, DICOM folder, or dataset")
    p.add_argument("dst", metavar="DST", help="output file (format by suffix) or dataset folder")
    p.add_argument("--layout", choices=("msd", "folders", "npy"), help="convert a dataset to this layout")
    p.add_argument("--suffix", help="file suffix for a dataset's images (e.g. .nii.gz; default: lossless per image)")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to convert")
    p.add_argument("--label", action="store_true", help="SRC is a label map (0/255 masks become 0/1)")
    add_force(p, "DST (never the input)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Convert one image or a dataset; print what was written.

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
    check_conversion(args.src, args.dst)
    if args.layout is not None or is_dataset_input(args.src):
        if args.series or args.label:
            raise ConfigError("--series and --label apply to single images, not to datasets")
        layout = args.layout or "folders"
        ds = convert_dataset(args.src, args.dst, layout=layout, suffix=args.suffix, overwrite=args.force)
        print(f"{Path(args.dst)}  ({layout} layout, {len(ds.cases)} cases)")
        return 0
    if args.suffix:
        raise ConfigError("--layout/--suffix apply to datasets; for one image the format follows DST's suffix")
    img = convert_image(args.src, args.dst, series=args.series, label=args.label, overwrite=args.force)
    shape = " x ".join(map(str, img.shape))
    print(f"{Path(args.dst)}  ({img.ndim}D {shape}, {img.n_channels} channel(s), {img.dtype})")
    return 0

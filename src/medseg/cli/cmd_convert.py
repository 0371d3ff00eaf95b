"""``medseg convert SRC DST [--layout msd|folders|npy] [--series UID ...] [--label-series NAME] [--force]``."""
from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli.common import add_force
from medseg.errors import ConfigError
from medseg.io.atomic import refuse_existing
from medseg.io.base import format_for, write_image
from medseg.io.convert import check_conversion, convert_dataset, convert_image, is_dataset_input
from medseg.io.dicom_seg import DICOM_SEG, convert_to_dicom_seg
from medseg.io.multimodal import convert_study, read_study

HELP = "convert an image to another format, or a dataset to another layout"
DESCRIPTION = """Convert SRC to DST, keeping the geometry (spacing, origin, direction).

  file -> file      the format follows DST's suffix (.nii.gz .nii .nrrd .mha .mhd .tif
                    .png .jpg .bmp .gif .npy .npz); SRC may be a DICOM file or series
                    folder (--series UID picks one of several). --label reads SRC as a
                    label map (0/255 masks become 0/1).
  dataset -> folder with --layout msd|folders|npy (default folders); SRC is any dataset
                    medseg reads (images/ + labels/ [+ roi/], nnU-Net/MSD, npy pair).
  study -> dataset  a DICOM study with --series given several times (the channels, in
                    order, resampled onto --reference, default the finest) and optionally
                    --label-series (the mask series): a one-case multimodal dataset
                    (--layout msd: imagesTr/CASE_0000, CASE_0001, labelsTr/CASE, dataset.json
                    with channel_names). Without --layout: one multichannel image file.
  mask -> DICOM SEG --format dicom-seg --reference SERIES: SRC (a label file or DICOM mask
                    series) becomes DST.dcm, a DICOM Segmentation object referencing the
                    DICOM series SERIES (a file or series folder, or a series of SRC's study)
                    the mask lies on; needs highdicom (pip install 'medseg[dicom-seg]').

DST is never the input; an existing DST is replaced only with --force. Writes are
atomic: an interrupted conversion leaves nothing behind.

Examples:
  medseg convert study/ t1.nii.gz --series 1.2.840.113619.2.55.3.1
  medseg convert case.nrrd case.nii.gz
  medseg convert drive_dataset/ drive_msd/ --layout msd
  medseg convert PGBM-001/ pgbm_msd/ --layout msd --series T1post --series FLAIRreg --label-series MaskTumor
  medseg convert PGBM-001/ tumour_seg.dcm --format dicom-seg --series MaskTumor --reference T1post
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
    p.add_argument("--series", metavar="UID", action="append", help="DICOM folder with several series: the one to "
                   "convert (UID, number, description or folder name); repeat it to stack several as channels")
    p.add_argument("--label-series", metavar="NAME", help="DICOM study: the series holding the label map (e.g. "
                   "MaskTumor), written as the case's label")
    p.add_argument("--reference", metavar="NAME", help="DICOM study with several --series: the series whose grid "
                   "the others are resampled onto (default: the finest); with --format dicom-seg: the DICOM series "
                   "the SEG references (a file or series folder, or a series of SRC's study)")
    p.add_argument("--format", choices=("dicom-seg",), help="write SRC, a label map, as a DICOM SEG referencing "
                   "the DICOM series --reference (DST.dcm)")
    p.add_argument("--case-id", metavar="ID", help="DICOM study to dataset: the case's name (default: the study "
                   "folder's name)")
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
    series = list(args.series or [])
    if args.format == DICOM_SEG:
        return _convert_dicom_seg(args, series)
    if len(series) > 1 or args.label_series:
        return _convert_study(args, series)
    if args.reference or args.case_id:
        raise ConfigError("--reference and --case-id apply to a DICOM study converted with several --series")
    if args.layout is not None or is_dataset_input(args.src):
        if args.series or args.label:
            raise ConfigError("--series and --label apply to single images, not to datasets")
        layout = args.layout or "folders"
        ds = convert_dataset(args.src, args.dst, layout=layout, suffix=args.suffix, overwrite=args.force)
        print(f"{Path(args.dst)}  ({layout} layout, {len(ds.cases)} cases)")
        return 0
    if args.suffix:
        raise ConfigError("--layout/--suffix apply to datasets; for one image the format follows DST's suffix")
    img = convert_image(args.src, args.dst, series=series[0] if series else None, label=args.label,
                        overwrite=args.force)
    shape = " x ".join(map(str, img.shape))
    print(f"{Path(args.dst)}  ({img.ndim}D {shape}, {img.n_channels} channel(s), {img.dtype})")
    return 0


def _convert_study(args: argparse.Namespace, series: list[str]) -> int:
    """Several series of a DICOM study: a one-case multimodal dataset, or one multichannel image."""
    if not series:
        raise ConfigError("--label-series needs the image series too: give --series NAME (once per channel)")
    if args.label:
        raise ConfigError("--label reads SRC as one label map; with several --series use --label-series")
    if not Path(args.src).is_dir():
        raise ConfigError(f"{args.src}: several --series (or --label-series) need a DICOM study folder")
    if args.layout is None:
        if args.label_series or args.case_id:
            raise ConfigError("--label-series and --case-id write a dataset: give --layout msd (or folders, npy)")
        if args.suffix:
            raise ConfigError("--suffix applies to datasets; for one image the format follows DST's suffix")
        format_for(Path(args.dst), for_writing=True)
        refuse_existing([Path(args.dst)], force=args.force)
        img, _ = read_study(args.src, series, reference=args.reference)
        write_image(img, args.dst)
    else:
        img, lab = convert_study(args.src, args.dst, series=series, label_series=args.label_series,
                                 layout=args.layout, reference=args.reference, case_id=args.case_id,
                                 suffix=args.suffix, overwrite=args.force)
    shape = " x ".join(map(str, img.shape))
    names = ", ".join(img.meta.get("channel_names", []))
    what = f"{args.layout} layout, 1 case" if args.layout else "multichannel image"
    print(f"{Path(args.dst)}  ({what}: {img.ndim}D {shape}, channels {names}; reference {img.meta.get('reference')})")
    return 0


def _convert_dicom_seg(args: argparse.Namespace, series: list[str]) -> int:
    """A label map to a DICOM SEG referencing the DICOM series ``--reference``."""
    if not args.reference:
        raise ConfigError("--format dicom-seg needs --reference: the DICOM series the mask lies on (a file or series "
                          "folder, or a series name of SRC's study)")
    if len(series) > 1 or args.layout or args.suffix or args.label_series or args.case_id:
        raise ConfigError("--format dicom-seg converts one label map: at most one --series (the mask series), no "
                          "--layout, --suffix, --label-series or --case-id")
    labels, dst = convert_to_dicom_seg(args.src, args.dst, args.reference, series=series[0] if series else None,
                                       overwrite=args.force)
    shape = " x ".join(map(str, labels.shape))
    print(f"{dst}  (DICOM SEG: {labels.ndim}D {shape}, {max(1, int(labels.array.max()))} segment(s), references "
          f"{args.reference})")
    return 0

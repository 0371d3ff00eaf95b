"""``medseg anonymize IN OUT [--date-shift] [--uid-map FILE] [--force]``."""
from __future__ import annotations

import argparse

from medseg.cli.common import add_force

HELP = "de-identify DICOM (PS3.15 Basic Profile), NIfTI, NRRD and MHA files into a new folder"
DESCRIPTION = """Write a de-identified copy of IN (a file, a DICOM series or study, or any folder) to OUT.

DICOM: the attributes of the DICOM PS3.15 Annex E Basic Application Level Confidentiality
Profile are removed, emptied, given dummy values or (UIDs) replaced consistently, in every
sequence; private attributes, curves and overlay text are removed; Patient Identity Removed
and the De-identification Method are recorded. NIfTI: descrip, aux_file, db_name,
intent_name and header extensions are blanked. NRRD/MHA: header fields other than geometry
and encoding are dropped. Pixel data and geometry are never changed (so text burned into the
pixels stays: files flagged with burned-in annotation are listed). File and folder names are
replaced (OUT/study_001/series_001/IM00001.dcm, OUT/image_000.nii.gz) because names often
carry identifiers. IN is never modified.

examples:
  medseg anonymize dicom_study/ anon/
  medseg anonymize dicom_study/ anon/ --date-shift --uid-map private/uids.json
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg anonymize``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("input", metavar="IN", help="file or folder (DICOM, NIfTI, NRRD, MHA)")
    p.add_argument("output", metavar="OUT", help="output folder (never IN or inside it)")
    p.add_argument("--date-shift", action="store_true",
                   help="shift dates by a fixed per-patient offset instead of removing them")
    p.add_argument("--uid-map", metavar="FILE", help="JSON mapping that keeps new UIDs and date offsets the same "
                   "across runs (read if present, then updated); it re-identifies: keep it private")
    add_force(p, "output files")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Anonymize IN into OUT; print a summary.

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
    from medseg.io.anonymize import anonymize  # deferred: CLI start-up time
    from medseg.progress import progress  # deferred: CLI start-up time

    report = anonymize(args.input, args.output, date_shift=args.date_shift, uid_map=args.uid_map,
                       overwrite=args.force, progress=lambda it: progress(list(it), desc="anonymize", unit="file"))
    print(f"{len(report.written)} file(s) written to {args.output}; {report.uids} UID(s) replaced"
          + ("; dates shifted per patient" if args.date_shift else ""))
    if report.skipped:
        print(f"{len(report.skipped)} file(s) skipped (not DICOM, NIfTI, NRRD or MHA)")
    if report.burned_in:
        names = ", ".join(str(p) for p in report.burned_in[:3]) + (" ..." if len(report.burned_in) > 3 else "")
        print(f"check for burned-in text: {len(report.burned_in)} file(s) flagged or of a modality that usually "
              f"carries it ({names}); their pixels were not changed")
    return 0

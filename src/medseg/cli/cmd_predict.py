"""``medseg predict MODEL_DIR INPUT OUTPUT [--probabilities]``."""
from __future__ import annotations

HELP = "apply a trained model folder to a file, DICOM series or folder"


def add_arguments(p) -> None:
    p.add_argument("model", metavar="MODEL_DIR")
    p.add_argument("input", metavar="INPUT")
    p.add_argument("output", metavar="OUTPUT")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to segment "
                   "(UID, series number or description)")
    p.add_argument("--probabilities", action="store_true", help="also write class probability maps (NAME_prob.*)")


def run(args, extra) -> int:
    from medseg.methods.base import load_model
    from medseg.run import segment_paths

    seg = load_model(args.model)
    for w in segment_paths(seg, args.input, args.output, probabilities=args.probabilities, series=args.series):
        print(w)
    return 0

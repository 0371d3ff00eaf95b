"""``medseg export MODEL_DIR OUT.onnx [--fold K] [--checkpoint last|best] [--opset N]``."""
from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli.common import add_force
from medseg.contract import read_model_info
from medseg.errors import InputError
from medseg.io.atomic import refuse_existing

HELP = "export a trained unet fold network to ONNX with its preprocessing (for ONNX Runtime)"
DESCRIPTION = """Export one fold's network of a `unet` model folder to an ONNX file and, beside it,
OUT.json: the preprocessing (per-channel normalisation, target spacing) and inference settings
(patch size, window and overlap, mirroring axes, temperature, class names, post-processing).
`medseg predict OUT.onnx IN OUT` then reproduces `medseg predict MODEL_DIR IN OUT` with ONNX
Runtime. The graph takes the preprocessed input (N, C, *spatial) and returns logits
(N, K, *spatial); its spatial sizes are dynamic where the export verified them, else the patch
size (see OUT.json "input"). It needs the `onnx` and `onnxruntime` packages.

Examples:
  medseg export models/unet unet_fold0.onnx
  medseg export models/unet unet_fold2_best.onnx --fold 2 --checkpoint best
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg export``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("model", metavar="MODEL_DIR", help="a unet model folder (from medseg train --method unet)")
    p.add_argument("out", metavar="OUT", help="ONNX file to write (.onnx)")
    p.add_argument("--fold", type=int, default=None, help="fold to export (default: the first trained)")
    p.add_argument("--checkpoint", choices=("last", "best"), default="last", help="weights (default last)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    add_force(p, "an ONNX file")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Export the fold's network; print what was written.

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
    from medseg.infer.export import export_onnx  # deferred: imports torch

    model, out = Path(args.model), Path(args.out)
    if not model.is_dir():
        raise InputError(f"{model}: no such model folder")
    if out.suffix.lower() != ".onnx":
        raise InputError(f"{out}: the output file must end in .onnx")
    if out.exists() and out.is_dir():
        raise InputError(f"{out}: is a folder; give a file name ending in .onnx")
    from medseg.infer.onnx_runtime import sidecar_path  # deferred: imports torch

    refuse_existing([out, sidecar_path(out)], force=args.force)
    export_onnx(model, out, fold=args.fold, checkpoint=args.checkpoint, opset=args.opset)
    fold = args.fold if args.fold is not None else list(read_model_info(model).get("folds", [0]))[0]
    print(f"wrote {out} (fold {fold}, {args.checkpoint} weights) and {sidecar_path(out)} (its preprocessing); "
          f"apply with `medseg predict {out} IN OUT`")
    return 0

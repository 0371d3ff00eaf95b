"""``medseg demo [--out DIR]``: the whole pipeline on synthetic data, in about 2 minutes."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from medseg.demo import run_demo

HELP = "run every method family on a synthetic dataset, evaluate and compare them"
DESCRIPTION = """Make a synthetic dataset with exact ground truth (fundus-like photographs with
vessel trees; MR-like head volumes), run the classical, machine-learning and deep-learning
methods on it, evaluate each and write a comparison report. Takes 2-3 minutes on 2 CPU cores.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg demo``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("--out", default="medseg-demo", metavar="DIR", help="output folder (default: ./medseg-demo)")
    p.add_argument("--dl-minutes", type=float, default=1.0, metavar="MIN",
                   help="training time budget of the U-Net (default 1; 0 skips deep learning)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Run the demo; print where its results are.

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
    t = time.perf_counter()
    results = run_demo(args.out, dl_minutes=args.dl_minutes, seed=args.seed, report=lambda m: print(m, flush=True))
    print(f"\nDone in {time.perf_counter() - t:.0f} s. Results in {args.out}/:")
    print("  data/          synthetic datasets (images/, labels/, roi/; MSD layout for 3D)")
    print("  predictions/   label maps per method, in the inputs' format and geometry")
    for r in results:
        print(f"  eval/{r.name + '/':<22} metrics.csv, summary.json, report.html  (Dice {r.dice:.3f})")
    if (Path(args.out) / "compare" / "report.html").exists():
        print("  compare/report.html   classical vs ML vs DL side by side")
    return 0

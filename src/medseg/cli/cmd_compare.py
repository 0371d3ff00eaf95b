"""``medseg compare RUN_DIR RUN_DIR [...] --out DIR``."""
from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli.common import add_force
from medseg.errors import ConfigError, suggest
from medseg.io.atomic import refuse_existing

HELP = "compare several evaluation folders side by side: ranking, paired per-case plots, report"
DESCRIPTION = """Compare evaluations of the same cases (e.g. Otsu vs random forest vs U-Net).

Each RUN_DIR is an output folder of `medseg evaluate`. Writes into --out:
comparison.csv (per-case values aligned across runs), ranking.json (mean per-case rank
over --metrics, paired Wilcoxon tests with raw and Holm-adjusted p-values) and report.html
(ranking, paired per-case plots with the mean marked, tests, and a note when there are too
few cases for any test to reach p < 0.05).

example:
  medseg compare eval/otsu eval/forest eval/unet --out eval/compare
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg compare``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by `medseg evaluate`")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--names", metavar="A,B,...", help="display names for the runs (default: folder names)")
    p.add_argument("--metrics", default="dice,hd95,nsd", metavar="M1,M2",
                   help="metrics the ranking uses (default dice,hd95,nsd)")
    p.add_argument("--no-html", action="store_true", help="do not write report.html")
    p.add_argument("--title", default="Method comparison", help="report title")
    add_force(p, "comparison.csv, ranking.json and report.html")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Compare the runs; print the ranking and the written files.

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
    from medseg.metrics.compare import load_runs, rank_runs, write_comparison  # deferred: CLI start-up time
    from medseg.metrics.evaluation import COLUMNS  # deferred: CLI start-up time

    names = [x.strip() for x in args.names.split(",")] if args.names else None
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    valid = [c for c in COLUMNS if c not in ("case", "label", "label_name", "empty", "tp", "fp", "fn", "tn")] + [
        "roc_auc", "pr_auc", "ece"]
    for m in metrics:
        if m not in valid:
            raise ConfigError(f"--metrics: unknown metric '{m}'{suggest(m, valid)}")
    out = Path(args.out)
    refuse_existing([out / n for n in ("comparison.csv", "ranking.json") + (() if args.no_html else ("report.html",))],
                    force=args.force, where=out)
    runs = load_runs(args.runs, names)
    written = write_comparison(runs, args.out, metrics=metrics, html=not args.no_html, title=args.title)
    for r in rank_runs(runs, metrics):
        print(f"{r['rank']}. {r['run']}  mean rank {r['mean_rank']:.2f}  "
              + "  ".join(f"{k[5:]} {v:.4g}" for k, v in r.items() if k.startswith("mean_") and k != "mean_rank"))
    for w in written:
        print(w)
    return 0

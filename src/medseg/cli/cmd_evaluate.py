"""``medseg evaluate PRED GT [--roi DIR] [--images DIR] [--labels 1,2] [--tolerance MM] --out DIR``."""
from __future__ import annotations

import argparse
from pathlib import Path

from medseg.cli.common import add_force
from medseg.errors import ConfigError
from medseg.io.atomic import refuse_existing

HELP = "score predictions against ground truth: metrics.csv, summary.json, report.html"
DESCRIPTION = """Score predictions against ground truth.

PRED and GT are files or folders; folders are paired by case like datasets (same name,
leading id, or first number). GT may also be a dataset folder (images/ + labels/ [+ roi/],
or MSD/nnU-Net), which then supplies ROIs, images and label names. NAME_prob.* files in
PRED (from `medseg predict --probabilities`) add ROC-AUC, PR-AUC and ECE, and the report
draws their ROC and precision-recall curves and a reliability diagram.

Writes into --out: metrics.csv (one row per case and label), summary.json (mean, std,
median, IQR per label) and report.html (tables, plots, the five worst cases at full
resolution with click-to-zoom — for volumes the slice with the most error and three
orthogonal views —, confusion matrix for several labels).

examples:
  medseg evaluate preds/ data/labels --roi data/roi --out eval/otsu
  medseg evaluate preds/ data/ --labels 1,2 --tolerance 2 --out eval/unet
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg evaluate``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("pred", metavar="PRED", help="prediction file or folder")
    p.add_argument("truth", metavar="GT", help="ground-truth file or folder (or a dataset folder)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; only these files are written)")
    p.add_argument("--roi", metavar="PATH", help="region-of-interest file/folder: every metric is restricted to it")
    p.add_argument("--images", metavar="PATH", help="image file/folder shown under the overlays in the report")
    p.add_argument("--probabilities", metavar="PATH", help="probability maps (default: NAME_prob files in PRED)")
    p.add_argument("--labels", metavar="L1,L2", help="labels to score (default: every nonzero label found)")
    p.add_argument("--tolerance", type=float, default=1.0, metavar="MM", help="NSD tolerance in mm (default 1)")
    p.add_argument("--pooled", action="store_true",
                   help="aggregate overlap metrics from counts pooled over cases (default: average over cases)")
    p.add_argument("--subset", action="store_true",
                   help="score only the ground-truth cases that have a prediction (default: every case must have one)")
    p.add_argument("--no-distances", action="store_true", help="skip surface-distance metrics (faster)")
    p.add_argument("--no-html", action="store_true", help="do not write report.html")
    p.add_argument("--title", default=None, help="report title (default: the prediction folder name)")
    p.add_argument("--explain", metavar="MODEL", help="the model folder that made PRED: explain it on the worst "
                   "cases and show each explanation (saliency or feature contributions) under the case in the report; "
                   "needs the images (--images, or a dataset folder as GT)")
    add_force(p, "metrics.csv, summary.json and report.html")


def parse_labels(text: str | None) -> list[int] | None:
    """The ``--labels`` value as sorted unique positive integers (``None`` when not given).

    Parameters
    ----------
    text : str or None
        ``"1,2"``.

    Returns
    -------
    list of int or None

    Raises
    ------
    ConfigError
        Not comma-separated positive integers.
    """
    if text is None:
        return None
    try:
        labels = [int(x) for x in text.replace(" ", "").split(",") if x]
    except ValueError as exc:
        raise ConfigError(f"--labels must be comma-separated integers like 1,2; got '{text}'") from exc
    if not labels or any(x <= 0 for x in labels):
        raise ConfigError(f"--labels must list positive labels (0 is background); got '{text}'")
    return sorted(set(labels))


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Evaluate; print one summary line per label and the written files.

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
    from medseg.metrics.evaluation import evaluate  # deferred: CLI start-up time
    from medseg.metrics.report import write_evaluation  # deferred: CLI start-up time

    out = Path(args.out)
    refuse_existing([out / n for n in ("metrics.csv", "summary.json") + (() if args.no_html else ("report.html",))],
                    force=args.force, where=out)
    table = evaluate(args.pred, args.truth, roi=args.roi, labels=parse_labels(args.labels), tolerance=args.tolerance,
                     probabilities=args.probabilities, images=args.images, distances=not args.no_distances,
                     progress=True, subset=args.subset)
    inputs = {"prediction": args.pred, "ground truth": args.truth, "roi": args.roi, "images": args.images,
              "probabilities": args.probabilities}
    if args.subset:  # recorded: the numbers are over the predicted cases only
        inputs["subset"] = (f"--subset: the {len(table.cases)} predicted case(s) only; ground-truth cases without a "
                            "prediction were left out")
    title = args.title or f"Evaluation of {Path(args.pred).resolve().name}"
    explanations = None
    if args.explain and not args.no_html:
        from medseg.explain.report import explain_cases  # deferred: loads the model (and torch)

        inputs["explained model"] = args.explain
        explanations = explain_cases(table, args.explain)
    written = write_evaluation(table, args.out, pooled=args.pooled, inputs=inputs, title=title, html=not args.no_html,
                               explanations=explanations)
    summ = table.summary(pooled=args.pooled)
    for lab in table.labels:
        s = summ[str(lab)]
        d = s["dice"].get("value", s["dice"].get("mean"))
        h = s["hd95"]["median"] if "median" in s["hd95"] else float("nan")
        name = table.label_names.get(lab, "")
        print(f"label {lab}{' ' + name if name else ''}: Dice {d:.4f} ({'pooled' if args.pooled else 'mean'}), "
              f"HD95 median {h:.3g} {table.length_unit}, {len(table.cases)} cases")
    for w in written:
        print(w)
    return 0

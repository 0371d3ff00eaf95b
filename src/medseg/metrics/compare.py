"""Compare several evaluations of the same cases: aligned per-case values, paired tests, ranking."""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import InputError
from medseg.metrics.evaluation import MAIN_METRICS, MetricsTable

__all__ = ["Run", "load_runs", "align", "rank_runs", "paired_tests", "write_comparison"]

log = logging.getLogger(__name__)
LOWER_IS_BETTER = {"hd95", "assd", "hausdorff", "ece"}
ABS_LOWER_IS_BETTER = {"volume_difference"}  # signed: closer to 0 is better


def cost(metric: str, values: np.ndarray) -> np.ndarray:
    """Values oriented so that lower is better (``nan`` kept)."""
    v = np.asarray(values, dtype=float)
    if metric in ABS_LOWER_IS_BETTER:
        return np.abs(v)
    return v.copy() if metric in LOWER_IS_BETTER else -v


@dataclass
class Run:
    """One evaluation folder (``metrics.csv`` + ``summary.json``)."""

    name: str
    path: Path
    table: MetricsTable
    summary: dict[str, Any]


def load_runs(paths: list[str | Path], names: list[str] | None = None) -> list[Run]:
    """Read evaluation folders written by ``medseg evaluate``; names default to folder names."""
    if len(paths) < 2:
        raise InputError("give at least two evaluation folders to compare")
    if names is not None and len(names) != len(paths):
        raise InputError(f"--names has {len(names)} names for {len(paths)} folders")
    runs = []
    for i, p in enumerate(paths):
        p = Path(p)
        csv_path = p / "metrics.csv"
        if not csv_path.is_file():
            raise InputError(f"{p}: not an evaluation folder (no metrics.csv); run `medseg evaluate ... --out {p}` first")
        summ = {}
        if (p / "summary.json").is_file():
            try:
                summ = json.loads((p / "summary.json").read_text())
            except json.JSONDecodeError as exc:
                raise InputError(f"{p / 'summary.json'}: corrupt JSON ({exc.msg})") from exc
        name = names[i] if names else p.resolve().name
        runs.append(Run(name, p, MetricsTable.read_csv(csv_path), summ))
    seen: dict[str, int] = {}
    for r in runs:  # make names unique
        if r.name in seen:
            seen[r.name] += 1
            r.name = f"{r.name}-{seen[r.name]}"
        else:
            seen[r.name] = 1
    return runs


def align(runs: list[Run], metric: str, label: int) -> tuple[list[str], np.ndarray]:
    """Per-case values ``(runs, cases)`` of ``metric`` for ``label`` on the cases every run has."""
    maps = []
    for r in runs:
        if metric not in r.table.columns:
            raise InputError(f"{r.path}: metrics.csv has no column '{metric}'")
        maps.append({row["case"]: float(row[metric]) for row in r.table.rows if row["label"] == label})
    common = [c for c in maps[0] if all(c in m for m in maps[1:])]
    dropped = {r.name: len(m) - len(common) for r, m in zip(runs, maps) if len(m) != len(common)}
    if dropped:
        log.warning("label %s: only %d cases are shared by every run (dropped %s)", label, len(common), dropped)
    if not common:
        raise InputError(f"the runs share no case for label {label}: were they evaluated on the same ground truth?")
    return common, np.asarray([[m[c] for c in common] for m in maps])


def rank_runs(runs: list[Run], metrics: tuple[str, ...] = ("dice", "hd95", "nsd")) -> list[dict[str, Any]]:
    """Rank runs by their mean per-case rank over ``metrics`` and labels (1 = best; ties share ranks).

    Per case, runs are ranked on each metric (``nan`` ranks last); the final score is the mean
    rank — robust to a single metric's scale, and what challenge leaderboards use.
    """
    from scipy.stats import rankdata

    labels = sorted(set.intersection(*[set(r.table.labels) for r in runs]))
    if not labels:
        raise InputError("the runs share no label to compare")
    total = np.zeros(len(runs))
    count = 0
    for lab in labels:
        for m in metrics:
            if not all(m in r.table.columns for r in runs):
                continue
            _, v = align(runs, m, lab)
            v = cost(m, v)
            v[np.isnan(v)] = np.inf
            for c in range(v.shape[1]):
                total += rankdata(v[:, c], method="average")
                count += 1
    mean_rank = total / max(count, 1)
    order = np.argsort(mean_rank, kind="stable")
    out = []
    for pos, i in enumerate(order, 1):
        means = {}
        for m in metrics:
            vals = [float(np.nanmean(r.table.column(m, lab))) if np.any(~np.isnan(r.table.column(m, lab))) else math.nan
                    for lab in labels for r in [runs[i]] if m in r.table.columns]
            means[m] = float(np.mean(vals)) if vals else math.nan
        out.append({"rank": pos, "run": runs[i].name, "mean_rank": float(mean_rank[i]), **{f"mean_{k}": v for k, v in means.items()}})
    return out


def paired_tests(runs: list[Run], metric: str, label: int) -> list[dict[str, Any]]:
    """Wilcoxon signed-rank tests of every pair of runs on the shared cases (two-sided)."""
    from scipy.stats import wilcoxon

    cases, v = align(runs, metric, label)
    out = []
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            a, b = v[i], v[j]
            ok = ~np.isnan(a) & ~np.isnan(b) & ~(np.isinf(a) & np.isinf(b))
            diff = a[ok] - b[ok]
            cdiff = cost(metric, a[ok]) - cost(metric, b[ok])  # < 0: a is better
            p = math.nan
            if ok.sum() >= 2 and np.any(cdiff != 0) and np.all(np.isfinite(cdiff)):
                p = float(wilcoxon(cost(metric, a[ok]), cost(metric, b[ok])).pvalue)
            out.append({"a": runs[i].name, "b": runs[j].name, "metric": metric, "label": label, "n": int(ok.sum()),
                        "median_difference": float(np.median(diff)) if diff.size and np.all(np.isfinite(diff)) else math.nan,
                        "a_better": int(np.sum(cdiff < 0)), "b_better": int(np.sum(cdiff > 0)),
                        "p_value": p})
    return out


def write_comparison(runs: list[Run], out: str | Path, *, metrics: tuple[str, ...] = ("dice", "hd95", "nsd"),
                     html: bool = True, title: str = "Comparison") -> list[Path]:
    """Write ``comparison.csv`` (aligned per-case values), ``ranking.json`` and ``report.html`` into ``out``."""
    import csv
    import io

    from medseg.config import save_json
    from medseg.io.atomic import atomic_write_text
    from medseg.metrics.report import json_safe

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out must be a folder, but a file of that name exists")
    labels = sorted(set.intersection(*[set(r.table.labels) for r in runs]))
    ranking = rank_runs(runs, metrics)
    tests = [t for lab in labels for m in metrics if all(m in r.table.columns for r in runs)
             for t in paired_tests(runs, m, lab)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["case", "label", "metric"] + [r.name for r in runs])
    for lab in labels:
        for m in [x for x in MAIN_METRICS if all(x in r.table.columns for r in runs)]:
            cases, v = align(runs, m, lab)
            for k, c in enumerate(cases):
                w.writerow([c, lab, m] + [repr(round(float(x), 10)) if np.isfinite(x) else str(x) for x in v[:, k]])
    out.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_text(out / "comparison.csv", buf.getvalue()),
               save_json(json_safe({"format": "medseg-comparison", "format_version": 1,
                                    "runs": {r.name: str(r.path) for r in runs}, "labels": labels,
                                    "ranking_metrics": list(metrics), "ranking": ranking, "paired_tests": tests}),
                         out / "ranking.json")]
    if html:
        from medseg.metrics.report_compare import comparison_html

        written.append(atomic_write_text(out / "report.html", comparison_html(runs, labels, ranking, tests, title=title)))
    return written

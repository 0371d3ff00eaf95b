"""Compare several evaluations of the same cases: aligned per-case values, paired tests, ranking.

Which direction is better for each metric comes from [`medseg.metrics.catalogue`][]
([`cost`][medseg.metrics.catalogue.cost]). `write_comparison` hands plain data to the
renderer [`medseg.metrics.report_compare`][], which does not import this module.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medseg.config import save_json
from medseg.errors import InputError
from medseg.io.atomic import atomic_write_text
from medseg.io.listing import short_list
from medseg.metrics.catalogue import MAIN_METRICS, cost
from medseg.metrics.evaluation import MetricsTable
from medseg.metrics.report import json_safe
from medseg.metrics.report_compare import comparison_html

__all__ = ["Run", "load_runs", "align", "rank_runs", "paired_tests", "holm", "adjust_holm", "smallest_p",
           "cases_needed", "write_comparison"]

#: The paired test, as the reports name it.
TEST_NAME = "two-sided Wilcoxon signed-rank test"

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One evaluation folder (``metrics.csv`` + ``summary.json``).

    Attributes
    ----------
    name : str
        Display name (unique among the compared runs).
    path : Path
        The folder.
    table : MetricsTable
        Its per-case metrics.
    summary : dict
        Its ``summary.json`` (empty when absent).

    Examples
    --------
    >>> from pathlib import Path
    >>> from medseg.metrics.evaluation import MetricsTable
    >>> run = Run("otsu", Path("eval/otsu"), MetricsTable([{"case": "a", "label": 1, "dice": 0.8}], [1]), {})
    >>> run.table.column("dice").tolist()
    [0.8]
    """

    name: str
    path: Path
    table: MetricsTable
    summary: dict[str, Any]


def load_runs(paths: Sequence[str | Path], names: Sequence[str] | None = None) -> list[Run]:
    """Read evaluation folders written by ``medseg evaluate``; names default to folder names.

    Parameters
    ----------
    paths : sequence of str or Path
        At least two evaluation folders.
    names : sequence of str, optional
        Display names, one per folder; repeated names get a ``-2``, ``-3`` suffix.

    Returns
    -------
    list of Run
    """
    if len(paths) < 2:
        raise InputError("give at least two evaluation folders to compare")
    if names is not None and len(names) != len(paths):
        raise InputError(f"--names has {len(names)} names for {len(paths)} folders")
    runs = []
    for i, path in enumerate(paths):
        p = Path(path)
        csv_path = p / "metrics.csv"
        if not csv_path.is_file():
            raise InputError(f"{p}: not an evaluation folder (no metrics.csv); "
                             f"run `medseg evaluate ... --out {p}` first")
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


def shared_cases(runs: Sequence[Run]) -> tuple[list[str], dict[str, list[str]]]:
    """The cases every run evaluated, and the cases each run has beyond them.

    Parameters
    ----------
    runs : sequence of Run

    Returns
    -------
    cases : list of str
        The shared cases, in the first run's order.
    dropped : dict
        ``{run name: [its cases that not every run has]}`` (runs with none omitted).

    Examples
    --------
    >>> from pathlib import Path
    >>> from medseg.metrics.evaluation import MetricsTable
    >>> def run(name, cases):
    ...     return Run(name, Path(name), MetricsTable([{"case": c, "label": 1, "dice": 1.0} for c in cases], [1]), {})
    >>> shared_cases([run("a", ["c0", "c1", "c2"]), run("b", ["c1", "c2"])])
    (['c1', 'c2'], {'a': ['c0']})
    """
    sets = [set(r.table.cases) for r in runs]
    common = [c for c in runs[0].table.cases if all(c in s for s in sets[1:])]
    keep = set(common)
    dropped = {r.name: [c for c in r.table.cases if c not in keep] for r in runs}
    return common, {k: v for k, v in dropped.items() if v}


def align(runs: Sequence[Run], metric: str, label: int) -> tuple[list[str], np.ndarray]:
    """Per-case values of ``metric`` for ``label`` on the cases every run has.

    Parameters
    ----------
    runs : sequence of Run
    metric : str
        A column every run's ``metrics.csv`` has.
    label : int

    Returns
    -------
    cases : list of str
        The shared cases, in the first run's order.
    values : numpy.ndarray of float64, shape ``(n_runs, n_cases)``

    Examples
    --------
    >>> from pathlib import Path
    >>> from medseg.metrics.evaluation import MetricsTable
    >>> def run(name, dice, hd95):          # an evaluation of three cases, in memory
    ...     rows = [{"case": f"c{i}", "label": 1, "dice": d, "hd95": h} for i, (d, h) in enumerate(zip(dice, hd95))]
    ...     return Run(name, Path(name), MetricsTable(rows, [1]), {})
    >>> runs = [run("a", [0.9, 0.8, 0.7], [1.0, 2.0, 1.5]), run("b", [0.6, 0.5, 0.65], [3.0, 4.0, 2.5])]
    >>> cases, v = align(runs, "dice", 1)
    >>> cases, v.tolist()
    (['c0', 'c1', 'c2'], [[0.9, 0.8, 0.7], [0.6, 0.5, 0.65]])
    """
    maps = []
    for r in runs:
        if metric not in r.table.columns:
            raise InputError(f"{r.path}: metrics.csv has no column '{metric}'")
        maps.append({row["case"]: float(row[metric]) for row in r.table.rows if row["label"] == label})
    common = [c for c in maps[0] if all(c in m for m in maps[1:])]
    if not common:
        raise InputError(f"the runs share no case for label {label}: were they evaluated on the same ground truth?")
    return common, np.asarray([[m[c] for c in common] for m in maps])


def rank_runs(runs: Sequence[Run], metrics: Sequence[str] = ("dice", "hd95", "nsd")) -> list[dict[str, Any]]:
    """Rank runs by their mean per-case rank over ``metrics`` and labels (1 = best; ties share ranks).

    Per case, runs are ranked on each metric (``nan`` ranks last) in the catalogue's
    direction; the final score is the mean rank — robust to a single metric's scale, and
    what challenge leaderboards use. Metrics some run lacks are skipped.

    Parameters
    ----------
    runs : sequence of Run
    metrics : sequence of str
        Catalogue metrics with a direction.

    Returns
    -------
    list of dict
        Best first: ``rank``, ``run``, ``mean_rank`` and ``mean_<metric>`` (the mean over
        labels of the value averaged over the *shared* cases, the very cases the ranking
        uses, so the table never mixes case sets).

    Examples
    --------
    >>> from pathlib import Path
    >>> from medseg.metrics.evaluation import MetricsTable
    >>> def run(name, dice, hd95):          # an evaluation of three cases, in memory
    ...     rows = [{"case": f"c{i}", "label": 1, "dice": d, "hd95": h} for i, (d, h) in enumerate(zip(dice, hd95))]
    ...     return Run(name, Path(name), MetricsTable(rows, [1]), {})
    >>> runs = [run("a", [0.9, 0.8, 0.7], [1.0, 2.0, 1.5]), run("b", [0.6, 0.5, 0.65], [3.0, 4.0, 2.5])]
    >>> [(r["rank"], r["run"], r["mean_rank"]) for r in rank_runs(runs, ("dice", "hd95"))]
    [(1, 'a', 1.0), (2, 'b', 2.0)]
    """
    from scipy.stats import rankdata  # deferred: scipy.stats is slow to import

    labels = sorted(set.intersection(*[set(r.table.labels) for r in runs]))
    if not labels:
        raise InputError("the runs share no label to compare")
    total = np.zeros(len(runs))
    count = 0
    per_metric: dict[str, list[np.ndarray]] = {m: [] for m in metrics}  # (n_runs,) shared-case means per label
    for lab in labels:
        for m in metrics:
            if not all(m in r.table.columns for r in runs):
                continue
            _, raw = align(runs, m, lab)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nan rows: nan means
                per_metric[m].append(np.nanmean(raw, axis=1))
            v = cost(m, raw)
            v[np.isnan(v)] = np.inf
            for c in range(v.shape[1]):
                total += rankdata(v[:, c], method="average")
                count += 1
    mean_rank = total / max(count, 1)
    order = np.argsort(mean_rank, kind="stable")
    out = []
    for pos, i in enumerate(order, 1):
        means = {m: (float(np.mean([x[i] for x in per_metric[m]])) if per_metric[m] else math.nan)
                 for m in metrics}
        out.append({"rank": pos, "run": runs[i].name, "mean_rank": float(mean_rank[i]),
                    **{f"mean_{k}": v for k, v in means.items()}})
    return out


def paired_tests(runs: Sequence[Run], metric: str, label: int) -> list[dict[str, Any]]:
    """Wilcoxon signed-rank tests of every pair of runs on the shared cases (two-sided).

    The p-values are *raw*; `adjust_holm` corrects a family of them (``write_comparison``
    corrects every test it writes).

    Parameters
    ----------
    runs : sequence of Run
    metric : str
        A catalogue metric with a direction ("better" follows it).
    label : int

    Returns
    -------
    list of dict
        One per pair ``(a, b)``: ``a, b, metric, label, n`` (cases where both are defined),
        ``median_difference`` (a − b), ``a_better``, ``b_better`` (case counts), ``p_value``
        (``nan`` with fewer than two cases or no difference), ``n_nonzero`` (the cases that
        differ: those the test ranks) and ``p_min`` (`smallest_p` of ``n_nonzero``: the
        smallest p-value the test can give these cases, reached when every case favours
        the same run).

    Examples
    --------
    >>> from pathlib import Path
    >>> from medseg.metrics.evaluation import MetricsTable
    >>> def run(name, dice, hd95):          # an evaluation of three cases, in memory
    ...     rows = [{"case": f"c{i}", "label": 1, "dice": d, "hd95": h} for i, (d, h) in enumerate(zip(dice, hd95))]
    ...     return Run(name, Path(name), MetricsTable(rows, [1]), {})
    >>> runs = [run("a", [0.9, 0.8, 0.7], [1.0, 2.0, 1.5]), run("b", [0.6, 0.5, 0.65], [3.0, 4.0, 2.5])]
    >>> t = paired_tests(runs, "hd95", 1)[0]
    >>> t["a"], t["b"], t["n"], t["median_difference"], t["a_better"], t["b_better"]
    ('a', 'b', 3, -2.0, 3, 0)
    >>> t["p_value"], t["p_min"]          # a beats b on all 3 cases: as small as 3 cases allow, and not < 0.05
    (0.25, 0.25)
    """
    from scipy.stats import wilcoxon  # deferred: scipy.stats is slow to import

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
            median = float(np.median(diff)) if diff.size and np.all(np.isfinite(diff)) else math.nan
            n_nonzero = int(np.sum(cdiff != 0))
            out.append({"a": runs[i].name, "b": runs[j].name, "metric": metric, "label": label, "n": int(ok.sum()),
                        "median_difference": median,
                        "a_better": int(np.sum(cdiff < 0)), "b_better": int(np.sum(cdiff > 0)),
                        "p_value": p, "n_nonzero": n_nonzero, "p_min": smallest_p(n_nonzero)})
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (controls the family-wise error rate).

    Sorted ascending, the ``i``-th smallest of ``m`` p-values becomes ``(m - i + 1) · p``, made
    non-decreasing and capped at 1. ``nan`` (no test) stays ``nan`` and does not count in ``m``.

    Parameters
    ----------
    p_values : sequence of float

    Returns
    -------
    list of float
        The adjusted p-values, in the input order.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005])       # m = 4: 0.005·4, 0.01·3, 0.03·2, max(0.04·1, 0.06)
    [0.03, 0.06, 0.06, 0.02]
    >>> holm([0.2, float("nan"), 0.6])
    [0.4, nan, 0.6]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = order.size
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[k]))
        out[k] = running
    return [round(float(x), 12) if np.isfinite(x) else math.nan for x in out]


def adjust_holm(tests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tests with ``p_holm``: Holm-adjusted over all of them (one family), and ``p_holm_min``.

    ``p_holm_min`` is the smallest adjusted p-value a test could reach, whatever the data:
    its `smallest_p` times the number of tests (Holm's factor for the smallest p), capped at 1.

    Parameters
    ----------
    tests : sequence of dict
        `paired_tests` results (``p_value`` and ``p_min``).

    Returns
    -------
    list of dict
        New dicts, in the same order.

    Examples
    --------
    >>> t = adjust_holm([{"p_value": 0.01, "p_min": 0.002}, {"p_value": 0.04, "p_min": 0.002}])
    >>> [(x["p_holm"], x["p_holm_min"]) for x in t]
    [(0.02, 0.004), (0.04, 0.004)]
    """
    adjusted = holm([t["p_value"] for t in tests])
    m = sum(1 for t in tests if np.isfinite(t["p_value"]))
    return [{**t, "p_holm": a, "p_holm_min": min(1.0, max(m, 1) * float(t.get("p_min", math.nan)))}
            for t, a in zip(tests, adjusted)]


def smallest_p(n: int) -> float:
    """The smallest two-sided p-value the Wilcoxon signed-rank test can give with ``n`` non-zero differences.

    Computed by running the test (as `paired_tests` does) on the most extreme data: all
    ``n`` differences of the same sign, of distinct sizes. Its exact value is ``2 / 2**n``, so
    with 5 or fewer pairs no difference can ever be significant at 0.05.

    Parameters
    ----------
    n : int
        Cases whose difference is not zero.

    Returns
    -------
    float
        1 for ``n < 1``.

    Examples
    --------
    >>> [smallest_p(n) for n in (4, 5, 6)]
    [0.125, 0.0625, 0.03125]
    """
    from scipy.stats import wilcoxon  # deferred: scipy.stats is slow to import

    if n < 1:
        return 1.0
    return float(wilcoxon(np.arange(1.0, n + 1.0)).pvalue)


def cases_needed(alpha: float = 0.05, m: int = 1) -> int:
    """The fewest non-zero paired differences for which the test can reach ``p < alpha`` after Holm over ``m`` tests.

    Parameters
    ----------
    alpha : float
        Significance level.
    m : int
        Tests in the family (Holm multiplies the smallest p-value by ``m``).

    Returns
    -------
    int

    Examples
    --------
    >>> cases_needed(), cases_needed(m=9)
    (6, 9)
    """
    n = 1
    while max(m, 1) * smallest_p(n) >= alpha and n < 10_000:
        n += 1
    return n


def write_comparison(runs: Sequence[Run], out: str | Path, *, metrics: Sequence[str] = ("dice", "hd95", "nsd"),
                     html: bool = True, title: str = "Comparison") -> list[Path]:
    """Write ``comparison.csv`` (aligned per-case values), ``ranking.json`` and ``report.html`` into ``out``.

    Parameters
    ----------
    runs : sequence of Run
        The evaluations (see `load_runs`).
    out : str or Path
        Output folder (created).
    metrics : sequence of str
        Metrics the ranking and the paired tests use.
    html : bool
        Also write ``report.html``.
    title : str
        Report title.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out must be a folder, but a file of that name exists")
    labels = sorted(set.intersection(*[set(r.table.labels) for r in runs]))
    cases, dropped = shared_cases(runs)
    if not cases:
        raise InputError("the runs share no case: were they evaluated on the same ground truth?")
    if dropped:  # once, with the count and the names
        log.warning("%d case(s) are shared by all %d runs; left out of every number of the comparison: %s",
                    len(cases), len(runs), "; ".join(f"{k}: {len(v)} ({short_list(v)})" for k, v in dropped.items()))
    ranking = rank_runs(runs, metrics)
    tests = adjust_holm([t for lab in labels for m in metrics if all(m in r.table.columns for r in runs)
                         for t in paired_tests(runs, m, lab)])
    n_tested = sum(1 for t in tests if np.isfinite(t["p_value"]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["case", "label", "metric"] + [r.name for r in runs])
    aligned: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for lab in labels:
        for m in [x for x in MAIN_METRICS if all(x in r.table.columns for r in runs)]:
            cases, v = align(runs, m, lab)
            aligned[(lab, m)] = {r.name: v[i] for i, r in enumerate(runs)}
            for k, c in enumerate(cases):
                w.writerow([c, lab, m] + [repr(round(float(x), 10)) if np.isfinite(x) else str(x) for x in v[:, k]])
    out.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_text(out / "comparison.csv", buf.getvalue()),
               save_json(json_safe({"format": "medseg-comparison", "format_version": 1,
                                    "runs": {r.name: str(r.path) for r in runs}, "labels": labels,
                                    "n_shared_cases": len(cases), "dropped_cases": dropped,
                                    "ranking_metrics": list(metrics), "ranking": ranking,
                                    "paired_test": TEST_NAME,
                                    "multiple_comparisons": {"method": "holm", "m": n_tested,
                                                             "family": "every paired test in this file"},
                                    "paired_tests": tests}),
                         out / "ranking.json")]
    if html:
        label_names: dict[int, str] = {}
        for r in runs:
            label_names.update(r.table.label_names)
        info = [{"name": r.name, "path": str(r.path), "n_cases": len(r.table.cases),
                 "aggregation": r.summary.get("aggregation") or "?", "dropped": dropped.get(r.name, [])}
                for r in runs]
        test_info = {"name": TEST_NAME, "m": n_tested, "cases_needed": cases_needed(),
                     "cases_needed_holm": cases_needed(m=n_tested)}
        page = comparison_html(info, labels, ranking, tests, aligned, label_names=label_names, title=title,
                               test_info=test_info)
        written.append(atomic_write_text(out / "report.html", page))
    return written

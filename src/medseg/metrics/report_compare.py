"""The HTML page of a comparison of several evaluations.

A renderer of plain data: [`medseg.metrics.compare.write_comparison`][] computes the
ranking, the paired tests and the aligned per-case values and passes them here; this module
does not import [`medseg.metrics.compare`][]. Titles and directions come from
[`medseg.metrics.catalogue`][].
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medseg.metrics.catalogue import heading, lower_is_better
from medseg.viz import html as H
from medseg.viz.plots import paired_figure, png_bytes

__all__ = ["comparison_html"]

#: Metrics drawn as paired per-case plots (when every run has them).
PLOTTED_METRICS = ("dice", "hd95", "assd", "nsd", "precision", "recall")


def _dropped(cases: Sequence[str]) -> str:
    if not cases:
        return "none"
    return f"{len(cases)}: " + ", ".join(cases[:6]) + (" …" if len(cases) > 6 else "")


def comparison_html(runs: Sequence[Mapping[str, Any]], labels: Sequence[int], ranking: Sequence[Mapping[str, Any]],
                    tests: Sequence[Mapping[str, Any]], aligned: Mapping[tuple[int, str], Mapping[str, np.ndarray]],
                    *, label_names: Mapping[int, str], title: str, test_info: Mapping[str, Any] | None = None) -> str:
    """Ranking table, paired per-case plots per metric and label, and paired Wilcoxon tests (raw and Holm p).

    Parameters
    ----------
    runs : sequence of dict
        One per run: ``name``, ``path``, ``n_cases``, ``aggregation`` (from its summary) and
        ``dropped`` (its cases that not every run has, left out of every number).
    labels : sequence of int
        The labels every run has.
    ranking : sequence of dict
        [`rank_runs`][medseg.metrics.compare.rank_runs]'s result (best first).
    tests : sequence of dict
        [`paired_tests`][medseg.metrics.compare.paired_tests]'s results, with ``p_holm`` and
        ``p_holm_min`` ([`adjust_holm`][medseg.metrics.compare.adjust_holm]) when adjusted.
    aligned : mapping
        ``{(label, metric): {run name: per-case values, shape (n_cases,)}}`` on the shared
        cases, in page order; metrics in `PLOTTED_METRICS` are drawn.
    label_names : mapping
        ``{label: name}`` where known.
    title : str
        Page title.
    test_info : mapping, optional
        ``name`` of the test, ``m`` (tests in the Holm family), ``cases_needed`` (fewest
        differing cases for which the test can reach p < 0.05) and ``cases_needed_holm`` (the
        same after Holm over ``m`` tests).

    Returns
    -------
    str
        A self-contained HTML page.
    """
    def lab_name(lab: int) -> str:
        return f"label {lab}" + (f" ({label_names[lab]})" if label_names.get(lab) else "")

    n_shared = min(r["n_cases"] - len(r.get("dropped") or []) for r in runs)
    parts = [f"<h1>{H.esc(title)}</h1>",
             f'<p class="meta">{len(runs)} runs · labels {", ".join(lab_name(x) for x in labels)} · '
             f"{n_shared} cases shared by every run</p>",
             H.table(["run", "folder", "cases", "left out (not in every run)", "aggregation in its summary"],
                     [[r["name"], r["path"], r["n_cases"], _dropped(r.get("dropped") or []), r["aggregation"]]
                      for r in runs])]
    if any(r.get("dropped") for r in runs):
        parts.append(f'<div class="note warn"><b>Every number below is over the {n_shared} cases that every run '
                     "evaluated</b>; the cases only some runs have are left out (listed above).</div>")
    rank_metrics = [k[5:] for k in ranking[0] if k.startswith("mean_") and k != "mean_rank"]
    parts.append("<h2>Ranking</h2>")
    parts.append('<div class="note">Runs are ranked per case on each of '
                 f'{", ".join(heading(m) for m in rank_metrics)} (and each label); the score is the mean '
                 f"rank (1 = best on everything). Means are case-averaged over the same {n_shared} shared cases.</div>")
    parts.append(H.table(["rank", "run", "mean rank"] + [f"mean {heading(m)}" for m in rank_metrics],
                         [[r["rank"], r["run"], H.num(r["mean_rank"], 2)]
                          + [H.num(r[f"mean_{m}"]) for m in rank_metrics] for r in ranking]))
    parts.append("<h2>Per-case comparison</h2>")
    parts.append(f'<div class="note">Each point is a case, lines join the same case across runs; the black bar and '
                 f"its label are the run's <b>mean</b> over the {n_shared} shared cases, as in the ranking "
                 "table.</div>")
    parts.append("<div class=\"grid\">")
    for (lab, m), values in aligned.items():
        if m not in PLOTTED_METRICS:
            continue
        fig = paired_figure(values, title=f"{heading(m)}, {lab_name(lab)}", lower_is_better=lower_is_better(m))
        parts.append(H.img(png_bytes(fig), f"{m} {lab}"))
    parts.append("</div>")
    if tests:
        parts.append("<h2>Paired tests</h2>")
        parts.extend(_tests_html(tests, dict(test_info or {})))
    return H.page(title, "\n".join(parts))


def _p_cell(p: float, p_min: float, *, bold: bool, alpha: float = 0.05) -> str:
    """A p-value; bold (when ``bold``) below ``alpha``, grey when the test could never have reached it."""
    text = H.num(p, 4) if not (p == p and 0 < p < 0.001) else f"{p:.1e}"
    if bold and p == p and p < alpha:
        return f"<b>{text}</b>"
    if p_min == p_min and p_min >= alpha:
        return f'<span class="pale" title="this many cases cannot reach {alpha}">{text}</span>'
    return text


def _tests_html(tests: Sequence[Mapping[str, Any]], info: dict[str, Any]) -> list[str]:
    """The note, the small-n warning and the table of the paired tests."""
    name = info.get("name", "two-sided Wilcoxon signed-rank test")
    m = int(info.get("m") or sum(1 for t in tests if t["p_value"] == t["p_value"]))
    adjusted = all("p_holm" in t for t in tests)
    out = [f'<div class="note">{H.esc(name[0].upper() + name[1:])} on the shared cases, one test per metric, label and '
           'pair of runs; "A better" counts the cases where A beats B (in the metric\'s direction). '
           + (f"<b>p (Holm)</b> is the p-value adjusted with Holm's step-down method over all m = {m} tests in this "
              "table, which keeps the chance of any false claim below 5 %: claim a difference only where it is "
              "below 0.05 (bold). The raw p is what one test alone would give." if adjusted else
              "The p-values are not corrected for multiple comparisons (bold: below 0.05).")
           + " Grey p-values come from too few differing cases to ever reach 0.05.</div>"]
    p_mins = [(t.get("n_nonzero", t["n"]), t.get("p_min", float("nan"))) for t in tests]
    hopeless = [(n, p) for n, p in p_mins if p == p and p >= 0.05]
    if hopeless:
        n_max, p_best = max(hopeless)
        needed = info.get("cases_needed")
        every = len(hopeless) == len(tests)
        txt = ("<b>Too few cases for any test here to reach p &lt; 0.05.</b> " if every else
               f"<b>{len(hopeless)} of the {len(tests)} tests have too few differing cases to reach p &lt; 0.05.</b> ")
        txt += (f"With n = {n_max} case{'s' if n_max != 1 else ''} that differ, the smallest p-value the "
                f"{H.esc(name)} can give is {H.num(p_best, 4)}, reached only when every case favours the same run"
                + (" — whatever the methods, no difference can be significant" if every else "") + ". ")
        if needed:
            txt += f"It needs at least {needed} differing cases to reach 0.05"
            if adjusted and info.get("cases_needed_holm") and m > 1:
                txt += f", and {info['cases_needed_holm']} after Holm's correction over the {m} tests"
            txt += ". Read the per-case plots instead: they show every case."
        out.append(f'<div class="note warn">{txt}</div>')
    elif adjusted and tests and all(t.get("p_holm_min", 0) >= 0.05 for t in tests):
        out.append(f'<div class="note warn"><b>After Holm\'s correction over {m} tests no adjusted p-value can reach '
                   f"0.05 with these cases</b> (each test's smallest possible p times {m}); it needs at least "
                   f"{info.get('cases_needed_holm', '?')} differing cases.</div>")
    header = ["metric", "label", "A", "B", "n", "median A−B", "A better", "B better", "p (raw)"]
    if adjusted:
        header.append(f"p (Holm, m={m})")
    header.append("smallest possible p")
    rows = []
    for t in tests:
        row = [H.esc(heading(t["metric"])), t["label"], H.esc(t["a"]), H.esc(t["b"]), t["n"],
               H.num(t["median_difference"]), t["a_better"], t["b_better"],
               _p_cell(t["p_value"], t.get("p_min", float("nan")), bold=not adjusted)]
        if adjusted:
            row.append(_p_cell(t["p_holm"], t.get("p_holm_min", float("nan")), bold=True))
        row.append(_p_cell(t.get("p_min", float("nan")), float("nan"), bold=False))
        rows.append(row)
    out.append(H.table(header, rows, raw=True))
    return out

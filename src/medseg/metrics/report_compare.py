"""The HTML page of a comparison of several evaluations.

A renderer of plain data: :func:`medseg.metrics.compare.write_comparison` computes the
ranking, the paired tests and the aligned per-case values and passes them here; this module
does not import :mod:`medseg.metrics.compare`. Titles and directions come from
:mod:`medseg.metrics.catalogue`.
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
                    *, label_names: Mapping[int, str], title: str) -> str:
    """Ranking table, paired per-case plots per metric and label, and paired Wilcoxon tests.

    Parameters
    ----------
    runs : sequence of dict
        One per run: ``name``, ``path``, ``n_cases``, ``aggregation`` (from its summary) and
        ``dropped`` (its cases that not every run has, left out of every number).
    labels : sequence of int
        The labels every run has.
    ranking : sequence of dict
        :func:`~medseg.metrics.compare.rank_runs`'s result (best first).
    tests : sequence of dict
        :func:`~medseg.metrics.compare.paired_tests`'s results.
    aligned : mapping
        ``{(label, metric): {run name: per-case values, shape (n_cases,)}}`` on the shared
        cases, in page order; metrics in :data:`PLOTTED_METRICS` are drawn.
    label_names : mapping
        ``{label: name}`` where known.
    title : str
        Page title.

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
    parts.append("<h2>Per-case comparison</h2><div class=\"grid\">")
    for (lab, m), values in aligned.items():
        if m not in PLOTTED_METRICS:
            continue
        fig = paired_figure(values, title=f"{heading(m)}, {lab_name(lab)}", lower_is_better=lower_is_better(m))
        parts.append(H.img(png_bytes(fig), f"{m} {lab}"))
    parts.append("</div>")
    if tests:
        parts.append("<h2>Paired tests</h2>")
        parts.append('<div class="note">Two-sided Wilcoxon signed-rank test on the shared cases; "A better" counts '
                     "cases where A beats B. With several comparisons, correct the p-values (e.g. Holm) before "
                     "claiming a difference.</div>")
        parts.append(H.table(["metric", "label", "A", "B", "n", "median A−B", "A better", "B better", "p"],
                             [[heading(t["metric"]), t["label"], t["a"], t["b"], t["n"],
                               H.num(t["median_difference"]), t["a_better"], t["b_better"], H.num(t["p_value"], 4)]
                              for t in tests]))
    return H.page(title, "\n".join(parts))

"""The HTML page of a comparison of several evaluations."""
from __future__ import annotations

from typing import Any

from medseg.metrics.evaluation import MAIN_METRICS
from medseg.viz import html as H

__all__ = ["comparison_html"]


def comparison_html(runs: list, labels: list[int], ranking: list[dict[str, Any]], tests: list[dict[str, Any]], *,
                    title: str) -> str:
    """Ranking table, paired per-case plots per metric and label, and paired Wilcoxon tests."""
    from medseg.metrics.compare import LOWER_IS_BETTER, align
    from medseg.metrics.report import METRIC_TITLES
    from medseg.viz.plots import paired_figure, png_bytes

    names = {}
    for r in runs:
        names.update(r.table.label_names)
    lab_name = lambda lab: f"label {lab}" + (f" ({names[lab]})" if names.get(lab) else "")  # noqa: E731
    agg = {r.name: (r.summary.get("aggregation") or "?") for r in runs}
    parts = [f"<h1>{H.esc(title)}</h1>",
             f'<p class="meta">{len(runs)} runs · labels {", ".join(lab_name(x) for x in labels)}</p>',
             H.table(["run", "folder", "cases", "aggregation in its summary"],
                     [[r.name, str(r.path), len(r.table.cases), agg[r.name]] for r in runs])]
    rank_metrics = [k[5:] for k in ranking[0] if k.startswith("mean_") and k != "mean_rank"]
    parts.append("<h2>Ranking</h2>")
    parts.append('<div class="note">Runs are ranked per case on each of '
                 f'{", ".join(METRIC_TITLES.get(m, m) for m in rank_metrics)} (and each label); the score is the mean '
                 "rank (1 = best on everything). Means are case-averaged over the shared cases.</div>")
    parts.append(H.table(["rank", "run", "mean rank"] + [f"mean {METRIC_TITLES.get(m, m)}" for m in rank_metrics],
                         [[r["rank"], r["run"], H.num(r["mean_rank"], 2)] + [H.num(r[f"mean_{m}"]) for m in rank_metrics]
                          for r in ranking]))
    parts.append("<h2>Per-case comparison</h2><div class=\"grid\">")
    for lab in labels:
        for m in [x for x in MAIN_METRICS if all(x in r.table.columns for r in runs)]:
            if m not in ("dice", "hd95", "assd", "nsd", "precision", "recall"):
                continue
            _, v = align(runs, m, lab)
            fig = paired_figure({r.name: v[i] for i, r in enumerate(runs)},
                                title=f"{METRIC_TITLES.get(m, m)}, {lab_name(lab)}", lower_is_better=m in LOWER_IS_BETTER)
            parts.append(H.img(png_bytes(fig), f"{m} {lab}"))
    parts.append("</div>")
    if tests:
        parts.append("<h2>Paired tests</h2>")
        parts.append('<div class="note">Two-sided Wilcoxon signed-rank test on the shared cases; "A better" counts '
                     "cases where A beats B. With several comparisons, correct the p-values (e.g. Holm) before "
                     "claiming a difference.</div>")
        parts.append(H.table(["metric", "label", "A", "B", "n", "median A−B", "A better", "B better", "p"],
                             [[METRIC_TITLES.get(t["metric"], t["metric"]), t["label"], t["a"], t["b"], t["n"],
                               H.num(t["median_difference"]), t["a_better"], t["b_better"], H.num(t["p_value"], 4)]
                              for t in tests]))
    return H.page(title, "\n".join(parts))

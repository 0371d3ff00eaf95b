"""The metric catalogue is the one place that says what a metric is: every metrics.csv column has an
entry, and the CSV writer, the summaries, the HTML report and `compare` all follow it."""
import ast
import csv
import dataclasses
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from medseg.errors import ConfigError, InputError
from medseg.image import Image
from medseg.metrics import (
    DISTANCE_METRICS,
    OVERLAP_METRICS,
    PROBABILITY_METRICS,
    compare,
    dice,
    evaluate,
    overlap,
    report,
    report_compare,
    report_html,
)
from medseg.metrics import catalogue as cat
from medseg.metrics.aggregate import worst_cases
from medseg.metrics.compare import Run, paired_tests, rank_runs, write_comparison
from medseg.metrics.evaluation import COLUMNS, MetricsTable

ROOT = Path(__file__).resolve().parents[2]
METRICS_DIR = ROOT / "src" / "medseg" / "metrics"

# metrics.csv headers as written before the catalogue existed: the column order must never change
HEADER = ("case,label,label_name,dice,iou,precision,recall,specificity,accuracy,hd95,assd,nsd,hausdorff,"
          "balanced_accuracy,mcc,volume_difference,volume_similarity,volume_pred,volume_truth,tp,fp,fn,tn,empty")
HEADER_PROB = HEADER.replace(",nsd,hausdorff,", ",nsd,roc_auc,pr_auc,ece,hausdorff,").replace(
    ",tn,empty", ",tn,brier,empty")  # brier came later: appended


def _case(seed=0):
    rng = np.random.default_rng(seed)
    t = np.zeros((20, 24), np.uint8)
    t[4:12, 5:15] = 1
    t[14:18, 3:20] = 2
    p = np.roll(t, 1, axis=1)
    p[rng.integers(0, 20, 6), rng.integers(0, 24, 6)] = rng.integers(0, 3, 6)
    prob = np.stack([(t == k) * 0.7 + 0.1 for k in range(3)]).astype(np.float64)
    prob /= prob.sum(0, keepdims=True)
    return Image(p, spacing=(0.5, 2.0)), Image(t, spacing=(0.5, 2.0)), prob


def test_metrics_csv_columns_are_catalogued_and_in_the_old_order(tmp_path):
    pred, truth, prob = _case()
    plain = evaluate([pred], [truth])
    with_prob = evaluate([pred], [truth], probabilities=[prob])
    assert plain.to_csv().splitlines()[0] == HEADER == ",".join(COLUMNS) == ",".join(cat.columns())
    assert with_prob.to_csv().splitlines()[0] == HEADER_PROB == ",".join(cat.columns(probabilities=True))
    assert "outside_roi" not in HEADER_PROB
    with_all = evaluate([pred], [truth], probabilities=[prob], roi=[np.ones(truth.shape, bool)])
    assert with_all.to_csv().splitlines()[0] == ",".join(cat.columns(probabilities=True, roi=True))
    assert with_all.to_csv().splitlines()[0].startswith(HEADER_PROB.removesuffix(",empty"))
    with_all.to_csv(tmp_path / "metrics.csv")
    header = next(csv.reader((tmp_path / "metrics.csv").open()))
    identifiers = set(cat.KEY_COLUMNS + cat.NOTE_COLUMNS)
    for col in header:
        assert col in identifiers or col in cat.METRICS, f"metrics.csv column {col!r} has no catalogue entry"
    # every catalogue entry is a column, and every value in it is a number
    assert set(cat.METRICS) == set(header) - identifiers
    for row in with_all.rows:
        for name in cat.METRICS:
            assert isinstance(row[name], (int, float)), name


def test_entries_are_complete_and_consistent():
    for name, m in cat.METRICS.items():
        assert m.name == name and m.title and m.description
        assert m.direction in ("higher", "lower", "zero", "none")
        assert (m.direction == "none") == (not m.is_score)
    assert {m.unit for m in cat.METRICS.values() if m.family == "distance" and m.name != "nsd"} == {"mm"}
    assert {cat.METRICS[k].unit for k in ("volume_pred", "volume_truth")} == {"mm³"}
    assert {cat.METRICS[k].unit for k in ("tp", "fp", "fn", "tn")} == {"voxels"}
    assert all(cat.METRICS[k].unit == "" for k in OVERLAP_METRICS + PROBABILITY_METRICS + ("nsd",))
    # the per-family tuples of the computing modules are the catalogue's families
    assert OVERLAP_METRICS == cat.names("overlap")
    assert set(DISTANCE_METRICS) == set(cat.names("distance")) == {"hausdorff", "hd95", "assd", "nsd"}
    assert PROBABILITY_METRICS == cat.names("probability")
    assert set(cat.MAIN_METRICS) <= set(cat.METRICS)
    # the summary statistics cover exactly the catalogue's scores
    table = evaluate(*_case()[:2])
    assert table.metrics == [c for c in table.columns if c in cat.METRICS and cat.METRICS[c].is_score]
    assert set(table.summary()["1"]) == set(table.metrics)


def test_directions():
    lower = {n for n, m in cat.METRICS.items() if m.direction == "lower"}
    assert lower == {"hd95", "assd", "hausdorff", "ece", "brier", "outside_roi"}
    assert cat.METRICS["volume_difference"].direction == "zero"
    assert all(cat.lower_is_better(n) for n in lower)
    assert not cat.lower_is_better("dice") and not cat.lower_is_better("nsd")
    assert cat.heading("hausdorff") == "Hausdorff (mm)" and cat.heading("nsd") == "NSD"
    assert cat.cost("hausdorff", [3.0]).tolist() == [3.0] and cat.cost("dice", [0.5]).tolist() == [-0.5]
    assert np.isnan(cat.cost("dice", [np.nan])[0])
    with pytest.raises(InputError, match="measurement"):
        cat.cost("volume_pred", [1.0])
    with pytest.raises(ConfigError, match="did you mean"):
        cat.metric("hasudorff")


def test_no_module_keeps_its_own_direction_or_title_list():
    for module in (report, report_html, compare, report_compare):
        for name in ("LOWER_IS_BETTER", "ABS_LOWER_IS_BETTER", "METRIC_TITLES", "cost"):
            assert not hasattr(module, name) or getattr(module, name) is getattr(cat, name, None), (module, name)


def _run(name, hausdorff, dice_values):
    rows = [{"case": f"c{i}", "label": 1, "label_name": "", "dice": d, "hausdorff": h, "hd95": h, "assd": h,
             "nsd": d, "tp": 1, "fp": 0, "fn": 0, "tn": 1, "empty": ""}
            for i, (h, d) in enumerate(zip(hausdorff, dice_values))]
    return Run(name, Path(name), MetricsTable(rows, [1]), {"aggregation": "case-averaged"})


def test_hausdorff_is_lower_is_better_in_compare():
    near, far = _run("near", [1.0, 2.0, 1.5], [0.5, 0.5, 0.5]), _run("far", [4.0, 5.0, math.inf], [0.5, 0.5, 0.5])
    for runs in ([near, far], [far, near]):
        assert rank_runs(runs, ("hausdorff",))[0]["run"] == "near"
    t = paired_tests([near, far], "hausdorff", 1)[0]
    assert t["a"] == "near" and t["a_better"] == 3 and t["b_better"] == 0


def test_compare_follows_the_catalogue(monkeypatch):
    good, bad = _run("good", [1.0, 1.0], [0.9, 0.8]), _run("bad", [1.0, 1.0], [0.4, 0.3])
    assert rank_runs([bad, good], ("dice",))[0]["run"] == "good"
    flipped = dict(cat.METRICS, dice=dataclasses.replace(cat.METRICS["dice"], direction="lower"))
    monkeypatch.setattr(cat, "METRICS", flipped)
    assert rank_runs([bad, good], ("dice",))[0]["run"] == "bad"
    assert paired_tests([good, bad], "dice", 1)[0]["b_better"] == 2


def test_worst_cases_follow_the_direction():
    rows = [{"case": "a", "dice": 0.9, "hd95": 1.0}, {"case": "b", "dice": 0.5, "hd95": 9.0},
            {"case": "c", "dice": 0.7, "hd95": 3.0}]
    assert [c for c, _ in worst_cases(rows, 2, "dice")] == ["b", "c"]
    assert [c for c, _ in worst_cases(rows, 2, "hd95")] == ["b", "c"]


def test_report_plots_use_catalogue_titles_and_directions(monkeypatch):
    calls = []
    real = report_html.metric_box_figure

    def spy(groups, *, title, lower_is_better=False, **kw):
        calls.append((title, lower_is_better))
        return real(groups, title=title, lower_is_better=lower_is_better, **kw)

    monkeypatch.setattr(report_html, "metric_box_figure", spy)
    pred, truth, prob = _case()
    table = evaluate([pred], [truth], probabilities=[prob])
    page = report_html.evaluation_html(table, report.summary_document(table), title="t", n_worst=0)
    by_title = {cat.heading(m): m for m in cat.METRICS}
    assert {by_title[t] for t, _ in calls} >= {"dice", "hd95", "assd", "ece"}
    for title, lower in calls:
        assert lower == (cat.METRICS[by_title[title]].direction == "lower"), title
    for m in ("dice", "hd95", "hausdorff", "roc_auc"):
        assert f"<td>{cat.heading(m)}</td>" in page


def test_comparison_plots_use_catalogue_directions(monkeypatch, tmp_path):
    calls = []
    real = report_compare.paired_figure

    def spy(values, *, title, lower_is_better=False):
        calls.append((title.split(",")[0], lower_is_better))
        return real(values, title=title, lower_is_better=lower_is_better)

    monkeypatch.setattr(report_compare, "paired_figure", spy)
    runs = []
    for run in (_run("a", [1.0, 2.0], [0.9, 0.8]), _run("b", [3.0, 1.0], [0.6, 0.7])):
        run.table.to_csv(tmp_path / f"{run.name}.csv")  # as read back from disk: every column present
        runs.append(dataclasses.replace(run, table=MetricsTable.read_csv(tmp_path / f"{run.name}.csv")))
    write_comparison(runs, tmp_path / "cmp", metrics=("dice", "hausdorff"))
    by_title = {cat.heading(m): m for m in cat.METRICS}
    assert {by_title[t] for t, _ in calls} >= {"dice", "hd95", "assd", "nsd"}
    for title, lower in calls:
        assert lower == cat.lower_is_better(by_title[title])
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "Hausdorff (mm)" in html  # the ranking metric's title comes from the catalogue


def test_one_dice():
    rng = np.random.default_rng(1)
    for _ in range(5):
        p, t = rng.integers(0, 3, (9, 11)), rng.integers(0, 3, (9, 11))
        rows = evaluate(p, t, labels=[1, 2], distances=False).rows
        for r in rows:
            d = dice(p, t, label=r["label"])
            assert d == overlap(p, t, label=r["label"])["dice"] == r["dice"]
    # no other module of medseg.metrics defines a Dice function of its own
    defs = []
    for path in METRICS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "dice" in node.name.lower():
                defs.append(f"{path.name}:{node.name}")
    assert sorted(defs) == ["confusion.py:_dice", "confusion.py:dice"]


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    files = {mod.module_name(p): p for p in sorted((ROOT / "src" / "medseg").rglob("*.py"))}
    return mod, files, mod.collect(set(files), files)


def test_metrics_and_viz_have_no_cycles_and_no_unexplained_deferred_imports():
    mod, files, edges = _import_graph()
    ours = ("medseg.metrics", "medseg.viz")
    for cycle in mod.cycles(set(files), edges):
        assert not any(m.startswith(ours) for m in cycle), cycle
    for importer, imported, deferred, line, comment in edges:
        if deferred and importer.startswith(ours):
            assert comment.lower().startswith("deferred:"), f"{importer}:{line} -> {imported}"
    # the data modules never import their renderers
    for importer, imported, *_ in edges:
        if importer in ("medseg.metrics.evaluation", "medseg.metrics.report_compare"):
            assert imported not in ("medseg.metrics.report_html", "medseg.metrics.compare"), (importer, imported)

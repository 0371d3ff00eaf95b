import csv
import json
import math

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.errors import InputError
from medseg.image import Image
from medseg.io import write_image
from medseg.metrics.aggregate import describe, summarize
from medseg.metrics.evaluation import MetricsTable, evaluate


def _cases(n=4, seed=0):
    rng = np.random.default_rng(seed)
    preds, truths = [], []
    for i in range(n):
        t = np.zeros((20, 24), np.uint8)
        t[4:12, 5:15] = 1
        t[14:18, 3:20] = 2
        p = t.copy()
        p[rng.integers(0, 20, 6), rng.integers(0, 24, 6)] = rng.integers(0, 3, 6)
        p = np.roll(p, i % 2, axis=1)
        preds.append(Image(p, spacing=(0.5, 2.0)))
        truths.append(Image(t, spacing=(0.5, 2.0)))
    return preds, truths


def test_evaluate_rows_and_summary():
    preds, truths = _cases()
    table = evaluate(preds, truths, tolerance=2.0)
    assert len(table) == 8 and table.labels == [1, 2]
    for col in ("case", "label", "dice", "iou", "precision", "recall", "specificity", "accuracy", "hd95", "assd",
                "nsd"):
        assert col in table.columns
    from medseg.metrics import hd95, overlap
    assert table.rows[0]["dice"] == pytest.approx(overlap(preds[0], truths[0], label=1)["dice"])
    assert table.rows[1]["hd95"] == pytest.approx(hd95(preds[0], truths[0], label=2))
    s = table.summary()
    dice1 = table.column("dice", 1)
    assert s["1"]["dice"]["mean"] == pytest.approx(dice1.mean())
    assert s["1"]["dice"]["median"] == pytest.approx(np.median(dice1))
    assert s["1"]["dice"]["iqr"] == pytest.approx(np.subtract(*np.percentile(dice1, [75, 25])))
    assert s["1"]["dice"]["mode"] == "case-averaged"
    pooled = table.summary(pooled=True)["1"]["dice"]
    tp = sum(r["tp"] for r in table.rows if r["label"] == 1)
    fp = sum(r["fp"] for r in table.rows if r["label"] == 1)
    fn = sum(r["fn"] for r in table.rows if r["label"] == 1)
    assert pooled["mode"] == "pooled" and pooled["value"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert table.confusion.sum() == sum(t.array.size for t in truths)


def test_missing_label_gets_an_empty_row_and_is_skipped_in_stats():
    t1 = np.zeros((8, 8), int)
    t1[2:5, 2:5] = 1
    t2 = np.zeros((8, 8), int)
    t2[2:5, 2:5] = 2
    table = evaluate([t1, t2], [t1, t2])
    rows = {(r["case"], r["label"]): r for r in table.rows}
    assert rows[("case_000", 2)]["empty"] == "both" and math.isnan(rows[("case_000", 2)]["dice"])
    s = table.summary()["2"]["dice"]
    assert s["n"] == 1 and s["n_undefined"] == 1 and s["mean"] == 1.0


def test_describe_counts_inf():
    d = describe([1.0, math.inf, float("nan"), 3.0])
    assert d["n"] == 2 and d["n_infinite"] == 1 and d["n_undefined"] == 1 and d["mean"] == math.inf
    assert d["median"] == 3.0
    assert summarize([{"label": 1, "x": 1.0}], ["x"])["1"]["x"]["n"] == 1


def test_csv_round_trip(tmp_path):
    preds, truths = _cases(2)
    table = evaluate(preds, truths)
    table.to_csv(tmp_path / "m.csv")
    back = MetricsTable.read_csv(tmp_path / "m.csv")
    assert [r["case"] for r in back.rows] == [r["case"] for r in table.rows]
    assert back.column("dice") == pytest.approx(table.column("dice"))


def _write_folders(root, preds, truths, images=True):
    for i, (p, t) in enumerate(zip(preds, truths)):
        write_image(p, root / "pred" / f"case{i}.nii.gz")
        write_image(t, root / "gt" / f"case{i}.nii.gz")
        roi = np.ones(t.shape, np.uint8)
        roi[:, :2] = 0
        write_image(t.with_array(roi), root / "roi" / f"case{i}_fov.nii.gz")
        if images:
            write_image(t.with_array(t.array.astype(np.float32) * 50 + 10), root / "img" / f"case{i}.nii.gz")


def test_cli_evaluate_and_compare(tmp_path, capsys):
    preds, truths = _cases(3)
    _write_folders(tmp_path, preds, truths)
    out = tmp_path / "ev"
    rc = main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--roi", str(tmp_path / "roi"),
               "--images", str(tmp_path / "img"), "--out", str(out), "--tolerance", "1.5"])
    assert rc == 0
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert len(rows) == 6 and {"case", "label", "dice", "hd95", "nsd"} <= set(rows[0])
    # the ROI restricts every metric: counts sum to the ROI size
    n_roi = 20 * 22
    assert int(rows[0]["tp"]) + int(rows[0]["fp"]) + int(rows[0]["fn"]) + int(rows[0]["tn"]) == n_roi
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aggregation"] == "case-averaged" and summary["roi"] is True
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "confusion matrix" in html and "worst cases" in html
    assert "http://" not in html and "https://" not in html  # self-contained

    ev2 = tmp_path / "ev2"
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "gt"), "--out", str(ev2), "--pooled",
                 "--no-html"]) == 0
    assert json.loads((ev2 / "summary.json").read_text())["aggregation"] == "pooled"
    assert not (ev2 / "report.html").exists()
    cmp = tmp_path / "cmp"
    assert main(["compare", str(out), str(ev2), "--names", "pred,perfect", "--out", str(cmp)]) == 0
    ranking = json.loads((cmp / "ranking.json").read_text())
    assert ranking["ranking"][0]["run"] == "perfect"
    assert (cmp / "comparison.csv").read_text().startswith("case,label,metric,pred,perfect")
    assert "data:image/png;base64," in (cmp / "report.html").read_text()


def test_cli_errors(tmp_path, capsys):
    preds, truths = _cases(2)
    _write_folders(tmp_path, preds, truths, images=False)
    (tmp_path / "pred" / "case1.nii.gz").unlink()
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "1 prediction(s) for 2 ground-truth cases" in err and "case1" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    assert main(["evaluate", str(tmp_path / "gt"), str(tmp_path / "gt"), "--labels", "a,b",
                 "--out", str(tmp_path / "o")]) == 2
    assert main(["compare", str(tmp_path / "gt"), str(tmp_path / "gt"), "--out", str(tmp_path / "c")]) == 2
    assert "no metrics.csv" in capsys.readouterr().err


def test_shape_mismatch_names_the_case(tmp_path):
    write_image(Image(np.zeros((5, 5), np.uint8)), tmp_path / "p" / "a.nii.gz")
    write_image(Image(np.zeros((5, 6), np.uint8)), tmp_path / "g" / "a.nii.gz")
    with pytest.raises(InputError, match="case a: .*shape"):
        evaluate(tmp_path / "p", tmp_path / "g")


def test_probability_maps_in_prediction_folder(tmp_path):
    t = np.zeros((16, 16), np.uint8)
    t[4:10, 4:10] = 1
    prob = np.where(t > 0, 0.8, 0.1).astype(np.float32)
    write_image(Image(t), tmp_path / "p" / "c1.nii.gz")
    write_image(Image(prob), tmp_path / "p" / "c1_prob.nii.gz")
    write_image(Image(t), tmp_path / "g" / "c1.nii.gz")
    table = evaluate(tmp_path / "p", tmp_path / "g")
    assert table.rows[0]["roc_auc"] == 1.0 and table.rows[0]["ece"] == pytest.approx((36 * 0.2 + 220 * 0.1) / 256)


def test_foreground_outside_the_roi_is_reported_and_warned(caplog):
    """A prediction that is clean inside the ROI but labels the outside is not silently perfect."""
    import logging

    from medseg.metrics.evaluation import evaluate

    truth = np.zeros((20, 20), np.uint8)
    truth[8:12, 8:12] = 1
    roi = np.zeros((20, 20), bool)
    roi[5:15, 5:15] = True
    messy = truth.copy()
    messy[~roi] = 1                          # the whole exterior labelled foreground
    with caplog.at_level(logging.WARNING, logger="medseg.metrics.evaluation"):
        table = evaluate([truth, messy], [truth, truth], roi=[roi, roi])
    assert [r["dice"] for r in table.rows] == [1.0, 1.0]           # inside the ROI both are perfect
    outside = [r["outside_roi"] for r in table.rows]
    assert outside[0] == 0.0
    assert outside[1] == pytest.approx(300 / 316)                   # 300 exterior of 316 predicted voxels
    assert table.outside_roi == {"case_000": 0.0, "case_001": pytest.approx(300 / 316)}
    assert "outside_roi" in table.columns and "outside_roi" in table.to_csv().splitlines()[0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "case_001 (94.9 %)" in warnings[0] and "case_000" not in warnings[0]


def test_no_roi_no_outside_column():
    from medseg.metrics.evaluation import evaluate

    t = np.zeros((6, 6), np.uint8)
    t[2:4, 2:4] = 1
    table = evaluate([t], [t])
    assert "outside_roi" not in table.columns and table.outside_roi == {}


def test_lengths_in_pixels_where_the_files_store_no_pixel_size(tmp_path, capsys):
    import json as _json

    t = np.zeros((16, 16), np.uint8)
    t[4:10, 4:10] = 1
    p = np.roll(t, 2, axis=0)
    for suffix, unit in ((".png", "px"), (".nii.gz", "mm")):
        d = tmp_path / suffix.strip(".")
        write_image(Image(t), d / "gt" / f"a{suffix}")
        write_image(Image(p), d / "pred" / f"a{suffix}")
        assert main(["evaluate", str(d / "pred"), str(d / "gt"), "--out", str(d / "ev")]) == 0
        out = capsys.readouterr().out
        assert f"HD95 median 2 {unit}" in out
        assert _json.loads((d / "ev" / "summary.json").read_text())["length_unit"] == unit
        page = (d / "ev" / "report.html").read_text()
        assert ("HD95 (px)" in page) == (unit == "px")


def test_partial_predictions_say_so_and_subset_is_recorded(tmp_path, capsys):
    import json as _json

    t = np.zeros((16, 16), np.uint8)
    t[4:10, 4:10] = 1
    for i in range(4):
        write_image(Image(t), tmp_path / "gt" / f"case_{i}.nii.gz")
    write_image(Image(t), tmp_path / "pred" / "case_0.nii.gz")
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "1 prediction(s) for 4 ground-truth cases" in err and "--subset" in err
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--out", str(tmp_path / "e"),
                 "--subset"]) == 0
    doc = _json.loads((tmp_path / "e" / "summary.json").read_text())
    assert "--subset" in doc["inputs"]["subset"] and doc["n_cases"] == 1
    assert "--subset" in (tmp_path / "e" / "report.html").read_text()
